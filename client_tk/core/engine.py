"""The driver: the sync loop, and the I/O that the sans-I/O parts report.

Order of work per ``/sync`` batch (commit on success):

1. fetch the batch; fetch what :class:`BatchProcessor` reports it needs
   (backfill of limited timelines, ``/keys/query`` for unknown senders) —
   all **outside** the store lock;
2. under the lock, :meth:`BatchProcessor.process` stages every change on
   copies, the new ``next_batch`` is staged, the store **commits**; on any
   error the store is rolled back and the live state is untouched;
3. the copies are swapped in, a new immutable room snapshot is published
   (:attr:`ClientEngine.rooms`) and the batch's events are emitted — in one
   step, so a reader never sees state without its events;
4. then the follow-up I/O: session resets, key upload, the outbox, the key
   backup.

The next ``/sync`` carries the new ``since``, which acknowledges to-device
messages: a crash before the commit replays the batch; after it, nothing is
lost.  Sends go through the :class:`Outbox` (one state machine per entry; see
there) and :mod:`client_tk.core.sending` (the recipient set and session
setup).  The loop reconnects with jittered exponential backoff and reports
:class:`ConnectionStateChanged`; only ``/sync`` itself changes that state.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import Any

from client_tk.core import backoff
from client_tk.core import backup as backup_mod
from client_tk.core.crypto import CryptoManager, E2EError
from client_tk.core.devices import DeviceDirectory
from client_tk.core.events import (
    ConnectionState,
    ConnectionStateChanged,
    EventBus,
    IdentityChanged,
    OutgoingMessage,
    SessionReset,
)
from client_tk.core.keys import KeyManager
from client_tk.core.outbox_driver import OutboxDriver
from client_tk.core.processor import RESET_TYPE, BatchProcessor, Staged, room_updated
from client_tk.core.store import LocalStore
from client_tk.core.sync import RoomState, RoomView, SyncBatch, parse_sync
from client_tk.core.transport import CLIENT_V3, Transport, TransportFailure, q
from common.crypto import CryptoError
from common.errors import MatrixError

logger = logging.getLogger(__name__)
JsonDict = dict[str, Any]
SYNC_FILTER = '{"room":{"timeline":{"limit":200}}}'
BACKOFF_START, BACKOFF_MAX = 1.0, 30.0


def now_ms() -> int:
    return int(time.time() * 1000)


class ClientEngine:
    def __init__(self, store: LocalStore, transport: Transport, keys: KeyManager, *,
                 clock: Callable[[], int] = now_ms, bus: EventBus | None = None,
                 sync_timeout_ms: int = 30_000) -> None:
        self.store = store
        self.http = transport
        self.keys = keys
        self.crypto = CryptoManager(store, keys)
        self.directory = DeviceDirectory(store, keys)
        self.user_id = keys.user_id
        self.device_id = keys.device_id
        self.clock = clock
        self.bus = bus or EventBus()
        self.sync_timeout_ms = sync_timeout_ms
        self.presence = "online"  # what every /sync tells the server (set_presence)
        self.lock = asyncio.Lock()  # one writer of crypto state and the store at a time
        self._rooms: dict[str, RoomState] = {
            k: RoomState.from_dict(v) for k, v in store.items("rooms").items()}
        self._views: Mapping[str, RoomView] = MappingProxyType(
            {k: r.view() for k, r in self._rooms.items()})
        self.connection = ConnectionState.OFFLINE
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._synced = asyncio.Event()
        self._batches = 0
        self.backup = backup_mod.KeyBackup(self)
        self.processor = BatchProcessor(store, self.crypto, self.directory, self.backup, clock)
        self.outbox = OutboxDriver(self)

    # ----------------------------------------------------------- lifecycle
    @property
    def rooms(self) -> Mapping[str, RoomView]:
        """The committed rooms: an immutable snapshot, replaced (never changed) per batch."""
        return self._views

    @property
    def since(self) -> str | None:
        record = self.store.get("state", "sync")
        return None if record is None else str(record["since"])

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._stopping.clear()
            self._task = asyncio.create_task(self._sync_loop(), name=f"sync {self.user_id}")

    async def stop(self) -> None:
        self._stopping.set()
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
            self._task = None
        self._set_connection(ConnectionState.OFFLINE)

    async def close(self) -> None:
        await self.stop()
        await self.http.aclose()
        self.store.close()

    def _set_connection(self, state: ConnectionState, error: str | None = None,
                        retry_in: float | None = None) -> None:
        if state != self.connection or error is not None:
            self.connection = state
            self.bus.emit(ConnectionStateChanged(state, error, retry_in))

    async def _sync_loop(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            try:
                await self.sync_once(self.sync_timeout_ms)
                failures = 0
                continue
            except asyncio.CancelledError:
                raise
            except (TransportFailure, MatrixError, OSError) as exc:
                if isinstance(exc, MatrixError) and exc.errcode == "M_UNKNOWN_TOKEN":
                    self._set_connection(ConnectionState.OFFLINE, "logged out")
                    return
                failures += 1
                delay = backoff.delay(failures, BACKOFF_START, BACKOFF_MAX)
                logger.info("sync failed (%s); retrying in %.1f s", exc, delay)
                self._set_connection(ConnectionState.RECONNECTING, str(exc), delay)
            except Exception:
                logger.exception("sync batch failed; retrying")
                failures += 1
                delay = backoff.delay(failures, BACKOFF_START, BACKOFF_MAX)
            try:
                await asyncio.wait_for(self._stopping.wait(), delay)
            except TimeoutError:
                pass

    async def sync_once(self, timeout_ms: int = 0) -> None:
        """One ``/sync`` round trip, processed and committed, then its follow-up I/O."""
        params: JsonDict = {"timeout": timeout_ms, "filter": SYNC_FILTER, "set_presence": self.presence}
        since = self.since
        if since is not None:
            params["since"] = since
        body = await self.http.get(CLIENT_V3 + "/sync", params=params,
                                   request_timeout=timeout_ms / 1000 + 30)
        self._set_connection(ConnectionState.CONNECTED)
        batch = parse_sync(body)
        backfill = {room_id: await self._backfill(room_id, token)
                    for room_id, token in self.processor.backfills_needed(batch)}
        users = self.processor.identities_needed(batch, [e for es in backfill.values() for e in es])
        answer = await self._query_keys(users) if users else None
        async with self.lock:
            if since != self.since:
                return  # another sync_once committed a batch meanwhile: this one is stale
            staged = await self._commit(lambda: self._stage_batch(batch, backfill, users, answer),
                                        {"since": batch.next_batch})
        self._batches += 1
        self._synced.set()
        for user_id, device_id in staged.resets:
            await self._quietly(self._send_reset(user_id, device_id))
        await self._quietly(self._maintain_keys(batch))
        await self.outbox.flush()
        await self._quietly(self.backup.flush())

    def _stage_batch(self, batch: SyncBatch, backfill: Mapping[str, list[JsonDict]], users: list[str],
                     answer: JsonDict | None) -> Staged:
        changed = self._apply_query(users, answer).events if answer is not None else []
        staged = self.processor.process(batch, self._rooms, backfill)
        staged.events[:0] = changed
        return staged

    async def _commit(self, stage: Callable[[], Staged], sync: JsonDict | None = None) -> Staged:
        """Stage (pure), commit the store, then swap in and emit — or roll back. Hold the lock."""
        assert self.lock.locked()
        try:
            staged = stage()
            if sync is not None:
                self.store.put("state", "sync", sync)
            await self.store.commit()
        except BaseException:
            self.store.rollback()
            self.crypto.forget_uncommitted()
            self.keys.reload(self.store)
            raise
        self._publish(staged)
        return staged

    def _publish(self, staged: Staged) -> None:
        """Swap in committed room states, publish the snapshot, emit events (no await in between)."""
        if staged.rooms:
            self._rooms = {**self._rooms, **staged.rooms}
            self._views = MappingProxyType({**self._views, **{k: r.view() for k, r in staged.rooms.items()}})
        for event in staged.events:
            self.bus.emit(event)

    async def update_room(self, room_id: str, change: Callable[[RoomState], None]) -> None:
        """Apply a local change (we left, a tag we set) to a room: committed, then shown."""
        async with self.lock:
            if room_id not in self._rooms:
                return  # not known yet: the next sync brings it as the server has it

            def stage() -> Staged:
                room = self._rooms[room_id].copy()
                change(room)
                self.store.put("rooms", room_id, room.to_dict())
                return Staged(rooms={room_id: room}, events=[room_updated(room)])
            await self._commit(stage)

    async def wait_synced(self) -> None:
        """Wait for the next completed sync batch."""
        self._synced.clear()
        await self._synced.wait()

    async def _quietly(self, work: Any) -> None:
        try:
            await work
        except (TransportFailure, MatrixError, E2EError) as exc:
            logger.warning("follow-up after a sync failed: %s", exc)

    # ------------------------------------------------------------ sending
    async def send_payload(self, room_id: str, payload: JsonDict) -> str:
        """Encrypt ``payload`` for the room, put it in the outbox and send it; returns the event id.

        A refusal raises (the entry stays in the outbox, failed or pending)."""
        return await self.outbox.send(room_id, payload)

    async def flush_outbox(self) -> None:
        await self.outbox.flush()

    def outgoing(self, room_id: str | None = None) -> list[OutgoingMessage]:
        """Messages of ours still pending or failed (oldest first)."""
        return self.outbox.box.outgoing(room_id)

    async def retry_send(self, local_id: str) -> str:
        """Send a failed (or waiting) message again now; returns its event id."""
        return await self.outbox.retry(local_id)

    def undecryptable(self, room_id: str) -> list[tuple[str, str, str]]:
        """Events of a room that did not decrypt yet: (event id, sender, sender device)."""
        out = []
        for event_id, record in self.store.items("pending").items():
            event = record.get("event") or {}
            if record.get("room_id") == room_id:
                content = event.get("content") or {}
                out.append((event_id, str(event.get("sender", "")), str(content.get("sender_device", ""))))
        return out

    async def delete_send(self, local_id: str) -> None:
        """Give up on a message that was not sent."""
        await self.outbox.delete(local_id)

    async def _after_send(self, room_id: str, event_id: str, payload: JsonDict) -> None:
        """Hook: e.g. attach uploaded media to the event."""

    # ------------------------------------------------------ reported I/O
    async def _backfill(self, room_id: str, token: str, max_pages: int = 20) -> list[JsonDict]:
        """Events before a limited timeline, back to the first one already cached."""
        older: list[JsonDict] = []
        for _ in range(max_pages):
            page = await self.http.get(f"{CLIENT_V3}/rooms/{q(room_id)}/messages",
                                       params={"from": token, "dir": "b", "limit": 100})
            chunk = [e for e in page.get("chunk", []) if isinstance(e, dict)]
            stop = False
            for event in chunk:
                if self.store.get_message(str(event.get("event_id"))) is not None:
                    stop = True
                    break
                older.append(event)
            end = page.get("end")
            if stop or not chunk or not isinstance(end, str):
                break
            token = end
        older.reverse()
        return older

    async def _query_keys(self, users: list[str]) -> JsonDict:
        return await self.http.post(CLIENT_V3 + "/keys/query", self.directory.query_body(users),
                                    idempotent=True)

    async def learn_devices(self, users: Iterable[str], refresh: bool = False) -> None:
        """``/keys/query`` (outside the lock) for users whose device list is missing or outdated."""
        need = self.directory.to_query(users, refresh)
        if need:
            answer = await self._query_keys(need)
            async with self.lock:
                await self._commit(lambda: self._apply_query(need, answer))

    def _apply_query(self, users: list[str], answer: JsonDict) -> Staged:
        changed = self.directory.apply_query(users, answer)
        return Staged(events=[IdentityChanged(u, self.directory.pending_key(u) or "",
                                              self.directory.notice(u)) for u in changed])

    # ------------------------------------------------------- safety numbers
    def safety_number_changes(self) -> list[IdentityChanged]:
        """Contacts whose changed identity key waits for the user (sending to them is held)."""
        d = self.directory
        return [IdentityChanged(u, d.pending_key(u) or "", d.notice(u)) for u in d.changed()]

    async def accept_safety_number(self, user_id: str, shown_key: str) -> None:
        """The user accepted the new safety number shown for ``shown_key``: sending resumes,
        with new sessions to the contact's devices; held events from them are retried."""
        def stage() -> Staged:
            try:
                self.directory.accept(user_id, shown_key)
            except CryptoError as exc:
                raise MatrixError(400, "M_INVALID_PARAM", str(exc)) from exc
            for device_id in self.directory.device_ids(user_id):
                self.crypto.reset_session(user_id, device_id)
            return Staged()
        async with self.lock:
            await self._commit(stage)
        await self.learn_devices([user_id], refresh=True)
        async with self.lock:
            await self._commit(self.processor.retried)

    async def decrypt_events(self, room_id: str, events: list[JsonDict]) -> int:
        """Decrypt fetched room events not cached yet (history); returns how many opened."""
        users = self.processor.identities_needed(None, events)
        answer = await self._query_keys(users) if users else None
        found: list[int] = []

        def stage() -> Staged:
            staged = Staged()
            if answer is not None:
                staged.events += self._apply_query(users, answer).events
            found[:] = [self.processor.decrypt_history(room_id, events, staged)]
            return staged

        async with self.lock:
            staged = await self._commit(stage)
        for user_id, device_id in staged.resets:
            await self._quietly(self._send_reset(user_id, device_id))
        return sum(found)

    async def _send_reset(self, user_id: str, device_id: str) -> None:
        await self.http.put(f"{CLIENT_V3}/sendToDevice/{RESET_TYPE}/{secrets.token_hex(8)}",
                            {"messages": {user_id: {device_id: {"device_id": self.device_id}}}})

    # ----------------------------------------------------- key maintenance
    async def _maintain_keys(self, batch: SyncBatch | None) -> None:
        b = batch or SyncBatch("")  # no batch: nothing counted by the server yet
        async with self.lock:
            body = self.keys.upload_body(self.store, self.clock(), b.otk_count, b.spk_age_ms,
                                         b.kem_count, b.kem_fallback_unused)
            if body is None:
                return
            await self.store.commit()  # keys on disk before the server can hand them out
        await self.http.post(CLIENT_V3 + "/keys/upload", body, idempotent=True)
        if "device_keys" in body:
            async with self.lock:
                self.keys.device_keys_uploaded = True
                self.keys.save(self.store)
                await self.store.commit()

    async def rotate_signed_prekey(self) -> int:
        """Rotate now (normally every 7 days); the previous key stays for the grace period."""
        async with self.lock:
            spk = self.keys.rotate_spk(self.store, self.clock())
            await self.store.commit()
        await self._maintain_keys(None)
        return spk.key_id

    async def reset_session(self, user_id: str, device_id: str) -> None:
        """Forget the session with a peer device and ask it to do the same."""
        async with self.lock:
            self.crypto.reset_session(user_id, device_id)
            await self.store.commit()
        await self._send_reset(user_id, device_id)
        self.bus.emit(SessionReset(user_id, device_id, by_peer=False))
