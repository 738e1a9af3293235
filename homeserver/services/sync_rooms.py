"""The room sections of a /sync response: joined rooms' timelines and state, invites,
knocks and leaves, built from the plan ``services/sync.py`` made of the user's rooms."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from homeserver.services.event_format import EventFormatter
from homeserver.services.events import stripped_state
from homeserver.services.history_replay import OpenRooms, visible_to
from homeserver.services.sync_filter import SyncFilter, encode_position_token
from homeserver.services.sync_lazy import KnowledgeBuilder
from homeserver.storage.events import EventRepository, StoredEvent
from homeserver.storage.rooms import RoomRepository

JsonDict = dict[str, Any]
RemoteInviteState = Callable[[list[str]], Awaitable[dict[str, list[JsonDict]]]]

INVITE_STATE_TYPES = (
    "m.room.create", "m.room.join_rules", "m.room.name", "m.room.avatar", "m.room.encryption",
    "m.room.canonical_alias", "m.room.topic",
)


@dataclass
class RoomPlan:
    """What one room contributes to a response."""

    room_id: str
    membership: str
    event_id: str
    event: StoredEvent | None  # the user's membership event at ``upto``
    newly: bool = False  # complete state (initial, full_state, newly joined)
    upto: int = 0
    extra: list[StoredEvent] = field(default_factory=list)


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


class RoomSections:
    """Builds ``rooms.join``, ``rooms.invite``, ``rooms.knock`` and ``rooms.leave``."""

    def __init__(self, events: EventRepository, rooms: RoomRepository, formatter: EventFormatter) -> None:
        self.events = events
        self.rooms = rooms
        self.formatter = formatter
        # ``async (invite event ids) -> {event id: stripped state}`` of remote invites, set by the app.
        self.remote_invite_state: RemoteInviteState | None = None
        self.open_rooms = OpenRooms()

    async def add_joined(self, response: JsonDict, user_id: str, device_id: str, plans: list[RoomPlan],
                          since_events: int, upto: int, sync_filter: SyncFilter,
                          knowledge: KnowledgeBuilder,
                          complete: dict[str, list[StoredEvent]] | None = None) -> bool:
        """``complete`` gets, per joined room not new to the user, its events in
        (since, upto] if this read all of them (for the contributors)."""
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
        if complete is not None and tl.types is None and not tl.not_types and tl.senders is None \
                and not tl.not_senders:
            # Unfiltered and within the limit: every event of the room in (since, upto].
            complete.update({r: timelines.get(r, []) for r in incremental if len(timelines.get(r, [])) <= limit})
        states: dict[str, list[StoredEvent]] = {}
        if newly:
            states.update(await self.states_at(newly, upto))
        has_new = False
        member_pairs: list[tuple[str, str]] = []
        rooms_out: dict[str, tuple[list[StoredEvent], bool, list[StoredEvent]]] = {}
        # History visibility event by event: what was visible when it was sent
        # (a message of a once-shared room stays readable after it became joined);
        # the rooms' lookups are issued together.  A room whose new events this read
        # whole may be known never restricted (OpenRooms): no lookup.
        whole = {p.room_id for p in joined if complete is not None and p.room_id in complete}
        for room_id in whole:
            if not timelines.get(room_id):
                self.open_rooms.still_open(room_id, since_events, upto, [])  # nothing new: still open
        visible = await asyncio.gather(*(
            visible_to(self.events, plan.room_id, user_id, timelines.get(plan.room_id, []), self.open_rooms,
                       since_events if plan.room_id in whole else None, upto) for plan in joined))
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
        summaries = await self.summaries([r for r, v in rooms_out.items() if self.wants_summary(v, joined, r)],
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
    def wants_summary(value: tuple[list[StoredEvent], bool, list[StoredEvent]], joined: list[RoomPlan],
                       room_id: str) -> bool:
        events, _, state = value
        if any(p.room_id == room_id and p.newly for p in joined):
            return True
        return any(e.type == "m.room.member" for e in events) or any(e.type == "m.room.member" for e in state)

    async def summaries(self, room_ids: list[str], user_id: str) -> dict[str, JsonDict]:
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

    async def states_at(self, room_ids: list[str], upto: int) -> dict[str, list[StoredEvent]]:
        current = await self.events.current_state(room_ids)
        for room_id, events in current.items():
            if any(e.stream_pos > upto for e in events):
                current[room_id] = await self.events.state_at(room_id, upto)
        return current

    async def add_invites(self, response: JsonDict, plans: list[RoomPlan]) -> bool:
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

    async def add_knocks(self, response: JsonDict, plans: list[RoomPlan]) -> bool:
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

    async def add_leaves(self, response: JsonDict, user_id: str, device_id: str, plans: list[RoomPlan],
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
