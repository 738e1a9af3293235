"""Local events for the servers in their room: the event sender's commit listener.

An event our user sent goes to every other server with a joined member in
the room (current state after the event), and a membership event also to
the server of the user it concerns (a kicked or banned user's server, or
one whose invite was revoked, must hear of it; the invite itself went there
by ``/invite``).  Events of other servers are not relayed.
"""

from __future__ import annotations

from typing import Any

from homeserver.federation.sender import TransactionSender
from homeserver.services.federation_out import remote_servers, server_of
from homeserver.storage.events import StoredEvent


class PduFanout:
    def __init__(self, server_name: str, rooms: Any, sender: TransactionSender) -> None:
        self.server_name = server_name
        self.rooms = rooms
        self.sender = sender

    async def on_committed(self, room_id: str, stored: list[StoredEvent], members: list[str]) -> None:
        """EventSender listener; ``members``: the room's joined users after the commit."""
        local = [event for event in stored if server_of(event.sender) == self.server_name]
        if not local:
            return
        servers = remote_servers(members, self.server_name)
        for event in local:
            targets = set(servers)
            # An invite reached the invitee's server through /invite (federation_invites.py): it is
            # not in the room, so /send only carries later changes to the membership (a revoked
            # invite, a kick or a ban).
            if event.type == "m.room.member" and event.state_key and event.content.get("membership") != "invite":
                targets |= remote_servers([event.state_key], self.server_name)
            if targets:
                pdu = {k: v for k, v in event.pdu.items() if k != "unsigned"}
                await self.sender.queue_pdu(targets, pdu)
