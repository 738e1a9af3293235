"""Parley's client core: an asyncio library with no Tk in it.

Modules (bottom-up):

``transport``  the one network edge (httpx, HTTP/2: h2c or verified TLS)
``store``      the encrypted per-account local store (SQLite, atomic batches)
``keys``       identity / signed pre-keys (7-day rotation + grace) / one-time keys
``crypto``     sessions, sender keys, message keys (sans-I/O); wire formats
               ``im.parley.olm.v1`` and ``im.parley.sender_key.v1`` documented there
``sync``       pure parsing of ``/sync``, the room state it builds and its frozen snapshot
``devices``    device lists and pinned identity keys (reports the ``/keys/query`` it needs)
``processor``  one sync batch applied on copies, decrypted, staged (sans-I/O)
``sending``    a send's recipient set, session setup and encryption (sans-I/O)
``outbox``     the per-entry outbox state machine (pending / failed, backoff; sans-I/O)
``backoff``    jittered exponential backoff (tenacity)
``backup``     message keys in the server-side key backup (history on new devices)
``outbox_driver`` attempts outbox entries, records each outcome
``engine``     the driver: sync loop, reported I/O outside the lock, commit, snapshot, reconnection
``client``     :class:`ChatClient`: rooms, people, files, search
``account``    register, log in from the store, pair a new device
``events``     the typed events a UI receives (:class:`EventBus`)
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

# Exported names and their modules, imported on first use (PEP 562): importing a
# sans-I/O module such as ``client_tk.core.sync`` does not pull in the network layer.
_EXPORTS = {
    **dict.fromkeys(("ClientOptions", "approve_pairing", "finish_pairing", "login", "register",
                     "start_pairing"), "client_tk.core.account"),
    "ChatClient": "client_tk.core.client",
    **dict.fromkeys(("ClientEvent", "ConnectionState", "ConnectionStateChanged", "DecryptionFailed",
                     "EventBus", "InvitationReceived", "Message", "MessageDeleted", "MessageReceived",
                     "OutboxChanged", "OutgoingMessage", "PresenceChanged", "ReceiptUpdated",
                     "RoomUpdated", "SessionReset", "TransferProgress", "TypingChanged",
                     "UnreadCountChanged"), "client_tk.core.events"),
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(module), name)


__all__ = [
    "ChatClient", "ClientEvent", "ClientOptions", "ConnectionState", "ConnectionStateChanged",
    "DecryptionFailed", "EventBus", "InvitationReceived", "Message", "MessageDeleted", "MessageReceived",
    "OutboxChanged", "OutgoingMessage", "PresenceChanged", "ReceiptUpdated", "RoomUpdated", "SessionReset", "TransferProgress",
    "TypingChanged", "UnreadCountChanged", "approve_pairing", "finish_pairing", "login", "register",
    "start_pairing",
]
