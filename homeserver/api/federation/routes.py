"""Every route of the server-server API (spec, server-server-api.md), in one table."""

from __future__ import annotations

from starlette.routing import BaseRoute, Route

from homeserver.api.federation import keys, queries, transactions, user_keys, version

F1 = "/_matrix/federation/v1"
KEY = "/_matrix/key/v2"


def federation_routes() -> list[BaseRoute]:
    return [
        Route("/.well-known/matrix/server", version.well_known_server, methods=["GET"]),
        Route(F1 + "/version", version.version, methods=["GET"]),
        Route(KEY + "/server", keys.server_keys, methods=["GET"]),
        # Deprecated form with a key id (spec r0): the same document.
        Route(KEY + "/server/{key_id}", keys.server_keys, methods=["GET"]),
        Route(KEY + "/query/{server_name}", keys.query_one, methods=["GET"]),
        Route(KEY + "/query", keys.query_many, methods=["POST"]),
        Route(F1 + "/send/{txn_id}", transactions.send_transaction, methods=["PUT"]),
        Route(F1 + "/user/keys/query", user_keys.query_keys, methods=["POST"]),
        Route(F1 + "/user/keys/claim", user_keys.claim_keys, methods=["POST"]),
        Route(F1 + "/user/devices/{user_id}", user_keys.user_devices, methods=["GET"]),
        Route(F1 + "/query/profile", queries.query_profile, methods=["GET"]),
        Route(F1 + "/query/directory", queries.query_directory, methods=["GET"]),
    ]
