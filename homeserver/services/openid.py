"""OpenID tokens (client-server API, "OpenID"; server-server API, "OpenID"): a user
asks for a short-lived token that a third party (an integration manager, a widget)
exchanges at ``/_matrix/federation/v1/openid/userinfo`` for the user's id.

Tokens are stateless: the user id and expiry, signed with the server's Ed25519 key.
They grant nothing but that answer; access tokens are never accepted there.
"""

from __future__ import annotations

import json
from typing import Any

from cryptography.exceptions import InvalidSignature

from common.canonical_json import unpadded_b64decode, unpadded_b64encode
from common.errors import Codes, MatrixError
from homeserver.services.clock import Clock
from homeserver.signing_key import SigningKey

TOKEN_TTL_S = 3600
PREFIX = "oid_"


class OpenIdService:
    def __init__(self, signing_key: SigningKey, server_name: str, clock: Clock) -> None:
        self.signing_key = signing_key
        self.server_name = server_name
        self.clock = clock

    def request_token(self, requester: str, user_id: str) -> dict[str, Any]:
        """POST /user/{userId}/openid/request_token"""
        if requester != user_id:
            raise MatrixError(403, Codes.FORBIDDEN, "You can only request OpenID tokens for yourself")
        payload = json.dumps({"sub": user_id, "exp": self.clock.now_ms() + TOKEN_TTL_S * 1000},
                             separators=(",", ":")).encode()
        signature = self.signing_key.private_key.sign(b"openid:" + payload)
        token = PREFIX + unpadded_b64encode(payload).replace("+", "-").replace("/", "_") + "." + \
            unpadded_b64encode(signature).replace("+", "-").replace("/", "_")
        return {"access_token": token, "token_type": "Bearer", "matrix_server_name": self.server_name,
                "expires_in": TOKEN_TTL_S}

    def userinfo(self, token: str | None) -> dict[str, Any]:
        """GET /_matrix/federation/v1/openid/userinfo"""
        invalid = MatrixError(401, Codes.UNKNOWN_TOKEN, "Invalid or expired OpenID token")
        if not token or not token.startswith(PREFIX) or len(token) > 1024 or "." not in token:
            raise invalid
        body, _, sig = token[len(PREFIX):].partition(".")
        try:
            payload = unpadded_b64decode(body.replace("-", "+").replace("_", "/"))
            signature = unpadded_b64decode(sig.replace("-", "+").replace("_", "/"))
            self.signing_key.private_key.public_key().verify(signature, b"openid:" + payload)
            claims = json.loads(payload)
        except (ValueError, TypeError, InvalidSignature):
            raise invalid from None
        if not isinstance(claims, dict) or not isinstance(claims.get("exp"), int) or \
                claims["exp"] <= self.clock.now_ms() or not isinstance(claims.get("sub"), str):
            raise invalid
        return {"sub": claims["sub"]}
