"""Driving the outbox: encrypt (sans-I/O steps of :mod:`sending`), persist, attempt, record.

Every attempt of an entry is independent of every other entry: a refusal
marks *that* entry failed (with the server's reason) and the next one is
tried; a missing answer leaves it pending with its own jittered backoff, and
the sync loop tries again when it is due.  No network call runs under the
store lock.
"""

from __future__ import annotations

import logging
import secrets
from typing import TYPE_CHECKING, Any

from client_tk.core import sending
from client_tk.core.events import MessageReceived, OutboxChanged
from client_tk.core.outbox import PENDING, Outbox, is_permanent, message_from_payload
from client_tk.core.processor import Staged
from client_tk.core.transport import CLIENT_V3, TransportFailure, q
from common.errors import MatrixError

if TYPE_CHECKING:
    from client_tk.core.engine import ClientEngine

logger = logging.getLogger(__name__)
JsonDict = dict[str, Any]


class OutboxDriver:
    def __init__(self, engine: ClientEngine) -> None:
        self.engine = engine
        self.box = Outbox(engine.store, engine.clock)
        self._in_flight: set[str] = set()

    def _txn(self) -> str:
        return f"{self.engine.device_id}.{secrets.token_hex(8)}"

    def _changed(self, room_id: str) -> OutboxChanged:
        return OutboxChanged(room_id, tuple(self.box.outgoing(room_id)))

    # ------------------------------------------------------------ sending
    async def send(self, room_id: str, payload: JsonDict) -> str:
        """Encrypt, persist and attempt ``payload``.  Offline, the message waits in the outbox
        unencrypted (the local store is encrypted at rest) and is sealed when the server is back."""
        e = self.engine
        room = e.rooms.get(room_id)
        if room is None or room.membership != "join":
            raise MatrixError(403, "M_FORBIDDEN", "You are not in that room")
        try:
            prepared = await self._prepare(room_id)
        except TransportFailure as exc:
            names: list[str] = []
            offline: Exception = exc

            def keep() -> Staged:
                names.append(self.box.add_event(room_id, self._txn(), None, payload, e.clock(), []))
                self.box.attempt_failed(names[0], offline)  # pending, next try after a backoff
                return Staged(events=[self._changed(room_id)])

            async with e.lock:
                await e._commit(keep)
            raise
        name = await self._seal(None, room_id, payload, prepared)
        return await self._drive(name)

    async def _prepare(self, room_id: str) -> tuple[list[str], list[Any], JsonDict | None]:
        """The I/O encrypting for the room needs: its devices (/keys/query) and new sessions (/keys/claim)."""
        e = self.engine
        room = e.rooms[room_id]
        users = sending.recipients(room, e.user_id)
        await e.learn_devices(users)
        claims = sending.claims_needed(e.crypto, e.directory.verified(users))
        answer = await e.http.post(CLIENT_V3 + "/keys/claim", sending.claim_body(claims)) if claims else None
        return users, claims, answer

    async def _seal(self, name: str | None, room_id: str, payload: JsonDict,
                    prepared: tuple[list[str], list[Any], JsonDict | None]) -> str:
        """Encrypt ``payload`` into a new entry (``name`` None) or into a waiting unencrypted one."""
        e = self.engine
        users, claims, answer = prepared
        names: list[str] = []

        def stage() -> Staged:
            if answer is not None:
                sending.start_sessions(e.crypto, claims, answer)
            current = e.rooms[room_id]
            encrypted = sending.encrypt(e.crypto, current, e.user_id, e.directory.verified(users), payload)
            after = []
            if encrypted.to_device is not None:
                after.append(self.box.add_to_device("m.room.encrypted", self._txn(), encrypted.to_device))
            if name is None:
                names.append(self.box.add_event(room_id, self._txn(), encrypted.content, payload,
                                                e.clock(), after))
            else:
                names.append(name)
                self.box.sealed(name, encrypted.content, after)
            return Staged(events=[self._changed(room_id)])

        async with e.lock:
            await e._commit(stage)  # the ratchet steps and the entry, durable before the first try
        return names[0]

    async def _seal_waiting(self, name: str) -> bool:
        """Encrypt an entry written while offline; False if it cannot be yet (still offline)."""
        entry = self.box.get(name)
        if entry is None or entry.get("kind") != "event" or entry.get("content") is not None:
            return True
        room = self.engine.rooms.get(entry["room_id"])
        if room is None or room.membership != "join":
            await self._record_failure(name, entry, MatrixError(403, "M_FORBIDDEN", "You are not in that room"))
            return False
        try:
            prepared = await self._prepare(entry["room_id"])
        except (TransportFailure, MatrixError) as exc:
            await self._record_failure(name, entry, exc)
            return False
        await self._seal(name, entry["room_id"], entry["payload"], prepared)
        return True

    async def _drive(self, name: str) -> str:
        """Attempt an event entry now (after the sender-key message it needs)."""
        waiting = self.box.get(name)
        if waiting is not None and waiting.get("kind") == "event" and waiting.get("content") is None:
            if not await self._seal_waiting(name):
                raise TransportFailure("the message waits until the server can be reached")
        entry = self.box.get(name)
        if entry is None:
            raise MatrixError(404, "M_NOT_FOUND", "that message is no longer in the outbox")
        for dep in entry.get("after", []):
            before = self.box.get(dep)
            if before is not None and before.get("state", PENDING) == PENDING:
                try:
                    await self._attempt(dep)
                except MatrixError as exc:
                    if not is_permanent(exc):
                        raise
                    logger.warning("sender key distribution refused: %s", exc)
        event_id = await self._attempt(name)
        if event_id is None:
            raise MatrixError(409, "M_UNKNOWN", "that message is being sent already")
        return event_id

    async def _attempt(self, name: str) -> str | None:
        """One try of one entry; the event id for an event; raises what the server said."""
        e = self.engine
        entry = self.box.get(name)
        if name in self._in_flight or entry is None or entry.get("state", PENDING) != PENDING:
            return None
        self._in_flight.add(name)
        try:
            try:
                if entry["kind"] == "to_device":
                    await e.http.put(f"{CLIENT_V3}/sendToDevice/{q(entry['type'])}/{q(entry['txn'])}",
                                     {"messages": entry["messages"]})
                    event_id = None
                else:
                    result = await e.http.put(f"{CLIENT_V3}/rooms/{q(entry['room_id'])}/send/"
                                              f"m.room.encrypted/{q(entry['txn'])}", entry["content"])
                    event_id = str(result["event_id"])
            except (TransportFailure, MatrixError) as exc:
                await self._record_failure(name, entry, exc)
                raise
            async with e.lock:
                await e._commit(lambda: self._sent(name, entry, event_id))
        finally:
            self._in_flight.discard(name)
        if event_id is not None:
            await e._after_send(entry["room_id"], event_id, entry["payload"])
        return event_id

    async def _record_failure(self, name: str, entry: JsonDict, error: Exception) -> None:
        async with self.engine.lock:
            await self.engine._commit(lambda: self._failed(name, entry, error))

    def _failed(self, name: str, entry: JsonDict, error: Exception) -> Staged:
        self.box.attempt_failed(name, error)
        return Staged(events=[self._changed(entry["room_id"])] if entry["kind"] == "event" else [])

    def _sent(self, name: str, entry: JsonDict, event_id: str | None) -> Staged:
        self.box.sent(name)
        if event_id is None:
            return Staged()
        e = self.engine
        room_id = entry["room_id"]
        events: list[Any] = []
        if e.store.get_message(event_id) is None:  # else /sync brought it back first
            message = message_from_payload(event_id, room_id, e.user_id, e.device_id,
                                           int(entry["ts"]), entry["payload"])
            e.store.put_message(room_id, event_id, message.ts, message.to_dict())
            events.append(MessageReceived(message, own=True))
        return Staged(events=[*events, self._changed(room_id)])

    # ------------------------------------------------------------ actions
    async def flush(self) -> None:
        """Attempt every due entry once, in order; failures stay with their entry."""
        tried: set[str] = set()
        while True:
            due = [n for n in self.box.due() if n not in tried and n not in self._in_flight]
            if not due:
                return
            tried.add(due[0])
            waiting = self.box.get(due[0])
            if waiting is not None and waiting.get("kind") == "event" and waiting.get("content") is None:
                if await self._seal_waiting(due[0]):
                    tried.discard(due[0])  # sealed: its sender key goes first, then it
                continue
            try:
                await self._attempt(due[0])
            except (TransportFailure, MatrixError) as exc:
                logger.info("outbox entry %s not sent: %s", due[0], exc)

    async def retry(self, name: str) -> str:
        e = self.engine
        async with e.lock:
            await e._commit(lambda: self._retried(name))
        return await self._drive(name)

    def _retried(self, name: str) -> Staged:
        entry = self.box.retry(name)
        return Staged(events=[self._changed(entry["room_id"])])

    async def delete(self, name: str) -> None:
        if name in self._in_flight:
            raise MatrixError(409, "M_UNKNOWN", "that message is being sent right now")
        e = self.engine
        async with e.lock:
            await e._commit(lambda: self._deleted(name))

    def _deleted(self, name: str) -> Staged:
        entry = self.box.delete(name)
        return Staged(events=[self._changed(entry["room_id"])])
