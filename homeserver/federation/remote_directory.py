"""Our clients' room aliases of other servers: ``GET /query/directory`` on the alias' server.

The spec ("Room Aliases", server-server API): a server resolves an alias it
does not own by asking the server in the alias (``GET
/_matrix/federation/v1/query/directory?room_alias=...``), which answers the
``room_id`` and the ``servers`` that are in the room.  Only that server may
speak for its aliases, so no other server is asked.
"""

from __future__ import annotations

from typing import Any

from common.errors import Codes, MatrixError
from common.identifiers import is_valid_server_name, parse_room_id
from homeserver.federation.client import FederationClient
from homeserver.federation.errors import RemoteError

JsonDict = dict[str, Any]
QUERY_TIMEOUT_S = 10.0
MAX_SERVERS = 50


class RemoteDirectory:
    def __init__(self, client: FederationClient) -> None:
        self.client = client

    async def resolve(self, server: str, alias: str) -> JsonDict:
        """``{"room_id", "servers"}`` for ``alias`` of ``server``; 404 when it has none."""
        try:
            answer = await self.client.request(server, "GET", "/_matrix/federation/v1/query/directory",
                                               query={"room_alias": alias}, timeout_s=QUERY_TIMEOUT_S)
        except RemoteError as exc:
            if exc.remote_status == 404:
                raise MatrixError(404, Codes.NOT_FOUND, f"Room alias {alias[:80]} not found") from None
            raise
        room_id = answer.get("room_id")
        servers = answer.get("servers")
        if not isinstance(room_id, str) or not isinstance(servers, list):
            raise MatrixError(502, Codes.UNKNOWN, f"{server[:255]}: its directory answer has no room_id or servers")
        try:
            parse_room_id(room_id)
        except MatrixError:
            raise MatrixError(502, Codes.UNKNOWN, f"{server[:255]}: its directory answer has an invalid room_id") from None
        known = [s for s in servers if isinstance(s, str) and is_valid_server_name(s)][:MAX_SERVERS]
        if not known:
            known = [server]  # it answered for the room, so it is the one to join through
        return {"room_id": room_id, "servers": known}
