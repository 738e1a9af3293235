"""Typed events the client core delivers to a UI (Tk, CLI, tests).

Every event is a frozen dataclass; the :class:`EventBus` hands them to
subscribed callbacks and to any number of :class:`asyncio.Queue` readers.
Nothing here does I/O.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)


class ConnectionState(enum.Enum):
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    OFFLINE = "offline"


@dataclass(frozen=True)
class ClientEvent:
    """Base class of everything the core emits."""


@dataclass(frozen=True)
class Message:
    """A decrypted message as cached locally and shown to the user."""

    event_id: str
    room_id: str
    sender: str
    sender_device: str
    ts: int
    kind: str  # "text" | "file" | "image"
    body: str
    reply_to: str | None = None
    file: dict[str, Any] | None = None
    redacted: bool = False
    # Own messages: recipient devices ("user|device") it could not be encrypted to.
    unreachable: tuple[str, ...] = ()
    edited: bool = False  # shown with its newest edit (m.replace)
    reactions: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (key, who reacted), first used first

    def to_dict(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id, "room_id": self.room_id, "sender": self.sender,
            "sender_device": self.sender_device, "ts": self.ts, "kind": self.kind,
            "body": self.body, "reply_to": self.reply_to, "file": self.file,
            "redacted": self.redacted, "unreachable": list(self.unreachable),
            "edited": self.edited, "reactions": [[k, list(who)] for k, who in self.reactions],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Message:
        return cls(
            str(d["event_id"]), str(d["room_id"]), str(d["sender"]), str(d.get("sender_device", "")),
            int(d.get("ts", 0)), str(d.get("kind", "text")), str(d.get("body", "")),
            d.get("reply_to"), d.get("file"), bool(d.get("redacted", False)),
            tuple(str(x) for x in d.get("unreachable") or ()),
            bool(d.get("edited", False)),
            tuple((str(k), tuple(str(u) for u in who)) for k, who in d.get("reactions") or ()),
        )


@dataclass(frozen=True)
class OutgoingMessage:
    """An event of ours the server has not accepted yet, as a UI shows it."""

    local_id: str
    room_id: str
    ts: int
    kind: str  # "text" | "file" | "image" | "edit" | "reaction"
    body: str
    state: str  # "pending" | "failed"
    error: str | None
    attempts: int
    reply_to: str | None = None


@dataclass(frozen=True)
class OutboxChanged(ClientEvent):
    """What of ours in ``room_id`` still waits to be sent (pending or failed)."""

    room_id: str
    entries: tuple[OutgoingMessage, ...]


@dataclass(frozen=True)
class MessageReceived(ClientEvent):
    message: Message
    own: bool = False


@dataclass(frozen=True)
class MessageChanged(ClientEvent):
    """A shown message was edited, or its reactions changed: ``message`` is how it looks now."""

    message: Message


@dataclass(frozen=True)
class MessageDeleted(ClientEvent):
    room_id: str
    event_id: str


@dataclass(frozen=True)
class DecryptionFailed(ClientEvent):
    room_id: str | None
    event_id: str | None
    sender: str
    sender_device: str
    reason: str


@dataclass(frozen=True)
class InvitationReceived(ClientEvent):
    room_id: str
    inviter: str
    name: str | None
    is_direct: bool


@dataclass(frozen=True)
class RoomUpdated(ClientEvent):
    room_id: str
    name: str | None
    members: tuple[str, ...]
    membership: str  # our own membership: "join" | "invite" | "leave"
    is_direct: bool = False
    avatar_url: str | None = None


@dataclass(frozen=True)
class PresenceChanged(ClientEvent):
    user_id: str
    presence: str
    last_active_ago: int | None = None


@dataclass(frozen=True)
class TypingChanged(ClientEvent):
    room_id: str
    user_ids: tuple[str, ...]


@dataclass(frozen=True)
class ReceiptUpdated(ClientEvent):
    room_id: str
    event_id: str
    user_id: str
    ts: int


@dataclass(frozen=True)
class UnreadCountChanged(ClientEvent):
    room_id: str
    count: int


@dataclass(frozen=True)
class ConnectionStateChanged(ClientEvent):
    state: ConnectionState
    error: str | None = None
    retry_in: float | None = None


@dataclass(frozen=True)
class TransferProgress(ClientEvent):
    transfer_id: str
    direction: str  # "upload" | "download"
    done: int
    total: int


@dataclass(frozen=True)
class SessionReset(ClientEvent):
    user_id: str
    device_id: str
    by_peer: bool


@dataclass(frozen=True)
class DevicesChanged(ClientEvent):
    user_ids: tuple[str, ...]


@dataclass(frozen=True)
class IdentityChanged(ClientEvent):
    """A contact's identity key changed: sending to them is held until the user accepts
    ``new_key`` (shown as ``notice``, the "safety number changed" text)."""

    user_id: str
    new_key: str
    notice: str


@dataclass(frozen=True)
class AccountDataChanged(ClientEvent):
    kind: str
    room_id: str | None = None


Callback = Callable[[ClientEvent], None]


@dataclass
class EventBus:
    """Fan-out of :class:`ClientEvent` to callbacks and queues (never blocks)."""

    _callbacks: list[Callback] = field(default_factory=list)
    _queues: list[asyncio.Queue[ClientEvent]] = field(default_factory=list)

    def subscribe(self, callback: Callback) -> Callable[[], None]:
        self._callbacks.append(callback)
        return lambda: self._callbacks.remove(callback)

    def queue(self) -> asyncio.Queue[ClientEvent]:
        q: asyncio.Queue[ClientEvent] = asyncio.Queue()
        self._queues.append(q)
        return q

    def emit(self, event: ClientEvent) -> None:
        for callback in list(self._callbacks):
            try:
                callback(event)
            except Exception:  # a faulty UI callback must not break the sync loop
                logger.exception("event callback failed")
        for q in self._queues:
            q.put_nowait(event)
