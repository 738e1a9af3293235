"""Registration with an e-mail code, password and key login, logout, whoami."""

from __future__ import annotations

import secrets
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from common.canonical_json import unpadded_b64encode
from homeserver.services.accounts import challenge_message
from tests.support.server import RunningServer, serve_homeserver
from tests.support.smtp import SmtpSink


def _email() -> str:
    return f"person-{secrets.token_hex(4)}@example.test"


def _email_config(smtp_sink: SmtpSink) -> dict[str, Any]:
    return {
        "registration": {"open": False, "require_email": True},
        "smtp": smtp_sink.smtp_config(),
    }


async def _verified_sid(server: RunningServer, smtp_sink: SmtpSink, email: str, secret: str) -> str:
    response = await server.api("POST", "register/email/requestToken",
                                json={"email": email, "client_secret": secret, "send_attempt": 1})
    assert response.status_code == 200, response.text
    sid = response.json()["sid"]
    code = await smtp_sink.wait_for_code(email)
    response = await server.api("POST", "/_matrix/client/unstable/im.parley/email/submitToken",
                                json={"sid": sid, "client_secret": secret, "token": code})
    assert response.status_code == 200, response.text
    assert response.json() == {"success": True}
    return sid


async def test_register_with_email_code_then_login_by_email(make_config: Any, smtp_sink: SmtpSink) -> None:
    async with serve_homeserver(make_config(**_email_config(smtp_sink))) as server:
        email, secret = _email(), secrets.token_hex(8)
        first = await server.api("POST", "register", json={"username": "carol", "password": "long enough pw"})
        assert first.status_code == 401
        body = first.json()
        assert body["flows"] == [{"stages": ["m.login.email.identity"]}]
        session = body["session"]
        # Dummy auth is not allowed when registration is not open.
        refused = await server.api("POST", "register", json={
            "username": "carol", "password": "long enough pw",
            "auth": {"type": "m.login.dummy", "session": session}})
        assert refused.status_code == 401
        assert refused.json()["errcode"] == "M_UNRECOGNIZED"

        sid = await _verified_sid(server, smtp_sink, email, secret)
        done = await server.api("POST", "register", json={
            "username": "carol", "password": "long enough pw",
            "auth": {"type": "m.login.email.identity", "session": session,
                     "threepid_creds": {"sid": sid, "client_secret": secret}}})
        assert done.status_code == 200, done.text
        assert done.json()["user_id"] == f"@carol:{server.config.server_name}"
        # A completed session answers for the same account again (spec, User-Interactive
        # Authentication API: "the result of the API call if all stages were completed");
        # it cannot register a second one.
        again = await server.api("POST", "register", json={
            "username": "carol2", "password": "long enough pw",
            "auth": {"type": "m.login.email.identity", "session": session,
                     "threepid_creds": {"sid": sid, "client_secret": secret}}})
        assert again.status_code == 200, again.text
        assert again.json()["user_id"] == f"@carol:{server.config.server_name}"
        assert (await server.api("GET", "register/available", params={"username": "carol2"})).status_code == 200

        login = await server.api("POST", "login", json={
            "type": "m.login.password", "password": "long enough pw",
            "identifier": {"type": "m.id.thirdparty", "medium": "email", "address": email.upper()}})
        assert login.status_code == 200, login.text
        assert login.json()["user_id"] == f"@carol:{server.config.server_name}"


async def test_wrong_codes_are_limited(make_config: Any, smtp_sink: SmtpSink) -> None:
    async with serve_homeserver(make_config(**_email_config(smtp_sink))) as server:
        email, secret = _email(), secrets.token_hex(8)
        sid = (await server.api("POST", "register/email/requestToken",
                                json={"email": email, "client_secret": secret})).json()["sid"]
        code = await smtp_sink.wait_for_code(email)
        wrong = f"{(int(code) + 1) % 1_000_000:06d}"
        for _ in range(5):
            response = await server.api("POST", "/_matrix/client/unstable/im.parley/email/submitToken",
                                        json={"sid": sid, "client_secret": secret, "token": wrong})
            assert response.status_code == 400
            assert response.json()["errcode"] == "M_THREEPID_AUTH_FAILED"
        # Attempts are used up: even the right code no longer works.
        response = await server.api("POST", "/_matrix/client/unstable/im.parley/email/submitToken",
                                    json={"sid": sid, "client_secret": secret, "token": code})
        assert response.status_code == 400


async def test_request_token_does_not_reveal_registered_addresses(make_config: Any, smtp_sink: SmtpSink) -> None:
    async with serve_homeserver(make_config(**_email_config(smtp_sink))) as server:
        taken = _email()
        secret = secrets.token_hex(8)
        sid = await _verified_sid(server, smtp_sink, taken, secret)
        first = await server.api("POST", "register", json={"username": "dave", "password": "long enough pw"})
        await server.api("POST", "register", json={
            "username": "dave", "password": "long enough pw",
            "auth": {"type": "m.login.email.identity", "session": first.json()["session"],
                     "threepid_creds": {"sid": sid, "client_secret": secret}}})

        fresh = _email()
        answers = []
        client_secrets = [secrets.token_hex(8), secrets.token_hex(8)]
        for address, client_secret in zip((taken, fresh), client_secrets, strict=True):
            response = await server.api("POST", "register/email/requestToken",
                                        json={"email": address, "client_secret": client_secret})
            answers.append(response)
        assert [a.status_code for a in answers] == [200, 200]
        assert sorted(answers[0].json()) == sorted(answers[1].json())
        # The owner of the taken address is told, but gets no code.
        await smtp_sink.wait_for_code(fresh)
        notice = smtp_sink.messages_to(taken)[-1]
        assert "already" in str(notice.get_payload())
        # Guessing a code for the taken address fails exactly like a wrong code.
        fresh_code = await smtp_sink.wait_for_code(fresh)
        wrong = f"{(int(fresh_code) + 1) % 1_000_000:06d}"
        for client_secret, answer in zip(client_secrets, answers, strict=True):
            guess = await server.api("POST", "/_matrix/client/unstable/im.parley/email/submitToken",
                                     json={"sid": answer.json()["sid"], "client_secret": client_secret,
                                           "token": wrong})
            assert guess.status_code == 400
            assert guess.json() == {"errcode": "M_THREEPID_AUTH_FAILED",
                                    "error": "The verification code is wrong or has expired"}


async def test_password_login_failures_are_indistinguishable(server: RunningServer) -> None:
    alice = await server.register("alice", password="alice password")
    ok = await server.api("POST", "login", json={
        "type": "m.login.password", "identifier": {"type": "m.id.user", "user": "alice"},
        "password": "alice password", "initial_device_display_name": "laptop"})
    assert ok.status_code == 200
    assert ok.json()["device_id"] != alice.device_id
    wrong_password = await server.api("POST", "login", json={
        "type": "m.login.password", "identifier": {"type": "m.id.user", "user": "alice"},
        "password": "not it"})
    unknown_user = await server.api("POST", "login", json={
        "type": "m.login.password", "identifier": {"type": "m.id.user", "user": "nobody-here"},
        "password": "not it"})
    unknown_email = await server.api("POST", "login", json={
        "type": "m.login.password", "password": "not it",
        "identifier": {"type": "m.id.thirdparty", "medium": "email", "address": "no@one.test"}})
    for response in (wrong_password, unknown_user, unknown_email):
        assert response.status_code == 403
        assert response.json() == wrong_password.json()
    assert wrong_password.json()["errcode"] == "M_FORBIDDEN"


def _keypair() -> tuple[Ed25519PrivateKey, str]:
    key = Ed25519PrivateKey.generate()
    public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return key, unpadded_b64encode(public)


async def _challenge(server: RunningServer, user: str) -> dict[str, Any]:
    response = await server.api("POST", "/_matrix/client/unstable/im.parley/login/challenge",
                                json={"identifier": {"type": "m.id.user", "user": user}})
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_key_login_proves_possession_without_password(server: RunningServer) -> None:
    key, public = _keypair()
    response = await server.api("POST", "register", json={
        "username": "keyuser", "im.parley.login_key": public, "auth": {"type": "m.login.dummy"}})
    assert response.status_code == 200, response.text
    flows = (await server.api("GET", "login")).json()["flows"]
    assert {"type": "im.parley.login.signature"} in flows

    challenge = await _challenge(server, "keyuser")
    message = challenge_message(server.config.server_name, challenge["challenge_id"], challenge["nonce"])
    login_body = {"type": "im.parley.login.signature", "challenge_id": challenge["challenge_id"],
                  "signature": unpadded_b64encode(key.sign(message))}
    ok = await server.api("POST", "login", json=login_body)
    assert ok.status_code == 200, ok.text
    assert ok.json()["user_id"] == f"@keyuser:{server.config.server_name}"

    # A used challenge cannot be replayed.
    replay = await server.api("POST", "login", json=login_body)
    # A wrong signature, and a challenge for an unknown user, fail the same way.
    other_key, _ = _keypair()
    challenge2 = await _challenge(server, "keyuser")
    forged = await server.api("POST", "login", json={
        "type": "im.parley.login.signature", "challenge_id": challenge2["challenge_id"],
        "signature": unpadded_b64encode(other_key.sign(challenge_message(
            server.config.server_name, challenge2["challenge_id"], challenge2["nonce"])))})
    ghost = await _challenge(server, "ghost-user")
    assert sorted(ghost) == sorted(challenge2)
    unknown = await server.api("POST", "login", json={
        "type": "im.parley.login.signature", "challenge_id": ghost["challenge_id"],
        "signature": unpadded_b64encode(other_key.sign(challenge_message(
            server.config.server_name, ghost["challenge_id"], ghost["nonce"])))})
    garbage = await server.api("POST", "login", json={
        "type": "im.parley.login.signature", "challenge_id": "nope", "signature": "!!"})
    for response in (replay, forged, unknown, garbage):
        assert response.status_code == 403
        assert response.json() == {"errcode": "M_FORBIDDEN",
                                   "error": "Invalid username, password or signature"}


async def test_register_validation_errors(server: RunningServer) -> None:
    cases = [
        ({"username": "Bad Name!", "password": "long enough pw"}, 400, "M_INVALID_USERNAME"),
        ({"username": "short", "password": "short"}, 400, "M_WEAK_PASSWORD"),
        ({"username": "nokey"}, 400, "M_MISSING_PARAM"),
        ({"username": "badkey", "im.parley.login_key": "AAAA"}, 400, "M_INVALID_PARAM"),
        ({"username": "x", "password": "long enough pw", "inhibit_login": "yes"}, 400, "M_BAD_JSON"),
    ]
    for body, status, errcode in cases:
        response = await server.api("POST", "register", json={**body, "auth": {"type": "m.login.dummy"}})
        assert response.status_code == status, (body, response.text)
        assert response.json()["errcode"] == errcode
    await server.register("taken")
    response = await server.api("POST", "register", json={
        "username": "TAKEN", "password": "long enough pw", "auth": {"type": "m.login.dummy"}})
    assert response.json()["errcode"] == "M_USER_IN_USE"
    available = await server.api("GET", "register/available", params={"username": "free-name"})
    assert available.json() == {"available": True}


async def test_logout_and_logout_all(server: RunningServer) -> None:
    alice = await server.register("alice", password="alice password")
    second = (await server.api("POST", "login", json={
        "type": "m.login.password", "user": "alice", "password": "alice password"})).json()
    assert (await server.api("POST", "logout", alice)).json() == {}
    gone = await server.api("GET", "account/whoami", alice)
    assert gone.status_code == 401
    assert gone.json()["errcode"] == "M_UNKNOWN_TOKEN"
    headers = {"Authorization": f"Bearer {second['access_token']}"}
    devices = (await server.api("GET", "devices", headers=headers)).json()["devices"]
    assert [d["device_id"] for d in devices] == [second["device_id"]]  # logout deleted the device
    assert (await server.api("POST", "logout/all", headers=headers)).status_code == 200
    assert (await server.api("GET", "account/whoami", headers=headers)).status_code == 401


@pytest.mark.parametrize("auth", [None, "Bearer", "Basic abc", "Bearer " + "x" * 300])
async def test_bad_tokens(server: RunningServer, auth: str | None) -> None:
    headers = {"Authorization": auth} if auth is not None else {}
    response = await server.api("GET", "account/whoami", headers=headers)
    assert response.status_code == 401
    assert response.json()["errcode"] in ("M_MISSING_TOKEN", "M_UNKNOWN_TOKEN")


async def test_user_names_ending_in_a_newline_are_refused(server: RunningServer) -> None:
    """``@alice\\n:hs`` was accepted: the localpart pattern ended in ``$``."""
    response = await server.api("POST", "register", json={
        "username": "alice\n", "password": "long enough pw", "auth": {"type": "m.login.dummy"}})
    assert response.status_code == 400 and response.json()["errcode"] == "M_INVALID_USERNAME"
    event_type = await server.api("PUT", "sendToDevice/m.x%0A/t1", await server.register(), json={"messages": {}})
    assert event_type.status_code == 400 and event_type.json()["errcode"] == "M_INVALID_PARAM"
