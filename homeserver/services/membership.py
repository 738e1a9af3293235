"""Membership changes, with the earlier application's conversation rules.

* Groups invite; direct chats add both users (``rooms.create_room``).
* When a group's creator (the holder of the top power level) leaves, the
  longest-standing remaining member receives that level first.
* Leaving a direct chat is "delete for me": the other member keeps it; once
  nobody is left, the room is purged (its events deleted, purge hooks run).
* A group's creator can destroy the group: everyone is removed and the room
  is purged.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from common.errors import Codes, MatrixError
from common.identifiers import parse_user_id
from homeserver.services.event_auth import level_for, member_key, user_power
from homeserver.services.events import EventSpec
from homeserver.services.rooms import CREATOR_LEVEL, RoomService, check_room_id
from homeserver.storage.events import StoredEvent

logger = logging.getLogger(__name__)

JsonDict = dict[str, Any]


class RemoteJoiner(Protocol):
    """Membership in rooms on other servers (homeserver/services/federation_rooms.py)."""

    async def join(self, user_id: str, room_id: str, servers: list[str], content: JsonDict | None = None) -> str: ...

    async def invite(self, inviter: str, room_id: str, target: str, content: JsonDict) -> None: ...

    async def leave(self, user_id: str, room_id: str, reason: str | None) -> None: ...


def _reason(content: JsonDict, reason: Any) -> JsonDict:
    if reason is not None:
        if not isinstance(reason, str) or len(reason) > 1000:
            raise MatrixError(400, Codes.INVALID_PARAM, "reason must be a string of at most 1000 characters")
        content["reason"] = reason
    return content


class MembershipService:
    def __init__(self, rooms: RoomService) -> None:
        self.rooms = rooms
        self.events = rooms.events
        self.repo = rooms.repo
        self.sender = rooms.sender
        # Checks before anyone joins or is invited (admin: blocked rooms).
        self.entry_checks: list[Callable[[str], Awaitable[None]]] = []
        # Joins of rooms on other servers (federation; None: local rooms only).
        self.remote: RemoteJoiner | None = None

    async def _resident(self, room_id: str) -> bool:
        """Whether this server takes part in the room: it knows it and a local user is joined (or it is
        one of ours that nobody joined from elsewhere)."""
        head = await self.events.room_head(room_id)
        if head is None or head.state_group is None:
            return False  # unknown, or known from a remote invite only
        joined = await self.repo.joined_user_ids(room_id)
        return not joined or any(u.endswith(":" + self.rooms.server_name) for u in joined)

    async def _room(self, room_id: str) -> None:
        check_room_id(room_id)
        head = await self.events.room_head(room_id)
        if head is None or head.purged:
            raise MatrixError(404, Codes.NOT_FOUND, "Unknown room")

    async def check_entry(self, room_id: str) -> None:
        """The room exists here and may be entered (no admin block)."""
        await self._entry(room_id)

    async def _entry(self, room_id: str) -> None:
        await self._room(room_id)
        for check in self.entry_checks:
            await check(room_id)

    async def invite(self, user_id: str, room_id: str, target: Any, reason: Any = None,
                     extra: JsonDict | None = None) -> None:
        """``extra``: more member content (``is_direct`` for the invite of a direct chat)."""
        await self._entry(room_id)
        if self.remote is not None and isinstance(target, str) and not target.endswith(":" + self.rooms.server_name):
            parse_user_id(target)
            content = _reason({"membership": "invite", **(extra or {})}, reason)
            await self.remote.invite(user_id, room_id, target, content)
            return
        target_id = await self.rooms.check_local_user(target)
        content = _reason(await self.rooms.member_content(target_id, "invite", extra), reason)
        await self.sender.send(room_id, [EventSpec("m.room.member", user_id, content, target_id)])

    async def join(self, user_id: str, room_id_or_alias: str, servers: Sequence[str] = (),
                   extra: JsonDict | None = None) -> str:
        """Join; a room this server is not in is joined through ``servers`` (``make_join``/``send_join``).
        ``extra``: more member content from the request (``reason``, a client's own fields)."""
        room_id = room_id_or_alias
        if room_id_or_alias.startswith("#"):
            if self.rooms.directory is None:
                raise MatrixError(404, Codes.NOT_FOUND, "Room aliases are not supported")
            resolved = await self.rooms.directory.resolve(room_id_or_alias)
            room_id = str(resolved["room_id"])
            # The servers the alias' server named (spec: they are in the room), then the caller's.
            servers = [*resolved.get("servers", ()), *(s for s in servers if s not in resolved.get("servers", ()))]
        if self.remote is not None and not await self._resident(room_id):
            check_room_id(room_id)
            for check in self.entry_checks:
                await check(room_id)
            # Our member content (profile, the request's fields) over the resident server's template.
            content = await self.rooms.member_content(user_id, "join", extra)
            return await self.remote.join(user_id, room_id, list(servers), content)
        await self._entry(room_id)
        current = await self.repo.membership(room_id, user_id)
        if current is not None and current.membership == "join":
            return room_id
        content = await self.rooms.member_content(user_id, "join", extra)
        if current is None or current.membership != "invite":
            via = await self._restricted_authoriser(user_id, room_id)
            if via is not None:
                content["join_authorised_via_users_server"] = via
        await self.sender.send(room_id, [EventSpec("m.room.member", user_id, content, user_id)])
        return room_id

    async def _restricted_authoriser(self, user_id: str, room_id: str) -> str | None:
        """For a restricted room (v8+): a member who may invite, if the user is in an allowed room."""
        state_events = await self.rooms.room_state_events(room_id)
        state = {(e.type, e.state_key or ""): e.pdu for e in state_events}
        join_rules = state.get(("m.room.join_rules", ""), {}).get("content", {})
        if join_rules.get("join_rule") not in ("restricted", "knock_restricted"):
            return None
        allowed = False
        for condition in join_rules.get("allow") or []:
            if isinstance(condition, dict) and condition.get("type") == "m.room_membership":
                other = await self.repo.membership(str(condition.get("room_id")), user_id)
                allowed = allowed or (other is not None and other.membership == "join")
        if not allowed:
            raise MatrixError(403, Codes.FORBIDDEN, "You are not a member of a room this room admits")
        joined = [m.user_id for m in await self.repo.members(room_id, ("join",))]
        invite_level = level_for(state, "invite")
        able = sorted((u for u in joined if user_power(state, u) >= invite_level),
                      key=lambda u: -user_power(state, u))
        if not able:
            raise MatrixError(400, Codes.UNABLE_TO_AUTHORISE_JOIN, "No member of this room can authorise your join")
        return able[0]

    async def knock(self, user_id: str, room_id_or_alias: str, reason: Any = None) -> str:
        """Ask to be invited (room version 7+, join rule ``knock`` or ``knock_restricted``)."""
        if room_id_or_alias.startswith("#"):
            raise MatrixError(404, Codes.NOT_FOUND, "Room aliases are not supported")
        room_id = room_id_or_alias
        await self._room(room_id)
        content = _reason({"membership": "knock"}, reason)
        await self.sender.send(room_id, [EventSpec("m.room.member", user_id, content, user_id)])
        return room_id

    async def leave(self, user_id: str, room_id: str, reason: Any = None) -> None:
        check_room_id(room_id)
        head = await self.events.room_head(room_id)
        current = await self.repo.membership(room_id, user_id)
        if head is None or current is None:
            raise MatrixError(403, Codes.FORBIDDEN, "You are not in this room")
        if current.membership in ("leave", "ban") or head.purged:
            return
        if self.remote is not None and not await self._resident(room_id):
            await self.remote.leave(user_id, room_id, reason if isinstance(reason, str) else None)
            return
        specs: list[EventSpec] = []
        if current.membership == "join" and not head.is_direct:
            handover = await self._handover_spec(user_id, room_id)
            if handover is not None:
                specs.append(handover)
        specs.append(EventSpec("m.room.member", user_id, _reason({"membership": "leave"}, reason), user_id))
        await self.sender.send(room_id, specs)
        await self._purge_if_empty(room_id)

    async def _handover_spec(self, user_id: str, room_id: str) -> EventSpec | None:
        """A power-levels change giving the leaving creator's level to the longest-standing member."""
        state_events = await self.rooms.room_state_events(room_id)
        state = {(e.type, e.state_key or ""): e.pdu for e in state_events}
        level = user_power(state, user_id)
        if level < CREATOR_LEVEL:
            return None
        joined = [m for m in await self.repo.members(room_id, ("join",)) if m.user_id != user_id]
        if not joined or any(user_power(state, m.user_id) >= level for m in joined):
            return None
        joined.sort(key=lambda m: (m.joined_since if m.joined_since is not None else m.stream_pos, m.stream_pos))
        heir = joined[0].user_id
        power = dict(state[("m.room.power_levels", "")]["content"])
        users = dict(power.get("users") or {})
        users[heir] = min(level, CREATOR_LEVEL)  # v12 creators' power is infinite, not expressible
        users.pop(user_id, None)
        power["users"] = users
        return EventSpec("m.room.power_levels", user_id, power, "")

    async def kick(self, user_id: str, room_id: str, target: Any, reason: Any = None) -> None:
        await self._room(room_id)
        target_id = self._user_id(target)
        current = await self.repo.membership(room_id, target_id)
        if current is None or current.membership not in ("join", "invite"):
            raise MatrixError(403, Codes.FORBIDDEN, f"{target_id} is not in the room")
        content = _reason({"membership": "leave"}, reason)
        await self.sender.send(room_id, [EventSpec("m.room.member", user_id, content, target_id)])
        await self._purge_if_empty(room_id)

    async def ban(self, user_id: str, room_id: str, target: Any, reason: Any = None) -> None:
        await self._room(room_id)
        target_id = self._user_id(target)
        content = _reason({"membership": "ban"}, reason)
        await self.sender.send(room_id, [EventSpec("m.room.member", user_id, content, target_id)])

    async def unban(self, user_id: str, room_id: str, target: Any, reason: Any = None) -> None:
        await self._room(room_id)
        target_id = self._user_id(target)
        current = await self.repo.membership(room_id, target_id)
        if current is None or current.membership != "ban":
            raise MatrixError(403, Codes.FORBIDDEN, f"{target_id} is not banned")
        content = _reason({"membership": "leave"}, reason)
        await self.sender.send(room_id, [EventSpec("m.room.member", user_id, content, target_id)])

    @staticmethod
    def _user_id(target: Any) -> str:
        if not isinstance(target, str):
            raise MatrixError(400, Codes.MISSING_PARAM if target is None else Codes.INVALID_PARAM,
                              "user_id must be a user id")
        parse_user_id(target)
        return target

    async def forget(self, user_id: str, room_id: str) -> None:
        check_room_id(room_id)
        current = await self.repo.membership(room_id, user_id)
        if current is None:
            raise MatrixError(404, Codes.NOT_FOUND, "You have never been in this room")
        if current.membership in ("join", "invite"):
            raise MatrixError(400, Codes.UNKNOWN, "Leave the room before forgetting it")
        await self.repo.forget(room_id, user_id)
        head = await self.events.room_head(room_id)
        if head is not None and head.purged and await self.repo.all_forgotten_or_gone(room_id):
            await self.events.delete_room_fully(room_id)

    async def destroy(self, user_id: str, room_id: str) -> None:
        """The group's creator removes everyone; the room and its media are deleted."""
        await self._room(room_id)
        head = await self.events.room_head(room_id)
        assert head is not None
        if head.is_direct:
            raise MatrixError(403, Codes.FORBIDDEN, "A direct chat cannot be destroyed; leave it instead")
        state_events = await self.rooms.room_state_events(room_id)
        state = {(e.type, e.state_key or ""): e.pdu for e in state_events}
        me = state.get(member_key(user_id))
        if me is None or me.get("content", {}).get("membership") != "join":
            raise MatrixError(403, Codes.FORBIDDEN, "You are not in this room")
        level = user_power(state, user_id)
        if level < CREATOR_LEVEL:
            raise MatrixError(403, Codes.FORBIDDEN, "Only the group's creator can destroy it")
        content = {"membership": "leave", "reason": "The group was deleted"}
        specs = []
        for member in await self.repo.members(room_id, ("join", "invite")):
            if member.user_id == user_id:
                continue
            # Members at the creator's level cannot be kicked: they are made to leave.
            sender = user_id if user_power(state, member.user_id) < level else member.user_id
            specs.append(EventSpec("m.room.member", sender, dict(content), member.user_id))
        specs.append(EventSpec("m.room.member", user_id, {"membership": "leave"}, user_id))
        await self.sender.send(room_id, specs)
        await self._purge(room_id)

    async def _purge_if_empty(self, room_id: str) -> None:
        if await self.repo.members(room_id, ("join", "invite")):
            return
        await self._purge(room_id)

    async def purge(self, room_id: str) -> None:
        """Delete a room nobody is in any more (events, state and, through listeners, media)."""
        await self._purge(room_id)

    async def _purge(self, room_id: str) -> None:
        keep = [m.event_id for m in await self.repo.members(room_id) if not m.forgotten]
        await self.events.purge_room(room_id, keep)
        if await self.repo.all_forgotten_or_gone(room_id):
            await self.events.delete_room_fully(room_id)
        await self.rooms.fire_room_purged(room_id)

    async def membership_event(self, room_id: str, user_id: str) -> StoredEvent | None:
        current = await self.repo.membership(room_id, user_id)
        return await self.events.get(current.event_id) if current else None
