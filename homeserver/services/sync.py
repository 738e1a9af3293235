"""``GET /sync``: room timelines and state, invites, leaves, to-device, plus the contributors.

A response covers stream positions up to ``upto``, read *before* any data,
so a row committed later is reported by the next sync and never skipped
(see ``storage/streams.py``).  Room events are read with
``since < stream_pos <= upto``; an incremental sync with nothing new waits
on the notifier until something for the user changes or the timeout ends.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from common.errors import Codes, MatrixError
from homeserver.config import Config
from homeserver.notifier import Notifier
from homeserver.services.event_format import EventFormatter
from homeserver.services.sync_api import STREAMS, SyncContext, SyncContributor, SyncToken
from homeserver.services.sync_filter import (
    ParsedFilters,
    SyncFilter,
    encode_position_token,
    parse_filter_param,
)
from homeserver.services.sync_lazy import KnowledgeBuilder, LazyMembersSent
from homeserver.services.sync_rooms import RoomPlan, RoomSections, drop_ignored
from homeserver.services.to_device import ToDeviceService
from homeserver.storage.events import EventRepository, StoredEvent
from homeserver.storage.rooms import Membership, RoomRepository
from homeserver.storage.streams import AUTH_COUNTER, StreamRepository

logger = logging.getLogger(__name__)

JsonDict = dict[str, Any]
ActivityHook = Callable[[str, str | None, int], Awaitable[int | None]]
Confirm = Callable[[int], Awaitable[None]]

PRESENCE_STATES = ("online", "offline", "unavailable")


class KnownMemberships:
    """Each user's memberships as a build read them (after reading position ``upto`` of
    the events stream), for the user's later builds, on this instance.

    Every membership change is a membership event of the user, which a build
    reads anyway in its range (since, upto]; a build reuses what is known
    when its range covers everything after the known position and holds no
    such event past it.  So a change made on any instance is seen through the
    events stream itself, without a message to wait for; rows changed past a
    build's ``upto`` are resolved by :meth:`SyncService._membership_at` as usual.
    """

    def __init__(self, size: int = 50_000) -> None:
        self.size = size
        self._known: OrderedDict[str, tuple[list[Membership], int]] = OrderedDict()

    def get(self, user_id: str, since: int, upto: int, changed_after: int) -> list[Membership] | None:
        """The memberships if still valid for an incremental build of (since, upto] whose
        latest own membership event in that range is at ``changed_after`` (-1: none)."""
        known = self._known.get(user_id)
        if known is None:
            return None
        memberships, at = known
        if at == upto or (since <= at < upto and changed_after <= at):
            # No change in (at, upto]: as valid at upto, where the user's next build starts.
            self._known[user_id] = (memberships, max(at, upto))
            self._known.move_to_end(user_id)
            return memberships
        return None

    def put(self, user_id: str, memberships: list[Membership], upto: int) -> None:
        self._known[user_id] = (memberships, upto)
        self._known.move_to_end(user_id)
        if len(self._known) > self.size:
            self._known.popitem(last=False)


@dataclass
class _Rebuild:
    """What one /sync request's builds share while it long-polls.

    ``acknowledged``: the to-device messages up to ``since`` were deleted by an
    earlier build.
    """

    # ``confirm`` of :meth:`SyncService.sync`; ``activity``: the hook's argument until it ran.
    confirm: Confirm | None = None
    activity: tuple[str | None] | None = None
    acknowledged: bool = False
    # The rooms the user is joined to as of the last build: what the notifier watches.
    joined_rooms: list[str] = field(default_factory=list)
    # The last build found nothing new up to ``upto``: a woken build reads the
    # positions again and builds only the streams that moved past it.
    upto: SyncToken | None = None
    response: JsonDict | None = None
    to_device_next: int = 0
    # This build's read of the user's membership events in (since, upto] (None: not read).
    own_membership_events: list[StoredEvent] | None = None

    def moved(self, upto: SyncToken) -> frozenset[str] | None:
        """The streams past the last empty build's positions (None: no such build)."""
        if self.upto is None:
            return None
        return frozenset(s for s in STREAMS if upto.get(s) > self.upto.get(s))


class SyncService:
    def __init__(self, config: Config, events: EventRepository, rooms: RoomRepository,
                 streams: StreamRepository, notifier: Notifier, formatter: EventFormatter,
                 to_device: ToDeviceService) -> None:
        self.config = config
        self.events = events
        self.rooms = rooms
        self.streams = streams
        self.notifier = notifier
        self.formatter = formatter
        self.to_device = to_device
        self._contributors: list[SyncContributor] = []
        # What the builds built: "build", "rooms", "to_device", each contributor's class name,
        # and "unmoved" (woken, but no stream moved: nothing built).  Read by tests.
        self.built: Counter[str] = Counter()
        self.on_sync_activity: ActivityHook | None = None
        # Anything with ``async get(user_id, filter_id) -> dict | None`` (the filter service).
        self.filter_store: Any = None
        # ``async (user_id, at) -> set of ignored user ids`` (m.ignored_user_list), set by the app;
        # ``at``: the build's account-data position (what was read at it may be remembered).
        self.ignored_users: Callable[[str, int | None], Awaitable[set[str]]] | None = None
        # Which membership events each device holds, per token (lazy-loaded members).
        self.lazy_sent = LazyMembersSent()
        # The room sections (``sections.remote_invite_state`` is set by the app).
        self.sections = RoomSections(events, rooms, formatter)
        self._memberships = KnownMemberships()
        self._filters = ParsedFilters()

    def add_contributor(self, contributor: SyncContributor) -> None:
        self._contributors.append(contributor)

    def set_activity_hook(self, hook: ActivityHook) -> None:
        """``hook(user_id, set_presence, presence position)`` runs at the start of every /sync
        (after the stream positions were read); it returns the presence position it wrote, if any."""
        self.on_sync_activity = hook

    def set_filter_store(self, store: Any) -> None:
        self.filter_store = store

    async def resolve_filter(self, user_id: str, param: str | None) -> SyncFilter:
        if param is None or param == "":
            return SyncFilter.parse({})
        known = self._filters.get(user_id, param)
        if known is not None:
            return known
        inline = parse_filter_param(param)
        if inline is not None:
            return self._filters.put(user_id, param, SyncFilter.parse(inline))
        stored = None
        if self.filter_store is not None and len(param) <= 255:
            stored = await self.filter_store.get(user_id, param)
        if stored is None:
            raise MatrixError(404, Codes.NOT_FOUND, "No such filter")
        return self._filters.put(user_id, param, SyncFilter.parse(stored))

    # ------------------------------------------------------------- the loop
    async def sync(self, user_id: str, device_id: str, since: str | None, timeout_ms: int,
                   filter_param: str | None, full_state: bool, set_presence: str | None,
                   confirm: Confirm | None = None) -> JsonDict:
        """``confirm(auth counter)``: raises if the requester's token is no longer valid at
        that counter (read with the stream positions of every build, before anything else)."""
        since_token = SyncToken.decode(since) if since else None
        if set_presence is not None and set_presence not in PRESENCE_STATES:
            raise MatrixError(400, Codes.INVALID_PARAM, "set_presence must be online, offline or unavailable")
        if timeout_ms < 0:
            raise MatrixError(400, Codes.INVALID_PARAM, "timeout must not be negative")
        sync_filter = await self.resolve_filter(user_id, filter_param)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + min(timeout_ms, self.config.limits.max_sync_timeout_ms) / 1000
        rebuild = _Rebuild(confirm=confirm, activity=(set_presence,))
        while True:
            with self.notifier.listen(user_id) as waiter:
                response, has_new = await self.build(user_id, device_id, since_token, sync_filter, full_state,
                                                     rebuild)
                # From now on only changes in these rooms (or for this user) wake it.
                self.notifier.watch(waiter, rebuild.joined_rooms)
                if has_new or since_token is None or full_state:
                    return response
                remaining = deadline - loop.time()
                if remaining <= 0 or self.notifier.stopping:
                    return response
                await waiter.wait(remaining)

    async def _activity(self, user_id: str, set_presence: str | None, presence_at: int) -> int | None:
        """Run the activity hook; the presence position it wrote at, if it changed presence."""
        if self.on_sync_activity is None:
            return None
        try:
            return await self.on_sync_activity(user_id, set_presence, presence_at)
        except Exception:
            logger.exception("sync activity hook failed")
            return None

    # --------------------------------------------------------------- building
    async def build(self, user_id: str, device_id: str, since: SyncToken | None, sync_filter: SyncFilter,
                    full_state: bool, rebuild: _Rebuild | None = None) -> tuple[JsonDict, bool]:
        rebuild = rebuild if rebuild is not None else _Rebuild()
        positions = await self.streams.current_all()
        if rebuild.confirm is not None:
            await rebuild.confirm(positions.get(AUTH_COUNTER, 0))
        if rebuild.activity is not None:
            # Once per request, after the token was confirmed: the sign of life (presence).
            set_presence, rebuild.activity = rebuild.activity[0], None
            moved_to = await self._activity(user_id, set_presence, positions.get("presence", 0))
            if moved_to is not None:
                # This response carries the change.  A single-writer stream: every position
                # below the one just committed is committed too.
                positions = {**positions, "presence": max(positions.get("presence", 0), moved_to)}
        upto = SyncToken.from_mapping(positions)
        moved = rebuild.moved(upto)
        if moved is not None and not moved and rebuild.response is not None:
            self.built["unmoved"] += 1
            return rebuild.response, False
        response, has_new = await self._build(user_id, device_id, since, sync_filter, full_state, rebuild,
                                              upto, moved)
        if not has_new:
            rebuild.upto, rebuild.response = upto, response
        return response, has_new

    async def _build(self, user_id: str, device_id: str, since: SyncToken | None, sync_filter: SyncFilter,
                     full_state: bool, rebuild: _Rebuild, upto: SyncToken,
                     moved: frozenset[str] | None) -> tuple[JsonDict, bool]:
        """Build the response up to ``upto``; with ``moved``, only those streams' parts
        (every other stream's range (since, upto] was found empty by the last build)."""
        self.built["build"] += 1
        upto_events = upto.get("events")
        since_events = since.get("events") if since is not None else 0
        response: JsonDict = {
            "next_batch": "",
            "rooms": {"join": {}, "invite": {}, "leave": {}, "knock": {}},
            "presence": {"events": []},
            "account_data": {"events": []},
            "to_device": {"events": []},
            "device_lists": {"changed": [], "left": []},
            "device_one_time_keys_count": {},
        }
        plans: list[RoomPlan] = []
        has_new = False
        knowledge = KnowledgeBuilder(
            {} if full_state else self.lazy_sent.known(user_id, device_id, since.encode() if since else None)
        )
        rebuild.own_membership_events = None
        room_events: dict[str, list[StoredEvent]] | None = None
        if moved is None or "events" in moved:
            self.built["rooms"] += 1
            plans = await self._plan_rooms(user_id, since, upto_events, sync_filter, full_state, rebuild)
            sections = self.sections
            room_events = {} if since is not None and not full_state else None
            has_new |= await sections.add_joined(response, user_id, device_id, plans, since_events, upto_events,
                                                 sync_filter, knowledge, room_events)
            has_new |= await sections.add_invites(response, plans)
            has_new |= await sections.add_knocks(response, plans)
            has_new |= await sections.add_leaves(response, user_id, device_id, plans, since_events, sync_filter)
            for plan in plans:
                if plan.membership != "join":
                    knowledge.drop_room(plan.room_id)
            if self.ignored_users is not None:
                drop_ignored(response, user_id, await self.ignored_users(user_id, upto.get("account_data")),
                             keep={p.room_id for p in plans if p.newly})

        since_to_device = since.get("to_device") if since else None
        to_device_events: list[JsonDict]
        if moved is not None and "to_device" not in moved:
            to_device_events, to_device_next = [], rebuild.to_device_next
        elif rebuild.acknowledged and since_to_device is not None and upto.get("to_device") <= since_to_device:
            # A later build of the same request with the stream unmoved: an
            # earlier build acknowledged up to ``since`` and (since, upto] is
            # empty, which is all ``collect`` would find.
            to_device_events, to_device_next = [], upto.get("to_device")
        else:
            self.built["to_device"] += 1
            to_device_events, to_device_next = await self.to_device.collect(
                user_id, device_id, since_to_device, upto.get("to_device")
            )
            rebuild.acknowledged = True
        rebuild.to_device_next = to_device_next
        response["to_device"]["events"] = to_device_events
        has_new |= bool(to_device_events)

        if moved is None or "events" in moved:
            joined = [p.room_id for p in plans if p.membership == "join"]
        else:
            joined = rebuild.joined_rooms
        newly = {p.room_id for p in plans if p.membership == "join" and p.newly}
        if newly or set(joined) != set(rebuild.joined_rooms):
            moved = None  # new rooms: every contributor sends their current state
        rebuild.joined_rooms = joined
        ctx = SyncContext(
            user_id=user_id, device_id=device_id, since=None if full_state else since, upto=upto,
            joined_room_ids=joined, full_state=full_state, filter=sync_filter.raw,
            newly_joined_room_ids=newly, moved=moved,
            own_membership_events=None if full_state else rebuild.own_membership_events,
            room_events=room_events,
        )
        for contributor in self._contributors:
            if not ctx.needs(getattr(contributor, "sync_streams", None)):
                continue
            self.built[type(contributor).__name__] += 1
            try:
                has_new |= bool(await contributor.contribute(ctx, response))
            except MatrixError:
                raise
            except Exception:
                logger.exception("sync contributor %r failed", contributor)
        self._normalise(response, upto_events)
        final = list(upto.positions)
        final[STREAMS.index("to_device")] = to_device_next
        response["next_batch"] = SyncToken(tuple(final)).encode()
        if sync_filter.lazy_load_members:
            self.lazy_sent.remember(user_id, device_id, response["next_batch"], knowledge.result())
        return response, has_new

    @staticmethod
    def _normalise(response: JsonDict, upto_events: int) -> None:
        for room in response["rooms"]["join"].values():
            room.setdefault("timeline", {"events": [], "limited": False,
                                         "prev_batch": encode_position_token(upto_events)})
            room.setdefault("state", {"events": []})
            room.setdefault("ephemeral", {"events": []})
            room.setdefault("account_data", {"events": []})
            for key in ("ephemeral", "account_data", "state"):
                room[key].setdefault("events", [])

    async def _plan_rooms(self, user_id: str, since: SyncToken | None, upto: int, sync_filter: SyncFilter,
                          full_state: bool, rebuild: _Rebuild) -> list[RoomPlan]:
        since_events = since.get("events") if since is not None else 0
        changes: dict[str, list[StoredEvent]] = {}
        changed_after = -1  # the position of the user's latest membership event in (since, upto]
        rebuild.own_membership_events = None
        if since is not None and since_events < upto:
            own = await self.events.user_membership_events(user_id, since_events, upto)
            rebuild.own_membership_events = own  # device_lists needs the same events
            for event in own:
                changes.setdefault(event.room_id, []).append(event)
                changed_after = max(changed_after, event.stream_pos)
        # Not for complete answers (initial, full_state), which list left rooms too: a
        # room forgotten since (a row change, not an event) must not come back there.
        memberships = None if since is None or full_state else self._memberships.get(
            user_id, since_events, upto, changed_after)
        if memberships is None:
            memberships = await self.rooms.memberships_of_user(user_id)
            self._memberships.put(user_id, memberships, upto)
        plans = []
        need_events: list[str] = []
        for m in memberships:
            if not sync_filter.allows_room(m.room_id):
                continue
            plan = await self._membership_at(m, user_id, upto)
            if plan is None:
                continue
            if plan.event is None and plan.membership in ("invite", "knock"):
                need_events.append(plan.event_id)
            plans.append(plan)
        if need_events:
            found = await self.events.get_many(need_events)
            for plan in plans:
                if plan.event is None:
                    plan.event = found.get(plan.event_id)
        for plan in plans:
            room_changes = changes.get(plan.room_id, [])
            if since is None or full_state:
                plan.newly = True
            elif room_changes:
                # Newly joined: a join in this batch from another membership — also a
                # rejoin after leaving, whose time away history visibility may hide.
                plan.newly = plan.membership == "join" and any(
                    e.membership == "join"
                    and ((e.prev_content or {}).get("membership") if e.replaces_state else None) != "join"
                    for e in room_changes
                )
                plan.extra = room_changes
        return plans

    async def _membership_at(self, m: Membership, user_id: str, upto: int) -> RoomPlan | None:
        if m.stream_pos <= upto:
            return RoomPlan(m.room_id, m.membership, m.event_id, None, upto=m.stream_pos)
        # Changed after ``upto``: use the membership this response can see.
        event = await self.events.membership_at(m.room_id, user_id, upto)
        if event is None or event.membership is None:
            return None
        return RoomPlan(m.room_id, event.membership, event.event_id, event, upto=event.stream_pos)
