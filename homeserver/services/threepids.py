"""Third-party identifiers of an account (client-server API, "Adding Account
Administrative Contact Information"): ``/account/3pid``, ``.../email/requestToken``,
``.../add``, ``.../delete``, ``.../bind`` and ``.../unbind``.

An account's own identifier is its e-mail address, verified with the homeserver's
6-digit code.  Binding an identifier to an identity server (so that others can find
the user by it) goes through an identity server that ``[identity] allowed_servers``
allows; the homeserver remembers each binding, and deleting the identifier (or the
account) unbinds it there again.  Without allowed identity servers, binding is
refused with a clear error and unbinding has nothing to do.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from typing import Any

from common.errors import Codes, MatrixError
from common.identifiers import normalise_email
from homeserver.services.accounts import AccountService
from homeserver.services.identity_client import IdentityServerClient
from homeserver.storage.threepid_bindings import Binding, ThreepidBindingRepository

JsonDict = dict[str, Any]


def required_text(body: JsonDict, name: str) -> str:
    """A request field that must be a non-empty string (M_MISSING_PARAM / M_INVALID_PARAM)."""
    value = body.get(name)
    if value is None:
        raise MatrixError(400, Codes.MISSING_PARAM, f"{name} is required")
    if not isinstance(value, str) or not value:
        raise MatrixError(400, Codes.INVALID_PARAM, f"{name} must be a non-empty string")
    return value


class ThreepidService:
    def __init__(self, accounts: AccountService, bindings: ThreepidBindingRepository,
                 identity: IdentityServerClient) -> None:
        self.accounts = accounts
        self.bindings = bindings
        self.identity = identity

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
        """POST /account/3pid/delete: off the account, and unbound from the identity server
        it was bound through (or the ``id_server`` named)."""
        medium, address = self._threepid(body)
        user = await self.accounts.users.get(user_id)
        on_account = user is not None and medium == "email" and user.email == normalise_email(address)
        bound = await self.bindings.for_address(user_id, medium, address)
        if not on_account and not bound and body.get("id_server") is None:
            raise MatrixError(400, Codes.THREEPID_NOT_FOUND, "That address is not one of this account's")
        result = await self._unbind(user_id, medium, address, body.get("id_server"), bound)
        if not on_account and not bound and result != "success":
            raise MatrixError(400, Codes.THREEPID_NOT_FOUND, "That address is not one of this account's")
        if on_account:
            await self.accounts.users.set_email(user_id, None)
        return {"id_server_unbind_result": result}

    async def bind(self, user_id: str, body: JsonDict) -> None:
        """POST /account/3pid/bind: bound at the identity server, remembered here."""
        id_server = self.identity.check_server(body.get("id_server"))
        token, sid, secret = required_text(body, "id_access_token"), required_text(body, "sid"), required_text(body, "client_secret")
        medium, address = await self.identity.bind(id_server, token, sid, secret, user_id)
        await self.bindings.add(user_id, Binding(medium, address, id_server), self.accounts.clock.now_ms())

    async def unbind(self, user_id: str, body: JsonDict) -> JsonDict:
        """POST /account/3pid/unbind (the identifier stays on the account)."""
        medium, address = self._threepid(body)
        bound = await self.bindings.for_address(user_id, medium, address)
        return {"id_server_unbind_result": await self._unbind(user_id, medium, address, body.get("id_server"), bound)}

    async def unbind_all(self, user_id: str) -> str:
        """Account deactivation: every binding made through this homeserver goes."""
        results = [await self._unbind_one(user_id, b) for b in await self.bindings.for_user(user_id)]
        return "success" if results and all(results) else "no-support"

    async def _unbind(self, user_id: str, medium: str, address: str, id_server: Any,
                      bound: Sequence[Binding]) -> str:
        """Spec: without ``id_server`` the ones it was bound through; "no-support" when
        there is none to ask or one of them refused."""
        if id_server is not None:
            server = self.identity.check_server(id_server)
            targets: Sequence[Binding] = [b for b in bound if b.id_server == server] or [Binding(medium, address, server)]
        else:
            targets = bound
        if not targets:
            return "no-support"
        results = [await self._unbind_one(user_id, b) for b in targets]
        return "success" if all(results) else "no-support"

    async def _unbind_one(self, user_id: str, binding: Binding) -> bool:
        if not self.identity.enabled or not self.identity.config.allows(binding.id_server):
            return False
        done = await self.identity.unbind(binding.id_server, user_id, binding.medium, binding.address)
        if done:
            await self.bindings.delete(user_id, binding)
        return done

    @staticmethod
    def _threepid(body: JsonDict) -> tuple[str, str]:
        medium, address = required_text(body, "medium"), required_text(body, "address")
        if medium == "email":
            address = normalise_email(address)
        return medium, address

    def refuse_identity_server_add(self) -> None:
        """POST /account/3pid (deprecated): the identity server validated the address;
        Parley verifies e-mail itself (``/account/3pid/add``)."""
        raise MatrixError(400, Codes.INVALID_PARAM,
                          "Add e-mail addresses with /account/3pid/add after /account/3pid/email/requestToken")
