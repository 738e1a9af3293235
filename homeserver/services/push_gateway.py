"""The HTTP pusher: after an event is committed, every member with a pusher whose push
rules say ``notify`` gets a notification posted to their push gateway (Push Gateway
API, ``POST /_matrix/push/v1/notify``).

Delivery runs in the background, never delaying the send.  A gateway that fails
(network error, 5xx, 429) is retried with exponential back-off; pushkeys the
gateway reports as ``rejected`` are removed (spec: the pusher is then deleted).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from homeserver.services.event_auth import user_power
from homeserver.services.push_counts import PushCounter
from homeserver.services.push_eval import PushContext, evaluate
from homeserver.storage.events import EventRepository, StoredEvent
from homeserver.storage.pushers import PusherRepository, PusherRow
from homeserver.storage.rooms import RoomRepository

logger = logging.getLogger(__name__)

JsonDict = dict[str, Any]

MAX_ATTEMPTS = 5
FIRST_RETRY_S = 0.5
TIMEOUT_S = 10.0


@dataclass(frozen=True)
class RoomNames:
    """What a push says about the room and the sender (spec, Push Gateway API)."""

    room_name: str | None = None
    room_alias: str | None = None
    sender_display_name: str | None = None


def notification(event: StoredEvent, pusher: JsonDict, tweaks: JsonDict, unread: int,
                 names: RoomNames) -> JsonDict:
    data = {k: v for k, v in (pusher.get("data") or {}).items() if k != "url"}
    device = {"app_id": pusher["app_id"], "pushkey": pusher["pushkey"], "data": data, "tweaks": tweaks,
              "pushkey_ts": int(pusher.get("pushkey_ts", 0))}
    body: JsonDict = {"event_id": event.event_id, "room_id": event.room_id, "counts": {"unread": unread},
                      "devices": [device], "prio": "high" if tweaks.get("sound") or tweaks.get("highlight") else "low"}
    if (pusher.get("data") or {}).get("format") != "event_id_only":
        # "id" (the event id again) and "membership" are not in the Push Gateway API;
        # Synapse sends them and gateways written against it (SyTest's too) read them.
        body.update(id=event.event_id, type=event.type, sender=event.sender, content=event.content)
        if event.state_key is not None:
            body["user_is_target"] = event.state_key == pusher.get("user_id")
        if event.membership is not None:
            body["membership"] = event.membership
        for key in ("room_name", "room_alias", "sender_display_name"):
            value = getattr(names, key)
            if value:
                body[key] = value
    return {"notification": body}


def _tweaks(actions: list[Any]) -> JsonDict:
    tweaks: JsonDict = {}
    for action in actions:
        if isinstance(action, dict) and isinstance(action.get("set_tweak"), str):
            tweaks[action["set_tweak"]] = action.get("value", True)
    return tweaks


class PushDispatcher:
    def __init__(self, pushers: PusherRepository, rooms: RoomRepository, counter: PushCounter,
                 events: EventRepository, client: httpx.AsyncClient | None = None,
                 verify: ssl.SSLContext | bool = True) -> None:
        self.pushers = pushers
        self.rooms = rooms
        self.events = events
        self.counter = counter
        self.client = client or httpx.AsyncClient(timeout=TIMEOUT_S, verify=verify)
        self._tasks: set[asyncio.Task[None]] = set()

    async def on_committed(self, room_id: str, events: Sequence[StoredEvent], members: Sequence[str]) -> None:
        """EventSender listener: find who should be pushed; deliver in the background.

        The events are committed already: a failure here must not fail the send
        (the client would retry an event that exists), so it is logged."""
        try:
            await self._dispatch(room_id, events, members)
        except Exception:
            logger.exception("could not prepare pushes for room %s", room_id)

    async def _dispatch(self, room_id: str, events: Sequence[StoredEvent], members: Sequence[str]) -> None:
        invited = [e.state_key for e in events if e.membership == "invite" and e.state_key]
        rows = await self.pushers.for_users(sorted({*members, *invited}))
        if not rows:
            return
        room_state = {e.type: e.content for e in (await self.events.current_state(
            [room_id], ["m.room.name", "m.room.canonical_alias"]))[room_id]}
        name = room_state.get("m.room.name", {}).get("name")
        alias = room_state.get("m.room.canonical_alias", {}).get("alias")
        alias = alias if isinstance(alias, str) and alias else None
        senders = await self.events.member_events((room_id, e.sender) for e in events)

        def names(event: StoredEvent) -> RoomNames:
            member = senders.get((room_id, event.sender))
            display = member.content.get("displayname") if member is not None else None
            return RoomNames(name if isinstance(name, str) and name else alias, alias,
                             display if isinstance(display, str) else None)

        by_user: dict[str, list[PusherRow]] = {}
        for row in rows:
            by_user.setdefault(row.user_id, []).append(row)
        for user_id, pushers in by_user.items():
            rules = await self.counter.push_rules.rules(user_id)
            ctx, flat = await self.counter.context(user_id, room_id, len(members))
            for event in events:
                event_ctx = PushContext(user_id, ctx.display_name, ctx.member_count,
                                        user_power(flat, event.sender), ctx.notification_levels)
                outcome = evaluate(rules, event.pdu, event_ctx)
                if not outcome.notify:
                    continue
                unread = (await self.counter.receipts.unread_counts(user_id, [room_id], event.stream_pos)).get(
                    room_id, 0)
                for row in pushers:
                    pusher = {**row.pusher, "user_id": user_id, "pushkey_ts": row.updated_ts // 1000}
                    body = notification(event, pusher, _tweaks(outcome.actions),
                                        unread, names(event))
                    self._spawn(self._deliver(user_id, row.pusher, body))

    async def on_read(self, user_id: str, room_id: str) -> None:
        """ReceiptService listener: a badge-only push with the user's new unread count
        (spec, Push Gateway API: a notification with only ``counts`` and ``devices``), so
        that phones clear the badge once the messages were read elsewhere."""
        del room_id
        try:
            rows = await self.pushers.for_users([user_id])
            if not rows:
                return
            rooms = await self.rooms.joined_room_ids(user_id)
            counts = await self.counter.receipts.unread_counts(user_id, rooms, 2**62)
            unread = sum(counts.values())
            for row in rows:
                data = {k: v for k, v in (row.pusher.get("data") or {}).items() if k != "url"}
                device = {"app_id": row.pusher["app_id"], "pushkey": row.pusher["pushkey"], "data": data,
                          "pushkey_ts": row.updated_ts // 1000}
                body = {"notification": {"counts": {"unread": unread}, "devices": [device], "prio": "low"}}
                self._spawn(self._deliver(user_id, row.pusher, body))
        except Exception:
            logger.exception("could not prepare a badge update for %s", user_id)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, user_id: str, pusher: JsonDict, body: JsonDict) -> None:
        url = str((pusher.get("data") or {}).get("url"))
        delay = FIRST_RETRY_S
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                response = await self.client.post(url, json=body)
                if response.status_code < 500 and response.status_code != 429:
                    rejected = response.json().get("rejected", []) if response.status_code == 200 else []
                    if isinstance(rejected, list) and pusher["pushkey"] in rejected:
                        await self.pushers.delete(user_id, pusher["app_id"], pusher["pushkey"])
                    return
            except (httpx.HTTPError, ValueError) as exc:
                logger.info("push to %s failed (attempt %d): %s", url, attempt, exc)
            if attempt < MAX_ATTEMPTS:
                await asyncio.sleep(delay)
                delay *= 2
        logger.warning("giving up pushing to %s after %d attempts", url, MAX_ATTEMPTS)

    async def drain(self) -> None:
        """Wait for deliveries in flight (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)
        await self.client.aclose()
