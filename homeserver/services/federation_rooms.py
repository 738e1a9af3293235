"""The room side of federation, built once per homeserver (called by the composition root).

* ``events``: the ``PduHandler`` of incoming transactions and the fetching of
  missing events (:mod:`.federation_events`);
* ``reads``: the graph as other servers read it (:mod:`.federation_reads`);
* ``resident``: ``make_*``/``send_*`` where this server is in the room
  (:mod:`.federation_membership`);
* ``remote``: local users joining/leaving/knocking on rooms elsewhere
  (:mod:`.federation_joins`).
"""

from __future__ import annotations

from dataclasses import dataclass

from homeserver.notifier import Notifier
from homeserver.services.clock import Clock
from homeserver.services.federation_events import FederationEvents, FederationRequester
from homeserver.services.federation_joins import RemoteMembership
from homeserver.services.federation_membership import ResidentMembership
from homeserver.services.federation_reads import FederationReads
from homeserver.services.incoming import IncomingEvents, KeyLookup
from homeserver.signing_key import SigningKey
from homeserver.storage.events import EventRepository


@dataclass
class FederationRooms:
    incoming: IncomingEvents
    events: FederationEvents
    reads: FederationReads
    resident: ResidentMembership
    remote: RemoteMembership


def build_federation_rooms(events: EventRepository, notifier: Notifier, clock: Clock, key_lookup: KeyLookup,
                           client: FederationRequester | None, signing_key: SigningKey,
                           server_name: str) -> FederationRooms:
    incoming = IncomingEvents(events, notifier, clock, key_lookup)
    handler = FederationEvents(incoming, client)
    reads = FederationReads(incoming, server_name)
    return FederationRooms(incoming, handler, reads, ResidentMembership(reads, signing_key, server_name),
                           RemoteMembership(handler, signing_key, server_name))
