"""The admin API's part of the route table (included by ``homeserver/api/routes.py``)."""

from __future__ import annotations

from starlette.routing import BaseRoute, Route

from homeserver.api import metrics
from homeserver.api.admin import media, registration, reports, rooms, users

A1 = "/_synapse/admin/v1"
A2 = "/_synapse/admin/v2"


def admin_routes() -> list[BaseRoute]:
    u1, u2 = A1 + "/users/{user_id}", A2 + "/users/{user_id}"
    room = A1 + "/rooms/{room_id}"
    tokens = A1 + "/registration_tokens"
    return [
        Route("/metrics", metrics.metrics, methods=["GET"]),
        # Registration and version
        Route(A1 + "/register", registration.register_nonce, methods=["GET"]),
        Route(A1 + "/register", registration.register, methods=["POST"]),
        Route(A1 + "/server_version", registration.server_version, methods=["GET"]),
        Route(A1 + "/username_available", users.username_available, methods=["GET"]),
        # Users
        Route(A2 + "/users", users.list_users, methods=["GET"]),
        Route(u2, users.get_user, methods=["GET"]),
        Route(u2, users.put_user, methods=["PUT"]),
        Route(A1 + "/deactivate/{user_id}", users.deactivate, methods=["POST"]),
        Route(A1 + "/reset_password/{user_id}", users.reset_password, methods=["POST"]),
        Route(u1 + "/login", users.login_as, methods=["POST"]),
        Route(u1 + "/admin", users.get_admin, methods=["GET"]),
        Route(u1 + "/admin", users.put_admin, methods=["PUT"]),
        Route(u1 + "/shadow_ban", users.shadow_ban, methods=["POST", "DELETE"]),
        Route(A1 + "/suspend/{user_id}", users.suspend, methods=["PUT"]),
        Route(u1 + "/joined_rooms", users.joined_rooms, methods=["GET"]),
        Route(u1 + "/accountdata", users.account_data, methods=["GET"]),
        Route(u1 + "/pushers", users.pushers, methods=["GET"]),
        Route(u2 + "/devices", users.list_devices, methods=["GET"]),
        Route(u2 + "/devices/{device_id}", users.get_device, methods=["GET"]),
        Route(u2 + "/devices/{device_id}", users.put_device, methods=["PUT"]),
        Route(u2 + "/devices/{device_id}", users.delete_device, methods=["DELETE"]),
        Route(u2 + "/delete_devices", users.delete_devices, methods=["POST"]),
        Route(u1 + "/override_ratelimit", users.get_ratelimit, methods=["GET"]),
        Route(u1 + "/override_ratelimit", users.set_ratelimit, methods=["POST"]),
        Route(u1 + "/override_ratelimit", users.delete_ratelimit, methods=["DELETE"]),
        Route(A1 + "/whois/{user_id}", users.whois, methods=["GET"]),
        Route("/_matrix/client/v3/admin/whois/{user_id}", users.client_whois, methods=["GET"]),
        Route("/_matrix/client/r0/admin/whois/{user_id}", users.client_whois, methods=["GET"]),
        # Rooms
        Route(A1 + "/rooms", rooms.list_rooms, methods=["GET"]),
        Route(room, rooms.room_details, methods=["GET"]),
        Route(room, rooms.delete_room, methods=["DELETE"]),
        Route(room + "/members", rooms.room_members, methods=["GET"]),
        Route(room + "/state", rooms.room_state, methods=["GET"]),
        Route(room + "/messages", rooms.room_messages, methods=["GET"]),
        Route(room + "/block", rooms.get_block, methods=["GET"]),
        Route(room + "/block", rooms.put_block, methods=["PUT"]),
        Route(A1 + "/send_server_notice", rooms.send_server_notice, methods=["POST"]),
        Route(A2 + "/rooms/delete_status/{delete_id}", rooms.delete_status, methods=["GET"]),
        Route(A2 + "/rooms/{room_id}", rooms.delete_room_v2, methods=["DELETE"]),
        Route(A2 + "/rooms/{room_id}/delete_status", rooms.delete_status_for_room, methods=["GET"]),
        Route(A1 + "/join/{room_id}", rooms.join_user, methods=["POST"]),
        Route(room + "/make_room_admin", rooms.make_room_admin, methods=["POST"]),
        Route(A1 + "/purge_history/{room_id}", rooms.purge_history, methods=["POST"]),
        Route(A1 + "/purge_history/{room_id}/{event_id}", rooms.purge_history, methods=["POST"]),
        Route(A1 + "/purge_history_status/{purge_id}", rooms.purge_status, methods=["GET"]),
        # Media
        Route(u1 + "/media", media.user_media, methods=["GET"]),
        Route(u1 + "/media", media.delete_user_media, methods=["DELETE"]),
        Route(A1 + "/user/{user_id}/media/quarantine", media.quarantine_user, methods=["POST"]),
        Route(A1 + "/media/quarantine/{server_name}/{media_id}", media.quarantine, methods=["POST"]),
        Route(A1 + "/media/unquarantine/{server_name}/{media_id}", media.unquarantine, methods=["POST"]),
        Route(A1 + "/media/delete", media.delete_older, methods=["POST"]),
        Route(A1 + "/statistics/users/media", media.media_statistics, methods=["GET"]),
        Route(A1 + "/media/{server_name}/{media_id}", media.delete_media, methods=["DELETE"]),
        # Reports (client side and admin side)
        Route("/_matrix/client/v3/rooms/{room_id}/report/{event_id}", reports.report_event, methods=["POST"]),
        Route("/_matrix/client/r0/rooms/{room_id}/report/{event_id}", reports.report_event, methods=["POST"]),
        Route("/_matrix/client/v3/rooms/{room_id}/report", reports.report_room, methods=["POST"]),
        Route(A1 + "/event_reports", reports.list_reports, methods=["GET"]),
        Route(A1 + "/event_reports/{report_id}", reports.get_report, methods=["GET"]),
        Route(A1 + "/event_reports/{report_id}", reports.delete_report, methods=["DELETE"]),
        # Registration tokens
        Route(tokens, registration.list_tokens, methods=["GET"]),
        Route(tokens + "/new", registration.new_token, methods=["POST"]),
        Route(tokens + "/{token}", registration.get_token, methods=["GET"]),
        Route(tokens + "/{token}", registration.update_token, methods=["PUT"]),
        Route(tokens + "/{token}", registration.delete_token, methods=["DELETE"]),
        Route("/_matrix/client/v1/register/m.login.registration_token/validity", registration.token_validity,
              methods=["GET"]),
    ]
