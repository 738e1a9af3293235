"""Nothing secret in the server's logs.

The flows that handle passwords, access tokens, e-mail codes, pairing codes
and poll tokens, login-key nonces and key material run with the root logger
at DEBUG, including their failure paths and a request that ends in an
error; then the captured records are searched for each secret.  (The
database driver logs queries with their parameters at DEBUG: the server
(tortoise.db_client, aiosqlite, ...) holds those loggers at INFO, see homeserver/log_safety.py; without that this
test fails.)
"""

from __future__ import annotations

import base64
import logging
import re
import secrets
from typing import Any

import pytest

from tests.homeserver.test_accounts import _email, _email_config
from tests.support.server import serve_homeserver
from tests.support.smtp import SmtpSink

P = "/_matrix/client/unstable/im.parley/"
# The test's own side: its HTTP client logs URLs, its SMTP sink (aiosmtpd) the mails it receives.
CLIENT_SIDE_LOGGERS = ("httpx", "httpcore", "mail.log")


async def test_flows_with_secrets_log_none_of_them(
    make_config: Any, smtp_sink: SmtpSink, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    found: list[str] = []
    config = make_config(**_email_config(smtp_sink), rate_limits={"pairing_per_minute": 1000})
    async with serve_homeserver(config) as server:
        password = "pw-" + secrets.token_hex(12)
        email, client_secret = _email(), "cs" + secrets.token_hex(10)
        found.append(password)
        found.append(client_secret)
        # Registration with an e-mail code.
        first = await server.api("POST", "register", json={"username": "sam", "password": password})
        session = first.json()["session"]
        sid = (await server.api("POST", "register/email/requestToken", json={
            "email": email, "client_secret": client_secret, "send_attempt": 1})).json()["sid"]
        code = await smtp_sink.wait_for_code(email)
        found.append(code)
        wrong = await server.api("POST", P + "email/submitToken", json={
            "sid": sid, "client_secret": client_secret, "token": "000000" if code != "000000" else "111111"})
        assert wrong.status_code != 200
        await server.api("POST", P + "email/submitToken", json={
            "sid": sid, "client_secret": client_secret, "token": code})
        done = await server.api("POST", "register", json={
            "username": "sam", "password": password,
            "auth": {"type": "m.login.email.identity", "session": session,
                     "threepid_creds": {"sid": sid, "client_secret": client_secret}}})
        assert done.status_code == 200, done.text
        token = done.json()["access_token"]
        found.append(token)
        headers = {"Authorization": f"Bearer {token}"}
        # Logins: wrong and right password, a token in the query string, an unknown token.
        await server.api("POST", "login", json={"type": "m.login.password", "user": "sam", "password": password + "x"})
        login = await server.api("POST", "login", json={"type": "m.login.password", "user": "sam", "password": password})
        second = login.json()["access_token"]
        found.append(second)
        await server.client.get("/_matrix/client/v3/account/whoami", params={"access_token": second})
        unknown = "syt_" + secrets.token_hex(16)
        found.append(unknown)
        await server.client.get("/_matrix/client/v3/account/whoami", headers={"Authorization": f"Bearer {unknown}"})
        # Key login: the challenge nonce.
        challenge = (await server.api("POST", P + "login/challenge", json={
            "identifier": {"type": "m.id.user", "user": "sam"}})).json()
        found.append(challenge["nonce"])
        # Pairing: code, poll token and payload.
        started = (await server.api("POST", P + "pairing/start", json={"ephemeral_key": "EPH" + secrets.token_hex(8)})).json()
        found += [started["code"], started["poll_token"].split(".", 1)[1]]
        claimed = (await server.client.post(P + "pairing/claim", json={"code": started["code"]}, headers=headers)).json()
        payload = "PAYLOAD" + secrets.token_hex(12)
        found.append(payload)
        await server.client.post(P + "pairing/send", json={"pairing_id": claimed["pairing_id"], "payload": payload},
                                 headers=headers)
        await server.client.post(P + "pairing/poll", json={"poll_token": started["poll_token"]})
        # Key backup auth data and a to-device payload (opaque, but nobody's business in a log).
        backup_secret = base64.b64encode(secrets.token_bytes(32)).decode().rstrip("=")  # a Curve25519 key
        found.append(backup_secret)
        await server.client.post("/_matrix/client/v3/room_keys/version", headers=headers, json={
            "algorithm": "m.megolm_backup.v1.curve25519-aes-sha2", "auth_data": {"public_key": backup_secret}})
        # A request that fails inside the server, with the token in the query string.
        await server.client.put(f"/_matrix/client/v3/sendToDevice/m.x/t1?access_token={second}",
                                content=b"{not json")
        await server.client.post("/_matrix/client/v3/logout", headers=headers)

    # The capture must see the server's loggers at DEBUG, or the test proves nothing.
    probe = "probe-" + secrets.token_hex(4)
    logging.getLogger("homeserver.api").debug(probe)
    records = [r for r in caplog.records if not r.name.startswith(CLIENT_SIDE_LOGGERS)]
    assert any(r.getMessage() == probe for r in records), "the log capture does not see the server's loggers"
    text = "\n".join(f"{r.name}: {r.getMessage()} {r.exc_text or ''}" for r in records)
    # Short numeric codes are searched as whole numbers (not inside timestamps).
    leaked = [s for s in found if re.search(rf"(?<![0-9A-Za-z]){re.escape(s)}(?![0-9A-Za-z])", text)
              or (len(s) > 8 and s in text)]
    assert not leaked, f"secrets in the server log: {leaked}"
