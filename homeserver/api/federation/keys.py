"""Server keys: our own (``/key/v2/server``) and the notary (``/key/v2/query``)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from common.errors import Codes, MatrixError
from common.identifiers import is_valid_server_name
from homeserver.api.federation.auth import federation
from homeserver.api.http import json_response, path_param, read_json

MAX_SERVERS_PER_QUERY = 100


async def server_keys(request: Request) -> Response:
    """GET /_matrix/key/v2/server"""
    return json_response(federation(request).keyring.own_key_response())


def _minimum(value: Any, what: str) -> int:
    if value is None:
        return 0
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise MatrixError(400, Codes.INVALID_PARAM, f"{what} must be a non-negative integer")
    return value


def _server(name: Any) -> str:
    if not isinstance(name, str) or not is_valid_server_name(name):
        raise MatrixError(400, Codes.INVALID_PARAM, "Not a valid server name")
    return name


async def query_one(request: Request) -> Response:
    """GET /_matrix/key/v2/query/{serverName}"""
    server = _server(path_param(request, "server_name"))
    minimum = _minimum(request.query_params.get("minimum_valid_until_ts"), "minimum_valid_until_ts")
    responses = await federation(request).keyring.responses_for(server, minimum)
    return json_response({"server_keys": responses})


async def query_many(request: Request) -> Response:
    """POST /_matrix/key/v2/query"""
    body = await read_json(request)
    wanted = body.get("server_keys")
    if not isinstance(wanted, dict):
        raise MatrixError(400, Codes.BAD_JSON, "server_keys must be an object")
    if len(wanted) > MAX_SERVERS_PER_QUERY:
        raise MatrixError(400, Codes.BAD_JSON, f"At most {MAX_SERVERS_PER_QUERY} servers per query")
    keyring = federation(request).keyring
    out: list[dict[str, Any]] = []
    for name, keys in wanted.items():
        server = _server(name)
        if not isinstance(keys, dict):
            raise MatrixError(400, Codes.BAD_JSON, f"server_keys.{server} must be an object")
        minimum = 0
        for key_id, criteria in keys.items():
            if not isinstance(criteria, dict):
                raise MatrixError(400, Codes.BAD_JSON, f"server_keys.{server}.{key_id[:80]} must be an object")
            minimum = max(minimum, _minimum(criteria.get("minimum_valid_until_ts"), "minimum_valid_until_ts"))
        responses = await keyring.responses_for(server, minimum)
        if keys:  # only the responses that carry a requested key
            responses = [r for r in responses if set(keys) & (set(r.get("verify_keys", {}))
                                                              | set(r.get("old_verify_keys", {})))]
        out.extend(responses)
    return json_response({"server_keys": out})
