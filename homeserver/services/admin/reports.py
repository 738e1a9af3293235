"""Event and room reports: users report (``/rooms/{roomId}/report[/{eventId}]``), admins read.

A user may report only an event they can see, or a room they are in; the
report keeps who reported what and why.  Reports are never shown to the
reported user.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from common.errors import MatrixError, bad_param, not_found
from homeserver.services.clock import Clock
from homeserver.services.messages import MessageService
from homeserver.services.ratelimit import Limit, RateLimiter
from homeserver.services.rooms import RoomService, check_room_id
from homeserver.storage.database import Row
from homeserver.storage.moderation import ModerationRepository

Json = dict[str, Any]
MAX_REASON = 1000
REPORT_LIMIT = Limit("report", 20)


def _reason(body: Mapping[str, Any]) -> str | None:
    reason = body.get("reason")
    if reason is not None and (not isinstance(reason, str) or len(reason) > MAX_REASON):
        raise bad_param(f"reason must be a string of at most {MAX_REASON} characters")
    return reason


class ReportService:
    def __init__(self, repo: ModerationRepository, rooms: RoomService, messages: MessageService,
                 limiter: RateLimiter, clock: Clock) -> None:
        self.limiter = limiter
        self.repo = repo
        self.rooms = rooms
        self.messages = messages
        self.clock = clock

    # ------------------------------------------------------------- users
    async def report_event(self, user_id: str, device_id: str, room_id: str, event_id: str,
                           body: Mapping[str, Any]) -> None:
        reason = _reason(body)
        await self.limiter.check(REPORT_LIMIT, user_id)
        score = body.get("score")
        if score is not None and (not isinstance(score, int) or isinstance(score, bool) or not -100 <= score <= 0):
            raise bad_param("score must be an integer between -100 and 0")
        # 404 unless the reporter can see the event (also for rooms they are not in).
        try:
            await self.messages.get_event(user_id, device_id, room_id, event_id)
        except MatrixError as exc:
            if exc.status not in (403, 404):
                raise
            raise not_found("The event does not exist or you cannot see it") from None
        await self.repo.add_report(room_id, event_id, user_id, reason, score, self.clock.now_ms())

    async def report_room(self, user_id: str, room_id: str, body: Mapping[str, Any]) -> None:
        reason = _reason(body)
        await self.limiter.check(REPORT_LIMIT, user_id)
        check_room_id(room_id)
        membership = await self.rooms.repo.membership(room_id, user_id)
        if membership is None or membership.membership not in ("join", "invite"):
            raise not_found("Room not found")
        await self.repo.add_report(room_id, None, user_id, reason, None, self.clock.now_ms())

    # ------------------------------------------------------------- admins
    async def _json(self, row: Row, with_event: bool) -> Json:
        room_id = str(row["room_id"])
        name = await self.rooms.events.state_event(room_id, "m.room.name", "")
        alias = await self.rooms.events.state_event(room_id, "m.room.canonical_alias", "")
        event = await self.rooms.events.get(row["event_id"]) if row["event_id"] else None
        body: Json = {
            "id": int(row["id"]), "received_ts": int(row["received_ts"]), "room_id": room_id,
            "name": name.content.get("name") if name else None,
            "canonical_alias": alias.content.get("alias") if alias else None,
            "event_id": row["event_id"], "user_id": row["user_id"], "reason": row["reason"],
            "score": row["score"], "sender": event.sender if event else None,
        }
        if with_event:
            body["event_json"] = event.pdu if event else None
        return body

    async def list(self, params: Mapping[str, str]) -> Json:
        try:
            offset, limit = int(params.get("from", 0)), int(params.get("limit", 100))
        except ValueError:
            raise bad_param("from and limit must be integers") from None
        if offset < 0 or limit < 1:
            raise bad_param("from must be >= 0 and limit >= 1")
        direction = params.get("dir", "b")
        if direction not in ("f", "b"):
            raise bad_param("dir must be 'f' or 'b'")
        rows, total = await self.repo.reports(offset, limit, direction == "b", params.get("user_id"),
                                              params.get("room_id"))
        body: Json = {"event_reports": [await self._json(r, False) for r in rows], "total": total}
        if offset + len(rows) < total:
            body["next_token"] = offset + len(rows)
        return body

    async def get(self, report_id: str) -> Json:
        row = await self.repo.report(_report_id(report_id))
        if row is None:
            raise not_found("Event report not found")
        return await self._json(row, True)

    async def delete(self, report_id: str) -> None:
        if not await self.repo.delete_report(_report_id(report_id)):
            raise not_found("Event report not found")


def _report_id(value: str) -> int:
    if not value.isdigit() or len(value) > 18:
        raise bad_param("The report id must be a positive integer")
    return int(value)
