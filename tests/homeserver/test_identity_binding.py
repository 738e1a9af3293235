"""Binding third-party identifiers at an identity server through the homeserver
(client-server API: /account/3pid/bind, /unbind, /delete, and /account/deactivate),
against a real identity server over HTTPS."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from common.canonical_json import encode_canonical_json
from tests.homeserver.test_account_admin import _auth
from tests.support.identity_server import IdentityServer, serve_identity_server
from tests.support.server import RunningServer, serve_homeserver


def _config(make_config: Any, ids: IdentityServer) -> Any:
    return make_config(identity={"allowed_servers": ids.name, "ca_file": ids.ca_file})


async def _bind(server: RunningServer, account: Any, ids: IdentityServer, sid: str, address: str,
                path: str = "account/3pid/bind") -> Any:
    ids.validated(sid, "email", address, f"secret-{sid}")
    return await server.api("POST", path, account, json={
        "id_server": ids.name, "id_access_token": ids.access_token, "sid": sid, "client_secret": f"secret-{sid}"})


async def test_bind_then_delete_unbinds_with_a_signed_request(make_config: Any, tmp_path: Path) -> None:
    async with serve_identity_server(tmp_path) as ids, serve_homeserver(_config(make_config, ids)) as server:
        alice = await server.register()
        bound = await _bind(server, alice, ids, "s1", "alice@example.test")
        assert bound.status_code == 200, bound.text
        assert ids.bindings == {("email", "alice@example.test"): alice.user_id}
        # Spec: binding does not add the identifier to the account.
        assert (await server.api("GET", "account/3pid", alice)).json() == {"threepids": []}

        deleted = await server.api("POST", "account/3pid/delete", alice,
                                   json={"medium": "email", "address": "alice@example.test"})
        assert deleted.status_code == 200, deleted.text
        assert deleted.json() == {"id_server_unbind_result": "success"}
        assert ids.bindings == {}
        # The unbind is signed with the homeserver's key (X-Matrix).
        header = ids.unbind_auth[-1]
        assert header.startswith("X-Matrix ") and f'origin="{server.config.server_name}"' in header
        fields = dict(part.split("=", 1) for part in header[len("X-Matrix "):].split(","))
        signed = {"method": "POST", "uri": "/_matrix/identity/v2/3pid/unbind",
                  "origin": server.config.server_name, "destination": ids.name, "content": ids.unbind_bodies[-1]}
        sig = fields["sig"].strip('"')
        key = server.hs.signing_key.private_key.public_key()
        key.verify(base64.b64decode(sig + "=" * (-len(sig) % 4)), encode_canonical_json(signed))
        # Nothing bound any more: deleting again is not found.
        again = await server.api("POST", "account/3pid/delete", alice,
                                 json={"medium": "email", "address": "alice@example.test"})
        assert again.status_code == 400 and again.json()["errcode"] == "M_THREEPID_NOT_FOUND"


async def test_unbind_with_and_without_id_server(make_config: Any, tmp_path: Path) -> None:
    async with serve_identity_server(tmp_path) as ids, serve_homeserver(_config(make_config, ids)) as server:
        alice = await server.register()
        # The unstable path of MSC2290 is served too.
        assert (await _bind(server, alice, ids, "s1", "a1@example.test",
                            "/_matrix/client/unstable/account/3pid/bind")).status_code == 200
        assert (await _bind(server, alice, ids, "s2", "a2@example.test")).status_code == 200
        without = await server.api("POST", "account/3pid/unbind", alice, json={"medium": "email", "address": "a1@example.test"})
        assert without.json() == {"id_server_unbind_result": "success"}
        named = await server.api("POST", "/_matrix/client/unstable/account/3pid/unbind", alice,
                                 json={"medium": "email", "address": "a2@example.test", "id_server": ids.name})
        assert named.json() == {"id_server_unbind_result": "success"}
        assert ids.bindings == {}
        # Bound out of band: the named identity server is asked anyway.
        ids.bindings[("email", "a3@example.test")] = alice.user_id
        out_of_band = await server.api("POST", "account/3pid/delete", alice,
                                       json={"medium": "email", "address": "a3@example.test", "id_server": ids.name})
        assert out_of_band.json() == {"id_server_unbind_result": "success"}
        assert ids.bindings == {}
        # Nothing bound through this server and no id_server: nobody to ask.
        nothing = await server.api("POST", "account/3pid/unbind", alice, json={"medium": "email", "address": "a4@example.test"})
        assert nothing.json() == {"id_server_unbind_result": "no-support"}


async def test_bad_bind_requests(make_config: Any, tmp_path: Path) -> None:
    async with serve_identity_server(tmp_path) as ids, serve_homeserver(_config(make_config, ids)) as server:
        alice = await server.register()
        untrusted = await server.api("POST", "account/3pid/bind", alice, json={
            "id_server": "evil.example:443", "id_access_token": "t", "sid": "s", "client_secret": "c"})
        assert untrusted.status_code == 400 and untrusted.json()["errcode"] == "M_SERVER_NOT_TRUSTED"
        missing = await server.api("POST", "account/3pid/bind", alice, json={"id_server": ids.name, "sid": "s"})
        assert missing.status_code == 400 and missing.json()["errcode"] == "M_MISSING_PARAM"
        ids.validated("s1", "email", "x@example.test", "right")
        wrong_secret = await server.api("POST", "account/3pid/bind", alice, json={
            "id_server": ids.name, "id_access_token": ids.access_token, "sid": "s1", "client_secret": "wrong"})
        assert wrong_secret.status_code == 400 and wrong_secret.json()["errcode"] == "M_NO_VALID_SESSION"
        bad_token = await server.api("POST", "account/3pid/bind", alice, json={
            "id_server": ids.name, "id_access_token": "nope", "sid": "s1", "client_secret": "right"})
        assert bad_token.status_code == 401 and bad_token.json()["errcode"] == "M_UNAUTHORIZED"
        assert ids.bindings == {}
        unauthenticated = await server.api("POST", "account/3pid/bind", json={})
        assert unauthenticated.status_code == 401


async def test_deactivation_unbinds_everything(make_config: Any, tmp_path: Path) -> None:
    async with serve_identity_server(tmp_path) as ids, serve_homeserver(_config(make_config, ids)) as server:
        alice = await server.register(password="alice password")
        await _bind(server, alice, ids, "s1", "d1@example.test")
        await _bind(server, alice, ids, "s2", "d2@example.test")
        assert len(ids.bindings) == 2
        first = await server.api("POST", "account/deactivate", alice, json={})
        done = await server.api("POST", "account/deactivate", alice, json={
            "auth": _auth(alice, "alice password", first.json()["session"])})
        assert done.status_code == 200, done.text
        assert done.json() == {"id_server_unbind_result": "success"}
        assert ids.bindings == {}
