"""PDUs a test makes by hand (as a misbehaving server would) and sends in a transaction of its own."""

from __future__ import annotations

import secrets
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from homeserver.services.events import EventSpec, build_pdu
from tests.support.server import RunningServer

JsonDict = dict[str, Any]
SEND = "/_matrix/federation/v1/send/"


async def craft_pdu(origin: RunningServer, resident: RunningServer, room_id: str, sender: str, event_type: str,
                    content: JsonDict, *, state_key: str | None = None, prev_events: list[str] | None = None,
                    key: Ed25519PrivateKey | None = None, member_of: str | None = None,
                    auth_events: list[str] | None = None) -> tuple[str, JsonDict]:
    """An event of ``sender`` signed as ``origin`` (with ``key``: a forgery under origin's key id), placed
    after ``resident``'s forward extremities (or ``prev_events``), its auth events from resident's state:
    the create event, the power levels and the member event of ``member_of`` (default: the sender),
    or ``auth_events``."""
    services = resident.hs.services
    with resident.hs.database.activated():
        state = {(e.type, e.state_key or ""): e for e in await services.rooms.room_state_events(room_id)}
        extremities = await services.rooms.events.graph.extremities(room_id)
        prevs = prev_events or [event_id for event_id, _ in extremities]
        found = await services.rooms.events.graph.get_graph_events(prevs)
        depth = max(event.depth for event in found.values()) + 1
    keys = [("m.room.create", ""), ("m.room.power_levels", ""), ("m.room.member", member_of or sender)]
    if event_type == "m.room.member":
        keys.append(("m.room.join_rules", ""))
    auth = auth_events or [state[k].event_id for k in keys
                           if k in state and not (k[0] == "m.room.create" and _v12(state))]
    version = str(state[("m.room.create", "")].content.get("room_version", "1"))
    signing = origin.hs.signing_key
    return build_pdu(EventSpec(event_type, sender, content, state_key), room_id, prevs, auth, depth,
                     origin.hs.services.clock.now_ms(), origin.hs.config.server_name, signing.version,
                     key or signing.private_key, version)


def _v12(state: dict[tuple[str, str], Any]) -> bool:
    return str(state[("m.room.create", "")].content.get("room_version", "1")) == "12"


async def send_pdus(origin: RunningServer, destination: str, pdus: list[JsonDict], txn_id: str | None = None
                    ) -> dict[str, JsonDict]:
    """``PUT /send`` from ``origin`` (signed as it); the answer's ``pdus``."""
    body = {"origin": origin.hs.config.server_name, "origin_server_ts": origin.hs.services.clock.now_ms(),
            "pdus": pdus, "edus": []}
    with origin.hs.database.activated():
        answer = await origin.hs.federation.client.request(destination, "PUT",
                                                           SEND + (txn_id or secrets.token_hex(8)), json=body)
    results: dict[str, JsonDict] = answer["pdus"]
    return results
