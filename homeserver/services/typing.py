"""Typing notifications: ``PUT /rooms/{roomId}/typing/{userId}`` and ``m.typing``.

The state is in the database with an expiry, so every instance sees it.
Starting to type moves the "typing" stream (a refresh while already typing
only pushes the expiry out); stopping, or the expiry passing, moves it
again so incremental syncs send the shorter list.

Expiry is driven by the database: :meth:`TypingService.expire_due` clears
every typing flag whose time has passed.  It runs from a housekeeper and,
for prompt delivery, from a timer this instance arms for the earliest expiry
it knows of (the timer only decides *when* to look; the rows decide *what*).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from common.errors import Codes, MatrixError
from common.identifiers import parse_room_id, parse_user_id
from homeserver.notifier import Notifier
from homeserver.services.clock import Clock
from homeserver.services.federation_out import EduSink, remote_servers, server_of
from homeserver.services.filters import event_allowed, room_event_allowed, room_section_filter
from homeserver.services.sync_api import MembershipReader, SyncContext, room_section
from homeserver.storage.typing import TypingRepository

logger = logging.getLogger(__name__)

JsonDict = dict[str, Any]

DEFAULT_TIMEOUT_MS = 30_000
MAX_TIMEOUT_MS = 120_000
# Stopped rows are kept this long so incremental syncs still see the stop.
KEEP_STOPPED_MS = 24 * 3600 * 1000
_TIMER_SLACK_S = 0.05


def typing_event(user_ids: list[str]) -> JsonDict:
    return {"type": "m.typing", "content": {"user_ids": sorted(user_ids)}}


class TypingService:
    def __init__(
        self, repo: TypingRepository, membership: MembershipReader, notifier: Notifier, clock: Clock
    ) -> None:
        self.repo = repo
        self.membership = membership
        self.notifier = notifier
        self.clock = clock
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: int | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        # Other servers with members in the room get m.typing (set by the composition root).
        self.federation: EduSink | None = None
        self.server_name = ""

    async def set_typing(self, requester_id: str, room_id: str, user_id: str, body: JsonDict) -> None:
        """PUT /rooms/{roomId}/typing/{userId}"""
        parse_room_id(room_id)
        parse_user_id(user_id)
        if requester_id != user_id:
            raise MatrixError(403, Codes.FORBIDDEN, "You cannot set the typing state of another user")
        typing = body.get("typing")
        if typing is None:
            raise MatrixError(400, Codes.MISSING_PARAM, "Missing typing")
        if not isinstance(typing, bool):
            raise MatrixError(400, Codes.BAD_JSON, "typing must be a boolean")
        timeout = body.get("timeout", DEFAULT_TIMEOUT_MS)
        if isinstance(timeout, bool) or not isinstance(timeout, int) or timeout < 0:
            raise MatrixError(400, Codes.BAD_JSON, "timeout must be a non-negative integer (ms)")
        members = await self.membership.joined_users(room_id)
        if user_id not in members:
            raise MatrixError(403, Codes.FORBIDDEN, "You are not joined to this room")
        await self._apply(room_id, user_id, typing, timeout, members)
        if self.federation is not None:
            await self.federation.queue_edu(remote_servers(members, self.server_name), "m.typing",
                                            {"room_id": room_id, "user_id": user_id, "typing": typing})

    async def set_remote_typing(self, origin: str, room_id: str, user_id: str, typing: bool) -> None:
        """An ``m.typing`` EDU from ``origin``: only for its own users joined to the room."""
        if server_of(user_id) != origin:
            raise MatrixError(403, Codes.FORBIDDEN, f"{origin} cannot set the typing state of {user_id}")
        members = await self.membership.joined_users(room_id)
        if user_id not in members:
            raise MatrixError(403, Codes.FORBIDDEN, f"{user_id} is not joined to {room_id}")
        await self._apply(room_id, user_id, typing, DEFAULT_TIMEOUT_MS, members)

    async def _apply(self, room_id: str, user_id: str, typing: bool, timeout_ms: int, members: list[str]) -> None:
        now = self.clock.now_ms()
        if typing:
            expires = now + min(timeout_ms, MAX_TIMEOUT_MS)
            position = await self.repo.start(room_id, user_id, expires, now)
            self._schedule(expires)
        else:
            position = await self.repo.stop(room_id, user_id)
        if position is not None:
            await self.notifier.notify_room(room_id, members, stream="typing", position=position)

    async def expire_due(self) -> int:
        """Clear typing flags whose expiry passed; wake the rooms' members."""
        changes = await self.repo.expire(self.clock.now_ms())
        for room_id in sorted({c.room_id for c in changes}):
            await self.notifier.notify_room(room_id, await self.membership.joined_users(room_id), stream="typing")
        return len(changes)

    async def housekeeping(self) -> None:
        await self.expire_due()
        await self.repo.prune(self.clock.now_ms() - KEEP_STOPPED_MS)

    # ------------------------------------------------------------ expiry timer
    def _schedule(self, expires_ts: int) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        if self._timer is not None and self._timer_at is not None and self._timer_at <= expires_ts:
            return
        if self._timer is not None:
            self._timer.cancel()
        delay = max(0.0, (expires_ts - self.clock.now_ms()) / 1000) + _TIMER_SLACK_S
        self._timer_at = expires_ts
        self._timer = loop.call_later(delay, self._fire)

    def _fire(self) -> None:
        self._timer = None
        self._timer_at = None
        task = asyncio.get_running_loop().create_task(self._run_expiry())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run_expiry(self) -> None:
        try:
            await self.expire_due()
            next_ts = await self.repo.next_expiry()
            if next_ts is not None:
                self._schedule(max(next_ts, self.clock.now_ms() + 1))
        except asyncio.CancelledError:
            raise
        except Exception:
            # The server may be shutting down; the housekeeper catches up later.
            logger.debug("typing expiry run failed", exc_info=True)


class TypingContributor:
    """``m.typing`` in ``rooms.join[r].ephemeral``."""

    # A woken /sync skips this contributor unless one of these streams moved.
    sync_streams = frozenset({"typing"})

    def __init__(self, repo: TypingRepository, clock: Clock) -> None:
        self.repo = repo
        self.clock = clock

    async def contribute(self, ctx: SyncContext, response: JsonDict) -> bool:
        joined = [
            r for r in ctx.joined_room_ids if room_event_allowed(ctx.filter, "ephemeral", r)
        ]
        if not joined:
            return False
        ephemeral_filter = room_section_filter(ctx.filter, "ephemeral")
        if not event_allowed(ephemeral_filter, {"type": "m.typing"}):
            return False
        now = self.clock.now_ms()
        if ctx.since is None or ctx.full_state:
            current = await self.repo.current(joined, now)
            rooms = sorted(current)
        else:
            since, upto = ctx.since.get("typing"), ctx.upto.get("typing")
            changed = await self.repo.changed_rooms(joined, since, upto)
            fresh = [r for r in joined if r in ctx.newly_joined_room_ids]
            current = await self.repo.current(sorted(changed | set(fresh)), now)
            # A room that changed gets its list even when empty (everyone stopped).
            rooms = sorted(changed | {r for r in fresh if r in current})
        for room_id in rooms:
            ephemeral = room_section(response, room_id, "ephemeral")
            ephemeral.setdefault("events", []).append(typing_event(current.get(room_id, [])))
        return bool(rooms)
