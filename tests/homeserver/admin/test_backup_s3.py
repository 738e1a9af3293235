"""Backup and restore of a deployment whose media lives in an S3 bucket (a real moto server).

The backup holds the bucket's objects in the folder layout; a restore puts
them into the (empty) bucket of the restored deployment and refuses a bucket
that already holds media before it touches the database.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.homeserver.admin.cli_helpers import run_admin, write_config
from tests.homeserver.test_media_support import DOWNLOAD, media_path, upload_ok
from tests.support.databases import mysql_database
from tests.support.s3 import S3Server
from tests.support.server import serve_homeserver


@contextlib.contextmanager
def _empty_database(tmp_path: Path, name: str) -> Iterator[str]:
    if os.environ.get("PARLEY_TEST_DB", "sqlite") == "mysql":
        with mysql_database(f"parley_{name}") as url:
            yield url
    else:
        yield f"sqlite://{tmp_path / name / 'homeserver.db'}"


async def test_an_s3_deployment_backs_up_and_restores_its_bucket(make_config: Any, s3: S3Server,
                                                                 tmp_path: Path) -> None:
    bucket = s3.new_bucket()
    config = make_config(**s3.media_settings(bucket))
    async with serve_homeserver(config) as server:
        alice = await server.register("alice", password="alice password 1")
        files = [os.urandom(3000 + i) for i in range(2)]
        uris = [await upload_ok(server, alice, body) for body in files]
    backup_dir = tmp_path / "backup"
    code, manifest, err = await run_admin(write_config(config, tmp_path / "a.toml"), "backup", str(backup_dir))
    assert code == 0, err
    assert manifest["media_files"] == 2
    for uri, body in zip(uris, files, strict=True):
        media_id = uri.rsplit("/", 1)[1]
        assert (backup_dir / "media" / media_id[:2] / media_id[2:4] / media_id).read_bytes() == body

    # Into a bucket that already holds media: refused, and the empty database stays empty.
    with _empty_database(tmp_path, "restore_refused") as empty_url:
        refused = make_config(server_name=config.server_name, database={"url": empty_url},
                              **s3.media_settings(bucket))
        code, _, err = await run_admin(write_config(refused, tmp_path / "r.toml"), "restore", str(backup_dir))
        assert code == 1 and "not empty" in err, err
        if empty_url.startswith("sqlite://"):
            assert not os.path.exists(empty_url.removeprefix("sqlite://"))  # noqa: ASYNC240 - a test file

    fresh_bucket = s3.new_bucket()
    with _empty_database(tmp_path, "restore_s3") as empty_url:
        restored_config = make_config(server_name=config.server_name, database={"url": empty_url},
                                      **s3.media_settings(fresh_bucket))
        code, _, err = await run_admin(write_config(restored_config, tmp_path / "b.toml"), "restore",
                                       str(backup_dir))
        assert code == 0, err
        assert sorted(s3.objects(fresh_bucket).values()) == sorted(files)
        async with serve_homeserver(restored_config) as restored:
            login = await restored.api("POST", "login", json={
                "type": "m.login.password", "identifier": {"type": "m.id.user", "user": "alice"},
                "password": "alice password 1"})
            headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
            for uri, body in zip(uris, files, strict=True):
                got = await restored.client.get(f"{DOWNLOAD}/{media_path(uri)}", headers=headers)
                assert got.status_code == 200 and got.content == body
