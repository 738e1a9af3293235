"""Every route of the homeserver, in one table.

Each area module holds the handlers; this table is the only place that maps
paths to them, so the whole API surface can be read at a glance.
"""

from __future__ import annotations

from starlette.routing import BaseRoute, Route

from homeserver.api.client import devices, login, register, versions

C3 = "/_matrix/client/v3"
CR0 = "/_matrix/client/r0"
UNSTABLE = "/_matrix/client/unstable/im.parley"


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
        Route("/.well-known/matrix/server", versions.well_known_server, methods=["GET"]),
        # Accounts
        *_both("/register", register.register, ["POST"]),
        *_both("/register/available", register.available, ["GET"]),
        *_both("/register/email/requestToken", register.email_request_token, ["POST"]),
        Route(UNSTABLE + "/email/submitToken", register.email_submit_token, methods=["POST"]),
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
    ]


def all_routes() -> list[BaseRoute]:
    return client_routes()
