"""Third-party identifiers of an account (client-server API, "Adding Account
Administrative Contact Information"): ``/account/3pid``, ``.../email/requestToken``,
``.../add``, ``.../delete``, ``.../bind`` and ``.../unbind``.

Parley's only medium is e-mail, verified with its 6-digit code; it uses no
identity server, so binding is refused with a clear error and unbinding has
nothing to do.
"""

from __future__ import annotations

import hmac
from typing import Any

from common.errors import Codes, MatrixError
from common.identifiers import normalise_email
from homeserver.services.accounts import AccountService

JsonDict = dict[str, Any]

NO_IDENTITY_SERVER = "This server uses no identity server: third-party identifiers cannot be bound to one"


class ThreepidService:
    def __init__(self, accounts: AccountService) -> None:
        self.accounts = accounts

    async def list(self, user_id: str) -> JsonDict:
        user = await self.accounts.users.get(user_id)
        threepids = []
        if user is not None and user.email:
            threepids.append({"medium": "email", "address": user.email,
                              "validated_at": user.created_ts, "added_at": user.created_ts})
        return {"threepids": threepids}

    async def add(self, user_id: str, body: JsonDict, ip: str | None) -> None:
        """POST /account/3pid/add: the address behind a validated ``sid`` becomes the account's."""
        sid, secret = body.get("sid"), body.get("client_secret")
        if not isinstance(sid, str) or not isinstance(secret, str):
            raise MatrixError(400, Codes.MISSING_PARAM, "sid and client_secret are required")
        await self.accounts.reauthenticate(body.get("auth"), "add_threepid", user_id, ip, request=sid)
        auth_state = self.accounts.auth_state
        row = await auth_state.get_email_validation(sid, self.accounts.clock.now_ms())
        if row is None or not hmac.compare_digest(row.client_secret, secret) or row.validated_ts is None:
            raise MatrixError(400, Codes.THREEPID_AUTH_FAILED, "The e-mail address has not been verified")
        holder = await self.accounts.users.by_email(row.email)
        if holder is not None and holder.user_id != user_id:
            raise MatrixError(400, Codes.THREEPID_IN_USE, "That e-mail address is already in use")
        await self.accounts.users.set_email(user_id, row.email)
        await auth_state.delete_email_validation(sid)

    async def delete(self, user_id: str, body: JsonDict) -> JsonDict:
        """POST /account/3pid/delete"""
        if body.get("medium") != "email" or not isinstance(body.get("address"), str):
            raise MatrixError(400, Codes.INVALID_PARAM, "medium must be email, with an address")
        user = await self.accounts.users.get(user_id)
        if user is None or user.email != normalise_email(str(body["address"])):
            raise MatrixError(400, Codes.THREEPID_NOT_FOUND, "That address is not one of this account's")
        await self.accounts.users.set_email(user_id, None)
        return {"id_server_unbind_result": "no-support"}

    @staticmethod
    def bind() -> None:
        raise MatrixError(400, Codes.INVALID_PARAM, NO_IDENTITY_SERVER)
