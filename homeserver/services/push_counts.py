"""``notification_count`` and ``highlight_count`` from the user's push rules: each
unread event is evaluated (:mod:`push_eval`) as far as its visible outside allows.

Every /sync asks for the counts of the same unread events again, so outcomes are
remembered (bounded, least recently used first out) under everything they depend
on: the user's rules, the event (its id: stored PDUs do not change, and redacted
events are not counted; a PDU is loaded only when first evaluated), the user's
display name, the room's member count, the sender's
power and the room's notification levels.  A change to any of these is a new key.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter, OrderedDict
from dataclasses import dataclass
from typing import Any

from homeserver.services.event_auth import user_power
from homeserver.services.push_eval import CompiledRules, PushContext, compile_rules, evaluate_compiled
from homeserver.services.push_rules import PushRuleService
from homeserver.storage.events import EventRepository, StoredEvent
from homeserver.storage.receipts import ReceiptRepository
from homeserver.storage.rooms import RoomRepository

# Unread events evaluated per room; older unread ones count as notifying.
MAX_EVALUATED = 200
# Remembered outcomes (about 200 bytes each).
MEMO_SIZE = 50_000

MemoKey = tuple[bytes, str, str, str | None, int, int, tuple[tuple[str, int], ...]]  # see _outcome
# Rooms whose running tally is kept per user (at most MAX_EVALUATED bytes each).
TALLY_SIZE = 20_000
_NOTIFY, _HIGHLIGHT = 1, 2
# Compiled rule sets kept (one per user and version of their rules).
COMPILED_RULE_SETS = 2_000


@dataclass
class _Tally:
    """One (user, room)'s counts as of ``upto``: what a later build extends by the new events.

    ``recent`` holds the outcomes (bit 1 notify, bit 2 highlight) of the newest
    unread events, oldest first, at most MAX_EVALUATED of them; ``unread`` is
    the count they were part of.  Valid for the same rules, lower bound and
    room context (``context``) only."""

    rules_key: bytes
    low: int
    context: tuple[Any, ...]
    upto: int
    unread: int
    recent: bytes

    def result(self, evaluated: int | None = None) -> tuple[int, int]:
        """(notifications, highlights): older unread events than the evaluated ones notify."""
        evaluated = len(self.recent) if evaluated is None else evaluated
        notify = sum(1 for b in self.recent if b & _NOTIFY) + max(0, self.unread - evaluated)
        return notify, sum(1 for b in self.recent if b & _HIGHLIGHT)


@dataclass(frozen=True)
class RoomsRead:
    """What a /sync build read already: every event of these rooms in (``since``, its
    ``upto``] of the events stream, and the account-data position it read."""

    since: int
    events: dict[str, list[StoredEvent]]
    account_data_at: int | None = None

    def quiet(self, room_id: str, after: int) -> bool:
        """No state event (nor redaction) of the room in (``after``, upto], as far as known."""
        events = self.events.get(room_id)
        return events is not None and self.since <= after and not any(
            e.stream_pos > after and (e.state_key is not None or e.type == "m.room.redaction") for e in events)


@dataclass
class _Context:
    """A (user, room)'s push context, valid up to ``upto`` (no state event after it seen yet)."""

    ctx: PushContext
    flat: dict[tuple[str, str], Any]
    signature: tuple[Any, ...]
    upto: int


def _counted(event: StoredEvent, user_id: str) -> bool:
    """What :meth:`ReceiptRepository.unread_counts` counts."""
    return (event.sender != user_id and event.state_key is None and event.redacted_by is None
            and event.type not in ("m.room.redaction", "m.reaction"))


class PushCounter:
    def __init__(self, push_rules: PushRuleService, receipts: ReceiptRepository, events: EventRepository,
                 rooms: RoomRepository) -> None:
        self.push_rules = push_rules
        self.receipts = receipts
        self.events = events
        self.rooms = rooms
        self._memo: OrderedDict[MemoKey, tuple[bool, bool]] = OrderedDict()
        self._tallies: OrderedDict[tuple[str, str], _Tally] = OrderedDict()
        self._compiled: OrderedDict[bytes, CompiledRules] = OrderedDict()
        self._contexts: OrderedDict[tuple[str, str], _Context] = OrderedDict()
        # Rooms counted "extended" (from a tally) or "recounted" (from every unread event); tests.
        self.tallied: Counter[str] = Counter()

    @staticmethod
    def _key(rules_key: bytes, event_id: str, ctx: PushContext) -> MemoKey:
        # Event ids are unique and stored PDUs do not change.
        return (rules_key, ctx.user_id, event_id, ctx.display_name, ctx.member_count, ctx.sender_power,
                tuple(sorted(ctx.notification_levels.items())))

    def _remember(self, key: MemoKey, result: tuple[bool, bool]) -> None:
        self._memo[key] = result
        if len(self._memo) > MEMO_SIZE:
            self._memo.popitem(last=False)

    async def context(self, user_id: str, room_id: str, member_count: int) -> tuple[PushContext, Any]:
        return (await self.contexts(user_id, [room_id], {room_id: member_count}))[room_id]

    async def contexts(self, user_id: str, rooms: list[str], member_counts: dict[str, int] | None = None
                       ) -> dict[str, tuple[PushContext, dict[tuple[str, str], Any]]]:
        """Per room: the user's push context and the room's power-levels and create PDUs.

        Two or three statements whatever the number of rooms, issued together: on the
        one SQLite connection they queue once, not once each, behind other requests."""
        async def joined() -> dict[str, int]:
            if member_counts is not None:
                return member_counts
            return {r: c.get("join", 0) for r, c in (await self.rooms.member_counts(rooms)).items()}

        state, mine, counts = await asyncio.gather(
            self.events.current_state(rooms, ["m.room.power_levels", "m.room.create"]),
            self.events.member_events((room_id, user_id) for room_id in rooms),
            joined())
        out: dict[str, tuple[PushContext, dict[tuple[str, str], Any]]] = {}
        for room_id in rooms:
            flat = {(e.type, e.state_key or ""): e.pdu for e in state[room_id]}
            me = mine.get((room_id, user_id))
            name = me.content.get("displayname") if me is not None else None
            power = (flat.get(("m.room.power_levels", "")) or {}).get("content") or {}
            raw = power.get("notifications")
            levels: dict[str, Any] = raw if isinstance(raw, dict) else {}
            ctx = PushContext(user_id, name if isinstance(name, str) else None, counts.get(room_id, 0), 0,
                              {k: v for k, v in levels.items() if isinstance(v, int)} or {"room": 50})
            out[room_id] = (ctx, flat)
        return out

    async def counts(self, user_id: str, room_ids: list[str], upto: int,
                     unread: dict[str, int], bounds: dict[str, int] | None = None,
                     read: RoomsRead | None = None) -> dict[str, tuple[int, int]]:
        """(notification_count, highlight_count) per room with unread events
        (``bounds``: where each room's unread events begin, if read already;
        ``read``: the events the caller's /sync build holds, which need no reading again)."""
        rooms = [r for r in room_ids if unread.get(r, 0) > 0]
        if not rooms:
            return {}

        if bounds is None:
            bounds = await self.receipts.unread_bounds(user_id, rooms)
        # A room whose tally holds for these rules, bound and context needs only the
        # events after the tally's position (if their number explains the new count:
        # a redaction or purge of an older unread event does not, so it is recounted).
        # The events are read with the rules and contexts, assuming the tallies hold;
        # a room whose tally turns out not to is read again from its bound.
        lows = {}
        for room_id in rooms:
            tally = self._tallies.get((user_id, room_id))
            if room_id in bounds:
                lows[room_id] = (tally.upto if tally is not None and tally.low == bounds[room_id]
                                 and tally.upto <= upto else bounds[room_id])
        # Rooms whose events after the tally's position the build holds (with their PDUs).
        held: dict[str, list[tuple[str, str, Any]]] = {}
        for room_id, low in lows.items():
            if read is not None and low != bounds[room_id] and room_id in read.events and read.since <= low:
                held[room_id] = [(e.event_id, e.sender, e.pdu) for e in reversed(read.events[room_id])
                                 if low < e.stream_pos <= upto and _counted(e, user_id)][:MAX_EVALUATED]
        (rules, rules_key), contexts, events = await asyncio.gather(
            self.push_rules.shared_rules(user_id, at=read.account_data_at if read is not None else None),
            self._contexts_of(user_id, rooms, upto, read),
            self.receipts.unread_events(user_id, [r for r in rooms if r not in held], upto, MAX_EVALUATED,
                                        {r: low for r, low in lows.items() if r not in held}))
        events.update(held)
        extend: dict[str, _Tally] = {}
        recount: list[str] = []
        for room_id in rooms:
            signature = contexts[room_id][2]
            tally = self._tallies.get((user_id, room_id))
            if room_id not in lows or lows[room_id] == bounds[room_id] or tally is None:
                continue
            new_count = len(events.get(room_id, []))
            if (tally.rules_key == rules_key and tally.context == signature and new_count < MAX_EVALUATED
                    and tally.unread + new_count == unread[room_id]):
                extend[room_id] = tally
            else:
                recount.append(room_id)
        if recount:
            events.update(await self.receipts.unread_events(user_id, recount, upto, MAX_EVALUATED, bounds))
        keyed: dict[str, list[tuple[str, MemoKey, PushContext]]] = {}
        for room_id in rooms:
            ctx, flat, _ = contexts[room_id]
            keyed[room_id] = []
            for event_id, sender, _ in events.get(room_id, []):
                event_ctx = PushContext(ctx.user_id, ctx.display_name, ctx.member_count,
                                        user_power(flat, sender), ctx.notification_levels)
                keyed[room_id].append((event_id, self._key(rules_key, event_id, event_ctx), event_ctx))
        # Only events not evaluated before are parsed and evaluated.
        known = {key: self._memo[key] for entries in keyed.values() for _, key, _ in entries if key in self._memo}
        raw = {e: pdu for entries in events.values() for e, _, pdu in entries}
        pdus = {e: raw[e] if isinstance(raw[e], dict) else json.loads(raw[e])
                for entries in keyed.values() for e, key, _ in entries if key not in known and e in raw}
        out: dict[str, tuple[int, int]] = {}
        for room_id in rooms:
            outcomes = bytearray()
            complete = True
            for event_id, key, event_ctx in keyed[room_id]:  # newest first
                result = known.get(key)
                if result is not None:
                    if key in self._memo:
                        self._memo.move_to_end(key)
                elif event_id not in pdus:
                    complete = False  # purged meanwhile
                    continue
                else:
                    outcome = evaluate_compiled(self._compile(rules_key, rules), pdus[event_id], event_ctx)
                    result = (outcome.notify, outcome.highlight)
                    self._remember(key, result)
                outcomes.append(_NOTIFY * result[0] + _HIGHLIGHT * result[1])
            outcomes.reverse()
            before = extend.get(room_id)
            recent = bytes((before.recent if before is not None else b"") + outcomes)[-MAX_EVALUATED:]
            tally = _Tally(rules_key, bounds.get(room_id, 0), contexts[room_id][2], upto, unread[room_id], recent)
            # An event purged meanwhile counts neither as evaluated nor as older.
            out[room_id] = tally.result(None if before is not None else len(keyed[room_id]))
            self.tallied["extended" if before is not None else "recounted"] += 1
            self._keep_tally(user_id, room_id, tally if complete else None)
        return out

    async def _contexts_of(self, user_id: str, rooms: list[str], upto: int, read: RoomsRead | None
                           ) -> dict[str, tuple[PushContext, Any, tuple[Any, ...]]]:
        """Each room's push context and its signature: remembered where the build saw no
        state change (nor redaction) since it was read, else read (:meth:`contexts`)."""
        out: dict[str, tuple[PushContext, Any, tuple[Any, ...]]] = {}
        need: list[str] = []
        for room_id in rooms:
            known = self._contexts.get((user_id, room_id))
            if known is not None and read is not None and read.quiet(room_id, known.upto):
                known.upto = max(known.upto, upto)
                self._contexts.move_to_end((user_id, room_id))
                out[room_id] = (known.ctx, known.flat, known.signature)
            else:
                need.append(room_id)
        found = await self.contexts(user_id, need) if need else {}
        for room_id in need:
            ctx, flat = found[room_id]
            signature = (ctx.display_name, ctx.member_count, tuple(sorted(ctx.notification_levels.items())),
                         json.dumps(flat.get(("m.room.power_levels", ""), {}).get("content"), sort_keys=True))
            out[room_id] = (ctx, flat, signature)
            self._contexts[(user_id, room_id)] = _Context(ctx, flat, signature, upto)
            self._contexts.move_to_end((user_id, room_id))
            if len(self._contexts) > TALLY_SIZE:
                self._contexts.popitem(last=False)
        return out

    def _compile(self, rules_key: bytes, rules: dict[str, list[Any]]) -> CompiledRules:
        compiled = self._compiled.get(rules_key)
        if compiled is None:
            compiled = self._compiled[rules_key] = compile_rules(rules)
            if len(self._compiled) > COMPILED_RULE_SETS:
                self._compiled.popitem(last=False)
        else:
            self._compiled.move_to_end(rules_key)
        return compiled

    def _keep_tally(self, user_id: str, room_id: str, tally: _Tally | None) -> None:
        if tally is None:
            self._tallies.pop((user_id, room_id), None)
            return
        self._tallies[(user_id, room_id)] = tally
        self._tallies.move_to_end((user_id, room_id))
        if len(self._tallies) > TALLY_SIZE:
            self._tallies.popitem(last=False)
