"""The client engine: one sync loop, the decryption pipeline, encrypted sending.

Order of work per ``/sync`` batch (crash safety): decrypt and stage every
change in the :class:`LocalStore` (sessions, consumed one-time keys, sender
keys, cached messages, room state) together with the new ``next_batch``,
**commit**, and only then emit UI events, upload keys and send anything.
The next ``/sync`` carries the new ``since``, which is what acknowledges
to-device messages to the server: a crash before the commit replays the
batch; a crash after it loses nothing.  Sends work the same way: the new
ratchet state and the encrypted event go to a persisted *outbox* first, then
to the server under a transaction id (idempotent), so a retry after a crash
or a dropped connection sends the same event once.

The loop reconnects with exponential backoff (1 s doubling to 30 s) and
reports :class:`ConnectionStateChanged` (connected / reconnecting / offline).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable
from typing import Any

from client_tk.core import backup as backup_mod
from client_tk.core.crypto import (
    MESSAGE_KEY_TYPE,
    OLM,
    SENDER_KEY,
    SENDER_KEY_TYPE,
    CryptoManager,
    DeviceInfo,
    Duplicate,
    E2EError,
    one_time_key_from_claim,
    open_body,
    parse_device_keys,
    parse_message_key,
    seal_body,
)
from client_tk.core.events import (
    ClientEvent,
    ConnectionState,
    ConnectionStateChanged,
    DecryptionFailed,
    DevicesChanged,
    EventBus,
    InvitationReceived,
    Message,
    MessageDeleted,
    MessageReceived,
    PresenceChanged,
    ReceiptUpdated,
    RoomUpdated,
    SessionReset,
    TypingChanged,
    UnreadCountChanged,
)
from client_tk.core.keys import OTK_ALGORITHM, KeyManager
from client_tk.core.store import LocalStore
from client_tk.core.sync import RoomDelta, RoomState, SyncBatch, parse_sync
from client_tk.core.transport import CLIENT_V3, Transport, TransportFailure, q
from common.crypto import IdentityPublicKey
from common.crypto import primitives as P
from common.errors import MatrixError

logger = logging.getLogger(__name__)
JsonDict = dict[str, Any]
RESET_TYPE = "im.parley.session_reset"
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
        self.user_id = keys.user_id
        self.device_id = keys.device_id
        self.clock = clock
        self.bus = bus or EventBus()
        self.sync_timeout_ms = sync_timeout_ms
        self.presence = "online"  # what every /sync tells the server (set_presence)
        self.lock = asyncio.Lock()  # one writer of crypto state and the store at a time
        self.rooms: dict[str, RoomState] = {
            k: RoomState.from_dict(v) for k, v in store.items("rooms").items()}
        self.connection = ConnectionState.OFFLINE
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._synced = asyncio.Event()
        self._batches = 0
        self._emit_after_commit: list[ClientEvent] = []
        self._post_commit: list[Callable[[], Any]] = []
        self.backup = backup_mod.KeyBackup(self)

    # ----------------------------------------------------------- lifecycle
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
        delay = BACKOFF_START
        while not self._stopping.is_set():
            try:
                await self.sync_once(self.sync_timeout_ms)
                delay = BACKOFF_START
            except asyncio.CancelledError:
                raise
            except (TransportFailure, MatrixError, OSError) as exc:
                if isinstance(exc, MatrixError) and exc.status < 500 and exc.status != 429:
                    if exc.errcode == "M_UNKNOWN_TOKEN":
                        self._set_connection(ConnectionState.OFFLINE, "logged out")
                        return
                logger.info("sync failed (%s); retrying in %.0f s", exc, delay)
                self._set_connection(ConnectionState.RECONNECTING, str(exc), delay)
                try:
                    await asyncio.wait_for(self._stopping.wait(), delay)
                except TimeoutError:
                    pass
                delay = min(delay * 2, BACKOFF_MAX)
            except Exception:
                logger.exception("sync batch failed; retrying")
                await asyncio.sleep(delay)
                delay = min(delay * 2, BACKOFF_MAX)

    async def sync_once(self, timeout_ms: int = 0) -> None:
        """One ``/sync`` round trip, processed and committed."""
        params: JsonDict = {"timeout": timeout_ms, "filter": SYNC_FILTER, "set_presence": self.presence}
        since = self.since
        if since is not None:
            params["since"] = since
        body = await self.http.get(CLIENT_V3 + "/sync", params=params,
                                   request_timeout=timeout_ms / 1000 + 30)
        self._set_connection(ConnectionState.CONNECTED)
        batch = parse_sync(body)
        async with self.lock:
            await self._process(batch)
            self.store.put("state", "sync", {"since": batch.next_batch})
            await self.store.commit()
            events, self._emit_after_commit = self._emit_after_commit, []
            actions, self._post_commit = self._post_commit, []
        for event in events:
            self.bus.emit(event)
        for action in actions:
            try:
                result = action()
                if asyncio.iscoroutine(result):
                    await result
            except (TransportFailure, MatrixError, E2EError) as exc:
                logger.warning("post-sync action failed: %s", exc)
        await self._maintain_keys(batch)
        await self.flush_outbox()
        await self.backup.flush()
        self._batches += 1
        self._synced.set()

    async def wait_synced(self) -> None:
        """Wait for the next completed sync batch."""
        self._synced.clear()
        await self._synced.wait()

    def _emit(self, event: ClientEvent) -> None:
        self._emit_after_commit.append(event)

    # ----------------------------------------------------------- one batch
    async def _process(self, batch: SyncBatch) -> None:
        record = self.store.get("state", "outdated")
        outdated = set(record["users"]) if record else set()
        if batch.devices_changed or batch.devices_left:
            outdated |= set(batch.devices_changed) | set(batch.devices_left)
            self.store.put("state", "outdated", {"users": sorted(outdated)})
            self._emit(DevicesChanged(tuple(sorted(set(batch.devices_changed)))))
        new_keys = False
        for event in batch.to_device:
            new_keys |= await self._to_device(event)
        for delta in batch.rooms:
            await self._room(delta)
        if new_keys:
            await self.retry_pending()
        for event in batch.presence:
            content = event.get("content")
            if isinstance(content, dict) and isinstance(event.get("sender"), str):
                self._emit(PresenceChanged(event["sender"], str(content.get("presence", "offline")),
                                           content.get("last_active_ago")))
        for event in batch.account_data:
            self._account_data(event)

    def _account_data(self, event: JsonDict) -> None:
        """Global account data; subclasses extend (favourites live in room tags)."""

    async def _to_device(self, event: JsonDict) -> bool:
        sender, kind, content = event.get("sender"), event.get("type"), event.get("content")
        if not isinstance(sender, str) or not isinstance(content, dict):
            return False
        if kind == RESET_TYPE:
            device = content.get("device_id")
            if isinstance(device, str):
                self.crypto.reset_session(sender, device)
                self._emit(SessionReset(sender, device, by_peer=True))
            return False
        if kind != "m.room.encrypted" or content.get("algorithm") != OLM:
            return False
        try:
            identity = await self._known_identity(sender)
            inner, payload = self.crypto.decrypt_olm(sender, content, identity)
        except Duplicate:
            return False
        except E2EError as exc:
            device = str(content.get("sender_device", ""))
            self._emit(DecryptionFailed(None, None, sender, device, str(exc)))
            self._schedule_auto_reset(sender, device)
            return False
        if inner == SENDER_KEY_TYPE:
            try:
                self.crypto.receive_sender_key(sender, str(content["sender_device"]), payload)
            except E2EError as exc:
                logger.warning("bad sender key from %s: %s", sender, exc)
                return False
            return True
        return False

    def _schedule_auto_reset(self, user_id: str, device_id: str) -> None:
        """A peer device whose messages no longer decrypt: start over with it (once a minute)."""
        if not device_id or (user_id, device_id) == (self.user_id, self.device_id):
            return
        last = self.store.get("resets", f"{user_id}|{device_id}")
        if last is not None and self.clock() - int(last["ts"]) < 60_000:
            return
        self.store.put("resets", f"{user_id}|{device_id}", {"ts": self.clock()})
        self.crypto.reset_session(user_id, device_id)
        self._post_commit.append(lambda: self._send_reset(user_id, device_id))

    async def _send_reset(self, user_id: str, device_id: str) -> None:
        await self.http.put(f"{CLIENT_V3}/sendToDevice/{RESET_TYPE}/{secrets.token_hex(8)}",
                            {"messages": {user_id: {device_id: {"device_id": self.device_id}}}})

    async def _room(self, delta: RoomDelta) -> None:
        room = self.rooms.get(delta.room_id) or RoomState(delta.room_id)
        self.rooms[delta.room_id] = room
        before = (room.name, tuple(room.members.items()), room.membership, room.avatar_url)
        was = room.membership
        room.membership = delta.membership
        for event in delta.state:
            room.apply(event)
        if delta.membership == "invite":
            for event in delta.state:
                if event.get("type") == "m.room.member" and event.get("state_key") == self.user_id:
                    room.inviter = str(event.get("sender"))
                    content = event.get("content") or {}
                    if isinstance(content, dict) and content.get("is_direct") is True:
                        room.is_direct = True
            if was != "invite":
                self._emit(InvitationReceived(room.room_id, room.inviter or "", room.name, room.is_direct))
        timeline = delta.timeline
        if delta.limited and delta.prev_batch and delta.membership == "join":
            timeline = await self._backfill(delta.room_id, delta.prev_batch) + timeline
        for event in timeline:
            if isinstance(event.get("state_key"), str):
                room.apply(event)
            await self._timeline_event(room, event)
        for event in delta.ephemeral:
            self._ephemeral(room, event)
        for event in delta.account_data:
            if event.get("type") == "m.tag" and isinstance(event.get("content"), dict):
                tags = event["content"].get("tags")
                room.tags = sorted(tags) if isinstance(tags, dict) else []
        if delta.unread is not None and delta.unread != room.unread:
            room.unread = delta.unread
            self._emit(UnreadCountChanged(room.room_id, room.unread))
        self.store.put("rooms", room.room_id, room.to_dict())
        if before != (room.name, tuple(room.members.items()), room.membership, room.avatar_url):
            self._emit(RoomUpdated(room.room_id, room.name, tuple(room.joined), room.membership,
                                   room.is_direct, room.avatar_url))

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

    def _ephemeral(self, room: RoomState, event: JsonDict) -> None:
        content = event.get("content")
        if not isinstance(content, dict):
            return
        if event.get("type") == "m.typing":
            users = content.get("user_ids")
            if isinstance(users, list):
                self._emit(TypingChanged(room.room_id, tuple(u for u in users if isinstance(u, str))))
        elif event.get("type") == "m.receipt":
            for event_id, kinds in content.items():
                reads = kinds.get("m.read") if isinstance(kinds, dict) else None
                if isinstance(reads, dict):
                    for user, info in reads.items():
                        ts = info.get("ts", 0) if isinstance(info, dict) else 0
                        self._emit(ReceiptUpdated(room.room_id, event_id, user, int(ts)))

    # ------------------------------------------------- decrypting messages
    async def _timeline_event(self, room: RoomState, event: JsonDict) -> None:
        kind = event.get("type")
        if kind == "m.room.redaction":
            target = event.get("redacts") or (event.get("content") or {}).get("redacts")
            if isinstance(target, str):
                cached = self.store.get_message(target)
                if cached is not None:
                    cached = {**cached, "redacted": True, "body": "", "file": None}
                    self.store.put_message(room.room_id, target, int(cached["ts"]), cached)
                self._emit(MessageDeleted(room.room_id, target))
            return
        if kind != "m.room.encrypted":
            return
        event_id = event.get("event_id")
        if not isinstance(event_id, str) or self.store.get_message(event_id) is not None:
            return
        message = await self.decrypt_event(room.room_id, event)
        if message is not None:
            self._emit(MessageReceived(message, own=message.sender == self.user_id))

    async def decrypt_event(self, room_id: str, event: JsonDict) -> Message | None:
        """Decrypt one room event, cache it; None if it cannot be read (yet)."""
        event_id, sender = str(event.get("event_id")), event.get("sender")
        content = event.get("content")
        if not isinstance(sender, str) or not isinstance(content, dict):
            return None
        if not content or "body" not in content:  # redacted or not Parley's
            return None
        device = str(content.get("sender_device", ""))
        try:
            key, from_channel = await self._message_key(room_id, sender, content, event_id)
            payload = open_body(key, content.get("body"), room_id)
        except Duplicate:
            return None
        except E2EError as exc:
            self.store.put("pending", event_id, {"room_id": room_id, "event": event})
            self._emit(DecryptionFailed(room_id, event_id, sender, device, str(exc)))
            return None
        self.store.delete("pending", event_id)
        if from_channel:
            self.backup.queue(room_id, event_id, key)
        message = message_from_payload(event_id, room_id, sender, device,
                                       int(event.get("origin_server_ts", 0)), payload)
        self.store.put_message(room_id, event_id, message.ts, message.to_dict())
        return message

    async def _message_key(self, room_id: str, sender: str, content: JsonDict,
                           event_id: str) -> tuple[bytes, bool]:
        if sender == self.user_id and "self" in content:
            try:
                return self.crypto.open_self_copy(content["self"], room_id), False
            except E2EError:
                pass
        backed_up = self.backup.key_for(room_id, event_id)
        algorithm = content.get("algorithm")
        try:
            if algorithm == OLM:
                identity = await self._known_identity(sender)
                kind, payload = self.crypto.decrypt_olm(sender, content, identity)
                if kind != MESSAGE_KEY_TYPE:
                    raise E2EError(f"unexpected olm payload {kind}")
                return parse_message_key(payload, room_id), True
            if algorithm == SENDER_KEY:
                return self.crypto.group_decrypt(room_id, sender, content), True
            raise E2EError(f"unknown algorithm {algorithm!r}")
        except E2EError as exc:
            if backed_up is not None:
                return backed_up, False
            if algorithm == OLM and not isinstance(exc, Duplicate) and \
                    f"{self.user_id}|{self.device_id}" in (content.get("ciphertext") or {}):
                self._schedule_auto_reset(sender, str(content.get("sender_device", "")))
            raise

    async def retry_pending(self) -> int:
        """Try undecryptable events again (new sender keys or backup arrived)."""
        done = 0
        for event_id, record in sorted(self.store.items("pending").items(),
                                       key=lambda kv: int(kv[1]["event"].get("origin_server_ts", 0))):
            if self.store.get_message(event_id) is not None:
                self.store.delete("pending", event_id)
                continue
            room_id, event = record["room_id"], record["event"]
            content = event.get("content", {})
            try:
                key, channel = await self._message_key(room_id, event["sender"], content, event_id)
                payload = open_body(key, content.get("body"), room_id)
            except E2EError:
                continue
            self.store.delete("pending", event_id)
            if channel:
                self.backup.queue(room_id, event_id, key)
            message = message_from_payload(event_id, room_id, event["sender"],
                                            str(content.get("sender_device", "")),
                                            int(event.get("origin_server_ts", 0)), payload)
            self.store.put_message(room_id, event_id, message.ts, message.to_dict())
            self._emit(MessageReceived(message, own=message.sender == self.user_id))
            done += 1
        return done

    # ---------------------------------------------------------- devices
    async def _known_identity(self, user_id: str) -> IdentityPublicKey | None:
        pinned = self.store.get("identities", user_id)
        if pinned is None:
            await self.devices_of([user_id], refresh=True)
            pinned = self.store.get("identities", user_id)
        return None if pinned is None else IdentityPublicKey.from_b64(pinned["key"])

    async def devices_of(self, users: list[str], refresh: bool = False) -> list[DeviceInfo]:
        """Verified devices of ``users`` (not this one), refreshed when outdated."""
        record = self.store.get("state", "outdated")
        outdated = set(record["users"]) if record else set()
        need = [u for u in users if refresh or u in outdated or self.store.get("devices", u) is None]
        if need:
            body = await self.http.post(CLIENT_V3 + "/keys/query",
                                        {"device_keys": {u: [] for u in need}}, idempotent=True)
            found = body.get("device_keys") if isinstance(body.get("device_keys"), dict) else {}
            assert isinstance(found, dict)
            for user in need:
                per = found.get(user) if isinstance(found.get(user), dict) else {}
                assert isinstance(per, dict)
                self.store.put("devices", user, {"devices": per})
                self._pin_identity(user, per)
            self.store.put("state", "outdated", {"users": sorted(outdated - set(need))})
        out: list[DeviceInfo] = []
        for user in users:
            pinned = self.store.get("identities", user)
            stored = self.store.get("devices", user) or {"devices": {}}
            for device_id, obj in sorted(stored["devices"].items()):
                if (user, device_id) == (self.user_id, self.device_id):
                    continue
                info = parse_device_keys(obj, user, device_id)
                if info is None or pinned is None or info.identity.to_b64() != pinned["key"]:
                    continue
                out.append(info)
        return out

    def _pin_identity(self, user: str, devices: JsonDict) -> None:
        """Trust on first use: a user's devices share one identity key; pin it."""
        keys = {info.identity.to_b64() for d, obj in devices.items()
                if (info := parse_device_keys(obj, user, d)) is not None}
        if user == self.user_id:
            keys = {self.keys.identity.public.to_b64()}
        pinned = self.store.get("identities", user)
        if pinned is None and len(keys) == 1:
            self.store.put("identities", user, {"key": keys.pop()})
        elif pinned is not None and keys and pinned["key"] not in keys:
            logger.warning("identity key of %s changed: ignoring its new devices", user)

    async def ensure_sessions(self, devices: list[DeviceInfo]) -> None:
        missing = [d for d in devices if not self.crypto.has_session(d.user_id, d.device_id)]
        if not missing:
            return
        request: dict[str, dict[str, str]] = {}
        for d in missing:
            request.setdefault(d.user_id, {})[d.device_id] = OTK_ALGORITHM
        body = await self.http.post(CLIENT_V3 + "/keys/claim", {"one_time_keys": request})
        claimed = body.get("one_time_keys") if isinstance(body.get("one_time_keys"), dict) else {}
        assert isinstance(claimed, dict)
        for d in missing:
            per_user = claimed.get(d.user_id) or {}
            otk = one_time_key_from_claim(per_user.get(d.device_id)) if isinstance(per_user, dict) else None
            try:
                self.crypto.start_session(d, otk)
            except E2EError as exc:
                logger.warning("cannot start a session with %s: %s", d.key, exc)

    # ------------------------------------------------------------ sending
    async def send_payload(self, room_id: str, payload: JsonDict) -> str:
        """Encrypt ``payload`` for the room and send it; returns the event id."""
        async with self.lock:
            room = self.rooms.get(room_id)
            if room is None or room.membership != "join":
                raise MatrixError(403, "M_FORBIDDEN", "You are not in that room")
            key = P.random_bytes(32)
            devices = await self.devices_of(sorted(set(room.recipients) | {self.user_id}))
            await self.ensure_sessions(devices)
            devices = [d for d in devices if self.crypto.has_session(d.user_id, d.device_id)]
            if room.is_direct:
                ciphertext = self.crypto.encrypt_for_devices(
                    devices, MESSAGE_KEY_TYPE, {"room_id": room_id, "key": _b64(key)})
                content = self.crypto.olm_content(ciphertext)
            else:
                await self._share_sender_key(room, devices)
                content = self.crypto.group_encrypt(room_id, key)
            content["body"] = seal_body(key, payload, room_id)
            content["self"] = self.crypto.self_copy(key, room_id)
            txn = f"{self.device_id}.{secrets.token_hex(8)}"
            ts = self.clock()
            self._outbox_add({"kind": "event", "room_id": room_id, "txn": txn, "content": content,
                              "payload": payload, "ts": ts})
            await self.store.commit()
        return await self._flush_one_event(txn)

    async def _share_sender_key(self, room: RoomState, devices: list[DeviceInfo]) -> None:
        record = self.crypto.outbound(room.room_id)
        current = {d.key for d in devices}
        members = sorted(set(room.recipients) | {self.user_id})
        if record is None or record["members"] != members or not set(record["shared_with"]) <= current:
            self.crypto.new_outbound(room.room_id, members)
            record = self.crypto.outbound(room.room_id)
            assert record is not None
        todo = [d for d in devices if d.key not in set(record["shared_with"])]
        if not todo:
            return
        ciphertext = self.crypto.encrypt_for_devices(todo, SENDER_KEY_TYPE,
                                                     self.crypto.distribution(room.room_id))
        messages: dict[str, dict[str, JsonDict]] = {}
        for d in todo:
            content = self.crypto.olm_content({d.key: ciphertext[d.key]})
            messages.setdefault(d.user_id, {})[d.device_id] = content
        self._outbox_add({"kind": "to_device", "type": "m.room.encrypted",
                          "txn": f"{self.device_id}.{secrets.token_hex(8)}", "messages": messages})
        self.crypto.mark_shared(room.room_id, [d.key for d in todo])

    def _outbox_add(self, entry: JsonDict) -> None:
        state = self.store.get("state", "outbox_seq") or {"seq": 0}
        seq = int(state["seq"]) + 1
        self.store.put("state", "outbox_seq", {"seq": seq})
        self.store.put("outbox", f"{seq:012d}", {**entry, "seq": seq})

    async def flush_outbox(self) -> None:
        """Send whatever a crash or a dropped connection left unsent, in order."""
        for name, entry in sorted(self.store.items("outbox").items()):
            if entry["kind"] == "to_device":
                await self.http.put(f"{CLIENT_V3}/sendToDevice/{q(entry['type'])}/{q(entry['txn'])}",
                                    {"messages": entry["messages"]})
                async with self.lock:
                    self.store.delete("outbox", name)
                    await self.store.commit()
            else:
                await self._flush_one_event(entry["txn"])

    async def _flush_one_event(self, txn: str) -> str:
        for name, entry in sorted(self.store.items("outbox").items()):
            if entry["kind"] == "to_device":
                await self.http.put(f"{CLIENT_V3}/sendToDevice/{q(entry['type'])}/{q(entry['txn'])}",
                                    {"messages": entry["messages"]})
                async with self.lock:
                    self.store.delete("outbox", name)
                    await self.store.commit()
                continue
            room_id = entry["room_id"]
            result = await self.http.put(
                f"{CLIENT_V3}/rooms/{q(room_id)}/send/m.room.encrypted/{q(entry['txn'])}", entry["content"])
            event_id = str(result["event_id"])
            message = message_from_payload(event_id, room_id, self.user_id, self.device_id,
                                           int(entry["ts"]), entry["payload"])
            async with self.lock:
                self.store.put_message(room_id, event_id, message.ts, message.to_dict())
                self.store.delete("outbox", name)
                await self.store.commit()
            await self._after_send(room_id, event_id, entry["payload"])
            if entry["txn"] == txn:
                return event_id
        raise MatrixError(404, "M_NOT_FOUND", "message is no longer in the outbox")

    async def _after_send(self, room_id: str, event_id: str, payload: JsonDict) -> None:
        """Hook: e.g. attach uploaded media to the event."""

    # ----------------------------------------------------- key maintenance
    async def _maintain_keys(self, batch: SyncBatch | None) -> None:
        otk = batch.otk_count if batch is not None else None
        age = batch.spk_age_ms if batch is not None else None
        async with self.lock:
            body = self.keys.upload_body(self.store, self.clock(), otk, age)
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


def _b64(data: bytes) -> str:
    from client_tk.core.crypto import b64
    return b64(data)


def message_from_payload(event_id: str, room_id: str, sender: str, device: str, ts: int,
                         payload: JsonDict) -> Message:
    kind = {"m.file": "file", "m.image": "image"}.get(str(payload.get("type")), "text")
    file = payload.get("file") if isinstance(payload.get("file"), dict) else None
    reply = payload.get("reply_to")
    return Message(event_id, room_id, sender, device, ts, kind, str(payload.get("body", "")),
                   reply if isinstance(reply, str) else None, file)
