"""Which Matrix client-server spec versions Parley may claim in ``/versions``.

A version is listed only when every endpoint it requires is routed (checked
against the live route table, so removing a route withdraws the claim), and
a version implies every earlier one.  The endpoint lists are the spec's
(``matrix-org/matrix-spec``, ``data/api/client-server/*.yaml`` and the
changelogs for the version that added each).

Endpoints the spec makes optional for a homeserver are left out, each with
its reason in ``OPTIONAL``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from starlette.routing import BaseRoute, Match

Endpoint = tuple[str, str]

C1 = "/_matrix/client/v1"
C3 = "/_matrix/client/v3"
M3 = "/_matrix/media/v3"

# Every endpoint of v1.1 (r0.6.1 plus cross-signing, key backup and knocking).
V1_1: tuple[Endpoint, ...] = (
    ("GET", "/_matrix/client/versions"), ("GET", "/.well-known/matrix/client"),
    ("POST", C3 + "/register"), ("GET", C3 + "/register/available"),
    ("POST", C3 + "/register/email/requestToken"), ("POST", C3 + "/register/msisdn/requestToken"),
    ("GET", C3 + "/login"), ("POST", C3 + "/login"), ("POST", C3 + "/logout"), ("POST", C3 + "/logout/all"),
    ("GET", C3 + "/account/whoami"), ("POST", C3 + "/account/password"),
    ("POST", C3 + "/account/password/email/requestToken"), ("POST", C3 + "/account/password/msisdn/requestToken"),
    ("POST", C3 + "/account/deactivate"), ("GET", C3 + "/account/3pid"), ("POST", C3 + "/account/3pid"),
    ("POST", C3 + "/account/3pid/add"), ("POST", C3 + "/account/3pid/bind"),
    ("POST", C3 + "/account/3pid/delete"), ("POST", C3 + "/account/3pid/unbind"),
    ("POST", C3 + "/account/3pid/email/requestToken"), ("POST", C3 + "/account/3pid/msisdn/requestToken"),
    ("GET", C3 + "/capabilities"), ("GET", C3 + "/admin/whois/{userId}"),
    ("GET", C3 + "/user/{userId}/account_data/{type}"), ("PUT", C3 + "/user/{userId}/account_data/{type}"),
    ("GET", C3 + "/user/{userId}/rooms/{roomId}/account_data/{type}"),
    ("PUT", C3 + "/user/{userId}/rooms/{roomId}/account_data/{type}"),
    ("GET", C3 + "/user/{userId}/rooms/{roomId}/tags"), ("PUT", C3 + "/user/{userId}/rooms/{roomId}/tags/{tag}"),
    ("DELETE", C3 + "/user/{userId}/rooms/{roomId}/tags/{tag}"),
    ("POST", C3 + "/user/{userId}/filter"), ("GET", C3 + "/user/{userId}/filter/{filterId}"),
    ("POST", C3 + "/user/{userId}/openid/request_token"),
    ("GET", C3 + "/devices"), ("GET", C3 + "/devices/{deviceId}"), ("PUT", C3 + "/devices/{deviceId}"),
    ("DELETE", C3 + "/devices/{deviceId}"), ("POST", C3 + "/delete_devices"),
    ("GET", C3 + "/sync"), ("GET", C3 + "/events"), ("GET", C3 + "/events/{eventId}"), ("GET", C3 + "/initialSync"),
    ("POST", C3 + "/createRoom"), ("GET", C3 + "/joined_rooms"), ("POST", C3 + "/join/{roomIdOrAlias}"),
    ("POST", C3 + "/knock/{roomIdOrAlias}"),
    ("POST", C3 + "/rooms/{roomId}/join"), ("POST", C3 + "/rooms/{roomId}/invite"),
    ("POST", C3 + "/rooms/{roomId}/leave"), ("POST", C3 + "/rooms/{roomId}/forget"),
    ("POST", C3 + "/rooms/{roomId}/kick"), ("POST", C3 + "/rooms/{roomId}/ban"),
    ("POST", C3 + "/rooms/{roomId}/unban"), ("GET", C3 + "/rooms/{roomId}/state"),
    ("GET", C3 + "/rooms/{roomId}/state/{eventType}/{stateKey}"),
    ("PUT", C3 + "/rooms/{roomId}/state/{eventType}/{stateKey}"),
    ("GET", C3 + "/rooms/{roomId}/members"), ("GET", C3 + "/rooms/{roomId}/joined_members"),
    ("PUT", C3 + "/rooms/{roomId}/send/{eventType}/{txnId}"),
    ("PUT", C3 + "/rooms/{roomId}/redact/{eventId}/{txnId}"), ("GET", C3 + "/rooms/{roomId}/messages"),
    ("GET", C3 + "/rooms/{roomId}/event/{eventId}"), ("GET", C3 + "/rooms/{roomId}/context/{eventId}"),
    ("GET", C3 + "/rooms/{roomId}/initialSync"), ("POST", C3 + "/rooms/{roomId}/upgrade"),
    ("POST", C3 + "/rooms/{roomId}/read_markers"),
    ("POST", C3 + "/rooms/{roomId}/receipt/{receiptType}/{eventId}"),
    ("PUT", C3 + "/rooms/{roomId}/typing/{userId}"), ("POST", C3 + "/rooms/{roomId}/report/{eventId}"),
    ("GET", C3 + "/rooms/{roomId}/aliases"),
    ("PUT", C3 + "/directory/room/{roomAlias}"), ("GET", C3 + "/directory/room/{roomAlias}"),
    ("DELETE", C3 + "/directory/room/{roomAlias}"), ("GET", C3 + "/directory/list/room/{roomId}"),
    ("PUT", C3 + "/directory/list/room/{roomId}"), ("GET", C3 + "/publicRooms"), ("POST", C3 + "/publicRooms"),
    ("POST", C3 + "/search"), ("POST", C3 + "/user_directory/search"),
    ("GET", C3 + "/profile/{userId}"), ("GET", C3 + "/profile/{userId}/displayname"),
    ("PUT", C3 + "/profile/{userId}/displayname"), ("GET", C3 + "/profile/{userId}/avatar_url"),
    ("PUT", C3 + "/profile/{userId}/avatar_url"),
    ("GET", C3 + "/presence/{userId}/status"), ("PUT", C3 + "/presence/{userId}/status"),
    ("PUT", C3 + "/sendToDevice/{eventType}/{txnId}"),
    ("POST", C3 + "/keys/upload"), ("POST", C3 + "/keys/query"), ("POST", C3 + "/keys/claim"),
    ("GET", C3 + "/keys/changes"), ("POST", C3 + "/keys/device_signing/upload"),
    ("POST", C3 + "/keys/signatures/upload"),
    ("POST", C3 + "/room_keys/version"), ("GET", C3 + "/room_keys/version"),
    ("GET", C3 + "/room_keys/version/{version}"), ("PUT", C3 + "/room_keys/version/{version}"),
    ("DELETE", C3 + "/room_keys/version/{version}"),
    *((m, C3 + p) for m in ("GET", "PUT", "DELETE")
      for p in ("/room_keys/keys", "/room_keys/keys/{roomId}", "/room_keys/keys/{roomId}/{sessionId}")),
    ("GET", C3 + "/pushrules/"), ("GET", C3 + "/pushrules/global/"),
    ("GET", C3 + "/pushrules/global/{kind}/{ruleId}"), ("PUT", C3 + "/pushrules/global/{kind}/{ruleId}"),
    ("DELETE", C3 + "/pushrules/global/{kind}/{ruleId}"),
    ("GET", C3 + "/pushrules/global/{kind}/{ruleId}/actions"),
    ("PUT", C3 + "/pushrules/global/{kind}/{ruleId}/actions"),
    ("GET", C3 + "/pushrules/global/{kind}/{ruleId}/enabled"),
    ("PUT", C3 + "/pushrules/global/{kind}/{ruleId}/enabled"),
    ("GET", C3 + "/pushers"), ("POST", C3 + "/pushers/set"), ("GET", C3 + "/notifications"),
    ("GET", C3 + "/voip/turnServer"), ("GET", C3 + "/thirdparty/protocols"),
    ("GET", C3 + "/thirdparty/protocol/{protocol}"), ("GET", C3 + "/thirdparty/location"),
    ("GET", C3 + "/thirdparty/location/{protocol}"), ("GET", C3 + "/thirdparty/user"),
    ("GET", C3 + "/thirdparty/user/{protocol}"),
    ("POST", M3 + "/upload"), ("GET", M3 + "/config"), ("GET", M3 + "/download/{serverName}/{mediaId}"),
    ("GET", M3 + "/download/{serverName}/{mediaId}/{fileName}"),
    ("GET", M3 + "/thumbnail/{serverName}/{mediaId}"),
)

# What each later version added (spec changelogs and x-addedInMatrixVersion).
ADDED: dict[str, tuple[Endpoint, ...]] = {
    "v1.2": (("GET", C1 + "/rooms/{roomId}/hierarchy"),
             ("GET", C1 + "/register/m.login.registration_token/validity")),
    "v1.3": (("GET", C1 + "/rooms/{roomId}/relations/{eventId}"),
             ("GET", C1 + "/rooms/{roomId}/relations/{eventId}/{relType}"),
             ("GET", C1 + "/rooms/{roomId}/relations/{eventId}/{relType}/{eventType}"),
             ("POST", C3 + "/refresh")),
    "v1.4": (("GET", C1 + "/rooms/{roomId}/threads"),),
    "v1.5": (),
    "v1.6": (("GET", C1 + "/rooms/{roomId}/timestamp_to_event"),),
    "v1.7": (("POST", "/_matrix/media/v1/create"), ("PUT", M3 + "/upload/{serverName}/{mediaId}")),
    "v1.8": (),
    "v1.9": (),
    "v1.10": (("GET", "/.well-known/matrix/support"),),
    "v1.11": (("GET", C1 + "/media/config"), ("GET", C1 + "/media/download/{serverName}/{mediaId}"),
              ("GET", C1 + "/media/download/{serverName}/{mediaId}/{fileName}"),
              ("GET", C1 + "/media/thumbnail/{serverName}/{mediaId}")),
}

# Optional for a homeserver, so not required by any version here.
OPTIONAL: dict[Endpoint, str] = {
    ("GET", C3 + "/login/sso/redirect"): "only for servers offering m.login.sso; Parley has no SSO",
    ("GET", C3 + "/login/sso/redirect/{idpId}"): "only for servers offering m.login.sso",
    ("PUT", C3 + "/directory/list/appservice/{networkId}/{roomId}"): "application services only",
    ("POST", C1 + "/appservice/{appserviceId}/ping"): "application services only (v1.7)",
    ("POST", C1 + "/login/get_token"): "m.get_login_token capability, disabled (v1.7)",
    ("GET", M3 + "/preview_url"): "URL previews are a server option; Parley fetches no URLs (SSRF)",
    ("GET", C1 + "/media/preview_url"): "URL previews are a server option (v1.11)",
}

LEGACY = ["r0.5.0", "r0.6.0", "r0.6.1"]  # the r0 API is what v1.1 renamed


def _routed(routes: Sequence[BaseRoute], method: str, path: str) -> bool:
    concrete = re.sub(r"\{[^}]+\}", "x", path)
    scope = {"type": "http", "path": concrete, "method": method}
    return any(route.matches(scope)[0] == Match.FULL for route in routes)


def missing_endpoints(routes: Sequence[BaseRoute], version: str) -> list[Endpoint]:
    """The endpoints ``version`` adds that no route serves (v1.1: all of its own)."""
    wanted = V1_1 if version == "v1.1" else ADDED[version]
    return [(m, p) for m, p in wanted if not _routed(routes, m, p)]


def supported_versions(routes: Sequence[BaseRoute]) -> list[str]:
    """Every version up to the first one with a missing endpoint."""
    if missing_endpoints(routes, "v1.1"):
        return []
    out = [*LEGACY, "v1.1"]
    for version in ADDED:
        if missing_endpoints(routes, version):
            break
        out.append(version)
    return out
