"""Read receipts, read markers and unread counts.

* ``POST /rooms/{roomId}/receipt/{receiptType}/{eventId}`` with ``m.read``
  (seen by the room), ``m.read.private`` (seen only by the user) or
  ``m.fully_read`` (the read marker, kept as room account data).
* ``POST /rooms/{roomId}/read_markers`` sets any of the three at once.
* ``m.receipt`` ephemeral events in /sync (:class:`ReceiptContributor`).
* ``unread_notifications`` per joined room in /sync
  (:class:`UnreadCountContributor`): events from other users after the
  user's latest read receipt, counted from the database, so they are right
  for a user who was offline when the messages came.  ``highlight_count`` is
  always 0: the server cannot read end-to-end encrypted content to find
  mentions.

:func:`build_extras` wires this module and its neighbours (typing,
presence, account data, filters) for ``app.py``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from common.errors import Codes, MatrixError
from common.identifiers import is_valid_event_id, parse_room_id
from homeserver.notifier import Notifier
from homeserver.services.account_data import AccountDataContributor, AccountDataService
from homeserver.services.clock import Clock
from homeserver.services.federation_out import EduSink, remote_servers, server_of
from homeserver.services.filters import (
    FilterService,
    event_allowed,
    room_event_allowed,
    room_section_filter,
)
from homeserver.services.presence import OFFLINE_GRACE_MS, PresenceContributor, PresenceService
from homeserver.services.push_counts import RoomsRead
from homeserver.services.sync_api import MembershipReader, SyncContext, SyncContributor, room_section
from homeserver.services.typing import TypingContributor, TypingService
from homeserver.storage.account_data import AccountDataRepository
from homeserver.storage.database import Database
from homeserver.storage.filters import FilterRepository
from homeserver.storage.presence import PresenceRepository
from homeserver.storage.receipts import ReceiptRepository, ReceiptRow
from homeserver.storage.streams import StreamRepository
from homeserver.storage.typing import TypingRepository

JsonDict = dict[str, Any]

READ = "m.read"
READ_PRIVATE = "m.read.private"
FULLY_READ = "m.fully_read"
RECEIPT_TYPES = (READ, READ_PRIVATE, FULLY_READ)
MAIN_THREAD = "main"
MAX_THREAD_ID = 128


def _check_event_id(event_id: Any, what: str) -> str:
    if not isinstance(event_id, str) or not is_valid_event_id(event_id):
        raise MatrixError(400, Codes.INVALID_PARAM, f"{what} is not a valid event id")
    return event_id


def _check_thread_id(body: JsonDict, receipt_type: str) -> str:
    """The receipt's thread: "" (unthreaded), "main" or a thread root's event id."""
    thread_id = body.get("thread_id")
    if thread_id is None:
        return ""
    if receipt_type == FULLY_READ:
        raise MatrixError(400, Codes.INVALID_PARAM, "m.fully_read cannot be threaded")
    if not isinstance(thread_id, str) or not (
        thread_id == MAIN_THREAD
        or (len(thread_id) <= MAX_THREAD_ID and is_valid_event_id(thread_id))
    ):
        raise MatrixError(400, Codes.INVALID_PARAM, "thread_id must be 'main' or an event id")
    return thread_id


class ReceiptService:
    def __init__(
        self,
        repo: ReceiptRepository,
        membership: MembershipReader,
        account_data: AccountDataService,
        notifier: Notifier,
        clock: Clock,
    ) -> None:
        self.repo = repo
        self.membership = membership
        self.account_data = account_data
        self.notifier = notifier
        self.clock = clock
        # ``async (user_id, room_id)`` after a read receipt moved (push badge updates).
        self.read_listeners: list[Callable[[str, str], Awaitable[None]]] = []
        # Other servers with members in the room get public receipts as m.receipt.
        self.federation: EduSink | None = None
        self.server_name = ""

    async def apply_remote(self, origin: str, room_id: str, receipt_type: str, user_id: str,
                           event_ids: list[str], data: JsonDict) -> None:
        """One receipt of an ``m.receipt`` EDU: ``origin``'s own user, joined, on an event we have."""
        if receipt_type != READ:
            raise MatrixError(400, Codes.INVALID_PARAM, f"Receipts of type {receipt_type[:50]} are not shared")
        if server_of(user_id) != origin:
            raise MatrixError(403, Codes.FORBIDDEN, f"{origin} cannot send receipts of {user_id}")
        members = await self.membership.joined_users(room_id)
        if user_id not in members:
            raise MatrixError(403, Codes.FORBIDDEN, f"{user_id} is not joined to {room_id}")
        thread = data.get("thread_id")
        thread_id = thread if isinstance(thread, str) and len(thread) <= 255 else ""
        for event_id in event_ids[-1:]:  # one receipt per user: the latest
            position = await self._event_pos(room_id, _check_event_id(event_id, "event_ids"))
            await self._store(user_id, room_id, READ, thread_id, event_id, position, members, share=False)

    async def _joined_members(self, room_id: str, user_id: str) -> list[str]:
        parse_room_id(room_id)
        members = await self.membership.joined_users(room_id)
        if user_id not in members:
            raise MatrixError(403, Codes.FORBIDDEN, "You are not joined to this room")
        return members

    async def _event_pos(self, room_id: str, event_id: str) -> int:
        position = await self.repo.event_position(room_id, event_id)
        if position is None:
            raise MatrixError(404, Codes.NOT_FOUND, "Unknown event in this room")
        return position

    async def post_receipt(
        self, user_id: str, room_id: str, receipt_type: str, event_id: str, body: JsonDict
    ) -> None:
        """POST /rooms/{roomId}/receipt/{receiptType}/{eventId}"""
        parse_room_id(room_id)
        if receipt_type not in RECEIPT_TYPES:
            raise MatrixError(
                400, Codes.INVALID_PARAM,
                "Receipt type must be m.read, m.read.private or m.fully_read",
            )
        _check_event_id(event_id, "eventId")
        thread_id = _check_thread_id(body, receipt_type)
        members = await self._joined_members(room_id, user_id)
        position = await self._event_pos(room_id, event_id)
        if receipt_type == FULLY_READ:
            await self.account_data.set_fully_read(user_id, room_id, event_id)
            return
        await self._store(user_id, room_id, receipt_type, thread_id, event_id, position, members)

    async def set_read_markers(self, user_id: str, room_id: str, body: JsonDict) -> None:
        """POST /rooms/{roomId}/read_markers"""
        parse_room_id(room_id)
        wanted = {
            key: _check_event_id(body[key], key)
            for key in RECEIPT_TYPES
            if body.get(key) is not None
        }
        members = await self._joined_members(room_id, user_id)
        positions = {key: await self._event_pos(room_id, ev) for key, ev in wanted.items()}
        for key in (READ, READ_PRIVATE):
            if key in wanted:
                await self._store(user_id, room_id, key, "", wanted[key], positions[key], members)
        if FULLY_READ in wanted:
            await self.account_data.set_fully_read(user_id, room_id, wanted[FULLY_READ])

    async def _store(
        self, user_id: str, room_id: str, receipt_type: str, thread_id: str,
        event_id: str, event_pos: int, members: list[str], share: bool = True,
    ) -> None:
        now = self.clock.now_ms()
        stored = await self.repo.put(
            room_id, receipt_type, user_id, thread_id, event_id, event_pos, now
        )
        if stored is not None and share and receipt_type == READ and self.federation is not None:
            data: JsonDict = {"ts": now, **({"thread_id": thread_id} if thread_id else {})}
            await self.federation.queue_edu(remote_servers(members, self.server_name), "m.receipt", {
                room_id: {READ: {user_id: {"event_ids": [event_id], "data": data}}}})
        if stored is not None:
            # A private receipt concerns only its owner (their unread counts).
            if receipt_type == READ_PRIVATE:
                await self.notifier.notify([user_id], "receipts", stored)
            else:
                await self.notifier.notify_room(room_id, members, stream="receipts", position=stored)
            for listener in self.read_listeners:
                await listener(user_id, room_id)


def receipt_events(rows: list[ReceiptRow], viewer: str) -> dict[str, JsonDict]:
    """``m.receipt`` events per room; others' private receipts are left out."""
    content_by_room: dict[str, JsonDict] = {}
    for row in rows:
        if row.receipt_type == READ_PRIVATE and row.user_id != viewer:
            continue
        receipt: JsonDict = {"ts": row.ts}
        if row.thread_id:
            receipt["thread_id"] = row.thread_id
        content = content_by_room.setdefault(row.room_id, {})
        content.setdefault(row.event_id, {}).setdefault(row.receipt_type, {})[row.user_id] = receipt
    return {room: {"type": "m.receipt", "content": c} for room, c in content_by_room.items()}


class ReceiptContributor:
    """``m.receipt`` in ``rooms.join[r].ephemeral``."""

    # A woken /sync skips this contributor unless one of these streams moved.
    sync_streams = frozenset({"receipts"})

    def __init__(self, repo: ReceiptRepository) -> None:
        self.repo = repo

    async def contribute(self, ctx: SyncContext, response: JsonDict) -> bool:
        if not event_allowed(room_section_filter(ctx.filter, "ephemeral"), {"type": "m.receipt"}):
            return False
        joined = [
            r for r in ctx.joined_room_ids if room_event_allowed(ctx.filter, "ephemeral", r)
        ]
        if not joined:
            return False
        if ctx.since is None or ctx.full_state:
            rows = await self.repo.for_rooms(joined)
        else:
            since, upto = ctx.since.get("receipts"), ctx.upto.get("receipts")
            fresh = [r for r in joined if r in ctx.newly_joined_room_ids]
            old = [r for r in joined if r not in ctx.newly_joined_room_ids]
            rows = await self.repo.changed(old, since, upto) + await self.repo.for_rooms(fresh)
        events = receipt_events(rows, ctx.user_id)
        for room_id, event in events.items():
            room_section(response, room_id, "ephemeral").setdefault("events", []).append(event)
        return bool(events)


class UnreadCountContributor:
    """``unread_notifications`` for every joined room in the response.

    Register it after the contributors that add rooms (receipts: a receipt
    the user sent from another device changes their counts)."""

    def __init__(self, repo: ReceiptRepository) -> None:
        self.repo = repo
        # ``async (user, rooms, upto, unread, bounds, read) -> {room: (notifications, highlights)}``
        # from the user's push rules (services/push_counts.py), set by the app; ``bounds``: the
        # rooms' unread lower bounds, ``read``: the events the build holds already.
        self.push_counts: Callable[[str, list[str], int, dict[str, int], dict[str, int], RoomsRead | None],
                                   Awaitable[dict[str, tuple[int, int]]]] | None = None

    async def contribute(self, ctx: SyncContext, response: JsonDict) -> bool:
        join = response.get("rooms", {}).get("join", {})
        rooms = [r for r in ctx.joined_room_ids if r in join]
        if not rooms:
            return False
        upto = ctx.upto.get("events")
        bounds, counts = await self.repo.unread_bounds_and_counts(ctx.user_id, rooms, upto)
        read = RoomsRead(ctx.since.get("events") if ctx.since is not None else 0, ctx.room_events or {},
                         ctx.upto.get("account_data"))
        evaluated = await self.push_counts(ctx.user_id, rooms, upto, counts, bounds, read) \
            if self.push_counts else {}
        for room_id in rooms:
            notifications, highlights = evaluated.get(room_id, (counts.get(room_id, 0), 0))
            join[room_id]["unread_notifications"] = {
                "notification_count": notifications,
                "highlight_count": highlights,
            }
        return False


@dataclass
class Extras:
    """The services and /sync contributors of receipts, typing, presence,
    account data and filters, built together by :func:`build_extras`."""

    filters: FilterService
    account_data: AccountDataService
    presence: PresenceService
    typing: TypingService
    receipts: ReceiptService
    # For RoomService.on_room_purged: drop the purged room's receipts, typing
    # rows and room account data.
    on_room_purged: Callable[[str], Awaitable[None]]
    unread: UnreadCountContributor
    # In registration order: the unread counts come last.
    contributors: list[SyncContributor] = field(default_factory=list)
    housekeepers: list[Callable[[], Awaitable[Any]]] = field(default_factory=list)


def build_extras(
    database: Database,
    streams: StreamRepository,
    notifier: Notifier,
    clock: Clock,
    membership: MembershipReader,
    max_sync_timeout_ms: int,
) -> Extras:
    filters = FilterService(FilterRepository(database), clock)
    account_repo = AccountDataRepository(database, streams)
    account_data = AccountDataService(account_repo, notifier)
    presence_repo = PresenceRepository(database, streams)
    presence = PresenceService(
        presence_repo, membership, notifier, clock,
        offline_after_ms=max_sync_timeout_ms + OFFLINE_GRACE_MS,
    )
    typing_repo = TypingRepository(database, streams)
    typing = TypingService(typing_repo, membership, notifier, clock)
    receipt_repo = ReceiptRepository(database, streams)
    receipts = ReceiptService(receipt_repo, membership, account_data, notifier, clock)
    contributors: list[SyncContributor] = [
        AccountDataContributor(account_repo),
        PresenceContributor(presence_repo, membership, clock),
        TypingContributor(typing_repo, clock),
        ReceiptContributor(receipt_repo),
        unread := UnreadCountContributor(receipt_repo),
    ]
    async def on_room_purged(room_id: str) -> None:
        await receipt_repo.delete_room(room_id)
        await typing_repo.delete_room(room_id)
        await account_repo.delete_room(room_id)

    return Extras(
        filters=filters,
        account_data=account_data,
        presence=presence,
        typing=typing,
        receipts=receipts,
        unread=unread,
        contributors=contributors,
        housekeepers=[presence.mark_stale_offline, typing.housekeeping],
        on_room_purged=on_room_purged,
    )
