"""Several instances of one deployment starting at once on a fresh database.

They share nothing but the database, the media bucket (a real S3-compatible
server) and Redis when configured: each has its own data folder.  One of
them creates the schema and the signing key; the others wait on the
migration lock and read the same key.  Media uploaded through one instance
is served by the others, and no instance keeps it on its disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.homeserver.test_media_support import DOWNLOAD, THUMBNAIL, media_path, png_bytes, upload_ok
from tests.support.databases import mysql_database
from tests.support.redis import require_redis
from tests.support.s3 import S3Server
from tests.support.server import RunningServer, serve_homeserver, test_config


@pytest.fixture
def fresh_database_url(tmp_path: Path) -> Iterator[str]:
    if os.environ.get("PARLEY_TEST_DB", "sqlite") != "mysql":
        yield f"sqlite://{tmp_path / 'fresh.db'}"
        return
    with mysql_database("parley_fresh") as url:
        yield url


@pytest.mark.parametrize("bus", ["database-polling", "redis"])
async def test_three_instances_start_together_on_a_fresh_database(
    fresh_database_url: str, tmp_path: Path, bus: str, s3: S3Server
) -> None:
    bucket = s3.new_bucket()
    overrides: dict[str, Any] = {"redis_url": require_redis()} if bus == "redis" else {}
    overrides.update(s3.media_settings(bucket))
    first = test_config(fresh_database_url, tmp_path / "one", overrides)
    configs = [first, *(test_config(fresh_database_url, tmp_path / name,
                                    {**overrides, "server_name": first.server_name})
                        for name in ("two", "three"))]
    async with contextlib.AsyncExitStack() as stack:
        servers: list[RunningServer] = list(await asyncio.gather(
            *(stack.enter_async_context(serve_homeserver(config)) for config in configs)))
        keys = {(s.hs.signing_key.key_id, s.hs.signing_key.public_key_b64) for s in servers}
        assert len(keys) == 1, "every instance signs with the one deployment key"
        # One deployment: an account made on one instance works on the others.
        alice = await servers[0].register("alice")
        for other in servers[1:]:
            whoami = await other.api("GET", "account/whoami", alice)
            assert whoami.status_code == 200 and whoami.json()["user_id"] == alice.user_id
        room = (await servers[1].api("POST", "createRoom", alice, json={})).json()["room_id"]
        sent = await servers[2].api("PUT", f"rooms/{room}/send/m.room.message/t1", alice,
                                    json={"msgtype": "m.text", "body": "hi"})
        assert sent.status_code == 200, sent.text
        # Media: uploaded through one instance, served and thumbnailed by the others.
        image = png_bytes(40, 30)
        uri = await upload_ok(servers[0], alice, image, "image/png")
        got = await servers[1].client.get(f"{DOWNLOAD}/{media_path(uri)}", headers=alice.headers)
        assert got.status_code == 200 and got.content == image
        thumb = await servers[2].client.get(f"{THUMBNAIL}/{media_path(uri)}", headers=alice.headers,
                                            params={"width": 8, "height": 8})
        assert thumb.status_code == 200 and thumb.content.startswith(b"\x89PNG")
        assert list(s3.objects(bucket).values()) == [image]
        for config in configs:
            on_disk = [p for p in config.data_path.rglob("*") if p.is_file()] if config.data_path.exists() else []
            assert on_disk == [], f"{config.data_path} keeps {on_disk}"
