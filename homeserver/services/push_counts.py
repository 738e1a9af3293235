"""``notification_count`` and ``highlight_count`` from the user's push rules: each
unread event is evaluated (:mod:`push_eval`) as far as its visible outside allows.

Every /sync asks for the counts of the same unread events again, so outcomes are
remembered (bounded, least recently used first out) under everything they depend
on: the user's rules, the event (its id: stored PDUs do not change, and redacted
events are not counted; a PDU is decoded only when first evaluated), the user's
display name, the room's member count, the sender's
power and the room's notification levels.  A change to any of these is a new key.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from typing import Any

from homeserver.services.event_auth import user_power
from homeserver.services.push_eval import PushContext, evaluate
from homeserver.services.push_rules import PushRuleService
from homeserver.storage.events import EventRepository
from homeserver.storage.receipts import ReceiptRepository
from homeserver.storage.rooms import RoomRepository

# Unread events evaluated per room; older unread ones count as notifying.
MAX_EVALUATED = 200
# Remembered outcomes (about 200 bytes each).
MEMO_SIZE = 50_000

MemoKey = tuple[bytes, str, str, str | None, int, int, tuple[tuple[str, int], ...]]  # see _outcome


class PushCounter:
    def __init__(self, push_rules: PushRuleService, receipts: ReceiptRepository, events: EventRepository,
                 rooms: RoomRepository) -> None:
        self.push_rules = push_rules
        self.receipts = receipts
        self.events = events
        self.rooms = rooms
        self._memo: OrderedDict[MemoKey, tuple[bool, bool]] = OrderedDict()

    def _outcome(self, rules_key: bytes, rules: dict[str, list[Any]], event_id: str, pdu_text: str,
                 ctx: PushContext) -> tuple[bool, bool]:
        # Event ids are unique and stored PDUs do not change: the PDU is decoded only once.
        key: MemoKey = (rules_key, ctx.user_id, event_id, ctx.display_name, ctx.member_count, ctx.sender_power,
                        tuple(sorted(ctx.notification_levels.items())))
        found = self._memo.get(key)
        if found is not None:
            self._memo.move_to_end(key)
            return found
        outcome = evaluate(rules, json.loads(pdu_text), ctx)
        result = (outcome.notify, outcome.highlight)
        self._memo[key] = result
        if len(self._memo) > MEMO_SIZE:
            self._memo.popitem(last=False)
        return result

    async def context(self, user_id: str, room_id: str, member_count: int) -> tuple[PushContext, Any]:
        state = await self.events.current_state([room_id], ["m.room.power_levels", "m.room.create"])
        flat = {(e.type, e.state_key or ""): e.pdu for e in state[room_id]}
        me = await self.events.state_event(room_id, "m.room.member", user_id)
        name = me.content.get("displayname") if me is not None else None
        power = (flat.get(("m.room.power_levels", "")) or {}).get("content") or {}
        raw = power.get("notifications")
        levels: dict[str, Any] = raw if isinstance(raw, dict) else {}
        ctx = PushContext(user_id, name if isinstance(name, str) else None, member_count, 0,
                          {k: v for k, v in levels.items() if isinstance(v, int)} or {"room": 50})
        return ctx, flat

    async def counts(self, user_id: str, room_ids: list[str], upto: int,
                     unread: dict[str, int]) -> dict[str, tuple[int, int]]:
        """(notification_count, highlight_count) per room with unread events."""
        rooms = [r for r in room_ids if unread.get(r, 0) > 0]
        if not rooms:
            return {}
        rules = await self.push_rules.rules(user_id)
        rules_key = hashlib.blake2b(json.dumps(rules, sort_keys=True, separators=(",", ":")).encode(),
                                    digest_size=16).digest()
        events = await self.receipts.unread_events(user_id, rooms, upto, MAX_EVALUATED)
        members = await self.rooms.member_counts(rooms)
        out: dict[str, tuple[int, int]] = {}
        for room_id in rooms:
            ctx, flat = await self.context(user_id, room_id, members.get(room_id, {}).get("join", 0))
            notify = highlight = 0
            for event_id, sender, pdu_text in events.get(room_id, []):
                event_ctx = PushContext(ctx.user_id, ctx.display_name, ctx.member_count,
                                        user_power(flat, sender), ctx.notification_levels)
                notified, highlighted = self._outcome(rules_key, rules, event_id, pdu_text, event_ctx)
                notify += notified
                highlight += highlighted
            notify += max(0, unread[room_id] - len(events.get(room_id, [])))
            out[room_id] = (notify, highlight)
        return out
