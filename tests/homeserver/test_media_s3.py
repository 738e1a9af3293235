"""The S3 media store against a real S3-compatible server (moto's, over HTTP on loopback).

Uploads land as objects in the bucket and nowhere on the instance's disk;
downloads (whole and ranged), thumbnails, avatars, redaction, admin
deletion, quarantine, retention and pending-upload expiry all go through
the bucket; an unreachable store answers 503 with ``Retry-After``.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import pytest

from homeserver.config import ConfigError
from homeserver.services.clock import ManualClock
from tests.homeserver.admin.helpers import A1, SECRET, expect, register_with_secret
from tests.homeserver.test_media_support import (
    DOWNLOAD,
    LEGACY_DOWNLOAD,
    THUMBNAIL,
    media_path,
    png_bytes,
    upload_ok,
)
from tests.support.s3 import S3Server
from tests.support.server import free_port, serve_homeserver

DAY = 86_400_000


def _files_under(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file() and p.suffix != ".db" and "-journal" not in p.name
            and "-wal" not in p.name and "-shm" not in p.name] if folder.exists() else []


def _config(make_config: Any, s3: S3Server, bucket: str, **extra: Any) -> Any:
    registration = {"open": True, "require_email": False, "shared_secret": SECRET}
    return make_config(**s3.media_settings(bucket), registration=registration, **extra)


async def test_upload_lands_in_the_bucket_and_downloads_whole_and_in_ranges(make_config: Any, s3: S3Server) -> None:
    bucket = s3.new_bucket()
    config = _config(make_config, s3, bucket)
    async with serve_homeserver(config) as server:
        alice, bob = await server.register(), await server.register()
        body = os.urandom(200_000)
        uri = await upload_ok(server, alice, body, "application/pdf", filename="report é.pdf")
        media_id = uri.rsplit("/", 1)[1]
        assert s3.objects(bucket) == {f"media/{media_id}": body}
        # Nothing of it on the instance's disk: neither the media folder nor a leftover spool file.
        assert _files_under(config.data_path) == []
        for prefix in (DOWNLOAD, LEGACY_DOWNLOAD):
            whole = await server.client.get(f"{prefix}/{media_path(uri)}", headers=bob.headers)
            assert whole.status_code == 200 and whole.content == body
            assert whole.headers["content-type"].startswith("application/pdf")
            assert whole.headers["content-disposition"] == "attachment; filename*=utf-8''report%20%C3%A9.pdf"
            assert whole.headers["content-length"] == str(len(body))
            assert "sandbox" in whole.headers["content-security-policy"]
        for asked, first, last in (("bytes=10-19", 10, 19), ("bytes=199990-", 199_990, 199_999),
                                   ("bytes=-5", 199_995, 199_999), ("bytes=100-999999", 100, 199_999)):
            part = await server.client.get(f"{DOWNLOAD}/{media_path(uri)}", headers={**bob.headers, "Range": asked})
            assert part.status_code == 206, (asked, part.text)
            assert part.content == body[first:last + 1]
            assert part.headers["content-range"] == f"bytes {first}-{last}/{len(body)}"
        refused = await server.client.get(f"{DOWNLOAD}/{media_path(uri)}",
                                          headers={**bob.headers, "Range": "bytes=200000-"})
        assert refused.status_code == 416 and refused.headers["content-range"] == "bytes */200000"
        # An empty file is served too.
        empty = await upload_ok(server, alice, b"", "text/plain")
        got = await server.client.get(f"{DOWNLOAD}/{media_path(empty)}", headers=bob.headers)
        assert got.status_code == 200 and got.content == b""


async def test_create_then_upload_thumbnail_and_avatar_read_the_bucket(make_config: Any, s3: S3Server) -> None:
    bucket = s3.new_bucket()
    async with serve_homeserver(_config(make_config, s3, bucket)) as server:
        alice = await server.register()
        created = expect(await server.client.post("/_matrix/media/v1/create", headers=alice.headers))
        uri = created["content_uri"]
        image = png_bytes(64, 48)
        put = await server.client.put(f"/_matrix/media/v3/upload/{media_path(uri)}", content=image,
                                      headers={**alice.headers, "Content-Type": "image/png"})
        assert put.status_code == 200, put.text
        thumb = await server.client.get(f"{THUMBNAIL}/{media_path(uri)}", headers=alice.headers,
                                        params={"width": 16, "height": 16, "method": "scale"})
        assert thumb.status_code == 200 and thumb.content.startswith(b"\x89PNG")
        assert (await server.api("PUT", f"profile/{alice.user_id}/avatar_url", alice,
                                 json={"avatar_url": uri})).status_code == 200
        not_image = await upload_ok(server, alice, b"\x89PNG but not really", "image/png")
        expect(await server.api("PUT", f"profile/{alice.user_id}/avatar_url", alice,
                                json={"avatar_url": not_image}), 400, "M_INVALID_PARAM")
        # The spool holds nothing once the thumbnail and the checks are done.
        assert _files_under(server.config.data_path) == []


async def test_deletion_quarantine_and_retention_act_on_the_bucket(make_config: Any, s3: S3Server) -> None:
    bucket = s3.new_bucket()
    clock = ManualClock(1_700_000_000_000)
    config = _config(make_config, s3, bucket, admin={"media_retention_local_days": 30})
    async with serve_homeserver(config, clock=clock) as server:
        admin = await register_with_secret(server, "root", "admin password 1", admin=True)
        alice = await server.register()
        doomed, kept, stale = [await upload_ok(server, alice, f"file {i}".encode()) for i in range(3)]

        def key(uri: str) -> str:
            return f"media/{uri.rsplit('/', 1)[1]}"

        assert set(s3.objects(bucket)) == {key(doomed), key(kept), key(stale)}

        expect(await server.api("DELETE", f"{A1}/media/{media_path(doomed)}", admin))
        assert key(doomed) not in s3.objects(bucket)
        expect(await server.client.get(f"{DOWNLOAD}/{media_path(doomed)}", headers=alice.headers), 404, "M_NOT_FOUND")

        # Quarantine hides the media but keeps the object.
        expect(await server.api("POST", f"{A1}/media/quarantine/{media_path(kept)}", admin, json={}))
        expect(await server.client.get(f"{DOWNLOAD}/{media_path(kept)}", headers=alice.headers), 404, "M_NOT_FOUND")
        assert key(kept) in s3.objects(bucket)
        expect(await server.api("POST", f"{A1}/media/unquarantine/{media_path(kept)}", admin, json={}))
        assert (await server.client.get(f"{DOWNLOAD}/{media_path(kept)}", headers=alice.headers)).content == b"file 1"

        # Retention: not downloaded for 30 days -> removed from the bucket.
        clock.advance(20 * DAY)
        assert (await server.client.get(f"{DOWNLOAD}/{media_path(kept)}", headers=alice.headers)).status_code == 200
        clock.advance(15 * DAY)
        with server.hs.database.activated():
            deleted = await server.hs.services.admin.media.apply_retention(30)
        assert deleted == [stale.rsplit("/", 1)[1]]
        assert set(s3.objects(bucket)) == {key(kept)}

        # Deleting all of a user's media empties the bucket.
        expect(await server.api("DELETE", f"{A1}/users/{alice.user_id}/media", admin))
        assert s3.objects(bucket) == {}


async def test_a_redacted_message_takes_its_media_out_of_the_bucket(make_config: Any, s3: S3Server) -> None:
    bucket = s3.new_bucket()
    async with serve_homeserver(_config(make_config, s3, bucket)) as server:
        alice = await server.register()
        room = (await server.api("POST", "createRoom", alice, json={})).json()["room_id"]
        uri = await upload_ok(server, alice, png_bytes(), "image/png")
        sent = await server.api("PUT", f"rooms/{room}/send/m.room.message/t1", alice,
                                json={"msgtype": "m.image", "body": "a.png", "url": uri})
        event_id = sent.json()["event_id"]
        assert len(s3.objects(bucket)) == 1
        redacted = await server.api("PUT", f"rooms/{room}/redact/{event_id}/r1", alice, json={})
        assert redacted.status_code == 200, redacted.text
        assert s3.objects(bucket) == {}


async def test_an_object_gone_from_the_bucket_is_a_404(make_config: Any, s3: S3Server) -> None:
    bucket = s3.new_bucket()
    async with serve_homeserver(_config(make_config, s3, bucket)) as server:
        alice = await server.register()
        uri = await upload_ok(server, alice, png_bytes(), "image/png")
        await server.hs.services.media.store.delete([uri.rsplit("/", 1)[1]])
        expect(await server.client.get(f"{DOWNLOAD}/{media_path(uri)}", headers=alice.headers), 404, "M_NOT_FOUND")
        expect(await server.client.get(f"{THUMBNAIL}/{media_path(uri)}", headers=alice.headers,
                                       params={"width": 8, "height": 8}), 404, "M_NOT_FOUND")


async def test_an_unreachable_store_answers_503_with_retry_after(make_config: Any, s3: S3Server) -> None:
    bucket = s3.new_bucket()
    good = _config(make_config, s3, bucket)
    # The same deployment, with an instance whose store address answers nothing.
    dead = good.replace(media=dataclasses.replace(good.media, endpoint=f"http://127.0.0.1:{free_port()}"))
    async with serve_homeserver(good) as one, serve_homeserver(dead) as two:
        alice = await one.register()
        uri = await upload_ok(one, alice, b"stored while the store was up")
        for response in (
            await two.client.post("/_matrix/media/v3/upload", content=b"x", headers=alice.headers),
            await two.client.get(f"{DOWNLOAD}/{media_path(uri)}", headers=alice.headers),
        ):
            body = expect(response, 503, "M_UNKNOWN")
            assert response.headers["retry-after"] == "10" and body["retry_after_ms"] == 10_000
        # The failed upload left no row behind: the user's media is still the one file.
        listed = (await one.client.get(f"{DOWNLOAD}/{media_path(uri)}", headers=alice.headers))
        assert listed.content == b"stored while the store was up"
        with one.hs.database.activated():
            assert await one.hs.services.media.repo.bytes_used(alice.user_id) == len(listed.content)


def test_the_s3_settings_are_checked(make_config: Any) -> None:
    with pytest.raises(ConfigError, match="media.bucket is required"):
        make_config(media={"store": "s3"})
    with pytest.raises(ConfigError, match="media.store must be"):
        make_config(media={"store": "ftp"})
    with pytest.raises(ConfigError, match="set together"):
        make_config(media={"store": "s3", "bucket": "b", "access_key_id": "only-the-id"})
    with pytest.raises(ConfigError, match="http"):
        make_config(dev_mode=False, media={"store": "s3", "bucket": "b", "endpoint": "http://s3.example.com"},
                    tls={"cert_file": "", "key_file": ""}, security={"password_scrypt_log_n": 14})
    config = make_config(media={"store": "s3", "bucket": "b", "endpoint": "http://127.0.0.1:9000"})
    assert config.media.store == "s3" and config.media.prefix == "media/"

