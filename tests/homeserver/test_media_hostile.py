"""Media that used to answer 500: truncated JPEGs, a full disk; and the per-user quota."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.homeserver.test_media_support import THUMBNAIL, jpeg_bytes, media_path, upload, upload_ok
from tests.support.server import RunningServer, serve_homeserver


async def test_a_truncated_jpeg_is_neither_thumbnailed_with_500_nor_accepted_as_avatar(
    server: RunningServer,
) -> None:
    alice = await server.register()
    whole = jpeg_bytes(400, 300)
    truncated = whole[: len(whole) // 2]
    uri = await upload_ok(server, alice, truncated, "image/jpeg")
    thumb = await server.client.get(f"{THUMBNAIL}/{media_path(uri)}", params={"width": 32, "height": 32},
                                    headers=alice.headers)
    assert thumb.status_code == 400 and thumb.json()["errcode"] == "M_INVALID_PARAM", thumb.text
    avatar = await server.api("PUT", f"profile/{alice.user_id}/avatar_url", alice, json={"avatar_url": uri})
    assert avatar.status_code == 400 and avatar.json()["errcode"] == "M_INVALID_PARAM", avatar.text
    # The whole image is fine.
    good = await upload_ok(server, alice, whole, "image/jpeg")
    ok = await server.api("PUT", f"profile/{alice.user_id}/avatar_url", alice, json={"avatar_url": good})
    assert ok.status_code == 200, ok.text


async def test_uploads_stop_at_the_per_user_quota(make_config: Any) -> None:
    async with serve_homeserver(make_config(limits={"max_media_bytes_per_user": 250_000})) as server:
        alice = await server.register()
        bob = await server.register()
        await upload_ok(server, alice, b"a" * 100_000)
        await upload_ok(server, alice, b"b" * 100_000)
        over = await upload(server, alice, b"c" * 100_000)
        assert over.status_code == 403 and over.json()["errcode"] == "M_RESOURCE_LIMIT_EXCEEDED", over.text
        # Declared up front or streamed (chunked, no Content-Length): the same answer.
        async def body() -> Any:
            yield b"d" * 60_000
        streamed = await server.client.post("/_matrix/media/v3/upload", content=body(),
                                            headers={**alice.headers, "Content-Type": "text/plain"})
        assert streamed.status_code == 403 and streamed.json()["errcode"] == "M_RESOURCE_LIMIT_EXCEEDED"
        assert not list((server.config.media_path / "tmp").glob("*"))
        await upload_ok(server, alice, b"e" * 40_000)  # what still fits
        await upload_ok(server, bob, b"f" * 200_000)  # quotas are per user


@contextlib.contextmanager
def _small_filesystem(path: Path, size: str) -> Iterator[Path]:
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                             capture_output=True, check=False)
    if mounted.returncode != 0:
        pytest.skip(f"needs permission to mount a small tmpfs: {mounted.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


async def test_a_full_media_disk_answers_resource_limit_exceeded(make_config: Any, tmp_path: Path) -> None:
    with _small_filesystem(tmp_path / "small", "200k") as media_dir:
        config = make_config(media_dir=str(media_dir))
        async with serve_homeserver(config) as server:
            alice = await server.register()
            os.chmod(media_dir, 0o700)
            full = await upload(server, alice, os.urandom(400_000))
            assert full.status_code == 503, full.text
            assert full.json()["errcode"] == "M_RESOURCE_LIMIT_EXCEEDED"
            assert full.headers["Retry-After"]
            assert not list((media_dir / "tmp").glob("*"))  # nothing half-written stays
            await upload_ok(server, alice, b"small enough")
