"""Verifying incoming federation requests (spec, "Request Authentication"), without Starlette.

The API's ``authenticate(request)`` (homeserver/api/federation/auth.py) hands
the method, the URI as sent, the ``Authorization`` headers and the JSON body
to :meth:`RequestAuthenticator.authenticate`, which answers the origin or
raises: 401 ``M_UNAUTHORIZED`` for a missing, malformed or wrongly signed
authorization or one addressed to another server; 403 ``M_FORBIDDEN`` for an
origin the configuration refuses; 429 past the per-origin rate limit
(counted only for correctly signed requests).
Refused signatures are logged with the origin, key id and path only (no
signature or body: homeserver/log_safety.py conventions).
"""

from __future__ import annotations

import logging
from typing import Any

from common.errors import Codes, MatrixError
from common.identifiers import is_valid_server_name
from homeserver.federation.keyring import KeyRing
from homeserver.federation.xmatrix import MalformedAuthorization, parse_authorization, request_json
from homeserver.services.admin.server_policy import ServerPolicy
from homeserver.services.clock import Clock
from homeserver.services.ratelimit import Limit, RateLimiter

logger = logging.getLogger(__name__)


def _unauthorized(message: str) -> MatrixError:
    return MatrixError(401, Codes.UNAUTHORIZED, message)


class RequestAuthenticator:
    def __init__(self, server_name: str, keyring: KeyRing, policy: ServerPolicy, limiter: RateLimiter,
                 clock: Clock, requests_per_minute: int, enabled: bool = True) -> None:
        self.enabled = enabled
        self.server_name = server_name
        self.keyring = keyring
        self.policy = policy
        self.limiter = limiter
        self.clock = clock
        self.limit = Limit("federation_requests", requests_per_minute)

    async def authenticate(self, method: str, uri: str, headers: list[str], content: Any) -> str:
        """The origin server of a correctly signed request for this server."""
        if not self.enabled:
            raise MatrixError(403, Codes.FORBIDDEN, "This server does not federate ([federation] enabled = false)")
        auths = [h for h in headers if h.strip().lower().startswith("x-matrix")]
        if not auths:
            raise _unauthorized("Missing X-Matrix Authorization header")
        parsed = []
        for header in auths:
            try:
                parsed.append(parse_authorization(header))
            except MalformedAuthorization as exc:
                raise _unauthorized(f"Malformed X-Matrix Authorization header: {exc}") from None
        origin = parsed[0].origin
        if any(auth.origin != origin for auth in parsed):
            raise _unauthorized("X-Matrix Authorization headers name different origins")
        if not is_valid_server_name(origin):
            raise _unauthorized("The X-Matrix origin is not a valid server name")
        for auth in parsed:
            if auth.destination is not None and auth.destination != self.server_name:
                raise _unauthorized(f"The request is for {auth.destination[:255]}, not for this server")
        if origin == self.server_name:
            raise _unauthorized("The request claims to come from this server")
        if self.policy.denied_everywhere(origin):
            raise MatrixError(403, Codes.FORBIDDEN, f"Federation with {origin[:255]} is not allowed")
        failures = []
        for auth in parsed:
            signed = request_json(method, uri, origin, self.server_name, content)
            signed["signatures"] = {origin: {auth.key_id: auth.signature}}
            try:
                await self.keyring.verify_json(origin, signed, at_ts=self.clock.now_ms())
            except MatrixError as exc:
                failures.append(exc.message)
                continue
            # Counted once the origin is proven: a forger cannot use up another server's allowance.
            await self.limiter.check(self.limit, origin)
            return origin
        logger.warning("refused federation request %s %s from %s: %s", method, uri.split("?", 1)[0][:200],
                       origin[:255], "; ".join(failures)[:500])
        raise _unauthorized(f"Invalid X-Matrix signature: {'; '.join(failures)[:500]}")
