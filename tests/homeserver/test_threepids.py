"""An account's e-mail address through /account/3pid: list, add with a code and UIA, delete;
binding is refused while no identity server is allowed (test_identity_binding.py binds)."""

from __future__ import annotations

from typing import Any

from tests.homeserver.test_accounts import _email
from tests.support.server import serve_homeserver
from tests.support.smtp import SmtpSink


async def test_add_list_delete_and_bind(make_config: Any, smtp_sink: SmtpSink) -> None:
    async with serve_homeserver(make_config(smtp=smtp_sink.smtp_config())) as server:
        alice = await server.register(password="alice password")
        assert (await server.api("GET", "account/3pid", alice)).json() == {"threepids": []}
        email, secret = _email(), "s3cret"
        request = await server.api("POST", "account/3pid/email/requestToken", alice,
                                   json={"email": email, "client_secret": secret, "send_attempt": 1})
        assert request.status_code == 200, request.text
        sid = request.json()["sid"]
        unverified = await server.api("POST", "account/3pid/add", alice, json={"sid": sid, "client_secret": secret})
        assert unverified.status_code == 401  # UIA first
        session = unverified.json()["session"]
        auth = {"type": "m.login.password", "password": "alice password", "session": session,
                "identifier": {"type": "m.id.user", "user": alice.user_id}}
        early = await server.api("POST", "account/3pid/add", alice,
                                 json={"sid": sid, "client_secret": secret, "auth": auth})
        assert early.status_code == 400 and early.json()["errcode"] == "M_THREEPID_AUTH_FAILED"

        code = await smtp_sink.wait_for_code(email)
        submitted = await server.api("POST", "/_matrix/client/unstable/im.parley/email/submitToken",
                                     json={"sid": sid, "client_secret": secret, "token": code})
        assert submitted.status_code == 200
        added = await server.api("POST", "account/3pid/add", alice,
                                 json={"sid": sid, "client_secret": secret, "auth": auth})
        assert added.status_code == 200, added.text
        listed = (await server.api("GET", "account/3pid", alice)).json()["threepids"]
        assert [(t["medium"], t["address"]) for t in listed] == [("email", email)]
        # Log in by the new address.
        login = await server.api("POST", "login", json={
            "type": "m.login.password", "password": "alice password",
            "identifier": {"type": "m.id.thirdparty", "medium": "email", "address": email}})
        assert login.status_code == 200 and login.json()["user_id"] == alice.user_id

        # Asking for a code needs no token (spec); adding the address does, with UIA.
        other = _email()
        anonymous = await server.api("POST", "account/3pid/email/requestToken",
                                     json={"email": other, "client_secret": "anon", "send_attempt": 1})
        assert anonymous.status_code == 200 and "sid" in anonymous.json()
        await smtp_sink.wait_for_code(other)
        unauthenticated = await server.api("POST", "account/3pid/add",
                                           json={"sid": anonymous.json()["sid"], "client_secret": "anon"})
        assert unauthenticated.status_code == 401 and unauthenticated.json()["errcode"] == "M_MISSING_TOKEN"

        bind = await server.api("POST", "account/3pid/bind", alice, json={"sid": sid, "client_secret": secret})
        assert bind.status_code == 400 and "identity server" in bind.json()["error"]
        unbind = await server.api("POST", "account/3pid/unbind", alice, json={"medium": "email", "address": email})
        assert unbind.json() == {"id_server_unbind_result": "no-support"}

        wrong = await server.api("POST", "account/3pid/delete", alice,
                                 json={"medium": "email", "address": "other@example.test"})
        assert wrong.status_code == 400
        deleted = await server.api("POST", "account/3pid/delete", alice, json={"medium": "email", "address": email})
        assert deleted.status_code == 200 and deleted.json() == {"id_server_unbind_result": "no-support"}
        assert (await server.api("GET", "account/3pid", alice)).json() == {"threepids": []}
