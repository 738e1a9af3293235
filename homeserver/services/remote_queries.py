"""Asking other servers about their users' profiles and their public rooms (server-server API,
"Querying for information" and "Public Room Directory"; aliases: federation/remote_directory.py).

Used by the client API when a request names another server's user (``GET /profile/{userId}``) or
directory (``/publicRooms?server=``).
The remote's refusals come back as the Matrix error they stand for (a 404 stays a 404 with the
remote's errcode; an unreachable server is a 502); answers are checked for the documented shape.
"""

from __future__ import annotations

from typing import Any

from common.errors import Codes, MatrixError
from homeserver.services.federation_events import FederationRequester

JsonDict = dict[str, Any]
MAX_FIELD_LENGTH = 1000


class RemoteQueries:
    def __init__(self, requester: FederationRequester) -> None:
        self.requester = requester

    async def _get(self, server: str, path: str, query: dict[str, Any]) -> JsonDict:
        return await self.requester.request(server, "GET", path, query=query)

    async def profile(self, server: str, user_id: str, field: str | None) -> JsonDict:
        """``GET /query/profile``: the user's public profile, or one field of it."""
        query = {"user_id": user_id, **({"field": field} if field is not None else {})}
        answer = await self._get(server, "/_matrix/federation/v1/query/profile", query)
        out: JsonDict = {}
        for key in ("displayname", "avatar_url"):
            value = answer.get(key)
            if isinstance(value, str) and len(value) <= MAX_FIELD_LENGTH and (field is None or key == field):
                out[key] = value
        return out

    async def public_rooms(self, server: str, limit: int | None, since: str | None) -> JsonDict:
        """``GET /publicRooms`` of another server, passed on as it answered (chunk checked)."""
        query: dict[str, Any] = {}
        if limit is not None:
            query["limit"] = limit
        if since is not None:
            query["since"] = since
        answer = await self._get(server, "/_matrix/federation/v1/publicRooms", query)
        chunk = answer.get("chunk")
        if not isinstance(chunk, list):
            raise MatrixError(502, Codes.UNKNOWN, f"{server[:255]} answered /publicRooms without a chunk")
        out: JsonDict = {"chunk": [c for c in chunk if isinstance(c, dict) and isinstance(c.get("room_id"), str)]}
        for key in ("next_batch", "prev_batch"):
            if isinstance(answer.get(key), str):
                out[key] = answer[key]
        if isinstance(answer.get("total_room_count_estimate"), int):
            out["total_room_count_estimate"] = answer["total_room_count_estimate"]
        return out
