"""The seam for PDUs arriving in a transaction: the :class:`PduHandler` protocol.

``/send/{txnId}`` (homeserver/federation/transactions.py) hands each
transaction's PDUs to ``Federation.pdu_handler.handle_pdus(origin, pdus)``,
which answers per event id ``{}`` (processed) or ``{"error": "..."}``
(spec: the ``pdus`` map of the ``/send`` response).  The room graph's
pipeline (issue 14, part B) provides the real handler and installs it in
the composition root; until then :class:`UnimplementedPduHandler` refuses
each PDU honestly, naming it, so the origin sees why.
"""

from __future__ import annotations

from typing import Any, Protocol

from common.canonical_json import encode_canonical_json
from homeserver.services.events import compute_event_id
from homeserver.services.room_versions import ROOM_VERSIONS

JsonDict = dict[str, Any]
# Event ids of PDUs that are not even events get a placeholder key of their position.
UNIDENTIFIED = "unidentified:"


class PduHandler(Protocol):
    async def handle_pdus(self, origin: str, pdus: list[JsonDict]) -> dict[str, JsonDict]:
        """Process a transaction's PDUs (in order); ``event_id -> {} | {"error": reason}``."""
        ...


def pdu_event_id(pdu: Any, room_version: str | None) -> str | None:
    """The event id of a PDU as received: its ``event_id`` (v1/v2) or its reference hash."""
    if not isinstance(pdu, dict):
        return None
    if isinstance(pdu.get("event_id"), str):
        return str(pdu["event_id"])
    version = ROOM_VERSIONS.get(room_version or "") or ROOM_VERSIONS["11"]
    try:
        encode_canonical_json(pdu)
        return compute_event_id(pdu, version)
    except (ValueError, TypeError, KeyError):
        return None


class UnimplementedPduHandler:
    """Refuses every PDU: this server does not process remote room events yet."""

    async def handle_pdus(self, origin: str, pdus: list[JsonDict]) -> dict[str, JsonDict]:
        answer: dict[str, JsonDict] = {}
        for position, pdu in enumerate(pdus):
            event_id = pdu_event_id(pdu, None) or f"{UNIDENTIFIED}{position}"
            answer[event_id] = {"error": "This server does not accept room events over federation yet"}
        return answer
