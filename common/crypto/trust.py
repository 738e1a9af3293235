"""Pinned identity keys: a changed key blocks sending until the user accepts it.

A client pins each contact's identity key the first time it sees it (trust on
first use, the Signal default) and passes every key it later sees through
:meth:`ContactTrust.observe`.  A different key does not replace the pin: the
contact becomes *changed* and :meth:`ContactTrust.check_send` raises
:class:`SafetyNumberChanged` for any message to them, until the user has seen
the new safety number (:func:`safety_number_notice`) and calls
:meth:`ContactTrust.accept` with exactly the key that was shown.  Nothing is
silent: the caller gets an :class:`Observation` to show ("safety number
changed") and a refusal to send.

:func:`delivery_report` is the other half of "nothing silent": the devices a
message was meant for minus those it was encrypted to are *unreachable*, and
the client shows them on the message instead of dropping them.

Pure and immutable (every method returns a new :class:`ContactTrust`);
serialised as ``{"type": "contact_trust", "v": 1, "pins": {...}}``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from common.crypto.errors import CryptoError, InvalidHeader
from common.crypto.keys import IdentityPublicKey
from common.crypto.safety_numbers import safety_number
from common.crypto.serialization import JsonDict, check_version


class SafetyNumberChanged(CryptoError):
    """Sending refused: a recipient's identity key changed and was not accepted."""

    def __init__(self, user_ids: Iterable[str]) -> None:
        self.user_ids = sorted(user_ids)
        super().__init__("safety number changed for " + ", ".join(self.user_ids)
                         + ": accept the new safety number to send")


class Observation(Enum):
    FIRST_SEEN = "first_seen"  # pinned now
    UNCHANGED = "unchanged"
    CHANGED = "changed"  # show "safety number changed"; sending is blocked


@dataclass(frozen=True)
class Pin:
    key: IdentityPublicKey
    pending: IdentityPublicKey | None = None  # the new key, while not accepted

    def to_dict(self) -> JsonDict:
        return {"key": self.key.to_b64(),
                "pending": None if self.pending is None else self.pending.to_b64()}

    @classmethod
    def from_dict(cls, d: Any) -> Pin:
        if not isinstance(d, dict):
            raise InvalidHeader("pin: expected an object")
        pending = d.get("pending")
        return cls(IdentityPublicKey.from_b64(d.get("key")),
                   None if pending is None else IdentityPublicKey.from_b64(pending))


@dataclass(frozen=True)
class ContactTrust:
    pins: Mapping[str, Pin] = field(default_factory=dict)

    TYPE = "contact_trust"
    VERSIONS = (1,)

    def observe(self, user_id: str, key: IdentityPublicKey) -> tuple[ContactTrust, Observation]:
        pin = self.pins.get(user_id)
        if pin is None:
            return ContactTrust({**self.pins, user_id: Pin(key)}), Observation.FIRST_SEEN
        if key == pin.key and pin.pending is None:
            return self, Observation.UNCHANGED
        if key == pin.key:  # back to the pinned key: still blocked until the user decides
            return self, Observation.CHANGED
        return ContactTrust({**self.pins, user_id: Pin(pin.key, key)}), Observation.CHANGED

    def is_blocked(self, user_id: str) -> bool:
        pin = self.pins.get(user_id)
        return pin is not None and pin.pending is not None

    def check_send(self, recipients: Iterable[str]) -> None:
        blocked = {u for u in recipients if self.is_blocked(u)}
        if blocked:
            raise SafetyNumberChanged(blocked)

    def accept(self, user_id: str, key: IdentityPublicKey) -> ContactTrust:
        """The user accepted the new safety number shown for ``key``."""
        pin = self.pins.get(user_id)
        if pin is None or pin.pending is None:
            raise InvalidHeader(f"no changed key to accept for {user_id}")
        if key != pin.pending:
            raise InvalidHeader(f"{user_id}: the accepted key is not the one that was shown")
        return ContactTrust({**self.pins, user_id: Pin(key)})

    def reject(self, user_id: str) -> ContactTrust:
        """The user keeps the old key (e.g. the change was not confirmed out of band).

        Sending to the old key resumes; the new key stays untrusted and a later
        observation of it reports :attr:`Observation.CHANGED` again."""
        pin = self.pins.get(user_id)
        if pin is None or pin.pending is None:
            raise InvalidHeader(f"no changed key to reject for {user_id}")
        return ContactTrust({**self.pins, user_id: Pin(pin.key)})

    def to_dict(self) -> JsonDict:
        return {"type": self.TYPE, "v": 1,
                "pins": {u: p.to_dict() for u, p in sorted(self.pins.items())}}

    @classmethod
    def from_dict(cls, d: Any) -> ContactTrust:
        check_version(d, cls.TYPE, cls.VERSIONS)
        pins = d.get("pins")
        if not isinstance(pins, dict):
            raise InvalidHeader("contact_trust: pins must be an object")
        return cls({str(u): Pin.from_dict(p) for u, p in pins.items()})


def safety_number_notice(local_user: str, local_key: IdentityPublicKey, trust: ContactTrust,
                         user_id: str) -> str:
    """The text both the CLI and the Tk client show for a changed contact."""
    pin = trust.pins.get(user_id)
    if pin is None or pin.pending is None:
        raise InvalidHeader(f"{user_id} has no changed safety number")
    new = safety_number(local_user, local_key, user_id, pin.pending)
    return (f"Your safety number with {user_id} changed. Messages to them are held until "
            f"you accept it. New safety number: {new.formatted()}")


def delivery_report(intended: Iterable[str], encrypted_to: Iterable[str]) -> list[str]:
    """Devices (``"user|device"``) a message was meant for but not encrypted to, sorted."""
    return sorted(set(intended) - set(encrypted_to))


__all__ = [
    "ContactTrust",
    "Observation",
    "Pin",
    "SafetyNumberChanged",
    "delivery_report",
    "safety_number_notice",
]
