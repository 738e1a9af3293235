"""One ``/sync`` batch, applied without I/O: stage everything, report what to do next.

:meth:`BatchProcessor.identities_needed` says which users' keys must be
queried before the batch can be decrypted (senders of pairwise-encrypted
events whose identity we have not pinned yet); the driver fetches them, and
any backfill of a limited timeline, *before* it takes the store lock.
:meth:`BatchProcessor.process` then decrypts and folds the batch into
**copies** of the rooms it touches and stages every store write; it returns
a :class:`Staged` result (new room states, UI events, session resets to
send).  Nothing is visible until the driver commits the store and swaps the
copies in; if anything raises, the driver rolls the store back and the live
state is untouched.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from client_tk.core import relations
from client_tk.core.crypto import (
    MESSAGE_KEY_TYPE,
    OLM,
    SENDER_KEY,
    SENDER_KEY_TYPE,
    CryptoManager,
    Duplicate,
    E2EError,
    open_body,
    parse_message_key,
)
from client_tk.core.devices import DeviceDirectory
from client_tk.core.events import (
    AccountDataChanged,
    ClientEvent,
    DecryptionFailed,
    DevicesChanged,
    IdentityChanged,
    InvitationReceived,
    Message,
    MessageChanged,
    MessageDeleted,
    MessageReceived,
    PresenceChanged,
    ReceiptUpdated,
    RoomUpdated,
    SessionReset,
    TypingChanged,
    UnreadCountChanged,
)
from client_tk.core.outbox import Outbox, message_from_entry, message_from_payload
from client_tk.core.store import LocalStore
from client_tk.core.sync import RoomDelta, RoomState, SyncBatch

logger = logging.getLogger(__name__)
JsonDict = dict[str, Any]
RESET_TYPE = "im.parley.session_reset"


class KeyLedger(Protocol):
    """Where message keys go for the server-side backup (:class:`client_tk.core.backup.KeyBackup`)."""

    def queue(self, room_id: str, event_id: str, key: bytes) -> None: ...

    def key_for(self, room_id: str, event_id: str) -> bytes | None: ...


@dataclass
class Staged:
    """What one batch changes, once committed."""

    rooms: dict[str, RoomState] = field(default_factory=dict)  # copies of touched rooms
    events: list[ClientEvent] = field(default_factory=list)
    resets: list[tuple[str, str]] = field(default_factory=list)  # to-device session resets to send


def _olm_senders(events: Iterable[JsonDict]) -> set[tuple[str, str]]:
    out = set()
    for event in events:
        content = event.get("content")
        if isinstance(content, dict) and content.get("algorithm") == OLM and isinstance(event.get("sender"), str):
            out.add((event["sender"], str(content.get("sender_device", ""))))
    return out


class BatchProcessor:
    def __init__(self, store: LocalStore, crypto: CryptoManager, directory: DeviceDirectory,
                 backup: KeyLedger, clock: Callable[[], int]) -> None:
        self.store = store
        self.crypto = crypto
        self.directory = directory
        self.backup = backup
        self.clock = clock
        self.user_id = crypto.user_id
        self.device_id = crypto.device_id
        self.outbox = Outbox(store, clock)

    # ---------------------------------------------------- reported I/O
    def identities_needed(self, batch: SyncBatch | None, extra: Iterable[JsonDict] = ()) -> list[str]:
        events: list[JsonDict] = list(extra)
        if batch is not None:
            events += batch.to_device
            for delta in batch.rooms:
                events += delta.timeline
        return self.directory.unknown_devices(_olm_senders(events))

    @staticmethod
    def backfills_needed(batch: SyncBatch) -> list[tuple[str, str]]:
        return [(d.room_id, d.prev_batch) for d in batch.rooms
                if d.limited and d.prev_batch and d.membership == "join"]

    # ---------------------------------------------------- the pure part
    def process(self, batch: SyncBatch, rooms: Mapping[str, RoomState],
                backfill: Mapping[str, list[JsonDict]]) -> Staged:
        staged = Staged()
        if batch.devices_changed or batch.devices_left:
            self.directory.mark_outdated([*batch.devices_changed, *batch.devices_left])
            staged.events.append(DevicesChanged(tuple(sorted(set(batch.devices_changed)))))
        new_keys = False
        for event in batch.to_device:
            new_keys |= self._to_device(event, staged)
        for delta in batch.rooms:
            room = (staged.rooms.get(delta.room_id) or rooms.get(delta.room_id)
                    or RoomState(delta.room_id)).copy()
            staged.rooms[delta.room_id] = room
            self._room(room, delta, backfill.get(delta.room_id, []), staged)
        if new_keys:
            self.retry_pending(staged)
        for event in batch.presence:
            content = event.get("content")
            if isinstance(content, dict) and isinstance(event.get("sender"), str):
                staged.events.append(PresenceChanged(event["sender"], str(content.get("presence", "offline")),
                                                     content.get("last_active_ago")))
        for event in batch.account_data:
            if isinstance(event.get("type"), str):
                staged.events.append(AccountDataChanged(event["type"]))
        return staged

    def _to_device(self, event: JsonDict, staged: Staged) -> bool:
        sender, kind, content = event.get("sender"), event.get("type"), event.get("content")
        if not isinstance(sender, str) or not isinstance(content, dict):
            return False
        if kind == RESET_TYPE:
            device = content.get("device_id")
            if isinstance(device, str):
                self.crypto.reset_session(sender, device)
                staged.events.append(SessionReset(sender, device, by_peer=True))
            return False
        if kind != "m.room.encrypted" or content.get("algorithm") != OLM:
            return False
        try:
            inner, payload = self.crypto.decrypt_olm(
                sender, content, self.directory.device_identity(sender, str(content.get("sender_device", ""))))
        except Duplicate:
            return False
        except E2EError as exc:
            device = str(content.get("sender_device", ""))
            staged.events.append(DecryptionFailed(None, None, sender, device, str(exc)))
            self._schedule_auto_reset(sender, device, staged)
            return False
        if inner == SENDER_KEY_TYPE:
            try:
                self.crypto.receive_sender_key(sender, str(content["sender_device"]), payload)
            except E2EError as exc:
                logger.warning("bad sender key from %s: %s", sender, exc)
                return False
            return True
        return False

    def _schedule_auto_reset(self, user_id: str, device_id: str, staged: Staged) -> None:
        """A peer device whose messages no longer decrypt: start over with it (once a minute)."""
        if not device_id or (user_id, device_id) == (self.user_id, self.device_id):
            return
        last = self.store.get("resets", f"{user_id}|{device_id}")
        if last is not None and self.clock() - int(last["ts"]) < 60_000:
            return
        self.store.put("resets", f"{user_id}|{device_id}", {"ts": self.clock()})
        self.crypto.reset_session(user_id, device_id)
        staged.resets.append((user_id, device_id))

    def _room(self, room: RoomState, delta: RoomDelta, older: list[JsonDict], staged: Staged) -> None:
        before = _shown(room)
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
                staged.events.append(InvitationReceived(room.room_id, room.inviter or "", room.name,
                                                        room.is_direct))
        for event in older + delta.timeline:
            if isinstance(event.get("state_key"), str):
                room.apply(event)
            self._timeline_event(room, event, staged)
        for event in delta.ephemeral:
            self._ephemeral(room, event, staged)
        for event in delta.account_data:
            if event.get("type") == "m.tag" and isinstance(event.get("content"), dict):
                tags = event["content"].get("tags")
                room.tags = sorted(tags) if isinstance(tags, dict) else []
        if delta.unread is not None and delta.unread != room.unread:
            room.unread = delta.unread
            staged.events.append(UnreadCountChanged(room.room_id, room.unread))
        self.store.put("rooms", room.room_id, room.to_dict())
        if before != _shown(room):
            staged.events.append(room_updated(room))

    def _ephemeral(self, room: RoomState, event: JsonDict, staged: Staged) -> None:
        content = event.get("content")
        if not isinstance(content, dict):
            return
        if event.get("type") == "m.typing":
            users = content.get("user_ids")
            if isinstance(users, list):
                staged.events.append(TypingChanged(room.room_id, tuple(u for u in users if isinstance(u, str))))
        elif event.get("type") == "m.receipt":
            for event_id, kinds in content.items():
                reads = kinds.get("m.read") if isinstance(kinds, dict) else None
                if isinstance(reads, dict):
                    for user, info in reads.items():
                        ts = info.get("ts", 0) if isinstance(info, dict) else 0
                        staged.events.append(ReceiptUpdated(room.room_id, event_id, user, int(ts)))

    def _timeline_event(self, room: RoomState, event: JsonDict, staged: Staged) -> None:
        kind = event.get("type")
        if kind == "m.room.redaction":
            target = event.get("redacts") or (event.get("content") or {}).get("redacts")
            if isinstance(target, str):
                if self.store.get(relations.RELATIONS, target) is not None:  # a reaction or an edit
                    staged.events += relations.forget(self.store, target)
                    return
                cached = self.store.get_message(target)
                if cached is not None:
                    cached = {**cached, "redacted": True, "body": "", "file": None, "original_body": "",
                              "edited": False, "reactions": []}
                    self.store.put_message(room.room_id, target, int(cached["ts"]), cached)
                staged.events.append(MessageDeleted(room.room_id, target))
            return
        if kind != "m.room.encrypted":
            return
        event_id = event.get("event_id")
        if not isinstance(event_id, str) or self.store.get_message(event_id) is not None \
                or self.store.get(relations.RELATIONS, event_id) is not None:
            return
        message = self.decrypt_event(room.room_id, event, staged)
        if message is not None:
            staged.events.append(MessageReceived(message, own=message.sender == self.user_id))

    # ------------------------------------------------- decrypting messages
    def decrypt_event(self, room_id: str, event: JsonDict, staged: Staged) -> Message | None:
        """Decrypt one room event, stage it in the cache; None if it cannot be read (yet)."""
        event_id, sender = str(event.get("event_id")), event.get("sender")
        content = event.get("content")
        if not isinstance(sender, str) or not isinstance(content, dict):
            return None
        if not content or "body" not in content:  # redacted or not Parley's
            return None
        device = str(content.get("sender_device", ""))
        if sender == self.user_id and device == self.device_id:
            return self._own_event(room_id, event_id, event, staged)
        try:
            key, from_channel = self._message_key(room_id, sender, content, event_id, staged)
            payload = open_body(key, content.get("body"), room_id)
        except Duplicate:
            return None
        except E2EError as exc:
            self.store.put("pending", event_id, {"room_id": room_id, "event": event})
            staged.events.append(DecryptionFailed(room_id, event_id, sender, device, str(exc)))
            return None
        self.store.delete("pending", event_id)
        if from_channel:
            self.backup.queue(room_id, event_id, key)
        return self._read(room_id, event_id, sender, device, int(event.get("origin_server_ts", 0)),
                          payload, relations.relation_of(content), staged)

    def _read(self, room_id: str, event_id: str, sender: str, device: str, ts: int, payload: JsonDict,
              relation: JsonDict | None, staged: Staged) -> Message | None:
        """Cache a decrypted payload: a message (returned), or an edit / a reaction folded into its
        target (None; the target's change is staged as an event)."""
        if relation is not None:
            staged.events += relations.record(self.store, room_id, event_id, sender, ts, relation, payload)
            return None
        return relations.cache_message(self.store, message_from_payload(event_id, room_id, sender, device,
                                                                        ts, payload))

    def _own_event(self, room_id: str, event_id: str, event: JsonDict, staged: Staged) -> Message | None:
        """An event this device sent: it holds no key for it (no self copy, no escrow).

        If the echo comes before the send's answer was recorded, the outbox entry
        (matched by the transaction id the server gives only to the sending device)
        has the plaintext; otherwise the message cache already has it, or this
        device cannot read it (sent before a local store was lost) -- not a failure."""
        unsigned = event.get("unsigned")
        txn = unsigned.get("transaction_id") if isinstance(unsigned, dict) else None
        entry = self.outbox.by_txn(txn) if isinstance(txn, str) else None
        if entry is None or entry.get("room_id") != room_id:
            return None
        ts = int(event.get("origin_server_ts", 0))
        relation = relations.relation_of(entry["payload"])
        if relation is not None:
            self._read(room_id, event_id, self.user_id, self.device_id, ts, entry["payload"], relation, staged)
            return None
        return relations.cache_message(self.store, message_from_entry(event_id, entry, self.user_id,
                                                                      self.device_id, ts))

    def decrypt_history(self, room_id: str, events: list[JsonDict], staged: Staged) -> int:
        """Decrypt fetched events not cached yet; how many opened.  History is shown by its reader,
        not announced: of what is staged only changed identities and messages stay -- and a message
        of this device still in the outbox (stored by the server, its answer not recorded yet: the
        page brought it first), which is news."""
        opened, news = 0, []
        for event in events:
            if event.get("type") == "m.room.encrypted" and self.store.get_message(str(event.get("event_id"))) is None:
                message = self.decrypt_event(room_id, event, staged)
                opened += message is not None
                if message is not None and self._being_sent(event):
                    news.append(MessageReceived(message, own=True))
        staged.events[:] = [*(e for e in staged.events if isinstance(e, (IdentityChanged, MessageChanged))), *news]
        return opened

    def _being_sent(self, event: JsonDict) -> bool:
        unsigned = event.get("unsigned")
        txn = unsigned.get("transaction_id") if isinstance(unsigned, dict) else None
        return isinstance(txn, str) and self.outbox.by_txn(txn) is not None

    def _message_key(self, room_id: str, sender: str, content: JsonDict, event_id: str,
                     staged: Staged) -> tuple[bytes, bool]:
        backed_up = self.backup.key_for(room_id, event_id)
        algorithm = content.get("algorithm")
        try:
            if algorithm == OLM:
                kind, payload = self.crypto.decrypt_olm(
                    sender, content, self.directory.device_identity(sender, str(content.get("sender_device", ""))))
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
                self._schedule_auto_reset(sender, str(content.get("sender_device", "")), staged)
            raise

    def retried(self) -> Staged:
        """Only a retry of the held events (a contact's new key was accepted)."""
        staged = Staged()
        self.retry_pending(staged)
        return staged

    def retry_pending(self, staged: Staged) -> int:
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
                key, channel = self._message_key(room_id, event["sender"], content, event_id, staged)
                payload = open_body(key, content.get("body"), room_id)
            except E2EError:
                continue
            self.store.delete("pending", event_id)
            if channel:
                self.backup.queue(room_id, event_id, key)
            message = self._read(room_id, event_id, event["sender"], str(content.get("sender_device", "")),
                                 int(event.get("origin_server_ts", 0)), payload,
                                 relations.relation_of(content), staged)
            if message is not None:
                staged.events.append(MessageReceived(message, own=message.sender == self.user_id))
            done += 1
        return done


def _shown(room: RoomState) -> tuple[Any, ...]:
    """What a room list shows of a room: a change here emits :class:`RoomUpdated`."""
    return (room.name, tuple(sorted(room.members.items())), room.membership, room.avatar_url,
            tuple(room.tags), room.inviter, room.is_direct)


def room_updated(room: RoomState) -> RoomUpdated:
    return RoomUpdated(room.room_id, room.name, tuple(room.joined), room.membership,
                       room.is_direct, room.avatar_url)
