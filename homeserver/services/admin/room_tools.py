"""Admin room tools beyond listing and deleting: asynchronous-style deletion (v2) with its
status, joining a local user to a room, and making a user a room admin."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

from common.errors import MatrixError, bad_param, forbidden, not_found
from common.identifiers import parse_room_id
from homeserver.services.admin.retention import RetentionService
from homeserver.services.admin.rooms import AdminRoomService
from homeserver.services.admin.users import AdminUserService
from homeserver.services.event_auth import user_power
from homeserver.services.events import EventSpec
from homeserver.storage.moderation import ModerationRepository

Json = dict[str, Any]


class AdminRoomTools:
    def __init__(self, rooms: AdminRoomService, users: AdminUserService, moderation: ModerationRepository,
                 retention: RetentionService) -> None:
        self.rooms = rooms
        self.users = users
        self.moderation = moderation
        self.retention = retention

    # ------------------------------------------------------ purge history
    async def purge_history(self, admin: str, room_id: str, event_id: str | None, body: Mapping[str, Any]) -> Json:
        """POST /_synapse/admin/v1/purge_history/{roomId}[/{eventId}]: delete messages before an
        event or a time (state and the latest event are kept); done before answering."""
        await self.rooms.summary(room_id)
        event_id = event_id or body.get("purge_up_to_event_id")
        up_to_ts = body.get("purge_up_to_ts")
        delete_local = body.get("delete_local_events", False)
        if not isinstance(delete_local, bool):
            raise bad_param("delete_local_events must be a boolean")
        before_pos = None
        if event_id is not None:
            event = await self.rooms.rooms.events.get(event_id) if isinstance(event_id, str) else None
            if event is None or event.room_id != room_id:
                raise not_found("Event not found in this room")
            before_pos = event.stream_pos
        elif not isinstance(up_to_ts, int) or isinstance(up_to_ts, bool):
            raise bad_param("purge_up_to_event_id or purge_up_to_ts is required")
        deleted = await self.retention.purge_room(
            room_id, up_to_ts if before_pos is None else None, before_pos, keep_local=not delete_local)
        purge_id = secrets.token_urlsafe(12)
        now = self.rooms.clock.now_ms()
        await self.moderation.record_purge(purge_id, room_id, "complete", deleted, now)
        await self.users.repo.audit(admin, "purge_history", room_id, {"deleted": deleted}, now)
        return {"purge_id": purge_id}

    async def purge_status(self, purge_id: str) -> Json:
        row = await self.moderation.purge(purge_id)
        if row is None:
            raise not_found("No such purge")
        return {"status": row["status"]}

    # ------------------------------------------------------ v2 deletion
    async def delete_v2(self, admin: str, room_id: str, body: Mapping[str, Any]) -> Json:
        """DELETE /_synapse/admin/v2/rooms/{roomId}: done before answering; the status stays queryable."""
        delete_id = secrets.token_urlsafe(12)
        try:
            result = await self.rooms.delete(admin, room_id, body)
            status = "complete"
        except MatrixError as exc:
            if exc.status == 400:
                raise
            result, status = {"error": exc.message}, "failed"
        await self.moderation.record_deletion(delete_id, room_id, status, result, self.rooms.clock.now_ms())
        return {"delete_id": delete_id}

    @staticmethod
    def _status(row: Mapping[str, Any]) -> Json:
        body: Json = {"delete_id": row["delete_id"], "status": row["status"], "shutdown_room": {
            k: row["result"].get(k) for k in ("kicked_users", "failed_to_kick_users", "local_aliases", "new_room_id")
        }}
        if "error" in row["result"]:
            body["error"] = row["result"]["error"]
        return body

    async def status_for_room(self, room_id: str) -> Json:
        parse_room_id(room_id)
        rows = await self.moderation.deletions(room_id=room_id)
        if not rows:
            raise not_found("No delete task for this room")
        return {"results": [self._status(r) for r in rows]}

    async def status(self, delete_id: str) -> Json:
        rows = await self.moderation.deletions(delete_id=delete_id)
        if not rows:
            raise not_found("No such delete task")
        body = self._status(rows[0])
        del body["delete_id"]
        return body

    # ------------------------------------------------------ membership
    async def _state(self, room_id: str) -> dict[tuple[str, str], Any]:
        await self.rooms.summary(room_id)
        events = await self.rooms.rooms.room_state_events(room_id)
        return {(e.type, e.state_key or ""): e.pdu for e in events}

    async def join(self, admin: str, room_id: str, body: Mapping[str, Any]) -> Json:
        """POST /_synapse/admin/v1/join/{roomId}: join a local user, invited by the admin if needed."""
        user_id = body.get("user_id")
        if not isinstance(user_id, str):
            raise bad_param("user_id is required")
        target = await self.users.existing(user_id)
        await self._state(room_id)
        try:
            await self.rooms.membership.join(target.user_id, room_id)
        except MatrixError as exc:
            if exc.status != 403:
                raise
            mine = await self.rooms.rooms.repo.membership(room_id, admin)
            if mine is None or mine.membership != "join":
                raise forbidden("The room is not public and you are not in it to invite the user") from None
            await self.rooms.membership.invite(admin, room_id, target.user_id)
            await self.rooms.membership.join(target.user_id, room_id)
        await self.users.repo.audit(admin, "force_join", target.user_id, {"room_id": room_id},
                                    self.rooms.clock.now_ms())
        return {"room_id": room_id}

    async def make_room_admin(self, admin: str, room_id: str, body: Mapping[str, Any]) -> Json:
        """POST /_synapse/admin/v1/rooms/{roomId}/make_room_admin: the highest power level a local
        member holds, granted by that member (who must be able to change power levels)."""
        user_id = body.get("user_id", admin)
        if not isinstance(user_id, str):
            raise bad_param("user_id must be a user id")
        target = await self.users.existing(user_id)
        state = await self._state(room_id)
        server = ":" + self.rooms.server_name
        members = [k[1] for k, e in state.items() if k[0] == "m.room.member" and k[1].endswith(server)
                   and e.get("content", {}).get("membership") == "join"]
        if not members:
            raise bad_param("No local member of the room can grant power")
        granter = max(members, key=lambda u: user_power(state, u))
        power = state.get(("m.room.power_levels", ""), {}).get("content", {})
        users = dict(power.get("users", {}))
        users[target.user_id] = user_power(state, granter)
        content = {**power, "users": users}
        # The new room admin must be in the room to act: invite and join them first.
        mine = state.get(("m.room.member", target.user_id), {}).get("content", {}).get("membership")
        if mine != "join":
            await self.rooms.rooms.sender.send(room_id, [EventSpec(
                "m.room.member", granter, {"membership": "invite"}, target.user_id)])
            await self.rooms.membership.join(target.user_id, room_id)
        await self.rooms.rooms.sender.send(room_id, [EventSpec("m.room.power_levels", granter, content, "")])
        await self.users.repo.audit(admin, "make_room_admin", target.user_id, {"room_id": room_id},
                                    self.rooms.clock.now_ms())
        return {}
