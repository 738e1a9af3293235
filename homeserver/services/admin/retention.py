"""Room history retention (``m.room.retention``, as Synapse implements it).

With ``[admin] retention_enabled`` the housekeeper deletes a room's messages
(non-state events) older than the room's ``max_lifetime`` (milliseconds, from
its ``m.room.retention`` state event) or, for rooms without one,
``[admin] retention_default_max_lifetime_days``.  State events are kept (they
define the room), and so is the room's latest event (new events refer to
it).  Media declared by a deleted message is deleted when nothing else uses
it.
"""

from __future__ import annotations

import logging
from typing import Any

from homeserver.services.clock import Clock
from homeserver.services.media import MediaService
from homeserver.storage.media import MediaRepository
from homeserver.storage.retention import RetentionRepository

logger = logging.getLogger(__name__)
DAY_MS = 86_400_000


def max_lifetime(content: dict[str, Any]) -> int | None:
    value = content.get("max_lifetime")
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    return None


class RetentionService:
    def __init__(self, repo: RetentionRepository, media: MediaService, media_repo: MediaRepository,
                 clock: Clock, enabled: bool, default_days: int) -> None:
        self.repo = repo
        self.media = media
        self.media_repo = media_repo
        self.clock = clock
        self.enabled = enabled
        self.default_ms = default_days * DAY_MS if default_days > 0 else None

    async def purge_room(self, room_id: str, cutoff_ts: int | None, before_pos: int | None = None,
                         keep_local: bool = False) -> int:
        """Delete a room's messages older than ``cutoff_ts`` / before ``before_pos`` (and their
        declared media nothing else uses); return how many."""
        deleted = 0
        while True:
            expired = await self.repo.expired_messages(room_id, cutoff_ts, before_pos, keep_local)
            if not expired:
                return deleted
            media: set[str] = set()
            for event_id in expired:
                media.update(await self.media_repo.refs_of_event(room_id, event_id))
                await self.media_repo.delete_event_refs(room_id, event_id)
            await self.repo.delete_events(room_id, expired)
            await self.media.delete_unreferenced(media)
            deleted += len(expired)

    async def purge_expired(self) -> int:
        """Housekeeping: delete expired messages in every room; return how many."""
        if not self.enabled:
            return 0
        policies = await self.repo.policies()
        rooms = await self.repo.live_rooms() if self.default_ms is not None else list(policies)
        now = self.clock.now_ms()
        deleted = 0
        for room_id in rooms:
            lifetime = max_lifetime(policies[room_id]) if room_id in policies else self.default_ms
            if lifetime is None:
                continue
            deleted += await self.purge_room(room_id, now - lifetime)
        if deleted:
            logger.info("retention: deleted %d expired message(s)", deleted)
        return deleted
