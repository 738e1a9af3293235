"""Resetting a forgotten password by e-mail code over real HTTP (spec, "Password management":
``/account/password/email/requestToken``, then ``/account/password`` with
``m.login.email.identity`` and no access token)."""

from __future__ import annotations

import secrets
from typing import Any

from tests.homeserver.test_accounts import _email
from tests.support.server import RunningServer, serve_homeserver
from tests.support.smtp import SmtpSink

SUBMIT = "/_matrix/client/unstable/im.parley/email/submitToken"


async def _add_email(server: RunningServer, smtp_sink: SmtpSink, account: Any, password: str) -> str:
    email, secret = _email(), secrets.token_hex(8)
    sid = (await server.api("POST", "account/3pid/email/requestToken", account,
                            json={"email": email, "client_secret": secret, "send_attempt": 1})).json()["sid"]
    code = await smtp_sink.wait_for_code(email)
    assert (await server.api("POST", SUBMIT, json={"sid": sid, "client_secret": secret, "token": code})).status_code == 200
    session = (await server.api("POST", "account/3pid/add", account,
                                json={"sid": sid, "client_secret": secret})).json()["session"]
    auth = {"type": "m.login.password", "password": password, "session": session,
            "identifier": {"type": "m.id.user", "user": account.user_id}}
    added = await server.api("POST", "account/3pid/add", account, json={"sid": sid, "client_secret": secret, "auth": auth})
    assert added.status_code == 200, added.text
    return email


async def _login(server: RunningServer, user_id: str, password: str) -> Any:
    return await server.api("POST", "login", json={
        "type": "m.login.password", "password": password, "identifier": {"type": "m.id.user", "user": user_id}})


async def _validated_reset_sid(server: RunningServer, smtp_sink: SmtpSink, email: str, secret: str) -> str:
    before = len(smtp_sink.messages_to(email))
    response = await server.api("POST", "account/password/email/requestToken",
                                json={"email": email, "client_secret": secret, "send_attempt": 1})
    assert response.status_code == 200, response.text
    assert response.json()["submit_url"].endswith(SUBMIT)
    sid = response.json()["sid"]
    assert len(smtp_sink.messages_to(email)) == before + 1
    code = await smtp_sink.wait_for_code(email)
    assert (await server.api("POST", SUBMIT, json={"sid": sid, "client_secret": secret, "token": code})).status_code == 200
    return str(sid)


async def test_reset_by_email_code_logs_out_every_device(make_config: Any, smtp_sink: SmtpSink) -> None:
    async with serve_homeserver(make_config(smtp=smtp_sink.smtp_config())) as server:
        alice = await server.register(password="old password 1")
        email = await _add_email(server, smtp_sink, alice, "old password 1")
        second = await _login(server, alice.user_id, "old password 1")
        assert second.status_code == 200
        second_token = second.json()["access_token"]

        # No token, no auth: the flows for a reset.
        first = await server.api("POST", "account/password", json={"new_password": "new password 2"})
        assert first.status_code == 401, first.text
        assert first.json()["flows"] == [{"stages": ["m.login.email.identity"]}]
        session = first.json()["session"]

        # The code is only mailed when asked for; a sid not yet validated does not authenticate.
        secret = secrets.token_hex(8)
        unvalidated = (await server.api("POST", "account/password/email/requestToken",
                                        json={"email": email.upper(), "client_secret": secret})).json()["sid"]
        auth = {"type": "m.login.email.identity", "session": session,
                "threepid_creds": {"sid": unvalidated, "client_secret": secret}}
        early = await server.api("POST", "account/password", json={"new_password": "new password 2", "auth": auth})
        assert early.status_code == 401 and early.json()["errcode"] == "M_THREEPID_AUTH_FAILED"
        wrong = await server.api("POST", SUBMIT, json={"sid": unvalidated, "client_secret": secret, "token": "000000x"})
        assert wrong.status_code == 400 and wrong.json()["errcode"] == "M_THREEPID_AUTH_FAILED"
        # Asking again with the same client_secret is a retry of the same validation (spec: send_attempt).
        retry = await server.api("POST", "account/password/email/requestToken",
                                 json={"email": email, "client_secret": secret, "send_attempt": 2})
        assert retry.json()["sid"] == unvalidated
        code = await smtp_sink.wait_for_code(email)
        assert (await server.api("POST", SUBMIT, json={"sid": unvalidated, "client_secret": secret,
                                                       "token": code})).status_code == 200

        # The new password is checked before anything else.
        weak = await server.api("POST", "account/password", json={"new_password": "short", "auth": auth})
        assert weak.status_code == 400 and weak.json()["errcode"] == "M_WEAK_PASSWORD"
        done = await server.api("POST", "account/password", json={"new_password": "new password 2", "auth": auth})
        assert done.status_code == 200, done.text
        assert done.json() == {}

        # Every device is logged out (the request came from none of them).
        for token in (alice.access_token, second_token):
            whoami = await server.api("GET", "account/whoami", headers={"Authorization": f"Bearer {token}"})
            assert whoami.status_code == 401 and whoami.json()["errcode"] == "M_UNKNOWN_TOKEN"
        old = await _login(server, alice.user_id, "old password 1")
        assert old.status_code == 403 and old.json()["errcode"] == "M_FORBIDDEN"
        new = await _login(server, alice.user_id, "new password 2")
        assert new.status_code == 200, new.text

        # The session and the validation are used up: nobody can set the password again with them.
        replay = await server.api("POST", "account/password", json={"new_password": "third password 3", "auth": auth})
        assert replay.status_code == 400
        fresh = (await server.api("POST", "account/password", json={"new_password": "x" * 12})).json()["session"]
        reuse = await server.api("POST", "account/password", json={
            "new_password": "third password 3", "auth": {**auth, "session": fresh}})
        assert reuse.status_code == 401 and reuse.json()["errcode"] == "M_THREEPID_AUTH_FAILED"
        assert (await _login(server, alice.user_id, "new password 2")).status_code == 200

        # logout_devices: false keeps the devices.
        kept = new.json()["access_token"]
        sid = await _validated_reset_sid(server, smtp_sink, email, "another secret")
        session = (await server.api("POST", "account/password", json={"new_password": "x" * 12})).json()["session"]
        auth = {"type": "m.login.email.identity", "session": session,
                "threepid_creds": {"sid": sid, "client_secret": "another secret"}}
        done = await server.api("POST", "account/password", json={
            "new_password": "fourth password 4", "logout_devices": False, "auth": auth})
        assert done.status_code == 200, done.text
        whoami = await server.api("GET", "account/whoami", headers={"Authorization": f"Bearer {kept}"})
        assert whoami.status_code == 200 and whoami.json()["user_id"] == alice.user_id
        assert (await _login(server, alice.user_id, "fourth password 4")).status_code == 200


async def test_unknown_addresses_look_the_same_and_never_validate(make_config: Any, smtp_sink: SmtpSink) -> None:
    """The spec's 400 M_THREEPID_NOT_FOUND for an unknown address would tell anybody which
    addresses have accounts (Parley's anti-enumeration rule, as for registration): the
    answer is a sid either way, and no code is ever mailed for an unknown address."""
    async with serve_homeserver(make_config(smtp=smtp_sink.smtp_config())) as server:
        alice = await server.register(password="old password 1")
        known = await _add_email(server, smtp_sink, alice, "old password 1")
        unknown = _email()
        answers = []
        for email in (unknown, known):
            response = await server.api("POST", "account/password/email/requestToken",
                                        json={"email": email, "client_secret": "s3cret"})
            assert response.status_code == 200, response.text
            answers.append(response.json())
        assert [sorted(a) for a in answers] == [["sid", "submit_url"]] * 2
        await smtp_sink.wait_for_code(known)
        assert smtp_sink.messages_to(unknown) == []
        for code in ("000000", "123456"):
            guess = await server.api("POST", SUBMIT, json={"sid": answers[0]["sid"], "client_secret": "s3cret",
                                                           "token": code})
            assert guess.status_code == 400 and guess.json()["errcode"] == "M_THREEPID_AUTH_FAILED"

        # An address validated for registration (it has no account) resets nothing.
        stranger = _email()
        reg = (await server.api("POST", "register/email/requestToken",
                                json={"email": stranger, "client_secret": "reg secret"})).json()["sid"]
        code = await smtp_sink.wait_for_code(stranger)
        assert (await server.api("POST", SUBMIT, json={"sid": reg, "client_secret": "reg secret",
                                                       "token": code})).status_code == 200
        session = (await server.api("POST", "account/password", json={"new_password": "x" * 12})).json()["session"]
        refused = await server.api("POST", "account/password", json={"new_password": "new password 2", "auth": {
            "type": "m.login.email.identity", "session": session,
            "threepid_creds": {"sid": reg, "client_secret": "reg secret"}}})
        assert refused.status_code == 401 and refused.json()["errcode"] == "M_THREEPID_NOT_FOUND"
        assert (await _login(server, alice.user_id, "old password 1")).status_code == 200


async def test_bad_requests_and_phone_numbers(server: RunningServer) -> None:
    path = "account/password/email/requestToken"
    for body in ({"email": "a@example.test"}, {"email": "a@example.test", "client_secret": ""},
                 {"email": 5, "client_secret": "x"}, {"client_secret": "x"},
                 {"email": "a@example.test", "client_secret": "x" * 256}):
        response = await server.api("POST", path, json=body)
        assert response.status_code == 400 and response.json()["errcode"] == "M_INVALID_PARAM", body
    response = await server.api("POST", path, content=b"{not json", headers={"Content-Type": "application/json"})
    assert response.status_code == 400 and response.json()["errcode"] == "M_NOT_JSON"
    for bad in ({"new_password": 5}, {"new_password": "long enough pw", "logout_devices": "yes"},
                {"new_password": "long enough pw", "auth": "x"}):
        response = await server.api("POST", "account/password", json=bad)
        assert response.status_code == 400 and response.json()["errcode"] in (
            "M_WEAK_PASSWORD", "M_BAD_JSON"), bad
    missing = await server.api("POST", "account/password", json={})
    assert missing.status_code == 400 and missing.json()["errcode"] == "M_MISSING_PARAM"
    # Text messages are not sent: every msisdn requestToken says so.
    for prefix in ("register", "account/password", "account/3pid"):
        response = await server.api("POST", f"{prefix}/msisdn/requestToken", json={
            "client_secret": "x", "country": "GB", "phone_number": "07700900001", "send_attempt": 1})
        assert response.status_code == 400, prefix
        assert response.json()["errcode"] == "M_THREEPID_MEDIUM_NOT_SUPPORTED", prefix
