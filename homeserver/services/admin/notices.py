"""Server notices: messages from the server's own account (``[admin] server_notices_localpart``)
in a room it keeps with each user, created and the user invited on first use."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from common.errors import bad_param, not_found
from common.identifiers import make_user_id
from homeserver.services.clock import Clock
from homeserver.services.events import EventSpec
from homeserver.services.rooms import RoomService, check_event_type
from homeserver.storage.accounts import AlreadyExists, UserRepository
from homeserver.storage.moderation import ModerationRepository

Json = dict[str, Any]


class ServerNoticeService:
    def __init__(self, server_name: str, localpart: str, users: UserRepository, rooms: RoomService,
                 repo: ModerationRepository, clock: Clock) -> None:
        self.server_name = server_name
        self.sender_id = make_user_id(localpart, server_name)
        self.localpart = localpart
        self.users = users
        self.rooms = rooms
        self.repo = repo
        self.clock = clock

    async def _ensure_sender(self) -> None:
        if await self.users.get(self.sender_id) is None:
            try:
                await self.users.create(self.sender_id, self.localpart, None, None, None, self.clock.now_ms())
            except AlreadyExists:
                pass

    async def _room_for(self, user_id: str) -> str:
        room_id = await self.repo.notice_room(user_id)
        if room_id is not None:
            membership = await self.rooms.repo.membership(room_id, user_id)
            mine = await self.rooms.repo.membership(room_id, self.sender_id)
            if membership is not None and membership.membership in ("join", "invite") and \
                    mine is not None and mine.membership == "join":
                return room_id
        room_id = await self.rooms.create_room(
            self.sender_id, {"preset": "private_chat", "name": "Server Notices", "invite": [user_id]}
        )
        await self.repo.set_notice_room(user_id, room_id)
        return room_id

    async def send(self, body: Mapping[str, Any]) -> Json:
        """POST /_synapse/admin/v1/send_server_notice"""
        user_id, content = body.get("user_id"), body.get("content")
        if not isinstance(user_id, str) or not isinstance(content, dict):
            raise bad_param("user_id (a string) and content (an object) are required")
        event_type = check_event_type(body.get("type", "m.room.message"))
        state_key = body.get("state_key")
        if state_key is not None and not isinstance(state_key, str):
            raise bad_param("state_key must be a string")
        if not user_id.endswith(":" + self.server_name):
            raise bad_param("Server notices can only be sent to local users")
        target = await self.users.get(user_id)
        if target is None or target.deactivated or target.is_placeholder:
            raise not_found("User not found")
        await self._ensure_sender()
        room_id = await self._room_for(user_id)
        stored = await self.rooms.sender.send(room_id, [EventSpec(event_type, self.sender_id, content, state_key)])
        return {"event_id": stored[-1].event_id}
