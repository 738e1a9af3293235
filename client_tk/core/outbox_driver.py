"""Driving the outbox: encrypt (sans-I/O steps of :mod:`sending`), persist, attempt, record.

Every attempt of an entry is independent of every other entry: a refusal
marks *that* entry failed (with the server's reason) and the next one is
tried; a missing answer leaves it pending with its own jittered backoff, and
the sync loop tries again when it is due.  No network call runs under the
store lock.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from client_tk.core import relations, sending, uploads
from client_tk.core.events import MessageReceived, OutboxChanged
from client_tk.core.outbox import PENDING, WAITING, Outbox, is_permanent, message_from_entry
from client_tk.core.processor import Staged
from client_tk.core.transport import CLIENT_V3, TransportFailure, q
from common.crypto.kem_prekeys import KEM_KEY_ALGORITHM
from common.errors import MatrixError

if TYPE_CHECKING:
    from client_tk.core.engine import ClientEngine

logger = logging.getLogger(__name__)
JsonDict = dict[str, Any]
SENT_IDS_KEPT = 256


class MessageWaiting(MatrixError):
    """The message is kept in the outbox until the contact's first device exists (not an error
    of the send: :meth:`OutboxDriver.send` raises it so the caller knows no event id exists yet)."""

    def __init__(self, users: list[str]) -> None:
        self.user_ids = sorted(users)
        super().__init__(202, "IM_PARLEY_WAITING", "waiting for " + ", ".join(self.user_ids) + " to join")


class OutboxDriver:
    def __init__(self, engine: ClientEngine) -> None:
        self.engine = engine
        self.box = Outbox(engine.store, engine.clock)
        # The attempt running for an entry: a second caller (a send racing the
        # sync loop's flush, a retry) waits for it instead of failing or repeating it.
        self._in_flight: dict[str, asyncio.Future[str | None]] = {}
        # Event ids of entries sent lately (the entry itself is gone from the box).
        self._sent_ids: OrderedDict[str, str] = OrderedDict()
        self._uploading: set[str] = set()  # waiting files whose upload is running

    def _txn(self) -> str:
        return f"{self.engine.device_id}.{secrets.token_hex(8)}"

    def _changed(self, room_id: str) -> OutboxChanged:
        return OutboxChanged(room_id, tuple(self.box.outgoing(room_id)))

    # ------------------------------------------------------------ sending
    async def send(self, room_id: str, payload: JsonDict) -> str:
        e = self.engine
        room = e.rooms.get(room_id)
        if room is None or room.membership != "join":
            raise MatrixError(403, "M_FORBIDDEN", "You are not in that room")
        users = sending.recipients(room, e.user_id)
        try:
            await e.learn_devices(users)  # I/O the recipient set needs: /keys/query
        except TransportFailure as exc:
            await self._keep_offline(room_id, payload, exc)
            raise
        absent = self._absent(room_id)
        if absent:  # a device list fetched before the contact's first device existed is stale
            try:
                await e.learn_devices(absent, refresh=True)
            except TransportFailure as exc:
                await self._keep_offline(room_id, payload, exc)
                raise
            absent = self._absent(room_id)
        e.directory.check_send(users)  # a changed safety number holds the message (raises)
        if absent or self.box.waiting_in(room_id):  # keep the order: behind earlier waiting ones
            async with e.lock:
                await e._commit(lambda: self._add_waiting(room_id, payload, absent))
            raise MessageWaiting(absent or self._absent(room_id))
        names: list[str] = []
        try:
            answer, claims = await self._claim(users)
        except TransportFailure as exc:
            await self._keep_offline(room_id, payload, exc)
            raise

        def stage() -> Staged:
            names.append(self._encrypt(room_id, users, payload, answer, claims, None))
            return Staged(events=[self._changed(room_id)])

        async with e.lock:
            await e._commit(stage)  # the ratchet steps and the entry, durable before the first try
        return await self._drive(names[0])

    def _absent(self, room_id: str) -> list[str]:
        """In a direct chat: the other members with no device at all yet (nobody to encrypt to)."""
        e = self.engine
        room = e.rooms.get(room_id)
        if room is None or not room.is_direct:
            return []
        return [u for u in sending.recipients(room, e.user_id)
                if u != e.user_id and not e.directory.verified([u])]

    async def _keep_offline(self, room_id: str, payload: JsonDict, error: Exception) -> None:
        """The server cannot be reached before encrypting: the message waits (plaintext, in the
        encrypted local store) and is encrypted and sent, in order, when the server answers again."""
        def stage() -> Staged:
            self.box.add_waiting(room_id, self._txn(), payload, self.engine.clock(), [],
                                 reason=f"offline: {error}")
            return Staged(events=[self._changed(room_id)])
        async with self.engine.lock:
            await self.engine._commit(stage)

    def _add_waiting(self, room_id: str, payload: JsonDict, absent: list[str]) -> Staged:
        self.box.add_waiting(room_id, self._txn(), payload, self.engine.clock(), absent)
        return Staged(events=[self._changed(room_id)])

    async def _claim(self, users: list[str]) -> tuple[tuple[JsonDict, JsonDict] | None, list[Any]]:
        """``/keys/claim`` twice for the devices without a session: X25519 and KEM pre-keys."""
        e = self.engine
        claims = sending.claims_needed(e.crypto, e.directory.verified(users))
        if not claims:
            return None, claims
        answer = await e.http.post(CLIENT_V3 + "/keys/claim", sending.claim_body(claims))
        kem = await e.http.post(CLIENT_V3 + "/keys/claim", sending.claim_body(claims, KEM_KEY_ALGORITHM))
        return (answer, kem), claims

    def _encrypt(self, room_id: str, users: list[str], payload: JsonDict,
                 answer: tuple[JsonDict, JsonDict] | None, claims: list[Any], waiting: str | None) -> str:
        """Stage sessions, the ratchet step and the entry (new, or the waiting one now encrypted)."""
        e = self.engine
        if answer is not None:
            sending.start_sessions(e.crypto, claims, *answer)
        room = e.rooms[room_id]
        encrypted = sending.encrypt(e.crypto, room, e.user_id, e.directory.verified(users), payload)
        after = []
        if encrypted.to_device is not None:
            after.append(self.box.add_to_device("m.room.encrypted", self._txn(), encrypted.to_device))
        if waiting is not None:
            self.box.encrypted(waiting, encrypted.content, after, encrypted.unreachable)
            return waiting
        return self.box.add_event(room_id, self._txn(), encrypted.content, payload, e.clock(), after,
                                  encrypted.unreachable)

    async def encrypt_waiting(self) -> None:
        """Messages waiting for a contact's first device: encrypt them (in order) once it exists."""
        e = self.engine
        for name, entry in self.box.waiting().items():
            if entry.get("upload"):  # a file written offline: its upload first
                if name in self._uploading:
                    return  # another flush is uploading it; what follows waits for it
                self._uploading.add(name)
                try:
                    if not await uploads.upload_waiting(e, self.box, name, entry, self._changed):
                        continue
                except TransportFailure as exc:
                    logger.info("waiting upload %s not sent yet: %s", name, exc)
                    return
                finally:
                    self._uploading.discard(name)
                entry = self.box.get(name) or entry
            room_id = entry["room_id"]
            room = e.rooms.get(room_id)
            if room is None:
                continue
            users = sending.recipients(room, e.user_id)
            try:
                await e.learn_devices(users)  # queries only users marked outdated by /sync
                if self._absent(room_id) or e.directory.changed(users):
                    continue
                answer, claims = await self._claim(users)
            except (TransportFailure, MatrixError) as exc:  # still offline: the next flush tries again
                logger.info("waiting outbox entry %s not encrypted yet: %s", name, exc)
                return

            def stage(name: str = name, entry: JsonDict = entry, users: list[str] = users,
                      answer: tuple[JsonDict, JsonDict] | None = answer,
                      claims: list[Any] = claims) -> Staged:
                now = self.box.get(name)
                if now is None or now.get("state") != WAITING:
                    return Staged()  # deleted, or encrypted by another flush, meanwhile
                self._encrypt(entry["room_id"], users, entry["payload"], answer, claims, name)
                return Staged(events=[self._changed(entry["room_id"])])
            async with e.lock:
                await e._commit(stage)

    async def _drive(self, name: str) -> str:
        """Attempt an event entry now (after the sender-key message it needs)."""
        entry = self.box.get(name)
        if entry is None:
            if name in self._sent_ids:  # a flush sent it between our commit and this try
                return self._sent_ids[name]
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
            event_id = self._sent_ids.get(name)
        if event_id is None:
            raise MatrixError(409, "M_UNKNOWN", "that message is not waiting to be sent")
        return event_id

    async def _attempt(self, name: str) -> str | None:
        """One try of one entry; the event id for an event; raises what the server said."""
        e = self.engine
        while (running := self._in_flight.get(name)) is not None:
            try:  # the same attempt, started by someone else: its outcome is ours
                return await asyncio.shield(running)
            except asyncio.CancelledError:
                if not running.cancelled():
                    raise  # we were cancelled ourselves
                # that attempt was cancelled before it finished: make our own
        entry = self.box.get(name)
        if entry is None or entry.get("state", PENDING) != PENDING:
            return None
        outcome: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        self._in_flight[name] = outcome
        try:
            event_id = await self._attempt_once(name, entry)
        except asyncio.CancelledError:
            outcome.cancel()
            raise
        except BaseException as exc:
            outcome.set_exception(exc)
            outcome.exception()  # retrieved: nobody else may be waiting
            raise
        else:
            outcome.set_result(event_id)
        finally:
            del self._in_flight[name]
        if event_id is not None:
            await e._after_send(entry["room_id"], event_id, entry["payload"])
        return event_id

    async def _attempt_once(self, name: str, entry: JsonDict) -> str | None:
        """Send the entry's request and record the outcome (sent, or the failure)."""
        e = self.engine
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
        if event_id is not None:
            self._sent_ids[name] = event_id
            while len(self._sent_ids) > SENT_IDS_KEPT:
                self._sent_ids.popitem(last=False)
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
        relation = relations.relation_of(entry["payload"])
        if relation is not None:  # an edit or a reaction: folded into the message it is about
            events += relations.record(e.store, room_id, event_id, e.user_id, int(entry["ts"]), relation,
                                       entry["payload"])
        elif e.store.get_message(event_id) is None:  # else /sync brought it back first
            message = relations.cache_message(e.store, message_from_entry(event_id, entry, e.user_id,
                                                                          e.device_id, int(entry["ts"])))
            events.append(MessageReceived(message, own=True))
        return Staged(events=[*events, self._changed(room_id)])

    # ------------------------------------------------------------ actions
    async def flush(self) -> None:
        """Attempt every due entry once, in order; failures stay with their entry."""
        await self.encrypt_waiting()
        tried: set[str] = set()
        while True:
            due = [n for n in self.box.due() if n not in tried and n not in self._in_flight]
            if not due:
                return
            tried.add(due[0])
            try:
                await self._attempt(due[0])
            except (TransportFailure, MatrixError) as exc:
                logger.info("outbox entry %s not sent: %s", due[0], exc)

    async def retry(self, name: str) -> str:
        e = self.engine
        async with e.lock:
            await e._commit(lambda: self._retried(name))
        if (self.box.get(name) or {}).get("upload"):
            await self.flush()  # uploaded, encrypted and sent in the room's order
            return self._sent_ids.get(name, "")
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

    async def keep_file_offline(self, room_id: str, payload: JsonDict, ciphertext: bytes,
                                error: Exception) -> None:
        """A file whose upload could not reach the server: its ciphertext waits (see :mod:`uploads`)."""
        def stage() -> Staged:
            name = self.box.add_waiting(room_id, self._txn(), payload, self.engine.clock(), [],
                                        reason=f"offline: {error}", upload=True)
            uploads.keep_ciphertext(self.engine.store.folder, name, ciphertext)
            return Staged(events=[self._changed(room_id)])
        async with self.engine.lock:
            await self.engine._commit(stage)

    def _deleted(self, name: str) -> Staged:
        uploads.drop_ciphertext(self.engine.store.folder, name)
        entry = self.box.delete(name)
        return Staged(events=[self._changed(entry["room_id"])])
