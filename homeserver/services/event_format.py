"""Stored events to the client-facing ClientEvent shape (batching the redaction look-ups)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from homeserver.services.clock import Clock
from homeserver.services.events import client_event
from homeserver.storage.events import EventRepository, StoredEvent

JsonDict = dict[str, Any]


class EventFormatter:
    def __init__(self, events: EventRepository, clock: Clock) -> None:
        self.events = events
        self.clock = clock

    async def format(self, events: Sequence[StoredEvent], user_id: str | None = None,
                     device_id: str | None = None, federation: bool = False) -> list[JsonDict]:
        """ClientEvents; ``transaction_id`` only for the requesting device's own events.

        ``federation``: the filter's ``event_format: federation`` — each event as its
        PDU (``prev_events``, ``auth_events``, ``depth``, ``hashes``, ``signatures``...)
        with its ``event_id`` (room versions 3+ do not carry it) and the same ``unsigned``.
        """
        redactor_ids = [e.redacted_by for e in events if e.redacted_by]
        redactions = await self.events.get_many(redactor_ids) if redactor_ids else {}
        now = self.clock.now_ms()
        out = []
        for event in events:
            formatted = self._one(event, user_id, device_id, now, redactions)
            if federation:
                formatted = {**event.pdu, "event_id": event.event_id, "unsigned": formatted["unsigned"]}
            out.append(formatted)
        return out

    async def format_one(self, event: StoredEvent, user_id: str | None = None,
                         device_id: str | None = None) -> JsonDict:
        return (await self.format([event], user_id, device_id))[0]

    def _one(self, event: StoredEvent, user_id: str | None, device_id: str | None, now: int,
             redactions: dict[str, StoredEvent]) -> JsonDict:
        unsigned: JsonDict = {}
        if (
            event.txn_id is not None
            and user_id is not None
            and event.sender == user_id
            and event.txn_device == device_id
        ):
            unsigned["transaction_id"] = event.txn_id
        if event.replaces_state is not None:
            unsigned["replaces_state"] = event.replaces_state
            if event.prev_content is not None:
                unsigned["prev_content"] = event.prev_content
            if event.prev_sender is not None:
                unsigned["prev_sender"] = event.prev_sender
        if event.redacted_by is not None:
            # redacted_because is the spec's; redacted_by (its id) is what Synapse adds too, and
            # what SyTest and some clients read.
            unsigned["redacted_by"] = event.redacted_by
            redaction = redactions.get(event.redacted_by)
            if redaction is not None:
                unsigned["redacted_because"] = client_event(redaction.pdu, redaction.event_id, now,
                                                               room_id=redaction.room_id)
            else:
                unsigned["redacted_because"] = {"event_id": event.redacted_by}
        return client_event(event.pdu, event.event_id, now, unsigned, room_id=event.room_id)
