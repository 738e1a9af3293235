"""Every route of the server-server API (spec, server-server-api.md), in one table."""

from __future__ import annotations

from starlette.routing import BaseRoute, Route

from homeserver.api.federation import (
    invites,
    keys,
    membership,
    queries,
    rooms,
    transactions,
    user_keys,
    version,
)

F1 = "/_matrix/federation/v1"
F2 = "/_matrix/federation/v2"
KEY = "/_matrix/key/v2"


def federation_routes() -> list[BaseRoute]:
    return [
        Route("/.well-known/matrix/server", version.well_known_server, methods=["GET"]),
        Route(F1 + "/version", version.version, methods=["GET"]),
        Route(KEY + "/server", keys.server_keys, methods=["GET"]),
        # Deprecated form with a key id (spec r0): the same document.
        Route(KEY + "/server/{key_id}", keys.server_keys, methods=["GET"]),
        Route(KEY + "/query/{server_name}", keys.query_one, methods=["GET"]),
        # Deprecated form with a key id (spec r0): the same answer.
        Route(KEY + "/query/{server_name}/{key_id}", keys.query_one, methods=["GET"]),
        Route(KEY + "/query", keys.query_many, methods=["POST"]),
        Route(F1 + "/send/{txn_id}", transactions.send_transaction, methods=["PUT"]),
        Route(F1 + "/user/keys/query", user_keys.query_keys, methods=["POST"]),
        Route(F1 + "/user/keys/claim", user_keys.claim_keys, methods=["POST"]),
        Route(F1 + "/user/devices/{user_id}", user_keys.user_devices, methods=["GET"]),
        Route(F1 + "/query/profile", queries.query_profile, methods=["GET"]),
        Route(F1 + "/query/directory", queries.query_directory, methods=["GET"]),
        Route(F1 + "/publicRooms", queries.public_rooms_get, methods=["GET"]),
        Route(F1 + "/publicRooms", queries.public_rooms_post, methods=["POST"]),
        # The room graph (api/federation/rooms.py).
        Route(F1 + "/event/{event_id}", rooms.get_event, methods=["GET"]),
        Route(F1 + "/state/{room_id}", rooms.get_state, methods=["GET"]),
        Route(F1 + "/state_ids/{room_id}", rooms.get_state_ids, methods=["GET"]),
        Route(F1 + "/event_auth/{room_id}/{event_id}", rooms.get_event_auth, methods=["GET"]),
        Route(F1 + "/backfill/{room_id}", rooms.backfill, methods=["GET"]),
        Route(F1 + "/get_missing_events/{room_id}", rooms.get_missing_events, methods=["POST"]),
        # Membership (api/federation/membership.py).
        Route(F1 + "/make_join/{room_id}/{user_id}", membership.make_join, methods=["GET"]),
        Route(F1 + "/send_join/{room_id}/{event_id}", membership.send_join_v1, methods=["PUT"]),
        Route(F2 + "/send_join/{room_id}/{event_id}", membership.send_join, methods=["PUT"]),
        Route(F1 + "/make_leave/{room_id}/{user_id}", membership.make_leave, methods=["GET"]),
        Route(F1 + "/send_leave/{room_id}/{event_id}", membership.send_leave_v1, methods=["PUT"]),
        Route(F2 + "/send_leave/{room_id}/{event_id}", membership.send_leave, methods=["PUT"]),
        Route(F1 + "/make_knock/{room_id}/{user_id}", membership.make_knock, methods=["GET"]),
        Route(F1 + "/send_knock/{room_id}/{event_id}", membership.send_knock, methods=["PUT"]),
        Route(F1 + "/invite/{room_id}/{event_id}", invites.invite_v1, methods=["PUT"]),
        Route(F2 + "/invite/{room_id}/{event_id}", invites.invite, methods=["PUT"]),
    ]
