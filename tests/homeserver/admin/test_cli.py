"""The admin command line works against the configured database while the server runs."""

from __future__ import annotations

from pathlib import Path

from tests.homeserver.admin.cli_helpers import run_admin, write_config
from tests.homeserver.admin.helpers import A1, A2, expect
from tests.homeserver.room_helpers import create_room
from tests.homeserver.test_media_support import DOWNLOAD, media_path, upload_ok
from tests.support.server import Account, RunningServer


async def _login(server: RunningServer, user: str, password: str) -> Account:
    body = expect(await server.api("POST", "login", json={
        "type": "m.login.password", "identifier": {"type": "m.id.user", "user": user}, "password": password}))
    return Account(body["user_id"], body["device_id"], body["access_token"], password)


async def test_cli_user_lifecycle(server: RunningServer, tmp_path: Path) -> None:
    conf = write_config(server.config, tmp_path / "admin.toml")
    code, user, err = await run_admin(conf, "create-user", "ops", "--password", "ops password 1", "--admin",
                                      "--displayname", "Operations")
    assert code == 0, err
    assert user["name"] == f"@ops:{server.config.server_name}" and user["admin"] is True
    ops = await _login(server, "ops", "ops password 1")
    expect(await server.api("GET", A2 + "/users", ops))  # a server admin now
    code, _, err = await run_admin(conf, "create-user", "ops", "--password", "x password 1")
    assert code == 1 and "M_USER_IN_USE" in err

    alice = await server.register("alice")
    code, body, err = await run_admin(conf, "set-admin", "alice")
    assert code == 0 and body["admin"] is True, err
    expect(await server.api("GET", A2 + "/users", alice))
    code, _, _ = await run_admin(conf, "set-admin", alice.user_id, "--revoke")
    expect(await server.api("GET", A2 + "/users", alice), 403, "M_FORBIDDEN")

    code, _, err = await run_admin(conf, "reset-password", "alice", "--password", "reset password 1")
    assert code == 0, err
    expect(await server.api("GET", "account/whoami", alice), 401, "M_UNKNOWN_TOKEN")
    alice = await _login(server, "alice", "reset password 1")

    code, listed, err = await run_admin(conf, "list-users", "--name", "alice")
    assert code == 0 and [u["name"] for u in listed["users"]] == [alice.user_id], err

    code, _, err = await run_admin(conf, "deactivate", "alice", "--erase")
    assert code == 0, err
    expect(await server.api("GET", "account/whoami", alice), 401)
    code, entries, _ = await run_admin(conf, "audit-log", "--target", alice.user_id)
    assert [e["action"] for e in entries][:2] == ["deactivate", "reset_password"]
    assert entries[0]["admin_user_id"].startswith("cli")
    code, _, err = await run_admin(conf, "deactivate", "@nobody:" + server.config.server_name)
    assert code == 1 and "M_NOT_FOUND" in err


async def test_cli_tokens_rooms_and_media(server: RunningServer, admin: Account, tmp_path: Path) -> None:
    conf = write_config(server.config, tmp_path / "admin.toml")
    code, token, err = await run_admin(conf, "new-registration-token", "--token", "cli-token", "--uses", "3")
    assert code == 0 and token["uses_allowed"] == 3, err
    code, listed, _ = await run_admin(conf, "list-registration-tokens")
    assert "cli-token" in [t["token"] for t in listed["registration_tokens"]]
    assert expect(await server.api("GET", A1 + "/registration_tokens/cli-token", admin))["uses_allowed"] == 3

    alice = await server.register("alice")
    room = await create_room(server, alice, name="Doomed")
    code, result, err = await run_admin(conf, "delete-room", room, "--block")
    assert code == 0 and result["kicked_users"] == [alice.user_id], err
    expect(await server.api("GET", f"{A1}/rooms/{room}", admin), 404, "M_NOT_FOUND")
    assert expect(await server.api("GET", f"{A1}/rooms/{room}/block", admin))["block"] is True
    uri = await upload_ok(server, alice, b"bad file")
    code, _, err = await run_admin(conf, "quarantine-media", uri.rsplit("/", 1)[1])
    assert code == 0, err
    expect(await server.client.get(f"{DOWNLOAD}/{media_path(uri)}", headers=alice.headers), 404, "M_NOT_FOUND")
    code, deleted, err = await run_admin(conf, "purge-media", "--older-than-days", "0")
    assert code == 0 and uri.rsplit("/", 1)[1] in deleted["deleted_media"], err
    code, _, err = await run_admin(conf, "nonsense")
    assert code == 2
