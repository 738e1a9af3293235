"""Messages: send (idempotent per device and transaction id), redact, /messages, /event, /context."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from common.errors import Codes, MatrixError
from common.identifiers import is_valid_event_id, is_valid_opaque_id
from homeserver.config import Config
from homeserver.services.auth import AccountStatus
from homeserver.services.event_auth import level_for, user_power
from homeserver.services.event_sender import StateCache, Txn
from homeserver.services.events import EventSpec, redact_content, redact_event
from homeserver.services.history_replay import visible_to
from homeserver.services.ratelimit import Limit, RateLimiter, overridden
from homeserver.services.rooms import NO_UPPER_BOUND, RoomService, check_event_type, check_room_id
from homeserver.services.sync_filter import (
    MAX_PAGINATION_LIMIT,
    RoomEventFilter,
    decode_position_token,
    encode_position_token,
)
from homeserver.storage.events import RoomWriter, StoredEvent

JsonDict = dict[str, Any]

# Requests for older history one /messages page may make (each adds what it got, or stops it).
MAX_BACKFILL_ROUNDS = 3

# Types that have their own endpoints.
_NOT_VIA_SEND = ("m.room.redaction", "m.room.member", "m.room.create")


class SendPolicy(Protocol):
    async def account_status(self, user_id: str) -> AccountStatus: ...


def check_txn_id(txn_id: str) -> str:
    if not is_valid_opaque_id(txn_id):
        raise MatrixError(400, Codes.INVALID_PARAM, "Invalid transaction id")
    return txn_id


class MessageService:
    def __init__(self, config: Config, rooms: RoomService, limiter: RateLimiter) -> None:
        self.rooms = rooms
        self.events = rooms.events
        self.sender = rooms.sender
        self.formatter = rooms.formatter
        self.limiter = limiter
        self.limit = Limit("messages", config.rate_limits.messages_per_minute)
        # Per-user policy (admin: rate-limit overrides, shadow bans); None = defaults.
        self.policy: SendPolicy | None = None
        # ``async (user_id) -> ignored user ids`` (m.ignored_user_list), set by the app.
        self.ignored_users: Callable[[str], Awaitable[set[str]]] | None = None
        # ``async (room_id, limit) -> events added``: history from other servers below the
        # room's oldest event (services/federation_backfill.py), set by the app.
        self.backfill: Callable[[str, int], Awaitable[int]] | None = None

    async def unignored(self, user_id: str, events: list[StoredEvent]) -> list[StoredEvent]:
        """Spec, "Ignoring Users": no events of ignored users except their state events."""
        ignored = await self.ignored_users(user_id) if self.ignored_users is not None else set()
        if not ignored:
            return events
        return [e for e in events if e.sender not in ignored or e.is_state]

    async def send(self, user_id: str, device_id: str, room_id: str, event_type: str, txn_id: str,
                   content: JsonDict, status: AccountStatus | None = None) -> str:
        """``status``: the account's shadow ban and rate-limit override as the request's
        authentication read them (looked up here when not given)."""
        check_room_id(room_id)
        check_event_type(event_type)
        check_txn_id(txn_id)
        if event_type in _NOT_VIA_SEND:
            raise MatrixError(400, Codes.INVALID_PARAM, f"{event_type} cannot be sent with /send")
        txn = Txn(user_id, device_id, txn_id)
        # The one lookup of the transaction id: a concurrent twin is caught by the
        # table's unique key inside the write (EventSender's DuplicateTxn).
        existing = await self.events.txn_event_id(user_id, device_id, txn_id)
        if existing is not None:
            return existing
        if status is None and self.policy is not None:
            status = await self.policy.account_status(user_id)
        limit: Limit | None = self.limit
        if status is not None:
            limit = overridden(self.limit, status.message_override)
            if status.shadow_banned:
                # The sender sees success; nobody else sees the event.
                await self.rooms.require_joined(user_id, room_id)
                return "$" + secrets.token_urlsafe(32)
        if limit is not None:
            await self.limiter.check(limit, user_id)
        stored = await self.sender.send(room_id, [EventSpec(event_type, user_id, content)], txn=txn)
        return stored[-1].event_id

    async def redact(self, user_id: str, device_id: str, room_id: str, event_id: str, txn_id: str,
                     reason: Any) -> str:
        check_room_id(room_id)
        check_txn_id(txn_id)
        if not is_valid_event_id(event_id):
            raise MatrixError(400, Codes.INVALID_PARAM, "Invalid event id")
        if reason is not None and (not isinstance(reason, str) or len(reason) > 1000):
            raise MatrixError(400, Codes.INVALID_PARAM, "reason must be a string of at most 1000 characters")
        existing = await self.events.txn_event_id(user_id, device_id, txn_id)
        if existing is not None:
            return existing
        await self.limiter.check(self.limit, user_id)
        target = await self.events.get(event_id)
        if target is None:
            raise MatrixError(404, Codes.NOT_FOUND, "Event not found")
        if target.room_id != room_id:
            raise MatrixError(400, Codes.INVALID_PARAM, "The event is not in this room")
        if target.type == "m.room.create":
            raise MatrixError(403, Codes.FORBIDDEN, "The room's m.room.create event cannot be redacted")
        original = dict(target.content)
        head = await self.events.room_head(room_id)
        version = head.room_version if head is not None else "11"

        def may_redact(spec: EventSpec, state: StateCache) -> None:
            if target.sender == user_id:
                return
            flat = {k: v.pdu for k, v in state.items()}
            if user_power(flat, user_id) < level_for(flat, "redact"):
                raise MatrixError(403, Codes.FORBIDDEN, "You may only redact your own events")

        async def apply(writer: RoomWriter, stored: list[StoredEvent]) -> None:
            redaction = stored[-1]
            pruned = redact_event(target.pdu, version)
            await writer.redact(target.event_id, pruned, redaction.event_id,
                                redact_content(target.type, target.content, version) if target.is_state else None)

        content: JsonDict = {"redacts": event_id}
        if reason is not None:
            content["reason"] = reason
        stored = await self.sender.send(
            room_id, [EventSpec("m.room.redaction", user_id, content)], txn=Txn(user_id, device_id, txn_id),
            precheck=may_redact, after=apply,
        )
        if stored[-1].sender == user_id and stored[-1].pdu.get("content", {}).get("redacts") == event_id:
            await self.rooms.fire_event_redacted(room_id, event_id, original)
        return stored[-1].event_id

    # ------------------------------------------------------------------ reads
    async def get_event(self, user_id: str, device_id: str, room_id: str, event_id: str) -> JsonDict:
        check_room_id(room_id)
        if not is_valid_event_id(event_id):
            raise MatrixError(404, Codes.NOT_FOUND, "Event not found")
        try:
            lower, upper = await self.rooms.visible_range(user_id, room_id)
        except MatrixError as exc:
            # Spec: 404 "if the user does not have permission to see the event" —
            # a room one cannot see answers like one that does not exist.
            raise MatrixError(404, Codes.NOT_FOUND, "Event not found") from exc
        event = await self.events.get(event_id)
        if (event is None or event.room_id != room_id or not lower < event.stream_pos <= upper
                or not await visible_to(self.events, room_id, user_id, [event])):
            raise MatrixError(404, Codes.NOT_FOUND, "Event not found")
        return await self.formatter.format_one(event, user_id, device_id)

    async def get_event_anywhere(self, user_id: str, device_id: str, event_id: str) -> JsonDict:
        """GET /events/{eventId}: like /rooms/{roomId}/event/{eventId}, the room found from the event."""
        event = await self.events.get(event_id) if is_valid_event_id(event_id) else None
        if event is None:
            raise MatrixError(404, Codes.NOT_FOUND, "Event not found")
        return await self.get_event(user_id, device_id, event.room_id, event_id)

    async def messages(self, user_id: str, device_id: str, room_id: str, from_token: str | None,
                       to_token: str | None, direction: str, limit: int, event_filter: RoomEventFilter) -> JsonDict:
        check_room_id(room_id)
        if direction not in ("b", "f"):
            raise MatrixError(400, Codes.INVALID_PARAM, "dir must be b or f")
        limit = max(0, min(limit, MAX_PAGINATION_LIMIT))
        if event_filter.limit is not None:
            limit = min(limit, event_filter.limit)
        lower, upper = await self.rooms.visible_range(user_id, room_id)
        if from_token is None:
            from_pos = NO_UPPER_BOUND if direction == "b" else 0
        else:
            from_pos = decode_position_token(from_token)
        to_pos = decode_position_token(to_token) if to_token is not None else None
        events = await self._page(room_id, from_pos, direction, limit, to_pos, lower, upper, event_filter)
        # Backwards past the oldest event held, where the user may read what came before it
        # (lower < 0: no history floor): ask the room's other servers for that history, read on.
        for _ in range(MAX_BACKFILL_ROUNDS):
            if (direction != "b" or len(events) >= limit or lower >= 0 or to_pos is not None
                    or self.backfill is None or not await self.backfill(room_id, limit - len(events))):
                break
            events = await self._page(room_id, from_pos, direction, limit, to_pos, lower, upper, event_filter)
        if from_token is None:
            start = "t0" if direction == "f" else self._latest_token(events, upper)
        else:
            start = from_token
        body: JsonDict = {"start": start}
        if events and len(events) >= limit:
            last = events[-1].stream_pos
            body["end"] = encode_position_token(last - 1 if direction == "b" else last)
        # Paging runs over every event (the tokens above); ignored users' ones are left out.
        events = await self.unignored(user_id, await visible_to(self.events, room_id, user_id, events))
        body["chunk"] = await self.formatter.format(events, user_id, device_id)
        if event_filter.lazy_load_members and events:
            body["state"] = await self._members_for(room_id, events)
        return body

    async def _page(self, room_id: str, from_pos: int, direction: str, limit: int, to_pos: int | None,
                    lower: int, upper: int, event_filter: RoomEventFilter) -> list[StoredEvent]:
        return await self.events.paginate(
            room_id, from_pos, direction, limit, to_pos, lower, upper,
            types=event_filter.types, not_types=event_filter.not_types,
            senders=event_filter.senders, not_senders=event_filter.not_senders,
        )

    @staticmethod
    def _latest_token(events: list[StoredEvent], upper: int) -> str:
        if events:
            return encode_position_token(events[0].stream_pos)
        return encode_position_token(0 if upper == NO_UPPER_BOUND else upper)

    async def _members_for(self, room_id: str, events: list[StoredEvent]) -> list[JsonDict]:
        senders = {e.sender for e in events}
        members = await self.events.member_events((room_id, s) for s in senders)
        return await self.formatter.format(list(members.values()))

    async def context(self, user_id: str, device_id: str, room_id: str, event_id: str, limit: int,
                      event_filter: RoomEventFilter) -> JsonDict:
        check_room_id(room_id)
        if not is_valid_event_id(event_id):
            raise MatrixError(404, Codes.NOT_FOUND, "Event not found")
        limit = max(0, min(limit, MAX_PAGINATION_LIMIT))
        # The spec names no error for /context; a room one may not read answers 403
        # like /messages (SyTest's "/context/ on non world readable room does not work").
        lower, upper = await self.rooms.visible_range(user_id, room_id)
        event = await self.events.get(event_id)
        if (event is None or event.room_id != room_id or not lower < event.stream_pos <= upper
                or not await visible_to(self.events, room_id, user_id, [event])):
            raise MatrixError(404, Codes.NOT_FOUND, "Event not found")
        before_n = limit // 2
        after_n = limit - before_n
        kwargs: dict[str, Any] = {
            "types": event_filter.types, "not_types": event_filter.not_types,
            "senders": event_filter.senders, "not_senders": event_filter.not_senders,
        }
        before = await self.events.paginate(room_id, event.stream_pos - 1, "b", before_n, None, lower, upper,
                                            **kwargs)
        after = await self.events.paginate(room_id, event.stream_pos, "f", after_n, None, lower, upper, **kwargs)
        start = encode_position_token((before[-1].stream_pos if before else event.stream_pos) - 1)
        end = encode_position_token(after[-1].stream_pos if after else event.stream_pos)
        # The spec: the state of the room at the last event returned (from the graph, not current state).
        last = after[-1] if after else event
        before = await self.unignored(user_id, await visible_to(self.events, room_id, user_id, before))
        after = await self.unignored(user_id, await visible_to(self.events, room_id, user_id, after))
        state = await self.events.state_at_group(last.state_group)
        if event_filter.lazy_load_members:
            senders = {e.sender for e in [event, *before, *after]}
            state = [s for s in state if s.type != "m.room.member" or s.state_key in senders]
        return {
            "event": await self.formatter.format_one(event, user_id, device_id),
            "events_before": await self.formatter.format(before, user_id, device_id),
            "events_after": await self.formatter.format(after, user_id, device_id),
            "start": start,
            "end": end,
            "state": await self.formatter.format(state),
        }

