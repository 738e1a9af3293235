"""``GET /notifications`` (client-server API, "Listing Notifications"): recent events in
the user's joined rooms that their push rules notify about, newest first, computed
on demand from the same evaluation as the unread counts."""

from __future__ import annotations

from typing import Any

from common.errors import Codes, MatrixError
from homeserver.services.event_auth import user_power
from homeserver.services.event_format import EventFormatter
from homeserver.services.push_counts import PushCounter
from homeserver.services.push_eval import PushContext, evaluate
from homeserver.storage.events import StoredEvent

JsonDict = dict[str, Any]

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
NO_UPPER = 2**62


class NotificationService:
    def __init__(self, counter: PushCounter, formatter: EventFormatter) -> None:
        self.counter = counter
        self.formatter = formatter

    async def list(self, user_id: str, from_token: str | None, limit: int | None, only: str | None) -> JsonDict:
        if from_token is not None and not from_token.isdigit():
            raise MatrixError(400, Codes.INVALID_PARAM, "Unknown from token")
        if only not in (None, "highlight"):
            raise MatrixError(400, Codes.INVALID_PARAM, "only must be highlight")
        limit = max(1, min(limit or DEFAULT_LIMIT, MAX_LIMIT))
        upto = int(from_token) - 1 if from_token is not None else NO_UPPER
        events_repo = self.counter.events
        memberships = [m for m in await self.counter.rooms.memberships_of_user(user_id) if m.membership == "join"]
        rules = await self.counter.push_rules.rules(user_id)
        read = await self.counter.receipts.read_up_to(user_id, [m.room_id for m in memberships])
        counts = await self.counter.rooms.member_counts([m.room_id for m in memberships])
        found: list[tuple[StoredEvent, list[Any]]] = []
        # Most events notify; look at a few times the page size per room.
        batch = min(500, limit * 5)
        truncated = False
        for member in memberships:
            after = (member.joined_since or member.stream_pos) - 1
            head = min(upto, NO_UPPER)
            recent = (await events_repo.timelines([member.room_id], after, head, batch))[member.room_id]
            if len(recent) > batch:
                recent, truncated = recent[1:], True
            if not recent:
                continue
            ctx, flat = await self.counter.context(user_id, member.room_id,
                                                   counts.get(member.room_id, {}).get("join", 0))
            for event in recent:
                outcome = evaluate(rules, event.pdu, PushContext(
                    user_id, ctx.display_name, ctx.member_count, user_power(flat, event.sender),
                    ctx.notification_levels))
                if outcome.notify and (only is None or outcome.highlight):
                    found.append((event, outcome.actions))
        found.sort(key=lambda pair: pair[0].stream_pos, reverse=True)
        page = found[:limit]
        formatted = await self.formatter.format([e for e, _ in page], user_id)
        notifications = [
            {"actions": actions, "event": event_json, "read": event.stream_pos <= read.get(event.room_id, 0),
             "room_id": event.room_id, "ts": int(event.pdu.get("origin_server_ts", 0))}
            for (event, actions), event_json in zip(page, formatted, strict=True)
        ]
        out: JsonDict = {"notifications": notifications}
        if page and (len(found) > limit or truncated):
            out["next_token"] = str(page[-1][0].stream_pos)
        return out
