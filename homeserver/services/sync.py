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
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from common.errors import Codes, MatrixError
from homeserver.config import Config
from homeserver.notifier import Notifier
from homeserver.services.event_format import EventFormatter
from homeserver.services.events import stripped_state
from homeserver.services.history_replay import visible_to
from homeserver.services.sync_api import STREAMS, SyncContext, SyncContributor, SyncToken
from homeserver.services.sync_filter import (
    ParsedFilters,
    SyncFilter,
    encode_position_token,
    parse_filter_param,
)
from homeserver.services.sync_lazy import KnowledgeBuilder, LazyMembersSent
from homeserver.services.to_device import ToDeviceService
from homeserver.storage.events import EventRepository, StoredEvent
from homeserver.storage.rooms import Membership, RoomRepository
from homeserver.storage.streams import StreamRepository

logger = logging.getLogger(__name__)

JsonDict = dict[str, Any]
ActivityHook = Callable[[str, str | None], Awaitable[None]]

PRESENCE_STATES = ("online", "offline", "unavailable")
INVITE_STATE_TYPES = (
    "m.room.create", "m.room.join_rules", "m.room.name", "m.room.avatar", "m.room.encryption",
    "m.room.canonical_alias", "m.room.topic",
)


@dataclass
class _RoomPlan:
    """What one room contributes to a response."""

    room_id: str
    membership: str
    event_id: str
    event: StoredEvent | None  # the user's membership event at ``upto``
    newly: bool = False  # complete state (initial, full_state, newly joined)
    upto: int = 0
    extra: list[StoredEvent] = field(default_factory=list)


@dataclass
class _Rebuild:
    """What one /sync request's builds share while it long-polls.

    ``memberships`` were read (after ``memberships_upto`` was) by an earlier
    build; a later build reuses them when no membership event of the user
    falls in (``memberships_upto``, its ``upto``] (every membership change is
    such an event, and rows at positions past ``upto`` are resolved by
    :meth:`SyncService._membership_at` as usual).  ``acknowledged``: the
    to-device messages up to ``since`` were deleted by an earlier build.
    """

    memberships: list[Membership] | None = None
    memberships_upto: int = -1
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


def drop_ignored(response: JsonDict, user_id: str, ignored: set[str], keep: frozenset[str] | set[str] = frozenset()
                 ) -> None:
    """Spec, "Ignoring Users": no events (state events excepted) and no invitations from ignored users."""
    if not ignored:
        return
    rooms = response["rooms"]
    for section in ("join", "leave"):
        for room in rooms[section].values():
            timeline = room.get("timeline")
            if timeline is not None:
                before = len(timeline["events"])
                timeline["events"] = [e for e in timeline["events"]
                                      if e.get("sender") not in ignored or "state_key" in e]
                if before and not timeline["events"] and not room.get("state", {}).get("events"):
                    room["_emptied"] = True
        # A room whose only news was ignored events is not news (unless it is new itself).
        for room_id in [r for r, room in rooms[section].items() if room.pop("_emptied", False)]:
            if room_id not in keep:
                del rooms[section][room_id]
    for room_id, room in list(rooms["invite"].items()):
        invite = next((e for e in room.get("invite_state", {}).get("events", [])
                       if e.get("type") == "m.room.member" and e.get("state_key") == user_id), None)
        if invite is not None and invite.get("sender") in ignored:
            del rooms["invite"][room_id]


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
        # ``async (user_id) -> set of ignored user ids`` (m.ignored_user_list), set by the app.
        self.ignored_users: Callable[[str], Awaitable[set[str]]] | None = None
        # Which membership events each device holds, per token (lazy-loaded members).
        self.lazy_sent = LazyMembersSent()
        # ``async (invite event ids) -> {event id: stripped state}`` of remote invites, set by the app.
        self.remote_invite_state: Callable[[list[str]], Awaitable[dict[str, list[JsonDict]]]] | None = None
        self._filters = ParsedFilters()

    def add_contributor(self, contributor: SyncContributor) -> None:
        self._contributors.append(contributor)

    def set_activity_hook(self, hook: ActivityHook) -> None:
        """``hook(user_id, set_presence)`` runs at the start of every /sync."""
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
                   filter_param: str | None, full_state: bool, set_presence: str | None) -> JsonDict:
        since_token = SyncToken.decode(since) if since else None
        if set_presence is not None and set_presence not in PRESENCE_STATES:
            raise MatrixError(400, Codes.INVALID_PARAM, "set_presence must be online, offline or unavailable")
        if timeout_ms < 0:
            raise MatrixError(400, Codes.INVALID_PARAM, "timeout must not be negative")
        sync_filter = await self.resolve_filter(user_id, filter_param)
        if self.on_sync_activity is not None:
            try:
                await self.on_sync_activity(user_id, set_presence)
            except Exception:
                logger.exception("sync activity hook failed")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + min(timeout_ms, self.config.limits.max_sync_timeout_ms) / 1000
        rebuild = _Rebuild()
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

    # --------------------------------------------------------------- building
    async def build(self, user_id: str, device_id: str, since: SyncToken | None, sync_filter: SyncFilter,
                    full_state: bool, rebuild: _Rebuild | None = None) -> tuple[JsonDict, bool]:
        positions = await self.streams.current_all()
        upto = SyncToken.from_mapping(positions)
        rebuild = rebuild if rebuild is not None else _Rebuild()
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
        plans: list[_RoomPlan] = []
        has_new = False
        knowledge = KnowledgeBuilder(
            {} if full_state else self.lazy_sent.known(user_id, device_id, since.encode() if since else None)
        )
        rebuild.own_membership_events = None
        if moved is None or "events" in moved:
            self.built["rooms"] += 1
            plans = await self._plan_rooms(user_id, since, upto_events, sync_filter, full_state, rebuild)
            has_new |= await self._add_joined(response, user_id, device_id, plans, since_events, upto_events,
                                              sync_filter, knowledge)
            has_new |= await self._add_invites(response, plans)
            has_new |= await self._add_knocks(response, plans)
            has_new |= await self._add_leaves(response, user_id, device_id, plans, since_events, sync_filter)
            for plan in plans:
                if plan.membership != "join":
                    knowledge.drop_room(plan.room_id)
            if self.ignored_users is not None:
                drop_ignored(response, user_id, await self.ignored_users(user_id),
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
                          full_state: bool, rebuild: _Rebuild) -> list[_RoomPlan]:
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
        cached = rebuild.memberships
        reuse = cached is not None and (
            upto == rebuild.memberships_upto
            or (since is not None and since_events <= rebuild.memberships_upto < upto
                and changed_after <= rebuild.memberships_upto)
        )
        if reuse and cached is not None:
            memberships = cached
        else:
            memberships = await self.rooms.memberships_of_user(user_id)
            rebuild.memberships, rebuild.memberships_upto = memberships, upto
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

    async def _membership_at(self, m: Membership, user_id: str, upto: int) -> _RoomPlan | None:
        if m.stream_pos <= upto:
            return _RoomPlan(m.room_id, m.membership, m.event_id, None, upto=m.stream_pos)
        # Changed after ``upto``: use the membership this response can see.
        event = await self.events.membership_at(m.room_id, user_id, upto)
        if event is None or event.membership is None:
            return None
        return _RoomPlan(m.room_id, event.membership, event.event_id, event, upto=event.stream_pos)

    async def _add_joined(self, response: JsonDict, user_id: str, device_id: str, plans: list[_RoomPlan],
                          since_events: int, upto: int, sync_filter: SyncFilter,
                          knowledge: KnowledgeBuilder) -> bool:
        joined = [p for p in plans if p.membership == "join"]
        if not joined:
            return False
        limit = sync_filter.timeline_limit
        tl = sync_filter.timeline
        kwargs: dict[str, Any] = {"types": tl.types, "not_types": tl.not_types, "senders": tl.senders,
                                  "not_senders": tl.not_senders}
        newly = [p.room_id for p in joined if p.newly]
        incremental = [p.room_id for p in joined if not p.newly]
        timelines: dict[str, list[StoredEvent]] = {}
        if newly:
            timelines.update(await self.events.timelines(newly, 0, upto, limit, **kwargs))
        if incremental and since_events < upto:
            timelines.update(await self.events.timelines(incremental, since_events, upto, limit, **kwargs))
        states: dict[str, list[StoredEvent]] = {}
        if newly:
            states.update(await self._states_at(newly, upto))
        has_new = False
        member_pairs: list[tuple[str, str]] = []
        rooms_out: dict[str, tuple[list[StoredEvent], bool, list[StoredEvent]]] = {}
        # History visibility event by event: what was visible when it was sent
        # (a message of a once-shared room stays readable after it became joined);
        # the rooms' lookups are issued together.
        visible = await asyncio.gather(*(
            visible_to(self.events, plan.room_id, user_id, timelines.get(plan.room_id, [])) for plan in joined))
        for plan, events in zip(joined, visible, strict=True):
            limited = len(events) > limit
            if limited:
                events = events[len(events) - limit:] if limit else []
            if plan.newly:
                in_timeline = {e.event_id for e in events}
                state = [e for e in states.get(plan.room_id, []) if e.event_id not in in_timeline]
            elif limited and events:
                in_timeline = {e.event_id for e in events}
                state = [e for e in await self.events.state_between(plan.room_id, since_events,
                                                                     events[0].stream_pos - 1)
                         if e.event_id not in in_timeline]
            elif limited:
                state = await self.events.state_between(plan.room_id, since_events, upto)
            else:
                state = []
            if not plan.newly and not events and not state:
                continue
            if sync_filter.lazy_load_members:
                # Members of the timeline's senders (and one's own after a gap); in an
                # incremental sync the membership changes in the gap stay too.
                wanted = {e.sender for e in events}
                if plan.newly or limited:
                    wanted.add(user_id)
                if plan.newly:
                    state = [e for e in state if e.type != "m.room.member" or e.state_key in wanted]
                    knowledge.reset_room(plan.room_id)
                present = {e.state_key for e in state if e.type == "m.room.member"}
                present |= {e.state_key for e in events if e.type == "m.room.member"}
                member_pairs += [(plan.room_id, s) for s in wanted - present if s is not None]
            rooms_out[plan.room_id] = (events, limited, state)
            has_new = True
        if member_pairs:
            members = await self.events.member_events(member_pairs)
            redundant = sync_filter.state.include_redundant_members
            for (room_id, member), event in members.items():
                if event.stream_pos <= upto and (redundant or not knowledge.holds(room_id, member, event.event_id)):
                    rooms_out[room_id][2].append(event)
        summaries = await self._summaries([r for r, v in rooms_out.items() if self._wants_summary(v, joined, r)],
                                          user_id)
        for room_id, (events, limited, state) in rooms_out.items():
            prev = encode_position_token(events[0].stream_pos - 1 if events else upto)
            state = [e for e in state if sync_filter.state.allows_event(e.type, e.sender)]
            if sync_filter.lazy_load_members:
                knowledge.sent(room_id, [(e.state_key, e.event_id) for e in (*state, *events)
                                         if e.type == "m.room.member" and e.state_key is not None])
            room: JsonDict = {
                "timeline": {
                    "events": await self.formatter.format(events, user_id, device_id,
                                                         federation=sync_filter.federation_format),
                    "limited": limited,
                    "prev_batch": prev,
                },
                "state": {"events": await self.formatter.format(
                    state, federation=sync_filter.federation_format)},
                "ephemeral": {"events": []},
                "account_data": {"events": []},
            }
            if room_id in summaries:
                room["summary"] = summaries[room_id]
            response["rooms"]["join"][room_id] = room
        return has_new

    @staticmethod
    def _wants_summary(value: tuple[list[StoredEvent], bool, list[StoredEvent]], joined: list[_RoomPlan],
                       room_id: str) -> bool:
        events, _, state = value
        if any(p.room_id == room_id and p.newly for p in joined):
            return True
        return any(e.type == "m.room.member" for e in events) or any(e.type == "m.room.member" for e in state)

    async def _summaries(self, room_ids: list[str], user_id: str) -> dict[str, JsonDict]:
        if not room_ids:
            return {}
        counts = await self.rooms.member_counts(room_ids)
        # Spec: m.heroes is required only where m.room.name and m.room.canonical_alias are unset or empty.
        named = {
            r for r, events in (await self.events.current_state(
                room_ids, types=["m.room.name", "m.room.canonical_alias"])).items()
            if any(e.content.get("name") or e.content.get("alias") for e in events)
        }
        heroes = await self.rooms.heroes([r for r in room_ids if r not in named], user_id)
        out: dict[str, JsonDict] = {}
        for r in room_ids:
            summary: JsonDict = {"m.joined_member_count": counts[r]["join"],
                                 "m.invited_member_count": counts[r]["invite"]}
            if r not in named:
                summary["m.heroes"] = heroes.get(r, [])
            out[r] = summary
        return out

    async def _states_at(self, room_ids: list[str], upto: int) -> dict[str, list[StoredEvent]]:
        current = await self.events.current_state(room_ids)
        for room_id, events in current.items():
            if any(e.stream_pos > upto for e in events):
                current[room_id] = await self.events.state_at(room_id, upto)
        return current

    async def _add_invites(self, response: JsonDict, plans: list[_RoomPlan]) -> bool:
        invites = [p for p in plans if p.membership == "invite" and (p.newly or p.extra)]
        if not invites:
            return False
        states = await self.events.current_state([p.room_id for p in invites], types=list(INVITE_STATE_TYPES))
        # Invites from other servers to rooms this server is not in: the state their inviter sent.
        remote = await self.remote_invite_state([p.event.event_id for p in invites if p.event is not None]) \
            if self.remote_invite_state is not None else {}
        for plan in invites:
            stripped = [stripped_state(e.pdu) for e in states.get(plan.room_id, [])]
            stripped += remote.get(plan.event.event_id, []) if plan.event is not None else []
            if plan.event is not None:
                inviter = plan.event.sender
                members = await self.events.member_events([(plan.room_id, inviter)])
                if (plan.room_id, inviter) in members:
                    stripped.append(stripped_state(members[(plan.room_id, inviter)].pdu))
                invite = stripped_state(plan.event.pdu)
                invite["event_id"] = plan.event.event_id
                invite["origin_server_ts"] = plan.event.pdu.get("origin_server_ts")
                stripped.append(invite)
            response["rooms"]["invite"][plan.room_id] = {"invite_state": {"events": stripped}}
        return True

    async def _add_knocks(self, response: JsonDict, plans: list[_RoomPlan]) -> bool:
        """Rooms the user knocked on: ``rooms.knock`` with the stripped state and the knock."""
        knocks = [p for p in plans if p.membership == "knock" and (p.newly or p.extra)]
        if not knocks:
            return False
        states = await self.events.current_state([p.room_id for p in knocks], types=list(INVITE_STATE_TYPES))
        for plan in knocks:
            stripped = [stripped_state(e.pdu) for e in states.get(plan.room_id, [])]
            if plan.event is not None:
                stripped.append(stripped_state(plan.event.pdu))
            response["rooms"]["knock"][plan.room_id] = {"knock_state": {"events": stripped}}
        return True

    async def _add_leaves(self, response: JsonDict, user_id: str, device_id: str, plans: list[_RoomPlan],
                          since_events: int, sync_filter: SyncFilter) -> bool:
        leaves = [
            p for p in plans
            if p.membership in ("leave", "ban") and (p.extra or (p.newly and sync_filter.include_leave))
        ]
        if not leaves:
            return False
        limit = sync_filter.timeline_limit
        tl = sync_filter.timeline
        for plan in leaves:
            after = 0 if plan.newly and not plan.extra else since_events
            events = (await self.events.timelines(
                [plan.room_id], after, plan.upto, limit,
                types=tl.types, not_types=tl.not_types, senders=tl.senders, not_senders=tl.not_senders,
            ))[plan.room_id]
            events = await visible_to(self.events, plan.room_id, user_id, events)
            limited = len(events) > limit
            if limited:
                events = events[len(events) - limit:] if limit else []
            state: list[StoredEvent] = []
            first = plan.extra[0] if plan.extra else None
            joined_in_batch = first is not None and first.membership == "join" and (
                not first.replaces_state or (first.prev_content or {}).get("membership") != "join"
            )
            # The state up to the timeline's start (with a timeline filtered empty: up to the leave).
            start = events[0].stream_pos - 1 if events else plan.upto
            if joined_in_batch:
                # Joined and left within this batch: all the state before the timeline.
                state = await self.events.state_at(plan.room_id, start)
            elif limited or plan.newly or not events:
                state = await self.events.state_between(plan.room_id, after, start)
            state = [e for e in state if sync_filter.state.allows_event(e.type, e.sender)]
            response["rooms"]["leave"][plan.room_id] = {
                "timeline": {
                    "events": await self.formatter.format(events, user_id, device_id,
                                                         federation=sync_filter.federation_format),
                    "limited": limited,
                    "prev_batch": encode_position_token(events[0].stream_pos - 1 if events else plan.upto),
                },
                "state": {"events": await self.formatter.format(
                    state, federation=sync_filter.federation_format)},
                "account_data": {"events": []},
            }
        return True
