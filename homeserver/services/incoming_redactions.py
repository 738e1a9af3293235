"""Redactions that arrive over federation take effect here, as local ones do.

The spec (client-server API, "Redactions"; room versions 3+): the redaction is
applied to its target once both are known, when the redaction's sender is of
the target's sender's server, or has the power level ``redact`` in the room.
(In versions 1 and 2 the auth rules already demand one of the two.)  A
redaction that arrives before its target is stored, but does not redact it
later (not implemented).
"""

from __future__ import annotations

from typing import Any

from homeserver.services.event_auth import StateMap, level_for, user_power
from homeserver.services.events import redacts_of
from homeserver.services.redaction import redact_content, redact_event
from homeserver.services.room_versions import RoomVersion
from homeserver.storage.events import RoomWriter, StoredEvent

JsonDict = dict[str, Any]


def _server(user_id: Any) -> str:
    return str(user_id).split(":", 1)[1] if ":" in str(user_id) else ""


async def apply_redaction(writer: RoomWriter, target: StoredEvent | None, redaction_id: str, pdu: JsonDict,
                          version: RoomVersion, state: StateMap) -> bool:
    """Redact ``target`` (the stored event ``pdu`` redacts) if the rules allow it; whether it did.
    ``state``: the room state before the redaction (its power levels)."""
    if (pdu.get("type") != "m.room.redaction" or target is None or target.redacted_by is not None
            or target.room_id != writer.room_id or target.event_id != redacts_of(pdu)
            or target.type == "m.room.create"):
        return False
    sender = str(pdu.get("sender"))
    if _server(sender) != _server(target.sender) and user_power(state, sender) < level_for(state, "redact"):
        return False
    await writer.redact(target.event_id, redact_event(target.pdu, version), redaction_id,
                        redact_content(target.type, target.content, version) if target.is_state else None)
    return True
