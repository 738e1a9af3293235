"""History from before this server was in a room: ``/backfill`` from the room's other servers
(server-server API, "Backfilling and retrieving missing events").

When a local user pages backwards (``/messages``, ``dir=b``) past the oldest
event this server has, the room's *backward extremities* (events the room's
stream names as prev events without holding them) are asked of a server with
joined members: ``GET /_matrix/federation/v1/backfill/{roomId}?v=...&limit=...``.
Each event of the answer is checked as an outlier (format, signatures, content
hash -> redacted, its own auth events, fetched with ``event_auth`` when this
server lacks them; a rejected event is not shown) and then put into the room's
stream below everything there (:mod:`homeserver.storage.history`).
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

from common.errors import MatrixError
from homeserver.services.event_auth import server_of
from homeserver.services.events import compute_event_id
from homeserver.services.federation_events import FederationEvents
from homeserver.services.incoming import MissingEvents
from homeserver.services.room_versions import ROOM_VERSIONS, RoomVersion
from homeserver.storage.history import HistoryRepository

logger = logging.getLogger(__name__)
JsonDict = dict[str, Any]
MAX_BACKFILL = 100
MAX_EXTREMITIES = 20
MAX_SERVERS = 3


def _depth(pdu: JsonDict) -> int:
    depth = pdu.get("depth")
    return depth if isinstance(depth, int) and not isinstance(depth, bool) else 0


class Backfiller:
    def __init__(self, federation: FederationEvents, history: HistoryRepository, server_name: str) -> None:
        self.federation = federation
        self.incoming = federation.incoming
        self.history = history
        self.server_name = server_name

    async def backfill(self, room_id: str, limit: int) -> int:
        """Up to ``limit`` events older than what the room holds; how many were added to it."""
        head = await self.incoming.events.room_head(room_id)
        if head is None or head.purged or head.room_version not in ROOM_VERSIONS:
            return 0
        joined = await self.incoming.events_joined(room_id)
        domain = room_id.partition(":")[2]
        servers = sorted({server_of(u) for u in joined} - {self.server_name},
                         key=lambda s: (s != domain, s))[:MAX_SERVERS]
        if not servers:
            return 0
        extremities = await self.history.backward_extremities(room_id, MAX_EXTREMITIES)
        if not extremities:
            return 0
        version = ROOM_VERSIONS[head.room_version]
        for server in servers:
            try:
                answer = await self.federation.call(
                    server, "GET", f"/_matrix/federation/v1/backfill/{quote(room_id, safe='')}",
                    query={"v": extremities, "limit": str(max(1, min(limit, MAX_BACKFILL)))})
            except MatrixError as exc:
                logger.info("backfill of %s from %s failed: %s", room_id, server, exc.message)
                continue
            pdus = answer.get("pdus")
            if isinstance(pdus, list):
                return await self._store(server, version, room_id, [p for p in pdus if isinstance(p, dict)])
        return 0

    async def _store(self, origin: str, version: RoomVersion, room_id: str, pdus: list[JsonDict]) -> int:
        ids = []
        for pdu in sorted(pdus[:MAX_BACKFILL], key=_depth):  # auth events (older) before what they authorise
            try:
                event_id = compute_event_id(pdu, version)
            except (ValueError, KeyError, TypeError):
                continue
            for attempt in range(2):
                try:
                    await self.incoming.receive_outlier(version.identifier, pdu)
                    ids.append(event_id)
                    break
                except MissingEvents:
                    if attempt == 0:
                        try:
                            await self.federation.fetch_auth_chain(origin, version, pdu)
                        except MatrixError as exc:
                            logger.info("auth events of backfilled %s not fetched: %s", event_id, exc.message)
                            break
                except MatrixError as exc:
                    logger.info("a backfilled event was refused: %s", exc.message)
                    break
        return await self.history.insert(room_id, ids)
