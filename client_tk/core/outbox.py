"""The outbox: every outgoing event as a small persisted state machine (sans-I/O).

An entry is written (with the ratchet state that encrypted it) before the
first attempt, so a crash or a dropped connection never loses a send, and
the transaction id travels with it, so a retry never duplicates one.

States::

    pending --(server accepted)----------------> (removed; the message is cached as sent)
    pending --(no answer / 5xx / 429)----------> pending, next try after a jittered backoff
    pending --(any other 4xx: permanent)-------> failed, with the server's reason
    failed  --(retry)--------------------------> pending, at once
    pending | failed --(delete)----------------> (removed)
    waiting --(the contact's first device appears: encrypted to it)--> pending
    waiting --(delete)-------------------------> (removed)

A *waiting* entry is a message written while the server could not be
reached (encrypted when it answers again, in order), or a direct message to
someone with no device yet (an e-mail contact who has not registered): it holds only the plaintext (in the
encrypted local store) and ``waiting_for``; nothing is encrypted until the
person's own client has published keys, so no key made by anyone else --
the server included -- ever sees it.

Entries are independent: a failed entry never blocks the others.  A sender
key distribution (``to_device``) is sent before the events that need it
(``after``); an event waits only for those.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from client_tk.core import backoff
from client_tk.core.events import Message, OutgoingMessage
from client_tk.core.store import LocalStore
from common.errors import MatrixError

JsonDict = dict[str, Any]
PENDING, FAILED, WAITING = "pending", "failed", "waiting"
NS = "outbox"


def is_permanent(error: Exception) -> bool:
    """A server refusal that sending the same request again cannot fix.

    Anything else (no answer, 5xx, 429, a lost login) is worth another try."""
    if isinstance(error, MatrixError):
        return 400 <= error.status < 500 and error.status not in (408, 429) \
            and error.errcode != "M_UNKNOWN_TOKEN"
    return False


class Outbox:
    def __init__(self, store: LocalStore, clock: Callable[[], int]) -> None:
        self.store = store
        self.clock = clock

    # ------------------------------------------------------------ reading
    def entries(self) -> dict[str, JsonDict]:
        return dict(sorted(self.store.items(NS).items()))

    def get(self, local_id: str) -> JsonDict | None:
        return self.store.get(NS, local_id)

    def due(self, now: int | None = None) -> list[str]:
        """Entries to attempt now, in order: pending, backoff over, prerequisites sent, and no
        earlier message of the same room still on its way (a failed one does not hold the rest)."""
        now = self.clock() if now is None else now
        entries = self.entries()
        due: list[str] = []
        on_the_way: set[str] = set()  # rooms with an earlier event pending or waiting
        for name, e in entries.items():
            room = e.get("room_id") if e.get("kind") == "event" else None
            state = e.get("state", PENDING)
            if state == PENDING and int(e.get("next_try", 0)) <= now and room not in on_the_way \
                    and not any(dep in entries and entries[dep].get("state", PENDING) == PENDING
                                for dep in e.get("after", [])):
                due.append(name)
            if room is not None and state in (PENDING, WAITING):
                on_the_way.add(room)
        return due

    def by_txn(self, txn: str) -> JsonDict | None:
        """The event entry sent with transaction id ``txn`` (the server echoes it to us)."""
        for entry in self.store.items(NS).values():
            if entry.get("kind") == "event" and entry.get("txn") == txn:
                return entry
        return None

    def next_due_ms(self) -> int | None:
        pending = [int(e.get("next_try", 0)) for e in self.entries().values()
                   if e.get("state", PENDING) == PENDING]
        return min(pending) if pending else None

    def outgoing(self, room_id: str | None = None) -> list[OutgoingMessage]:
        return [outgoing_message(name, e) for name, e in self.entries().items()
                if e["kind"] == "event" and (room_id is None or e["room_id"] == room_id)]

    # ------------------------------------------------------------ changes
    def add_event(self, room_id: str, txn: str, content: JsonDict, payload: JsonDict, ts: int,
                  after: list[str], unreachable: list[str] | None = None) -> str:
        return self._add({"kind": "event", "room_id": room_id, "txn": txn, "content": content,
                          "payload": payload, "ts": ts, "after": after, "unreachable": unreachable or []})

    def add_waiting(self, room_id: str, txn: str, payload: JsonDict, ts: int, waiting_for: list[str],
                    reason: str | None = None, upload: bool = False) -> str:
        """``waiting_for`` empty: written while the server could not be reached (``reason``);
        ``upload``: a file whose ciphertext is still to be uploaded (:mod:`client_tk.core.uploads`)."""
        name = self._add({"kind": "event", "room_id": room_id, "txn": txn, "content": None,
                          "payload": payload, "ts": ts, "after": [], "upload": upload or None})
        error = reason or "waiting for " + ", ".join(sorted(waiting_for)) + " to join"
        self.store.put(NS, name, {**self.store.get(NS, name), "state": WAITING,  # type: ignore[dict-item]
                                  "waiting_for": sorted(waiting_for), "error": error})
        return name

    def waiting_in(self, room_id: str) -> bool:
        return any(e["room_id"] == room_id for e in self.waiting().values())

    def waiting(self) -> dict[str, JsonDict]:
        return {n: e for n, e in self.entries().items() if e.get("state") == WAITING}

    def encrypted(self, local_id: str, content: JsonDict, after: list[str],
                  unreachable: list[str] | None = None) -> None:
        """A waiting entry got its recipients' devices: it is sent like any other now."""
        entry = self._existing(local_id)
        self.store.put(NS, local_id, {**entry, "content": content, "after": after, "state": PENDING,
                                      "error": None, "next_try": 0, "waiting_for": [],
                                      "unreachable": unreachable or []})

    def add_to_device(self, kind: str, txn: str, messages: JsonDict) -> str:
        return self._add({"kind": "to_device", "type": kind, "txn": txn, "messages": messages})

    def _add(self, entry: JsonDict) -> str:
        state = self.store.get("state", "outbox_seq") or {"seq": 0}
        seq = int(state["seq"]) + 1
        self.store.put("state", "outbox_seq", {"seq": seq})
        name = f"{seq:012d}"
        self.store.put(NS, name, {**entry, "seq": seq, "state": PENDING, "attempts": 0,
                                  "next_try": 0, "error": None})
        return name

    def sent(self, local_id: str) -> None:
        self.store.delete(NS, local_id)

    def attempt_failed(self, local_id: str, error: Exception) -> bool:
        """Record a failed attempt; True if the entry failed for good."""
        entry = self.get(local_id)
        if entry is None:
            return False
        attempts = int(entry.get("attempts", 0)) + 1
        reason = _reason(error)
        if is_permanent(error):
            self.store.put(NS, local_id, {**entry, "state": FAILED, "attempts": attempts, "error": reason})
            return True
        wait_ms = int(backoff.delay(attempts, initial=1.0, maximum=60.0) * 1000)
        self.store.put(NS, local_id, {**entry, "attempts": attempts, "error": reason,
                                      "next_try": self.clock() + wait_ms})
        return False

    def retry(self, local_id: str) -> JsonDict:
        entry = self._existing(local_id)
        if entry.get("state") == WAITING:
            raise MatrixError(409, "M_UNKNOWN", str(entry.get("error")))
        if entry.get("upload"):  # a file never uploaded: it waits for its upload again
            updated = {**entry, "state": WAITING, "error": "offline: the upload is tried again"}
            self.store.put(NS, local_id, updated)
            return updated
        updated = {**entry, "state": PENDING, "next_try": 0, "error": None}
        self.store.put(NS, local_id, updated)
        return updated

    def delete(self, local_id: str) -> JsonDict:
        entry = self._existing(local_id)
        self.store.delete(NS, local_id)
        return entry

    def _existing(self, local_id: str) -> JsonDict:
        entry = self.get(local_id)
        if entry is None or entry["kind"] != "event":
            raise MatrixError(404, "M_NOT_FOUND", "that message is no longer waiting to be sent")
        return entry


def outgoing_message(local_id: str, entry: JsonDict) -> OutgoingMessage:
    payload = entry.get("payload") or {}
    kind = {"m.file": "file", "m.image": "image", "m.reaction": "reaction"}.get(str(payload.get("type")), "text")
    relates = payload.get("m.relates_to")
    if kind == "text" and isinstance(relates, dict) and relates.get("rel_type") == "m.replace":
        kind = "edit"
    reply = payload.get("reply_to")
    return OutgoingMessage(local_id, str(entry["room_id"]), int(entry.get("ts", 0)), kind,
                           str(payload.get("body", "")), str(entry.get("state", PENDING)),
                           entry.get("error"), int(entry.get("attempts", 0)),
                           reply if isinstance(reply, str) else None)


def message_from_entry(event_id: str, entry: JsonDict, sender: str, device: str, ts: int) -> Message:
    """Our own sent message, as the outbox entry knows it (with its unreachable devices)."""
    message = message_from_payload(event_id, str(entry["room_id"]), sender, device, ts, entry["payload"])
    return dataclasses.replace(message, unreachable=tuple(entry.get("unreachable") or ()))


def message_from_payload(event_id: str, room_id: str, sender: str, device: str, ts: int,
                         payload: JsonDict) -> Message:
    kind = {"m.file": "file", "m.image": "image"}.get(str(payload.get("type")), "text")
    file = payload.get("file") if isinstance(payload.get("file"), dict) else None
    reply = payload.get("reply_to")
    return Message(event_id, room_id, sender, device, ts, kind, str(payload.get("body", "")),
                   reply if isinstance(reply, str) else None, file)


def _reason(error: Exception) -> str:
    if isinstance(error, MatrixError):
        return f"{error.errcode}: {error.message}" if error.message else error.errcode
    return str(error) or type(error).__name__
