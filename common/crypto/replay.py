"""Replay protection for one's own messages: per-device counters and a sliding window.

The Double Ratchet refuses a replayed pairwise message by itself (its message
key is gone), but a room event is a new event to the server: a server can copy
an old event of Alice's into the same room (or another one) and, without a
counter, every one of Alice's devices would show it as new.  So each sending
device stamps every message it sends -- inside the encrypted payload, where the
server cannot change it -- with

    :class:`OwnMessageStamp` ``{"device": <sending device id>, "counter": n, "room_id": ...}``

where ``n`` comes from :class:`OutgoingCounter` (1, 2, 3, ... per device, kept
in the store and committed before the message leaves).  A receiving device of
the same user runs :meth:`ReplayGuard.accept` (through :func:`check_own_stamp`),
a pure function returning the guard's next state:

* a stamp whose room differs from the event's room is refused;
* per sending device, a window of the last :data:`WINDOW` counters (an
  IPsec/DTLS-style bitmap below the highest counter seen) accepts each counter
  at most once, in any order within the window; counters below the window are
  refused as too old (they cannot be told apart from replays).

Refusals raise :class:`ReplayedMessage`; the guard passed in is unchanged
(commit on success: the caller stores the returned guard with the message).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from common.crypto.errors import DuplicateMessage, InvalidHeader
from common.crypto.serialization import JsonDict, check_version, get_int, get_str

WINDOW = 1024
MAX_COUNTER = 2**53 - 1  # exact in JSON everywhere


class ReplayedMessage(DuplicateMessage):
    """An own message seen before, too old to tell, or moved to another room."""


@dataclass(frozen=True)
class OutgoingCounter:
    """The sending device's last used counter (0 = nothing sent yet)."""

    last: int = 0

    def next(self) -> tuple[int, OutgoingCounter]:
        """The counter for the next message and the state to store *before* sending."""
        if self.last >= MAX_COUNTER:
            raise InvalidHeader("own-message counter exhausted")
        return self.last + 1, OutgoingCounter(self.last + 1)


@dataclass(frozen=True)
class OwnMessageStamp:
    device: str
    counter: int
    room_id: str

    def to_dict(self) -> JsonDict:
        return {"device": self.device, "counter": self.counter, "room_id": self.room_id}

    @classmethod
    def from_dict(cls, d: Any) -> OwnMessageStamp:
        if not isinstance(d, dict):
            raise InvalidHeader("own-message stamp: expected an object")
        return cls(get_str(d, "device"), get_int(d, "counter", lo=1, hi=MAX_COUNTER),
                   get_str(d, "room_id"))


@dataclass(frozen=True)
class ReplayWindow:
    """Highest counter seen and a bitmap: bit ``i`` set = ``highest - i`` seen."""

    highest: int = 0
    bitmap: int = 0

    def accept(self, counter: int) -> ReplayWindow:
        if not 1 <= counter <= MAX_COUNTER:
            raise InvalidHeader(f"own-message counter {counter} out of range")
        if counter > self.highest:
            shift = counter - self.highest
            bitmap = ((self.bitmap << shift) | 1) & ((1 << WINDOW) - 1) if shift < WINDOW else 1
            return ReplayWindow(counter, bitmap)
        offset = self.highest - counter
        if offset >= WINDOW:
            raise ReplayedMessage(f"own message {counter} is older than the replay window")
        if self.bitmap >> offset & 1:
            raise ReplayedMessage(f"own message {counter} was already received")
        return ReplayWindow(self.highest, self.bitmap | 1 << offset)


@dataclass(frozen=True)
class ReplayGuard:
    """One :class:`ReplayWindow` per own sending device."""

    windows: Mapping[str, ReplayWindow] = field(default_factory=dict)

    TYPE = "own_replay_guard"
    VERSIONS = (1,)

    def accept(self, device: str, counter: int) -> ReplayGuard:
        window = self.windows.get(device, ReplayWindow()).accept(counter)
        return ReplayGuard({**self.windows, device: window})

    def to_dict(self) -> JsonDict:
        return {"type": self.TYPE, "v": 1, "windows": {
            device: {"highest": w.highest, "bitmap": format(w.bitmap, "x")}
            for device, w in sorted(self.windows.items())}}

    @classmethod
    def from_dict(cls, d: Any) -> ReplayGuard:
        check_version(d, cls.TYPE, cls.VERSIONS)
        raw = d.get("windows")
        if not isinstance(raw, dict):
            raise InvalidHeader("own_replay_guard: windows must be an object")
        windows: dict[str, ReplayWindow] = {}
        for device, w in raw.items():
            if not isinstance(w, dict) or not isinstance(w.get("bitmap"), str):
                raise InvalidHeader("own_replay_guard: malformed window")
            try:
                bitmap = int(w["bitmap"], 16)
            except ValueError as exc:
                raise InvalidHeader("own_replay_guard: malformed bitmap") from exc
            if bitmap >> WINDOW:
                raise InvalidHeader("own_replay_guard: bitmap wider than the window")
            windows[device] = ReplayWindow(get_int(w, "highest", hi=MAX_COUNTER), bitmap)
        return cls(windows)


def check_own_stamp(guard: ReplayGuard, stamp: OwnMessageStamp, event_room_id: str) -> ReplayGuard:
    """Accept an own message (stamp decrypted from its payload) seen in ``event_room_id``."""
    if stamp.room_id != event_room_id:
        raise ReplayedMessage("own message replayed into another room")
    return guard.accept(stamp.device, stamp.counter)


__all__ = [
    "WINDOW",
    "OutgoingCounter",
    "OwnMessageStamp",
    "ReplayGuard",
    "ReplayWindow",
    "ReplayedMessage",
    "check_own_stamp",
]
