"""Registration, e-mail verification and login (password or key signature).

Anti-enumeration rules carried over from the earlier application (H3/H13):

* requesting an e-mail code answers the same whether or not the address is
  registered; a registered address gets no code, so its session can never
  validate, and the failure looks like a wrong code;
* unknown user, wrong password and wrong signature give the same answer,
  and the unknown-user path spends the same KDF time;
* a login challenge is issued for any identifier.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlencode

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from common.canonical_json import encode_canonical_json, unpadded_b64decode
from common.errors import Codes, MatrixError
from common.identifiers import (
    is_valid_localpart,
    make_user_id,
    normalise_email,
    parse_user_id,
    random_string,
)
from homeserver.config import Config
from homeserver.services.auth import TokenService
from homeserver.services.clock import Clock
from homeserver.services.devices import DeviceService
from homeserver.services.mail import Mailer
from homeserver.services.passwords import MAX_PASSWORD_LENGTH, PasswordHasher
from homeserver.services.ratelimit import Limit, RateLimiter
from homeserver.services.uia import AuthAborted, InteractiveAuth, StageChecker, UiaSession
from homeserver.storage.accounts import AlreadyExists, UserRepository
from homeserver.storage.auth_state import AuthStateRepository
from homeserver.storage.models.accounts import User

logger = logging.getLogger(__name__)

EMAIL_STAGE = "m.login.email.identity"
DUMMY_STAGE = "m.login.dummy"
PASSWORD_STAGE = "m.login.password"
SIGNATURE_STAGE = "im.parley.login.signature"
SIGNATURE_LOGIN = SIGNATURE_STAGE
TOKEN_STAGE = "m.login.registration_token"

# Key of the password hash a registration session keeps between requests.
STORED_HASH = "password_hash"

SUBMIT_TOKEN_PATH = "/_matrix/client/unstable/im.parley/email/submitToken"

INVALID_CREDENTIALS = "Invalid username, password or signature"
INVALID_CODE = "The verification code is wrong or has expired"


class RegistrationTokenStage(Protocol):
    async def check_stage(self, auth: Mapping[str, Any], session: UiaSession) -> str: ...
    async def consume(self, token: str) -> None: ...


@dataclass(frozen=True)
class LoginResult:
    user_id: str
    device_id: str
    access_token: str


def code_hash(sid: str, code: str) -> str:
    return hashlib.sha256(f"{sid}:{code}".encode()).hexdigest()


def parse_login_key(value: Any) -> str | None:
    """Validate an Ed25519 public key given as (unpadded) base64."""
    if value is None:
        return None
    try:
        raw = unpadded_b64decode(value)
        if len(raw) != 32:
            raise ValueError
        Ed25519PublicKey.from_public_bytes(raw)
    except (ValueError, TypeError):
        raise MatrixError(400, Codes.INVALID_PARAM, "login key must be a base64 Ed25519 public key") from None
    return str(value).rstrip("=")


def challenge_message(server_name: str, challenge_id: str, nonce: str) -> bytes:
    """The bytes a client signs to log in with its key."""
    return encode_canonical_json(
        {"type": SIGNATURE_LOGIN, "server": server_name, "challenge_id": challenge_id, "nonce": nonce}
    )


class AccountService:
    def __init__(
        self,
        config: Config,
        users: UserRepository,
        auth_state: AuthStateRepository,
        passwords: PasswordHasher,
        tokens: TokenService,
        devices: DeviceService,
        uia: InteractiveAuth,
        mailer: Mailer,
        limiter: RateLimiter,
        clock: Clock,
    ) -> None:
        self.config = config
        self.users = users
        self.auth_state = auth_state
        self.passwords = passwords
        self.tokens = tokens
        self.devices = devices
        self.uia = uia
        self.mailer = mailer
        self.limiter = limiter
        self.clock = clock
        rl = config.rate_limits
        self.register_limit = Limit("register", rl.register_per_minute)
        self.login_limit = Limit("login", rl.login_per_minute)
        # Registration requests of any kind (a flow takes up to three).
        self.register_attempt_limit = Limit("register_attempt", rl.register_per_minute * 3)
        # Failed logins per (account, address), and per account from everywhere.
        self.login_failure_limit = Limit("login_fail", rl.login_per_minute)
        self.login_ceiling = Limit("login_fail_acct", rl.login_failures_per_account_per_hour, 3_600_000)
        # Called with (placeholder id, new account id) when a placeholder's person registers.
        self.placeholder_upgraded: list[Callable[[str, str], Awaitable[None]]] = []
        # The m.login.registration_token stage (set by the admin services).
        self.registration_tokens: RegistrationTokenStage | None = None
        # Called with the user id of every newly registered account (default profile, ...).
        self.registered: list[Callable[[str], Awaitable[None]]] = []

    # ---------------------------------------------------------------- e-mail
    async def request_email_code(
        self, email: Any, client_secret: Any, ip: str | None
    ) -> dict[str, Any]:
        """POST /register/email/requestToken: send a 6-digit code (or pretend to)."""
        if not isinstance(client_secret, str) or not (1 <= len(client_secret) <= 255):
            raise MatrixError(400, Codes.INVALID_PARAM, "client_secret must be a string of 1-255 characters")
        if not isinstance(email, str):
            raise MatrixError(400, Codes.INVALID_PARAM, "email must be a string")
        address = normalise_email(email)
        await self.limiter.check(self.register_limit, f"ip:{ip}")
        await self.limiter.check(self.register_limit, f"email:{address}")
        now = self.clock.now_ms()
        existing = await self.auth_state.find_email_validation(client_secret, address, now)
        if existing is not None:
            return {"sid": existing.sid}
        sid = secrets.token_urlsafe(18)
        owner = await self.users.by_email(address)
        taken = owner is not None and not owner.is_placeholder
        code = f"{secrets.randbelow(1_000_000):06d}"
        ttl = self.config.registration.code_ttl_seconds * 1000
        await self.auth_state.create_email_validation(
            sid, client_secret, address, None if taken else code_hash(sid, code), now, now + ttl
        )
        if taken:
            body = (
                "Someone tried to register a Parley account with this address, which already "
                "has one. If it was you, log in instead. No code was issued."
            )
            await self.mailer.send(address, "Parley registration attempt", body)
        else:
            body = (
                f"Your Parley verification code is {code}. It expires in {ttl // 60000} minutes.\n\n"
                f"Or open this link to verify the address:\n{self.validation_link(sid, client_secret, code)}\n"
            )
            await self.mailer.send(address, "Your Parley verification code", body)
        return {"sid": sid}

    def validation_link(self, sid: str, client_secret: str, code: str) -> str:
        """The link in a verification mail (``GET .../email/submitToken``): the code, clickable."""
        query = urlencode({"sid": sid, "client_secret": client_secret, "token": code})
        return f"{self.config.base_url}{SUBMIT_TOKEN_PATH}?{query}"

    async def submit_email_code(self, sid: Any, client_secret: Any, code: Any) -> None:
        if not all(isinstance(v, str) for v in (sid, client_secret, code)):
            raise MatrixError(400, Codes.MISSING_PARAM, "sid, client_secret and token are required strings")
        now = self.clock.now_ms()
        row = await self.auth_state.get_email_validation(sid, now)
        failure = MatrixError(400, Codes.THREEPID_AUTH_FAILED, INVALID_CODE)
        if row is None or not hmac.compare_digest(row.client_secret, client_secret):
            raise failure
        if not await self.auth_state.count_email_attempt(
            sid, self.config.registration.code_max_attempts
        ):
            raise failure
        expected = row.code_hash or code_hash(sid, secrets.token_hex(8))
        if not hmac.compare_digest(expected, code_hash(sid, code.strip())) or row.code_hash is None:
            raise failure
        await self.auth_state.mark_email_validated(sid, now)

    # ---------------------------------------------------------- registration
    def registration_flows(self) -> list[list[str]]:
        flows: list[list[str]] = []
        if self.config.registration.require_email or not self.config.registration.open:
            flows.append([EMAIL_STAGE])
        if self.config.registration.open:
            flows.append([DUMMY_STAGE])
            if [EMAIL_STAGE] not in flows:
                flows.append([EMAIL_STAGE])
        if self.config.registration.require_token:
            flows = [[TOKEN_STAGE, *flow] for flow in flows]
        return flows

    async def check_email_stage(self, auth: Mapping[str, Any], session: UiaSession) -> str:
        creds = auth.get("threepid_creds") or auth.get("threepidCreds")
        if not isinstance(creds, dict):
            raise MatrixError(400, Codes.MISSING_PARAM, "threepid_creds is required")
        sid, secret = creds.get("sid"), creds.get("client_secret")
        if not isinstance(sid, str) or not isinstance(secret, str):
            raise MatrixError(400, Codes.MISSING_PARAM, "threepid_creds needs sid and client_secret")
        row = await self.auth_state.get_email_validation(sid, self.clock.now_ms())
        if (
            row is None
            or not hmac.compare_digest(row.client_secret, secret)
            or row.validated_ts is None
        ):
            raise MatrixError(401, Codes.THREEPID_AUTH_FAILED, "The e-mail address has not been verified")
        await self.uia.remember(session, EMAIL_STAGE, row.email)
        await self.auth_state.delete_email_validation(sid)
        return row.email

    async def _check_token_stage(self, auth: Mapping[str, Any], session: UiaSession) -> str:
        assert self.registration_tokens is not None
        token = await self.registration_tokens.check_stage(auth, session)
        await self.uia.remember(session, TOKEN_STAGE, token)
        return token

    async def _check_dummy_stage(self, auth: Mapping[str, Any], session: UiaSession) -> None:
        del auth, session

    async def register(self, body: Mapping[str, Any], ip: str | None) -> dict[str, Any]:
        """POST /register (kind=user).

        The first request of a flow may carry no credentials at all (``{}``):
        it gets the 401 with the flows.  The session remembers the parameters
        of the request that started it, so later stages may send only ``auth``;
        resubmitting a completed session answers for the same account again.
        """
        if not self.config.registration.enabled:
            raise MatrixError(403, Codes.FORBIDDEN, "Registration is disabled")
        # Every attempt counts, whatever it carries; a request that does not
        # continue an interactive flow (no session: the first request, or a
        # one-shot m.login.dummy registration) counts as a new registration.
        await self.limiter.check(self.register_attempt_limit, f"ip:{ip}")
        auth = body.get("auth")
        if not (isinstance(auth, dict) and isinstance(auth.get("session"), str)):
            await self.limiter.check(self.register_limit, f"ip:{ip}")
        started = await self.uia.peek(auth, "register", None)
        # The session keeps a hash of the password, never the password itself.
        params = {k: v for k, v in body.items() if k not in ("auth", STORED_HASH)}
        if started is not None and isinstance(started.request, dict):
            params = {**started.request, **params}
        if started is not None and started.params.get("registered"):
            return await self._registration_result(str(started.params["registered"]), params, ip)
        username = params.get("username")
        password = params.get("password")
        if username is None and auth is not None:
            username = random_string(12, "abcdefghijklmnopqrstuvwxyz0123456789")
            params["username"] = username
        if username is not None and (not isinstance(username, str) or not is_valid_localpart(username.lower())):
            raise MatrixError(
                400, Codes.INVALID_USERNAME,
                "User names may contain only a-z, 0-9, '.', '_', '=', '-', '/' and '+'",
            )
        if password is not None and (
            not isinstance(password, str) or not 8 <= len(password) <= MAX_PASSWORD_LENGTH
        ):
            raise MatrixError(400, Codes.WEAK_PASSWORD, "Passwords must be 8 to 512 characters long")
        login_key = parse_login_key(params.get("im.parley.login_key"))
        inhibit_login = params.get("inhibit_login", False)
        if not isinstance(inhibit_login, bool):
            raise MatrixError(400, Codes.BAD_JSON, "inhibit_login must be a boolean")
        if isinstance(username, str):
            if await self.users.get(make_user_id(username.lower(), self.config.server_name)) is not None:
                raise MatrixError(400, Codes.USER_IN_USE, "That user name is taken")
        stored = {k: v for k, v in params.items() if k != "password"}
        if isinstance(password, str):
            stored[STORED_HASH] = await self.passwords.hash(password)
        password_hash = stored.get(STORED_HASH)
        checkers: dict[str, StageChecker] = {
            EMAIL_STAGE: self.check_email_stage, DUMMY_STAGE: self._check_dummy_stage,
        }
        if self.registration_tokens is not None:
            checkers[TOKEN_STAGE] = self._check_token_stage
        session = await self.uia.authenticate(
            auth, "register", None, self.registration_flows(), checkers,
            request=stored, bind=False,
        )
        if self.config.registration.require_token:
            assert self.registration_tokens is not None
            await self.registration_tokens.consume(session.results[TOKEN_STAGE])
        if password_hash is None and login_key is None:
            raise MatrixError(400, Codes.MISSING_PARAM, "A password or a login key is required")
        assert isinstance(username, str)
        localpart = username.lower()
        user_id = make_user_id(localpart, self.config.server_name)
        email = session.results.get(EMAIL_STAGE)
        now = self.clock.now_ms()
        user = await self._create_or_upgrade(user_id, localpart, email, password_hash, login_key, now)
        session.params["registered"] = user.user_id
        session.params["request"] = stored
        await self.uia.repo.set_uia_params(session.session_id, session.params)
        for listener in self.registered:
            await listener(user.user_id)
        return await self._registration_result(user.user_id, params, ip)

    async def register_guest(self, body: Mapping[str, Any], ip: str | None) -> dict[str, Any]:
        """POST /register?kind=guest: an account without credentials, one device, a guest token."""
        if not self.config.registration.enabled or not self.config.registration.allow_guests:
            raise MatrixError(403, Codes.GUEST_ACCESS_FORBIDDEN, "Guest access is disabled")
        await self.limiter.check(self.register_limit, f"ip:{ip}")
        for _ in range(5):
            localpart = "guest" + random_string(12, "0123456789")
            try:
                user = await self.users.create(make_user_id(localpart, self.config.server_name), localpart,
                                               None, None, None, self.clock.now_ms())
                break
            except AlreadyExists:
                continue
        else:
            raise MatrixError(500, Codes.UNKNOWN, "Could not allocate a guest id")
        device = await self.devices.login_device(user.user_id, None, body.get("initial_device_display_name"), ip)
        token = await self.tokens.issue(user.user_id, device, is_guest=True)
        return {"user_id": user.user_id, "device_id": device, "access_token": token,
                "home_server": self.config.server_name}

    async def _registration_result(
        self, user_id: str, params: Mapping[str, Any], ip: str | None
    ) -> dict[str, Any]:
        result: dict[str, Any] = {"user_id": user_id, "home_server": self.config.server_name}
        if not params.get("inhibit_login", False):
            login = await self._issue_login(
                user_id, params.get("device_id"), params.get("initial_device_display_name"), ip
            )
            result.update(access_token=login.access_token, device_id=login.device_id)
        return result

    async def _create_or_upgrade(
        self, user_id: str, localpart: str, email: str | None, password_hash: str | None,
        login_key: str | None, now: int,
    ) -> User:
        if email is not None:
            holder = await self.users.by_email(email)
            if holder is not None and holder.is_placeholder:
                # The person gets the name they chose; the id handed out to people who
                # looked this address up becomes an alias of it, and its invitations move
                # over (the listeners), so the conversations started with it continue.
                try:
                    user = await self.users.take_over_placeholder(
                        holder.user_id, user_id, localpart, email, password_hash, login_key, now)
                except AlreadyExists:
                    raise MatrixError(400, Codes.USER_IN_USE, "That user name is taken") from None
                for listener in self.placeholder_upgraded:
                    await listener(holder.user_id, user.user_id)
                return user
            if holder is not None:
                raise MatrixError(401, Codes.THREEPID_AUTH_FAILED, "The e-mail address has not been verified")
        try:
            return await self.users.create(user_id, localpart, email, password_hash, login_key, now)
        except AlreadyExists:
            raise MatrixError(400, Codes.USER_IN_USE, "That user name is taken") from None

    async def username_available(self, username: Any, ip: str | None) -> bool:
        if not isinstance(username, str) or not is_valid_localpart(username.lower()):
            raise MatrixError(400, Codes.INVALID_USERNAME, "Invalid user name")
        await self.limiter.check(self.register_limit, f"avail:{ip}")
        user = await self.users.get(make_user_id(username.lower(), self.config.server_name))
        if user is not None:
            raise MatrixError(400, Codes.USER_IN_USE, "That user name is taken")
        return True

    # ----------------------------------------------------------------- login
    async def resolve_identifier(self, body: Mapping[str, Any]) -> str:
        """Map a login identifier to a user id (existing or not) or an ``email:`` key."""
        identifier = body.get("identifier")
        if identifier is None and isinstance(body.get("user"), str):
            identifier = {"type": "m.id.user", "user": body["user"]}
        if not isinstance(identifier, dict):
            raise MatrixError(400, Codes.MISSING_PARAM, "identifier is required")
        kind = identifier.get("type")
        if kind == "m.id.user":
            user = identifier.get("user")
            if not isinstance(user, str) or not user or len(user) > 255:
                raise MatrixError(400, Codes.INVALID_PARAM, "identifier.user must be a user id or name")
            if user.startswith("@"):
                localpart, server = parse_user_id(user)
                return make_user_id(localpart.lower(), server)
            return make_user_id(user.lower(), self.config.server_name)
        if kind == "m.id.thirdparty":
            if identifier.get("medium") != "email":
                raise MatrixError(400, Codes.INVALID_PARAM, "Only the email medium is supported")
            address = identifier.get("address")
            if not isinstance(address, str):
                raise MatrixError(400, Codes.INVALID_PARAM, "identifier.address is required")
            email = normalise_email(address)
            user = await self.users.by_email(email)
            return user.user_id if user is not None else f"email:{email}"
        raise MatrixError(400, Codes.UNRECOGNIZED, "Unknown identifier type")

    async def _login_target(self, body: Mapping[str, Any], ip: str | None) -> tuple[str, User | None]:
        await self.limiter.check(self.login_limit, f"ip:{ip}")
        target = await self.resolve_identifier(body)
        await self._ensure_login_allowed(target, ip)
        user = None if target.startswith("email:") else await self.users.get(target)
        if user is not None and (user.deactivated or user.is_placeholder):
            user = None
        return target, user

    async def _ensure_login_allowed(self, target: str, ip: str | None) -> None:
        """Refuse (even the right credentials) while this address, or everyone, failed too often.

        Only failures count, per (account, address): wrong passwords sent from
        elsewhere do not lock the owner out.  The hourly per-account ceiling
        bounds guessing spread over many addresses.
        """
        await self.limiter.ensure_below(self.login_failure_limit, f"{target}|{ip}")
        await self.limiter.ensure_below(self.login_ceiling, target)

    async def _login_failed(self, target: str, ip: str | None) -> MatrixError:
        await self.limiter.record(self.login_failure_limit, f"{target}|{ip}")
        await self.limiter.record(self.login_ceiling, target)
        return MatrixError(403, Codes.FORBIDDEN, INVALID_CREDENTIALS)

    async def create_challenge(self, body: Mapping[str, Any], ip: str | None) -> dict[str, Any]:
        """Issue a single-use nonce for key-based login, for any identifier."""
        target, _ = await self._login_target(body, ip)
        challenge_id = secrets.token_urlsafe(18)
        nonce = secrets.token_urlsafe(32)
        ttl = self.config.security.login_challenge_ttl_seconds * 1000
        await self.auth_state.create_challenge(challenge_id, target, nonce, self.clock.now_ms() + ttl)
        return {"challenge_id": challenge_id, "nonce": nonce, "expires_in_ms": ttl}

    def _verify_challenge_signature(
        self, user: User | None, challenge_id: str, nonce: str, signature: Any
    ) -> bool:
        if user is None or user.login_key is None or not isinstance(signature, str):
            return False
        try:
            public = Ed25519PublicKey.from_public_bytes(unpadded_b64decode(user.login_key))
            public.verify(
                unpadded_b64decode(signature),
                challenge_message(self.config.server_name, challenge_id, nonce),
            )
        except Exception:  # any decoding or verification failure looks the same
            return False
        return True

    async def _check_signature(self, body: Mapping[str, Any], expected_user: str | None, ip: str | None) -> User:
        challenge_id = body.get("challenge_id")
        if not isinstance(challenge_id, str) or len(challenge_id) > 64:
            raise MatrixError(400, Codes.MISSING_PARAM, "challenge_id is required")
        taken = await self.auth_state.take_challenge(challenge_id, self.clock.now_ms())
        invalid = MatrixError(403, Codes.FORBIDDEN, INVALID_CREDENTIALS)
        if taken is None:
            raise invalid
        target, nonce = taken
        if expected_user is not None and target != expected_user:
            raise invalid
        await self._ensure_login_allowed(target, ip)
        user = None if target.startswith("email:") else await self.users.get(target)
        if user is not None and (user.deactivated or user.is_placeholder):
            user = None
        if not self._verify_challenge_signature(user, challenge_id, nonce, body.get("signature")):
            raise await self._login_failed(target, ip)
        assert user is not None
        return user

    async def _check_password(self, body: Mapping[str, Any], ip: str | None, expected_user: str | None) -> User:
        password = body.get("password")
        if not isinstance(password, str) or len(password) > MAX_PASSWORD_LENGTH:
            raise MatrixError(400, Codes.MISSING_PARAM, "password is required")
        target, user = await self._login_target(body, ip)
        if expected_user is not None and target != expected_user:
            user = None
        ok = await self.passwords.verify(password, user.password_hash if user else None)
        if not ok or user is None:
            raise await self._login_failed(target, ip)
        return user

    async def login(self, body: Mapping[str, Any], ip: str | None) -> dict[str, Any]:
        """POST /login."""
        kind = body.get("type")
        if kind == PASSWORD_STAGE:
            user = await self._check_password(body, ip, None)
        elif kind == SIGNATURE_LOGIN:
            await self.limiter.check(self.login_limit, f"ip:{ip}")
            user = await self._check_signature(body, None, ip)
        else:
            raise MatrixError(400, Codes.UNKNOWN, "Unknown login type")
        login = await self._issue_login(
            user.user_id, body.get("device_id"), body.get("initial_device_display_name"), ip
        )
        return {
            "user_id": login.user_id,
            "access_token": login.access_token,
            "device_id": login.device_id,
            "home_server": self.config.server_name,
            "well_known": {"m.homeserver": {"base_url": self.config.base_url}},
        }

    async def login_new_device(self, user_id: str, ip: str | None) -> LoginResult:
        """A fresh device and access token for an account created by other means (admin tools)."""
        return await self._issue_login(user_id, None, None, ip)

    async def _issue_login(
        self, user_id: str, device_id: Any, display_name: Any, ip: str | None
    ) -> LoginResult:
        if device_id is not None and not isinstance(device_id, str):
            raise MatrixError(400, Codes.INVALID_PARAM, "device_id must be a string")
        device = await self.devices.login_device(user_id, device_id, display_name, ip)
        # A device holds one live token: logging in again on it ends the old session.
        await self.tokens.revoke_device(user_id, device)
        token = await self.tokens.issue(user_id, device)
        return LoginResult(user_id, device, token)

    # ------------------------------------------- re-authentication of a user
    async def reauth_flows(self, user_id: str) -> tuple[list[list[str]], dict[str, Any]]:
        user = await self.users.get(user_id)
        flows: list[list[str]] = []
        if user is not None and user.password_hash:
            flows.append([PASSWORD_STAGE])
        if user is not None and user.login_key:
            flows.append([SIGNATURE_STAGE])
        return flows, {}

    async def reauthenticate(
        self, auth: Any, purpose: str, user_id: str, ip: str | None, request: Any = None
    ) -> UiaSession:
        """Interactive auth for sensitive actions (deleting devices, ...).

        ``request`` names the operation; the session is bound to it."""
        flows, _ = await self.reauth_flows(user_id)
        public: dict[str, Any] = {}
        if [SIGNATURE_STAGE] in flows and not (isinstance(auth, dict) and auth.get("session")):
            public[SIGNATURE_STAGE] = await self.create_challenge(
                {"identifier": {"type": "m.id.user", "user": user_id}}, ip
            )

        async def password_stage(a: Mapping[str, Any], s: UiaSession) -> None:
            del s
            body = dict(a)
            if "identifier" not in body and "user" not in body:
                body["identifier"] = {"type": "m.id.user", "user": user_id}
            if await self.resolve_identifier(body) != user_id:
                # Someone holding this user's token cannot authorise with their own password.
                raise AuthAborted(403, Codes.FORBIDDEN, "Authenticate as the user making the request")
            await self._check_password(body, ip, user_id)

        async def signature_stage(a: Mapping[str, Any], s: UiaSession) -> None:
            del s
            await self.limiter.check(self.login_limit, f"ip:{ip}")
            await self._check_signature(a, user_id, ip)

        return await self.uia.authenticate(
            auth, purpose, user_id, flows,
            {PASSWORD_STAGE: password_stage, SIGNATURE_STAGE: signature_stage},
            params={"public": public}, request=request,
        )

    async def replace_login_key(self, user_id: str, auth: Any, login_key: Any, ip: str | None) -> None:
        """Set or replace the key used for signature login (needs re-authentication)."""
        key = parse_login_key(login_key)
        if key is None:
            raise MatrixError(400, Codes.MISSING_PARAM, "login_key is required")
        await self.reauthenticate(auth, "set_login_key", user_id, ip, request=key)
        await self.users.set_login_key(user_id, key)
