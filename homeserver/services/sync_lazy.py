"""Lazy-loaded members: which membership events a device already holds, per sync token.

With ``lazy_load_members`` (and not ``include_redundant_members``) the spec
lets a server skip membership events the client was already sent
("Lazy-loading room members").  What a client holds depends on which
response it received, so the memory is keyed by the ``next_batch`` token of
that response: a sync from token ``T`` starts from what the response that
gave ``T`` sent, and a retried request (the response was lost) starts from
the same point again, never from what the lost response carried.

The memory is per process and bounded (a few tokens per device, a bounded
number of devices, least recently used first out).  A token it does not
know (another instance answered the earlier sync, a restart, eviction)
starts from nothing: the client is then sent redundant membership events,
which is always allowed, never too few.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable

# room id -> member user id -> event id of the membership event the device holds
Knowledge = dict[str, dict[str, str]]

TOKENS_PER_DEVICE = 4
MAX_DEVICES = 10_000


class LazyMembersSent:
    def __init__(self, max_devices: int = MAX_DEVICES, tokens_per_device: int = TOKENS_PER_DEVICE) -> None:
        self.max_devices = max_devices
        self.tokens_per_device = tokens_per_device
        self._by_device: OrderedDict[tuple[str, str], OrderedDict[str, Knowledge]] = OrderedDict()

    def known(self, user_id: str, device_id: str, token: str | None) -> Knowledge | None:
        """What the response that gave ``token`` left the device holding (``{}`` for an initial sync)."""
        if token is None:
            return {}
        tokens = self._by_device.get((user_id, device_id))
        if tokens is None or token not in tokens:
            return None
        self._by_device.move_to_end((user_id, device_id))
        return tokens[token]

    def remember(self, user_id: str, device_id: str, token: str, knowledge: Knowledge) -> None:
        key = (user_id, device_id)
        tokens = self._by_device.get(key)
        if tokens is None:
            tokens = self._by_device[key] = OrderedDict()
        earlier = tokens.get(token)
        if earlier is not None and earlier is not knowledge:
            # Two responses ended at the same token: keep only what both sent.
            knowledge = _intersection(earlier, knowledge)
        tokens[token] = knowledge
        tokens.move_to_end(token)
        while len(tokens) > self.tokens_per_device:
            tokens.popitem(last=False)
        self._by_device.move_to_end(key)
        while len(self._by_device) > self.max_devices:
            self._by_device.popitem(last=False)

    def forget_device(self, user_id: str, device_id: str) -> None:
        self._by_device.pop((user_id, device_id), None)


def _intersection(a: Knowledge, b: Knowledge) -> Knowledge:
    out: Knowledge = {}
    for room_id, members in a.items():
        other = b.get(room_id)
        if other is None:
            continue
        common = {m: e for m, e in members.items() if other.get(m) == e}
        if common:
            out[room_id] = common
    return out


class KnowledgeBuilder:
    """The knowledge after one response, built from the knowledge before it.

    Rooms the response does not touch share their member maps with the
    earlier knowledge (they are never modified in place).
    """

    def __init__(self, before: Knowledge | None) -> None:
        self.before: Knowledge = before if before is not None else {}
        self._after: Knowledge = dict(self.before)
        self._copied: set[str] = set()
        self._reset: set[str] = set()

    def holds(self, room_id: str, member: str, event_id: str) -> bool:
        """Did the device hold this membership event before this response?"""
        return room_id not in self._reset and self.before.get(room_id, {}).get(member) == event_id

    def reset_room(self, room_id: str) -> None:
        """The room is sent afresh (newly joined, full state): forget what was held."""
        self._after[room_id] = {}
        self._copied.add(room_id)
        self._reset.add(room_id)

    def drop_room(self, room_id: str) -> None:
        self._after.pop(room_id, None)
        self._copied.discard(room_id)

    def sent(self, room_id: str, members: Iterable[tuple[str, str]]) -> None:
        """``(member, event_id)`` pairs of membership events sent, in stream order."""
        room = self._after.get(room_id)
        if room_id not in self._copied:
            room = dict(room) if room is not None else {}
            self._after[room_id] = room
            self._copied.add(room_id)
        assert room is not None
        for member, event_id in members:
            room[member] = event_id

    def result(self) -> Knowledge:
        return self._after
