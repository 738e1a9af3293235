"""The room side of federation, built once per homeserver (called by the composition root).

* ``events``: the ``PduHandler`` of incoming transactions and the fetching of
  missing events (:mod:`.federation_events`);
* ``reads``: the graph as other servers read it (:mod:`.federation_reads`);
* ``resident``: ``make_*``/``send_*`` where this server is in the room
  (:mod:`.federation_membership`);
* ``remote``: local users joining/leaving/knocking on rooms elsewhere
  (:mod:`.federation_joins`);
* ``invites``: invites to and from other servers (:mod:`.federation_invites`);
* ``backfill``: history from before this server joined (:mod:`.federation_backfill`).

It is also the membership service's ``remote`` (rooms on other servers).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from homeserver.notifier import Notifier
from homeserver.services.clock import Clock
from homeserver.services.event_auth import server_of
from homeserver.services.event_sender import EventSender
from homeserver.services.federation_backfill import Backfiller
from homeserver.services.federation_events import FederationEvents, FederationRequester
from homeserver.services.federation_invites import RemoteInvites
from homeserver.services.federation_joins import RemoteMembership
from homeserver.services.federation_membership import ResidentMembership
from homeserver.services.federation_reads import FederationReads
from homeserver.services.incoming import IncomingEvents, KeyLookup
from homeserver.signing_key import SigningKey
from homeserver.storage.accounts import UserRepository
from homeserver.storage.events import EventRepository
from homeserver.storage.history import HistoryRepository
from homeserver.storage.remote_membership import RemoteMembershipRepository

JsonDict = dict[str, Any]


class PduQueue(Protocol):
    """The outgoing transaction queue (homeserver/federation/sender.py)."""

    async def queue_pdu(self, destinations: set[str], pdu: JsonDict) -> None: ...


@dataclass
class FederationRooms:
    incoming: IncomingEvents
    events: FederationEvents
    reads: FederationReads
    resident: ResidentMembership
    remote: RemoteMembership
    invites: RemoteInvites
    backfill: Backfiller

    def set_outgoing(self, queue: PduQueue) -> None:
        """Send what other servers' users did through this server (their send_join/leave/knock) on to the
        room's other servers (the origin has it; our own events go out by the event sender's fan-out)."""
        async def forward(room_id: str, pdu: JsonDict, origin: str) -> None:
            joined = await self.incoming.events_joined(room_id)
            servers = {server_of(u) for u in joined} - {origin, self.resident.server_name}
            if servers:
                await queue.queue_pdu(servers, {k: v for k, v in pdu.items() if k != "unsigned"})

        self.resident.forward = forward

    # ------------------------------------------------------------ membership.RemoteJoiner
    async def join(self, user_id: str, room_id: str, servers: list[str], content: JsonDict | None = None) -> str:
        invite = await self.incoming.events.state_event(room_id, "m.room.member", user_id)
        if invite is not None and invite.membership == "invite":
            servers = [*servers, server_of(invite.sender)]  # an invite is joined through its inviter's server
        return await self.remote.join(user_id, room_id, servers, content)

    async def invite(self, inviter: str, room_id: str, target: str, content: JsonDict) -> None:
        await self.invites.invite(inviter, room_id, target, content)

    async def leave(self, user_id: str, room_id: str, reason: str | None) -> None:
        await self.invites.leave(user_id, room_id, reason)


def build_federation_rooms(events: EventRepository, notifier: Notifier, clock: Clock, key_lookup: KeyLookup,
                           client: FederationRequester | None, signing_key: SigningKey, server_name: str,
                           sender: EventSender, users: UserRepository) -> FederationRooms:
    incoming = IncomingEvents(events, notifier, clock, key_lookup)
    handler = FederationEvents(incoming, client)
    reads = FederationReads(incoming, server_name)
    remote = RemoteMembership(handler, signing_key, server_name)
    invites = RemoteInvites(handler, remote, sender, RemoteMembershipRepository(events), users, signing_key,
                            server_name)
    return FederationRooms(incoming, handler, reads, ResidentMembership(reads, signing_key, server_name),
                           remote, invites, Backfiller(handler, HistoryRepository(events), server_name))
