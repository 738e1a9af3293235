"""Resetting a forgotten password by e-mail (client-server API, "Password
management": ``POST /account/password/email/requestToken``, then
``POST /account/password`` without an access token, authenticated by the
``m.login.email.identity`` stage).

* The code goes only to an address that belongs to an active account.  The
  answer (a ``sid``) is the same for any address, as for registration
  (Parley's anti-enumeration rule, ``accounts.py``): the spec's 400
  ``M_THREEPID_NOT_FOUND`` would tell anybody which addresses have accounts,
  and the spec lets a server send no mail at all, so an unknown address
  simply never validates.
* The validated session is used once: the e-mail validation is consumed and
  the auth session deleted on success, so nobody holding the session id can
  set the password again.
* Every device (and with it every access token and device key) is logged out
  unless ``logout_devices`` is false.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

from common.errors import Codes, MatrixError
from common.identifiers import normalise_email
from homeserver.services.account_admin import check_new_password
from homeserver.services.accounts import EMAIL_STAGE, AccountService, code_hash
from homeserver.services.devices import DeviceService
from homeserver.services.uia import UiaSession

PURPOSE = "password_reset"


class PasswordResetService:
    def __init__(self, accounts: AccountService, devices: DeviceService) -> None:
        self.accounts = accounts
        self.devices = devices

    async def request_token(self, email: Any, client_secret: Any, ip: str | None) -> dict[str, Any]:
        """POST /account/password/email/requestToken: mail a 6-digit code to an account's address."""
        if not isinstance(client_secret, str) or not (1 <= len(client_secret) <= 255):
            raise MatrixError(400, Codes.INVALID_PARAM, "client_secret must be a string of 1-255 characters")
        if not isinstance(email, str):
            raise MatrixError(400, Codes.INVALID_PARAM, "email must be a string")
        address = normalise_email(email)
        accounts = self.accounts
        await accounts.limiter.check(accounts.register_limit, f"ip:{ip}")
        await accounts.limiter.check(accounts.register_limit, f"email:{address}")
        now = accounts.clock.now_ms()
        existing = await accounts.auth_state.find_email_validation(client_secret, address, now)
        if existing is not None and existing.code_hash is not None:
            return {"sid": existing.sid}  # a retry (spec: same client_secret, a new send_attempt)
        owner = await accounts.users.by_email(address)
        eligible = owner is not None and not owner.is_placeholder and not owner.deactivated
        sid = secrets.token_urlsafe(18)
        code = f"{secrets.randbelow(1_000_000):06d}"
        ttl = accounts.config.registration.code_ttl_seconds * 1000
        await accounts.auth_state.create_email_validation(
            sid, client_secret, address, code_hash(sid, code) if eligible else None, now, now + ttl
        )
        if eligible:
            body = (
                f"Someone asked to reset the password of your Parley account. The code is {code}; "
                f"it expires in {ttl // 60000} minutes. If it was not you, ignore this mail: "
                "your password stays as it is.\n\n"
                f"Or open this link to confirm the reset:\n{accounts.validation_link(sid, client_secret, code)}\n"
            )
            await accounts.mailer.send(address, "Reset your Parley password", body)
        return {"sid": sid}

    async def reset(self, body: Mapping[str, Any], ip: str | None) -> None:
        """POST /account/password without a token: the address's owner gets ``new_password``."""
        del ip
        new_password = check_new_password(body.get("new_password"))
        logout = body.get("logout_devices", True)
        if not isinstance(logout, bool):
            raise MatrixError(400, Codes.BAD_JSON, "logout_devices must be a boolean")
        accounts = self.accounts

        async def email_stage(auth: Mapping[str, Any], session: UiaSession) -> str:
            address = await accounts.check_email_stage(auth, session)
            owner = await accounts.users.by_email(address)
            if owner is None or owner.is_placeholder or owner.deactivated:
                raise MatrixError(400, Codes.THREEPID_NOT_FOUND, "No account has that e-mail address")
            await accounts.uia.remember(session, "user_id", owner.user_id)
            return owner.user_id

        session = await accounts.uia.authenticate(
            body.get("auth"), PURPOSE, None, [[EMAIL_STAGE]], {EMAIL_STAGE: email_stage}
        )
        await accounts.uia.repo.delete_uia(session.session_id)
        if session.replayed:
            raise MatrixError(400, Codes.UNKNOWN, "Unknown or expired auth session")
        user_id = session.results["user_id"]
        await accounts.users.set_password_hash(user_id, await accounts.passwords.hash(new_password))
        if logout:
            await self.devices.delete_all(user_id)
