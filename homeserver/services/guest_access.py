"""Guests leave a room whose ``m.room.guest_access`` stops being ``can_join``.

The spec (client-server API, "Guest Access", server behaviour): "If the
``m.room.guest_access`` event is changed to stop this from being the case, the
server MUST set those users' ``m.room.member`` state to ``leave``."  Each
server does so for its own guests (guest status is not shared over federation);
this one for the rooms its users change.  The leave is the guest's own (always
allowed by the auth rules), sent right after the change is committed.
"""

from __future__ import annotations

import logging
from typing import Protocol

from homeserver.services.event_sender import EventSender
from homeserver.services.events import EventSpec
from homeserver.storage.events import StoredEvent

logger = logging.getLogger(__name__)


class GuestLookup(Protocol):
    async def guests_among(self, user_ids: list[str]) -> set[str]: ...


class GuestEviction:
    def __init__(self, sender: EventSender, guests: GuestLookup, server_name: str) -> None:
        self.sender = sender
        self.guests = guests
        self.server_name = server_name

    async def on_committed(self, room_id: str, events: list[StoredEvent], members: list[str]) -> None:
        """EventSender listener: after a guest_access change away from can_join, our guests leave."""
        revoked = any(e.type == "m.room.guest_access" and e.state_key == ""
                      and e.content.get("guest_access") != "can_join" for e in events)
        if not revoked:
            return
        local = [m for m in members if m.endswith(":" + self.server_name)]
        for guest in sorted(await self.guests.guests_among(local)):
            try:
                await self.sender.send(room_id, [EventSpec("m.room.member", guest, {"membership": "leave"}, guest)])
            except Exception:
                # The guest_access change is committed; one failed leave must not fail it.
                logger.exception("could not remove guest %s from %s", guest, room_id)
