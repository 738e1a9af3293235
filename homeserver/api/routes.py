"""Every route of the homeserver, in one table.

Each area module holds the handlers; this table is the only place that maps
paths to them, so the whole API surface can be read at a glance.
"""

from __future__ import annotations

from starlette.routing import BaseRoute, Route

from homeserver.api import health
from homeserver.api.admin.routes import admin_routes
from homeserver.api.client import (
    account,
    account_data,
    cross_signing,
    devices,
    directory,
    filters,
    key_backup,
    keys,
    login,
    media,
    messages,
    notifications,
    openid,
    pairing,
    presence,
    profile,
    push_rules,
    pushers,
    receipts,
    register,
    room_directory,
    room_versions,
    rooms,
    search,
    spaces,
    sync,
    sync_v1,
    thirdparty,
    threepids,
    to_device,
    versions,
)
from homeserver.api.client import typing as typing_api
from homeserver.api.federation.routes import federation_routes

C1 = "/_matrix/client/v1"
C3 = "/_matrix/client/v3"
CR0 = "/_matrix/client/r0"
UNSTABLE = "/_matrix/client/unstable/im.parley"
CU = "/_matrix/client/unstable"


def _both(path: str, endpoint: object, methods: list[str]) -> list[BaseRoute]:
    """Serve a v3 path also under the legacy r0 prefix some clients still use."""
    return [
        Route(C3 + path, endpoint, methods=methods),  # type: ignore[arg-type]
        Route(CR0 + path, endpoint, methods=methods),  # type: ignore[arg-type]
    ]


def client_routes() -> list[BaseRoute]:
    return [
        Route("/_matrix/client/versions", versions.versions, methods=["GET"]),
        Route("/.well-known/matrix/client", versions.well_known_client, methods=["GET"]),
        # Accounts
        *_both("/register", register.register, ["POST"]),
        *_both("/register/available", register.available, ["GET"]),
        *_both("/register/email/requestToken", register.email_request_token, ["POST"]),
        Route(UNSTABLE + "/email/submitToken", register.email_submit_token, methods=["POST"]),
        Route(UNSTABLE + "/email/submitToken", register.email_submit_link, methods=["GET"]),
        *_both("/login", login.login_flows, ["GET"]),
        *_both("/login", login.login, ["POST"]),
        Route(UNSTABLE + "/login/challenge", login.login_challenge, methods=["POST"]),
        Route(UNSTABLE + "/account/login_key", login.set_login_key, methods=["PUT"]),
        *_both("/logout", login.logout, ["POST"]),
        *_both("/logout/all", login.logout_all, ["POST"]),
        *_both("/account/whoami", login.whoami, ["GET"]),
        # Devices
        *_both("/devices", devices.list_devices, ["GET"]),
        *_both("/devices/{device_id}", devices.get_device, ["GET"]),
        *_both("/devices/{device_id}", devices.update_device, ["PUT"]),
        *_both("/devices/{device_id}", devices.delete_device, ["DELETE"]),
        *_both("/delete_devices", devices.delete_devices, ["POST"]),
        *core_routes(),
        *people_routes(),
        *key_routes(),
        *extras_routes(),
        *cs_api_routes(),
    ]


def core_routes() -> list[BaseRoute]:
    """Rooms, membership, messages, /sync, to-device (issue 4, core)."""
    r = "/rooms/{room_id}"
    state = r + "/state/{event_type}"
    return [
        *_both("/createRoom", rooms.create_room, ["POST"]),
        *_both("/joined_rooms", rooms.joined_rooms, ["GET"]),
        *_both("/join/{room_id_or_alias}", rooms.join, ["POST"]),
        *_both(r + "/join", rooms.join_room_id, ["POST"]),
        *_both(r + "/invite", rooms.invite, ["POST"]),
        *_both(r + "/leave", rooms.leave, ["POST"]),
        *_both(r + "/forget", rooms.forget, ["POST"]),
        *_both(r + "/kick", rooms.kick, ["POST"]),
        *_both(r + "/ban", rooms.ban, ["POST"]),
        *_both(r + "/unban", rooms.unban, ["POST"]),
        Route(UNSTABLE + r + "/destroy", rooms.destroy, methods=["POST"]),
        *_both(r + "/state", rooms.get_state, ["GET"]),
        *_both(state, rooms.get_state_event, ["GET"]),
        *_both(state, rooms.put_state_event, ["PUT"]),
        *_both(state + "/{state_key:path}", rooms.get_state_event, ["GET"]),
        *_both(state + "/{state_key:path}", rooms.put_state_event, ["PUT"]),
        *_both(r + "/members", rooms.members, ["GET"]),
        *_both(r + "/joined_members", rooms.joined_members, ["GET"]),
        *_both(r + "/send/{event_type}/{txn_id}", messages.send, ["PUT"]),
        *_both(r + "/redact/{event_id:path}/{txn_id}", messages.redact, ["PUT"]),
        # Legacy forms without a transaction id (Synapse serves them; not in the current spec).
        *_both(r + "/send/{event_type}", messages.send_legacy, ["POST"]),
        *_both(r + "/redact/{event_id:path}", messages.redact, ["POST"]),
        *_both(r + "/messages", messages.messages, ["GET"]),
        *_both(r + "/event/{event_id:path}", messages.get_event, ["GET"]),
        *_both(r + "/context/{event_id:path}", messages.context, ["GET"]),
        *_both(r + "/upgrade", room_versions.upgrade, ["POST"]),
        *_both("/knock/{room_id_or_alias}", room_versions.knock, ["POST"]),
        *_both("/sync", sync.sync, ["GET"]),
        *_both("/sendToDevice/{event_type}/{txn_id}", to_device.send_to_device, ["PUT"]),
    ]


def key_routes() -> list[BaseRoute]:
    """End-to-end keys, room key backup, device pairing (issue 5)."""
    rk = "/room_keys/keys"
    return [
        *_both("/keys/upload", keys.upload_keys, ["POST"]),
        Route(CR0 + "/keys/upload/{device_id}", keys.upload_keys_for_device, methods=["POST"]),
        *_both("/keys/query", keys.query_keys, ["POST"]),
        *_both("/keys/claim", keys.claim_keys, ["POST"]),
        *_both("/keys/changes", keys.key_changes, ["GET"]),
        *_both("/room_keys/version", key_backup.create_version, ["POST"]),
        *_both("/room_keys/version", key_backup.get_current_version, ["GET"]),
        *_both("/room_keys/version/{version}", key_backup.get_version, ["GET"]),
        *_both("/room_keys/version/{version}", key_backup.update_version, ["PUT"]),
        *_both("/room_keys/version/{version}", key_backup.delete_version, ["DELETE"]),
        *[r for p in (rk, rk + "/{room_id}", rk + "/{room_id}/{session_id}") for r in (
            *_both(p, key_backup.put_keys, ["PUT"]),
            *_both(p, key_backup.get_keys, ["GET"]),
            *_both(p, key_backup.delete_keys, ["DELETE"]),
        )],
        Route(UNSTABLE + "/pairing/start", pairing.start, methods=["POST"]),
        Route(UNSTABLE + "/pairing/claim", pairing.claim, methods=["POST"]),
        Route(UNSTABLE + "/pairing/send", pairing.send, methods=["POST"]),
        Route(UNSTABLE + "/pairing/poll", pairing.poll, methods=["POST"]),
    ]


def _media(path: str, endpoint: object, methods: list[str], legacy: bool = True) -> list[BaseRoute]:
    """A media path under /_matrix/client/v1/media and (legacy) /_matrix/media/v3 and r0."""
    prefixes = ["/_matrix/client/v1/media"] + (["/_matrix/media/v3", "/_matrix/media/r0"] if legacy else [])
    return [Route(p + path, endpoint, methods=methods) for p in prefixes]  # type: ignore[arg-type]


def people_routes() -> list[BaseRoute]:
    """Media, profiles, finding people (issue 6)."""
    dl = "/download/{server_name}/{media_id}"
    return [
        Route("/_matrix/media/v3/upload", media.upload, methods=["POST"]),
        Route("/_matrix/media/r0/upload", media.upload, methods=["POST"]),
        Route("/_matrix/media/v3/upload/{server_name}/{media_id}", media.upload_to, methods=["PUT"]),
        Route("/_matrix/media/v1/create", media.create, methods=["POST"]),
        *_media("/config", media.media_config, ["GET"]),
        *_media(dl, media.download, ["GET"]),
        *_media(dl + "/", media.download, ["GET"]),
        # :path: matrix-nio puts the caller's file name here, an encoded "/" included.
        *_media(dl + "/{file_name:path}", media.download, ["GET"]),
        *_media("/thumbnail/{server_name}/{media_id}", media.thumbnail, ["GET"]),
        Route(UNSTABLE + "/media/attach", media.attach, methods=["POST"]),
        Route(UNSTABLE + "/media/delete", media.delete_own, methods=["POST"]),
        *_both("/profile/{user_id}", profile.get_profile, ["GET"]),
        *_both("/profile/{user_id}/{key_name}", profile.get_field, ["GET"]),
        *_both("/profile/{user_id}/{key_name}", profile.set_field, ["PUT"]),
        *_both("/profile/{user_id}/{key_name}", profile.delete_field, ["DELETE"]),
        Route(UNSTABLE + "/profile/visibility", profile.get_visibility, methods=["GET"]),
        Route(UNSTABLE + "/profile/visibility", profile.set_visibility, methods=["PUT"]),
        Route(UNSTABLE + "/lookup/email", directory.lookup_email, methods=["POST"]),
        *_both("/user_directory/search", directory.search, ["POST"]),
        Route(UNSTABLE + "/contacts", directory.contacts, methods=["GET"]),
    ]


def extras_routes() -> list[BaseRoute]:
    """Receipts, typing, presence, account data, tags, filters (issue 4, extras)."""
    room_data = "/user/{user_id}/rooms/{room_id}"
    return [
        *_both("/rooms/{room_id}/receipt/{receipt_type}/{event_id}", receipts.post_receipt, ["POST"]),
        *_both("/rooms/{room_id}/read_markers", receipts.set_read_markers, ["POST"]),
        *_both("/rooms/{room_id}/typing/{user_id}", typing_api.set_typing, ["PUT"]),
        *_both("/presence/{user_id}/status", presence.get_status, ["GET"]),
        *_both("/presence/{user_id}/status", presence.set_status, ["PUT"]),
        *_both("/user/{user_id}/account_data/{type}", account_data.get_global, ["GET"]),
        *_both("/user/{user_id}/account_data/{type}", account_data.put_global, ["PUT"]),
        *_both(room_data + "/account_data/{type}", account_data.get_room, ["GET"]),
        *_both(room_data + "/account_data/{type}", account_data.put_room, ["PUT"]),
        *_both(room_data + "/tags", account_data.get_tags, ["GET"]),
        *_both(room_data + "/tags/{tag}", account_data.put_tag, ["PUT"]),
        *_both(room_data + "/tags/{tag}", account_data.delete_tag, ["DELETE"]),
        *_both("/user/{user_id}/filter", filters.create_filter, ["POST"]),
        *_both("/user/{user_id}/filter/{filter_id}", filters.get_filter, ["GET"]),
    ]

def cs_api_routes() -> list[BaseRoute]:
    """The rest of the client-server API standard clients expect (issue 21)."""
    pr = "/pushrules/{scope}/{kind}/{rule_id}"
    return [
        *_both("/pushrules/", push_rules.get_all, ["GET"]),
        *_both("/pushrules/{scope}/", push_rules.get_scope, ["GET"]),
        *_both("/pushrules/{scope}/{kind}/", push_rules.get_kind, ["GET"]),
        *_both(pr, push_rules.get_rule, ["GET"]),
        *_both(pr, push_rules.put_rule, ["PUT"]),
        *_both(pr, push_rules.delete_rule, ["DELETE"]),
        *_both(pr + "/enabled", push_rules.get_attribute, ["GET"]),
        *_both(pr + "/enabled", push_rules.set_attribute, ["PUT"]),
        *_both(pr + "/actions", push_rules.get_attribute, ["GET"]),
        *_both(pr + "/actions", push_rules.set_attribute, ["PUT"]),
        # Malformed push rule paths answer 400 (a redirect to the slashed path would
        # PUT a rule somewhere else); /pushrules without the slash is no endpoint.
        *_both(pr + "/{attribute}", push_rules.malformed_path, ["GET", "PUT", "DELETE"]),
        *_both("/pushrules", push_rules.no_trailing_slash, ["GET", "PUT", "DELETE"]),
        *_both("/pushrules/", push_rules.malformed_path, ["PUT", "DELETE"]),
        *[r for p in ("/pushrules/{scope}", "/pushrules/{scope}/{kind}") for r in
          _both(p, push_rules.malformed_path, ["GET", "PUT", "DELETE"])],
        *_both("/pushrules/{scope}/", push_rules.malformed_path, ["PUT", "DELETE"]),
        *_both("/pushrules/{scope}/{kind}/", push_rules.malformed_path, ["PUT", "DELETE"]),
        *_both("/directory/room/{room_alias}", room_directory.put_alias, ["PUT"]),
        *_both("/directory/room/{room_alias}", room_directory.get_alias, ["GET"]),
        *_both("/directory/room/{room_alias}", room_directory.delete_alias, ["DELETE"]),
        *_both("/rooms/{room_id}/aliases", room_directory.room_aliases, ["GET"]),
        *_both("/directory/list/room/{room_id}", room_directory.get_visibility, ["GET"]),
        *_both("/directory/list/room/{room_id}", room_directory.set_visibility, ["PUT"]),
        *_both("/publicRooms", room_directory.public_rooms_get, ["GET"]),
        *_both("/publicRooms", room_directory.public_rooms_post, ["POST"]),
        *_both("/account/password", account.change_password, ["POST"]),
        *_both("/account/password/email/requestToken", account.password_email_request_token, ["POST"]),
        *[r for p in ("/register", "/account/password", "/account/3pid") for r in
          _both(p + "/msisdn/requestToken", account.msisdn_request_token, ["POST"])],
        *_both("/account/deactivate", account.deactivate, ["POST"]),
        *_both("/capabilities", account.capabilities, ["GET"]),
        *_both("/voip/turnServer", account.turn_server, ["GET"]),
        *_both("/thirdparty/protocols", thirdparty.protocols, ["GET"]),
        *_both("/thirdparty/protocol/{protocol}", thirdparty.protocol, ["GET"]),
        *_both("/thirdparty/location", thirdparty.location, ["GET"]),
        *_both("/thirdparty/location/{protocol}", thirdparty.location_for_protocol, ["GET"]),
        *_both("/thirdparty/user", thirdparty.user, ["GET"]),
        *_both("/thirdparty/user/{protocol}", thirdparty.user_for_protocol, ["GET"]),
        *_both("/events/{event_id}", messages.get_event_by_id, ["GET"]),
        *_both("/refresh", login.refresh, ["POST"]),
        *_both("/search", search.search, ["POST"]),
        Route(C1 + "/rooms/{room_id}/hierarchy", spaces.hierarchy, methods=["GET"]),
        *[Route(C1 + "/rooms/{room_id}/relations/{event_id}" + tail, spaces.relations, methods=["GET"])
          for tail in ("", "/{rel_type}", "/{rel_type}/{event_type}")],
        Route(C1 + "/rooms/{room_id}/threads", spaces.threads, methods=["GET"]),
        Route(C1 + "/rooms/{room_id}/timestamp_to_event", spaces.timestamp_to_event, methods=["GET"]),
        Route("/.well-known/matrix/support", versions.well_known_support, methods=["GET"]),
        *_both("/events", sync_v1.events, ["GET"]),
        *_both("/initialSync", sync_v1.initial_sync, ["GET"]),
        *_both("/rooms/{room_id}/initialSync", sync_v1.room_initial_sync, ["GET"]),
        *_both("/keys/device_signing/upload", cross_signing.upload_device_signing, ["POST"]),
        *_both("/keys/signatures/upload", cross_signing.upload_signatures, ["POST"]),
        # Cross-signing predates v1.1: clients of then (and SyTest) use the unstable prefix.
        Route("/_matrix/client/unstable/keys/device_signing/upload", cross_signing.upload_device_signing,
              methods=["POST"]),
        Route("/_matrix/client/unstable/keys/signatures/upload", cross_signing.upload_signatures,
              methods=["POST"]),
        *_both("/user/{user_id}/openid/request_token", openid.request_token, ["POST"]),
        Route("/_matrix/federation/v1/openid/userinfo", openid.userinfo, methods=["GET"]),
        Route("/_matrix/federation/v1/3pid/onbind", rooms.third_party_onbind, methods=["POST"]),
        *_both("/pushers", pushers.get_pushers, ["GET"]),
        *_both("/pushers/set", pushers.set_pusher, ["POST"]),
        *_both("/notifications", notifications.notifications, ["GET"]),
        *_both("/account/3pid", threepids.list_threepids, ["GET"]),
        *_both("/account/3pid", threepids.add_via_identity_server, ["POST"]),
        *_both("/account/3pid/email/requestToken", threepids.email_request_token, ["POST"]),
        *_both("/account/3pid/add", threepids.add, ["POST"]),
        *_both("/account/3pid/delete", threepids.delete, ["POST"]),
        *_both("/account/3pid/bind", threepids.bind, ["POST"]),
        *_both("/account/3pid/unbind", threepids.unbind, ["POST"]),
        # The unstable paths of MSC2290, which clients written before v1.0 still call.
        Route(CU + "/account/3pid/bind", threepids.bind, methods=["POST"]),
        Route(CU + "/account/3pid/unbind", threepids.unbind, methods=["POST"]),
    ]


def all_routes() -> list[BaseRoute]:
    return client_routes() + admin_routes() + federation_routes() + operations_routes()


def operations_routes() -> list[BaseRoute]:
    """Liveness and readiness for load balancers (issue 22)."""
    return [
        Route("/health", health.health, methods=["GET"]),
        Route("/ready", health.ready, methods=["GET"]),
    ]
