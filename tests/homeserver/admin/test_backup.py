"""Backup while the server runs, restore into an empty database, and the restored server
serves the same rooms, messages and media."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.homeserver.admin.cli_helpers import run_admin, write_config
from tests.homeserver.admin.helpers import expect
from tests.homeserver.room_helpers import create_room, send_text, sync, timeline
from tests.homeserver.test_media_support import DOWNLOAD, media_path, upload_ok
from tests.support.databases import mysql_database
from tests.support.server import RunningServer, serve_homeserver


@contextlib.contextmanager
def _empty_database(tmp_path: Path) -> Iterator[str]:
    if os.environ.get("PARLEY_TEST_DB", "sqlite") == "mysql":
        with mysql_database("parley_restore") as url:
            yield url
    else:
        yield f"sqlite://{tmp_path / 'restored' / 'homeserver.db'}"


async def test_backup_and_restore_into_an_empty_database(server: RunningServer, make_config: Any,
                                                         tmp_path: Path) -> None:
    alice = await server.register("alice", password="alice password 1")
    bob = await server.register("bob")
    room = await create_room(server, alice, name="Archive me", invite=[bob.user_id])
    expect(await server.api("POST", f"rooms/{room}/join", bob))
    for i in range(3):
        await send_text(server, alice, room, f"message {i}")
    photo = os.urandom(4096)
    uri = await upload_ok(server, alice, photo, "application/octet-stream")
    # The server signing key lives in the database, so the dump carries it.
    signing_key = (server.hs.signing_key.key_id, server.hs.signing_key.public_key_b64)

    backup_dir = tmp_path / "backup"
    code, manifest, err = await run_admin(write_config(server.config, tmp_path / "a.toml"), "backup",
                                          str(backup_dir))
    assert code == 0, err
    assert manifest["server_name"] == server.config.server_name and manifest["media_files"] >= 1
    assert manifest["tables"]["events"] >= 8
    # Written after the backup: not in it.
    await send_text(server, alice, room, "after the backup")

    with _empty_database(tmp_path) as empty_url:
        restored_config = make_config(server_name=server.config.server_name, database={"url": empty_url})
        conf = write_config(restored_config, tmp_path / "b.toml")
        code, _, err = await run_admin(conf, "restore", str(backup_dir))
        assert code == 0, err
        # A second restore into the now full database is refused.
        code, _, err = await run_admin(conf, "restore", str(backup_dir))
        assert code == 1 and "not empty" in err
        async with serve_homeserver(restored_config) as restored:
            assert (restored.hs.signing_key.key_id, restored.hs.signing_key.public_key_b64) == signing_key
            login = expect(await restored.api("POST", "login", json={
                "type": "m.login.password", "identifier": {"type": "m.id.user", "user": "alice"},
                "password": "alice password 1"}))
            headers = {"Authorization": f"Bearer {login['access_token']}"}
            rooms = expect(await restored.client.get("/_matrix/client/v3/joined_rooms", headers=headers))
            assert room in rooms["joined_rooms"]
            messages = expect(await restored.client.get(f"/_matrix/client/v3/rooms/{room}/messages",
                                                        params={"dir": "b", "limit": 50}, headers=headers))
            bodies = [e["content"].get("body") for e in messages["chunk"] if e["type"] == "m.room.message"]
            assert bodies == ["message 2", "message 1", "message 0"]
            name = expect(await restored.client.get(f"/_matrix/client/v3/rooms/{room}/state/m.room.name",
                                                    headers=headers))
            assert name == {"name": "Archive me"}
            download = await restored.client.get(f"{DOWNLOAD}/{media_path(uri)}", headers=headers)
            assert download.status_code == 200 and download.content == photo
            # The restored server keeps working: bob's old token is valid and new messages flow.
            await send_text(restored, bob, room, "after the restore")
            assert "after the restore" in [e["content"].get("body")
                                           for e in timeline(await sync(restored, bob), room)]


async def test_restore_refuses_another_server_name(server: RunningServer, make_config: Any,
                                                   tmp_path: Path) -> None:
    code, _, err = await run_admin(write_config(server.config, tmp_path / "a.toml"), "backup",
                                   str(tmp_path / "b1"))
    assert code == 0, err
    other = make_config(database={"url": f"sqlite://{tmp_path / 'x.db'}"})
    code, _, err = await run_admin(write_config(other, tmp_path / "o.toml"), "restore", str(tmp_path / "b1"))
    assert code == 1 and "the backup is of" in err
    code, _, err = await run_admin(write_config(server.config, tmp_path / "a.toml"), "backup",
                                   str(tmp_path / "b1"))
    assert code == 1 and "not empty" in err
