"""Request parsing and response helpers shared by every API module."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from common.errors import Codes, MatrixError
from common.strict_json import StrictJsonError, dumps_strict, loads_strict
from homeserver.api.guests import guest_may_call
from homeserver.services.auth import Requester

JSON_HEADERS = {"Cache-Control": "no-cache, no-store, must-revalidate"}


class MatrixJSONResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        return dumps_strict(content)


def json_response(body: Any, status: int = 200) -> Response:
    return MatrixJSONResponse(body, status_code=status, headers=JSON_HEADERS)


def error_response(error: MatrixError) -> Response:
    response = MatrixJSONResponse(error.to_json(), status_code=error.status, headers=JSON_HEADERS)
    for name, value in error.headers.items():
        response.headers[name] = value
    return response


async def read_json(request: Request, allow_empty: bool = False, allow_floats: bool = False) -> dict[str, Any]:
    """The request body as a JSON object, through the one JSON door (:mod:`common.strict_json`).

    The size limit is enforced by middleware.  ``allow_floats`` is only for
    the few fields the spec defines as non-integer numbers (tag ``order``).
    """
    raw = await request.body()
    if not raw.strip():
        if allow_empty:
            return {}
        raise MatrixError(400, Codes.NOT_JSON, "Request body is not JSON")
    value = parse_json_text(raw, "Request body", allow_floats)
    if not isinstance(value, dict):
        raise MatrixError(400, Codes.BAD_JSON, "Request body must be a JSON object")
    return value


def parse_json_text(raw: bytes | str, what: str, allow_floats: bool = False) -> Any:
    """Untrusted JSON (a body or a query parameter) as a value canonical JSON can carry."""
    try:
        return loads_strict(raw, allow_floats=allow_floats)
    except StrictJsonError as exc:
        errcode = Codes.NOT_JSON if exc.not_json else Codes.BAD_JSON
        raise MatrixError(400, errcode, f"{what} is not acceptable JSON: {exc}") from None


def client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


def access_token(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, token = header.partition(" ")
        if scheme.lower() == "bearer" and token:
            return token.strip()
        raise MatrixError(401, Codes.MISSING_TOKEN, "Malformed Authorization header")
    return request.query_params.get("access_token")


async def require_auth(request: Request, remembered: bool = False) -> Requester:
    """The request's requester, its token, device and account read in one statement.

    ``remembered`` (``/sync``): from this instance's memory when it has seen the
    token before; the caller then confirms it (``TokenService.confirm``) against
    the auth counter it reads with its stream positions before it answers."""
    tokens = request.app.state.hs.services.tokens
    authenticate = tokens.authenticate_remembered if remembered else tokens.authenticate
    requester: Requester = await authenticate(access_token(request), client_ip(request), request.method,
                                              request.url.path)
    if requester.is_guest and not guest_may_call(request.method, request.url.path):
        raise MatrixError(403, Codes.GUEST_ACCESS_FORBIDDEN, "Guest access is not allowed here")
    return requester


def path_param(request: Request, name: str) -> str:
    return str(request.path_params[name])


def services(request: Request) -> Any:
    """The :class:`homeserver.app.Services` of the homeserver serving ``request``."""
    return request.app.state.hs.services
