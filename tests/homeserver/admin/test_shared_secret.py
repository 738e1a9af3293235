"""Shared-secret registration (/_synapse/admin/v1/register), also through Synapse's own script."""

from __future__ import annotations

import asyncio
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.homeserver.admin.helpers import A1, SECRET, expect, mac_for, register_with_secret
from tests.support.server import RunningServer, serve_homeserver


def _script() -> str:
    beside = Path(sys.executable).parent / "register_new_matrix_user"
    found = str(beside) if beside.exists() else shutil.which("register_new_matrix_user")
    if found is None:
        pytest.fail("register_new_matrix_user is missing: install the test extra (matrix-synapse)")
    return found


async def test_synapse_register_new_matrix_user_script(server: RunningServer) -> None:
    process = await asyncio.create_subprocess_exec(
        _script(), "-u", "opsadmin", "-p", "script password 1", "-a", "-k", SECRET, server.base_url,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    assert process.returncode == 0, output.decode()
    user_id = f"@opsadmin:{server.config.server_name}"
    assert "Success" in output.decode()
    login = expect(await server.api("POST", "login", json={
        "type": "m.login.password", "identifier": {"type": "m.id.user", "user": "opsadmin"},
        "password": "script password 1"}))
    assert login["user_id"] == user_id
    # The account is a server admin: it may list users.
    listed = expect(await server.client.get(
        "/_synapse/admin/v2/users", headers={"Authorization": f"Bearer {login['access_token']}"}))
    assert user_id in [u["name"] for u in listed["users"]]
    # Running the script again for the same user fails with M_USER_IN_USE, unless --exists-ok.
    again = await asyncio.create_subprocess_exec(
        _script(), "-u", "opsadmin", "-p", "script password 1", "--no-admin", "--exists-ok", "-k", SECRET,
        server.base_url, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    out2, _ = await again.communicate()
    assert again.returncode == 0, out2.decode()


async def test_shared_secret_registration_creates_a_logged_in_account(server: RunningServer) -> None:
    account = await register_with_secret(server, "plain", "plain password 1", admin=False)
    assert account.user_id == f"@plain:{server.config.server_name}"
    who = expect(await server.api("GET", "account/whoami", account))
    assert who["user_id"] == account.user_id
    # Not an admin.
    expect(await server.api("GET", "/_synapse/admin/v2/users", account), 403, "M_FORBIDDEN")


async def test_bad_mac_and_reused_or_unknown_nonce_are_refused(server: RunningServer) -> None:
    nonce = expect(await server.client.get(A1 + "/register"))["nonce"]
    body: dict[str, Any] = {"nonce": nonce, "username": "eve", "password": "eve password 1", "admin": True,
                            "mac": mac_for(nonce, "eve", "eve password 1", admin=False)}
    expect(await server.client.post(A1 + "/register", json=body), 403, "M_FORBIDDEN")
    # The nonce was consumed by the failed attempt.
    body["mac"] = mac_for(nonce, "eve", "eve password 1", admin=True)
    expect(await server.client.post(A1 + "/register", json=body), 400, "M_INVALID_PARAM")
    body["nonce"] = "never-issued"
    expect(await server.client.post(A1 + "/register", json=body), 400, "M_INVALID_PARAM")
    expect(await server.client.post(A1 + "/register", json={"nonce": nonce}), 400, "M_MISSING_PARAM")
    other = await register_with_secret(server, "taken", "taken password 1")
    nonce = expect(await server.client.get(A1 + "/register"))["nonce"]
    body = {"nonce": nonce, "username": "taken", "password": "x password 1",
            "mac": mac_for(nonce, "taken", "x password 1", admin=False)}
    expect(await server.client.post(A1 + "/register", json=body), 400, "M_USER_IN_USE")
    assert other.user_id.startswith("@taken:")


async def test_registration_is_off_without_a_secret(make_config: Any) -> None:
    async with serve_homeserver(make_config()) as plain:
        response = await plain.client.get(A1 + "/register")
        expect(response, 400, "M_UNKNOWN")


def test_short_shared_secret_is_refused_outside_dev_mode() -> None:
    from homeserver.config import ConfigError, load_config

    base = {"registration": {"open": True, "require_email": False, "shared_secret": "short"}}
    with pytest.raises(ConfigError, match="shared_secret"):
        load_config(None, environ={}, overrides=base)
    env = {"PARLEY_REGISTRATION_SHARED_SECRET": "a long enough shared secret"}
    config = load_config(None, environ=env, overrides={"registration": {"open": True, "require_email": False}})
    assert config.registration.shared_secret == "a long enough shared secret"


async def test_server_version(server: RunningServer) -> None:
    body = expect(await server.client.get(A1 + "/server_version"))
    assert body["server_version"].startswith("Parley ")
