"""Push rules: ``/_matrix/client/v3/pushrules/...`` (spec, "Push Rules: API")."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from common.errors import Codes, MatrixError
from homeserver.api.http import json_response, path_param, read_json, require_auth, services


def _where(request: Request) -> tuple[str, str, str]:
    return path_param(request, "scope"), path_param(request, "kind"), path_param(request, "rule_id")


async def get_all(request: Request) -> Response:
    """GET /_matrix/client/v3/pushrules/"""
    requester = await require_auth(request)
    return json_response(await services(request).push_rules.ruleset(requester.user_id))


async def get_scope(request: Request) -> Response:
    """GET /_matrix/client/v3/pushrules/{scope}/"""
    requester = await require_auth(request)
    return json_response(
        await services(request).push_rules.get_scope(requester.user_id, path_param(request, "scope"))
    )


async def get_kind(request: Request) -> Response:
    """GET /_matrix/client/v3/pushrules/{scope}/{kind}/"""
    requester = await require_auth(request)
    return json_response(await services(request).push_rules.get_kind(
        requester.user_id, path_param(request, "scope"), path_param(request, "kind")
    ))


async def get_rule(request: Request) -> Response:
    """GET /_matrix/client/v3/pushrules/{scope}/{kind}/{ruleId}"""
    requester = await require_auth(request)
    return json_response(await services(request).push_rules.get_rule(requester.user_id, *_where(request)))


async def put_rule(request: Request) -> Response:
    """PUT /_matrix/client/v3/pushrules/{scope}/{kind}/{ruleId}"""
    requester = await require_auth(request)
    body = await read_json(request)
    params = request.query_params
    await services(request).push_rules.put_rule(
        requester.user_id, *_where(request), body, params.get("before"), params.get("after")
    )
    return json_response({})


async def delete_rule(request: Request) -> Response:
    """DELETE /_matrix/client/v3/pushrules/{scope}/{kind}/{ruleId}"""
    requester = await require_auth(request)
    await services(request).push_rules.delete_rule(requester.user_id, *_where(request))
    return json_response({})


async def get_attribute(request: Request) -> Response:
    """GET /_matrix/client/v3/pushrules/{scope}/{kind}/{ruleId}/(enabled|actions)"""
    requester = await require_auth(request)
    attribute = request.url.path.rsplit("/", 1)[1]
    return json_response(
        await services(request).push_rules.get_attribute(requester.user_id, *_where(request), attribute)
    )


async def set_attribute(request: Request) -> Response:
    """PUT /_matrix/client/v3/pushrules/{scope}/{kind}/{ruleId}/(enabled|actions)"""
    requester = await require_auth(request)
    attribute = request.url.path.rsplit("/", 1)[1]
    body = await read_json(request)
    await services(request).push_rules.set_attribute(requester.user_id, *_where(request), attribute, body)
    return json_response({})


async def malformed_path(request: Request) -> Response:
    """A push rule path with a part missing (no scope, kind or rule id, or no trailing
    slash after them), or an attribute other than enabled and actions: 400."""
    await require_auth(request)
    attribute = request.path_params.get("attribute")
    if attribute is not None:
        raise MatrixError(400, Codes.UNRECOGNIZED, f"Unknown push rule attribute {str(attribute)[:32]!r}: "
                          "use enabled or actions")
    raise MatrixError(400, Codes.INVALID_PARAM, "Push rules are at /pushrules/, /pushrules/{scope}/, "
                      "/pushrules/{scope}/{kind}/ and /pushrules/{scope}/{kind}/{ruleId}")


async def no_trailing_slash(request: Request) -> Response:
    """GET /_matrix/client/v3/pushrules (without the slash) is not an endpoint."""
    raise MatrixError(404, Codes.UNRECOGNIZED, "Push rules are at /pushrules/ (with the trailing slash)")
