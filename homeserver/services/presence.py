"""Presence: online / unavailable / offline, seen only by users who share a room.

* ``PUT /presence/{userId}/status`` sets the state (and status message).
* Every ``/sync`` is a sign of life (:meth:`PresenceService.on_sync`): with
  ``set_presence=online`` (the default) an offline user becomes online,
  ``unavailable`` makes them unavailable, ``offline`` leaves presence alone.
* A housekeeper (:meth:`PresenceService.mark_stale_offline`) marks users
  offline who have not synced (nor set their presence) for
  ``offline_after_ms`` — longer than the longest long-poll, so a user waiting
  in ``/sync`` never flickers offline.

Presence lives in the database (never in process memory), so every instance
sees the same state.  A change moves the "presence" stream and wakes the
users who share a room with the user; an initial /sync carries the current
presence of everyone sharing a room (the earlier app's ``online_users``).
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from common.errors import Codes, MatrixError
from common.identifiers import parse_user_id
from homeserver.notifier import Notifier
from homeserver.services.clock import Clock
from homeserver.services.federation_out import EduSink, remote_servers, server_of
from homeserver.services.filters import apply_event_filter
from homeserver.services.sync_api import MembershipReader, SyncContext
from homeserver.storage.presence import PresenceRepository, PresenceRow

logger = logging.getLogger(__name__)

JsonDict = dict[str, Any]

ONLINE = "online"
UNAVAILABLE = "unavailable"
OFFLINE = "offline"
STATES = (ONLINE, UNAVAILABLE, OFFLINE)
MAX_STATUS_MSG = 1024
# A syncing user's "last seen" is refreshed at most this often.
HEARTBEAT_MS = 10_000
# How long after the last sync (beyond the longest long-poll) a user goes offline.
OFFLINE_GRACE_MS = 30_000
STALE_BATCH = 500
# Users whose last heartbeat write is remembered before stale notes are dropped.
_BEATS_MAX = 100_000


def presence_content(row: PresenceRow | None, now_ms: int) -> JsonDict:
    """The content of an ``m.presence`` event, also the body of GET .../status."""
    if row is None:
        return {"presence": OFFLINE}
    content: JsonDict = {
        "presence": row.state,
        "last_active_ago": max(0, now_ms - row.last_active_ts),
        "currently_active": row.state == ONLINE,
    }
    if row.status_msg is not None:
        content["status_msg"] = row.status_msg
    return content


def presence_event(row: PresenceRow, now_ms: int) -> JsonDict:
    return {"type": "m.presence", "sender": row.user_id, "content": presence_content(row, now_ms)}


def check_set_presence(value: str | None) -> str:
    """The ``set_presence`` query parameter of /sync (default ``online``)."""
    if value is None:
        return ONLINE
    if value not in STATES:
        raise MatrixError(
            400, Codes.INVALID_PARAM, "set_presence must be one of online, unavailable, offline"
        )
    return value


def _sync_changes(current: PresenceRow | None, wanted: str) -> bool:
    """Whether a sync with ``set_presence=wanted`` changes the user's state."""
    state = current.state if current else OFFLINE
    if wanted == ONLINE:
        return state == OFFLINE or (state == UNAVAILABLE and current is not None and not current.explicit)
    return wanted == UNAVAILABLE and state != UNAVAILABLE


class PresenceService:
    def __init__(
        self,
        repo: PresenceRepository,
        membership: MembershipReader,
        notifier: Notifier,
        clock: Clock,
        offline_after_ms: int,
    ) -> None:
        self.repo = repo
        self.membership = membership
        self.notifier = notifier
        self.clock = clock
        self.offline_after_ms = offline_after_ms
        # user -> when this instance last wrote their heartbeat.
        self._beats: dict[str, int] = {}
        # user -> (their row, the presence-stream position it was read at): see on_sync.
        self._known: dict[str, tuple[PresenceRow, int]] = {}
        # Servers sharing a room with a local user get its changes as m.presence.
        self.federation: EduSink | None = None
        self.server_name = ""

    async def _changed(self, row: PresenceRow | None) -> None:
        if row is None:
            return
        if self._known.get(row.user_id, (row,))[0] != row:
            self._known.pop(row.user_id, None)
        sharing = await self.membership.users_sharing_a_room(row.user_id)
        await self.notifier.notify(sharing, "presence", row.stream_pos)
        if self.federation is not None and server_of(row.user_id) == self.server_name:
            content = presence_content(row, self.clock.now_ms())
            await self.federation.queue_edu(remote_servers(sharing, self.server_name), "m.presence",
                                            {"push": [{"user_id": row.user_id, **content}]})

    async def apply_remote(self, origin: str, update: JsonDict) -> None:
        """One entry of an ``m.presence`` EDU: ``origin``'s own user, sharing a room with one of ours."""
        user_id = update.get("user_id")
        if not isinstance(user_id, str) or server_of(user_id) != origin:
            raise MatrixError(403, Codes.FORBIDDEN, f"{origin} cannot set the presence of {str(user_id)[:255]}")
        state = update.get("presence")
        if state not in STATES:
            raise MatrixError(400, Codes.INVALID_PARAM, "presence must be one of online, unavailable, offline")
        sharing = await self.membership.users_sharing_a_room(user_id)
        if not any(server_of(u) == self.server_name for u in sharing):
            raise MatrixError(403, Codes.FORBIDDEN, f"{user_id} shares no room with this server's users")
        status_msg = update.get("status_msg")
        if not isinstance(status_msg, str) or len(status_msg) > MAX_STATUS_MSG:
            status_msg = None
        ago = update.get("last_active_ago")
        now = self.clock.now_ms()
        active = update.get("currently_active") is True or (isinstance(ago, int) and ago < HEARTBEAT_MS)
        row = await self.repo.write(user_id, state, status_msg, keep_status_msg=False,
                                    explicit=state == UNAVAILABLE, active=active, now_ms=now)
        await self._changed(row)

    async def set_status(self, requester_id: str, user_id: str, body: JsonDict) -> None:
        """PUT /presence/{userId}/status"""
        parse_user_id(user_id)
        if requester_id != user_id:
            raise MatrixError(403, Codes.FORBIDDEN, "You cannot set the presence of another user")
        state = body.get("presence")
        if state is None:
            raise MatrixError(400, Codes.MISSING_PARAM, "Missing presence")
        if state not in STATES:
            raise MatrixError(
                400, Codes.INVALID_PARAM, "presence must be one of online, unavailable, offline"
            )
        status_msg = body.get("status_msg")
        if status_msg is not None and (
            not isinstance(status_msg, str) or len(status_msg) > MAX_STATUS_MSG
        ):
            raise MatrixError(
                400, Codes.INVALID_PARAM,
                f"status_msg must be a string of at most {MAX_STATUS_MSG} characters",
            )
        row = await self.repo.write(
            user_id, state, status_msg or None, keep_status_msg=False,
            explicit=state == UNAVAILABLE, active=True, now_ms=self.clock.now_ms(),
        )
        await self._changed(row)

    async def get_status(self, requester_id: str, user_id: str) -> JsonDict:
        """GET /presence/{userId}/status — only for oneself and users sharing a room.

        Strangers get M_FORBIDDEN whether or not the user exists, so the
        endpoint reveals nothing about who is registered."""
        parse_user_id(user_id)
        if requester_id != user_id:
            sharing = await self.membership.users_sharing_a_room(requester_id)
            if user_id not in sharing:
                raise MatrixError(403, Codes.FORBIDDEN, "You are not allowed to see their presence")
        return presence_content(await self.repo.get(user_id), self.clock.now_ms())

    async def on_sync(self, user_id: str, set_presence: str | None, at: int | None = None) -> int | None:
        """Called at the start of every /sync (``set_presence`` as the client sent it).

        ``online`` (the default) brings an offline user online, and an
        unavailable one too unless they chose "unavailable" themselves with
        PUT; ``unavailable`` marks an online or offline user unavailable;
        ``offline`` leaves presence alone (the spec: the client is not marked
        online).  Returns the presence-stream position of the change it wrote, if any.

        ``at``: the presence-stream position the sync read.  The user's row as this
        instance last saw it at that same position is still the row: any change,
        on any instance, moves the stream (a heartbeat does not, and only refreshes
        ``last_seen_ts``, which this instance then refreshes at most once more)."""
        wanted = check_set_presence(set_presence)
        if wanted == OFFLINE:
            return None
        now = self.clock.now_ms()
        known = self._known.get(user_id)
        if known is not None and at is not None and known[1] == at:
            current: PresenceRow | None = known[0]
        else:
            current = await self.repo.get(user_id)
            self._note(current, at)
        if _sync_changes(current, wanted):
            row = await self.repo.write(
                user_id, wanted, None, keep_status_msg=True, explicit=False,
                active=wanted == ONLINE, now_ms=now,
                allowed=lambda old: _sync_changes(old, wanted),
            )
            self._known.pop(user_id, None)
            # The row as of its own position: nothing moved the stream after it yet.
            self._note(row, None if row is None else row.stream_pos)
            await self._changed(row)
            return None if row is None else row.stream_pos
        if current is not None and now - current.last_seen_ts >= HEARTBEAT_MS:
            # Concurrent long-polls of one user all read the same stale row: only the
            # first of them (on this instance) writes the heartbeat.
            if now - self._beats.get(user_id, -HEARTBEAT_MS) < HEARTBEAT_MS:
                return None
            if len(self._beats) >= _BEATS_MAX:
                self._beats = {u: t for u, t in self._beats.items() if now - t < HEARTBEAT_MS}
            self._beats[user_id] = now
            active = wanted == ONLINE and current.state == ONLINE
            await self.repo.touch(user_id, now, active=active)
            entry = self._known.get(user_id)
            if entry is not None and entry[0] is current:
                self._note(dataclasses.replace(
                    current, last_seen_ts=now, last_active_ts=now if active else current.last_active_ts), entry[1])
        return None

    def _note(self, row: PresenceRow | None, at: int | None) -> None:
        if row is None or at is None:
            return
        if len(self._known) >= _BEATS_MAX:
            self._known = {}
        self._known[row.user_id] = (row, at)

    async def mark_stale_offline(self) -> int:
        """Housekeeper: users who stopped syncing go offline; return how many."""
        cutoff = self.clock.now_ms() - self.offline_after_ms
        count = 0
        while True:
            batch = await self.repo.stale(cutoff, limit=STALE_BATCH)
            for user_id in batch:
                row = await self.repo.mark_offline_if_stale(user_id, cutoff)
                if row is not None:
                    count += 1
                    await self._changed(row)
            if len(batch) < STALE_BATCH:
                return count


class PresenceContributor:
    """``presence.events`` in /sync: users who share a room with the syncing user."""

    # A woken /sync skips this contributor unless one of these streams moved.
    sync_streams = frozenset({"presence", "events"})

    def __init__(self, repo: PresenceRepository, membership: MembershipReader, clock: Clock) -> None:
        self.repo = repo
        self.membership = membership
        self.clock = clock

    async def contribute(self, ctx: SyncContext, response: JsonDict) -> bool:
        presence_filter = ctx.filter.get("presence")
        if isinstance(presence_filter, dict) and presence_filter.get("not_types") == ["*"]:
            return False
        rows: dict[str, PresenceRow] = {}
        never_seen: set[str] = set()
        if ctx.since is None or ctx.full_state:
            sharing = set(await self.membership.users_sharing_a_room(ctx.user_id)) | {ctx.user_id}
            rows = {r.user_id: r for r in await self.repo.get_many(sharing)}
        else:
            since, upto = ctx.since.get("presence"), ctx.upto.get("presence")
            changed = await self.repo.changed(since, upto) if since < upto else []
            if changed:
                sharing = set(await self.membership.users_sharing_a_room(ctx.user_id))
                sharing.add(ctx.user_id)
                rows = {r.user_id: r for r in changed if r.user_id in sharing}
            # People newly sharing a room: send their current presence.
            extra = await self._new_neighbours(ctx, response) - set(rows)
            if extra:
                rows.update({r.user_id: r for r in await self.repo.get_many(extra)})
                # A new neighbour who never had a presence is offline: say so, so that
                # the client knows (as it would for anyone else sharing the room).
                never_seen = extra - set(rows)
        if not rows and not never_seen:
            return False
        now = self.clock.now_ms()
        events = [presence_event(r, now) for r in sorted(rows.values(), key=lambda r: r.stream_pos)]
        events += [{"type": "m.presence", "sender": u, "content": presence_content(None, now)}
                   for u in sorted(never_seen)]
        events = apply_event_filter(presence_filter if isinstance(presence_filter, dict) else None, events)
        if not events:
            return False
        response.setdefault("presence", {}).setdefault("events", []).extend(events)
        return True

    async def _new_neighbours(self, ctx: SyncContext, response: JsonDict) -> set[str]:
        """Members of rooms the user newly joined, and users who joined the
        user's rooms in this response's timelines."""
        users: set[str] = set()
        for room_id in ctx.newly_joined_room_ids:
            users.update(await self.membership.joined_users(room_id))
        for room in response.get("rooms", {}).get("join", {}).values():
            for section in ("state", "timeline"):
                for event in (room.get(section) or {}).get("events") or []:
                    if (
                        event.get("type") == "m.room.member"
                        and (event.get("content") or {}).get("membership") == "join"
                        and isinstance(event.get("state_key"), str)
                    ):
                        users.add(event["state_key"])
        users.discard(ctx.user_id)
        return users
