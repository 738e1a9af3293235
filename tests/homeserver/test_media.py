"""Media repository over real HTTP: uploads, limits, downloads, ranges, thumbnails, cleanup."""

from __future__ import annotations

import hashlib
import io
import os
import time
import tracemalloc
from typing import Any

from PIL import Image

from homeserver.services.clock import ManualClock
from tests.homeserver.test_media_support import (
    DOWNLOAD,
    LEGACY_DOWNLOAD,
    THUMBNAIL,
    chunks,
    jpeg_bytes,
    media_path,
    png_bytes,
    raw_request,
    upload,
    upload_ok,
)
from tests.support.server import RunningServer, serve_homeserver

MB = 1024 * 1024


def tmp_files(server: RunningServer) -> list[str]:
    folder = server.config.media_path / "tmp"
    return sorted(os.listdir(folder)) if folder.is_dir() else []


async def test_upload_and_download_round_trip(server: RunningServer) -> None:
    alice = await server.register()
    bob = await server.register()
    body = os.urandom(10_000)
    uri = await upload_ok(server, alice, body, "application/pdf", filename="../../report \"Q1\".pdf")
    for prefix in (DOWNLOAD, LEGACY_DOWNLOAD):
        response = await server.client.get(f"{prefix}/{media_path(uri)}", headers=bob.headers)
        assert response.status_code == 200, response.text
        assert response.content == body
        assert response.headers["content-type"].startswith("application/pdf")
        disposition = response.headers["content-disposition"]
        assert disposition.startswith("attachment")
        assert "/" not in disposition and ".." not in disposition
        assert "sandbox" in response.headers["content-security-policy"]
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["accept-ranges"] == "bytes"
    # A filename in the path overrides the stored one (sanitised).
    response = await server.client.get(f"{DOWNLOAD}/{media_path(uri)}/other.pdf", headers=bob.headers)
    assert response.status_code == 200 and 'filename="other.pdf"' in response.headers["content-disposition"]
    # matrix-nio sends the caller's file name, an encoded "/" included: only the last part is kept.
    response = await server.client.get(f"{DOWNLOAD}/{media_path(uri)}/dir%2Fother.pdf", headers=bob.headers)
    assert response.status_code == 200 and 'filename="other.pdf"' in response.headers["content-disposition"]
    # The stored file is private to the server's user.
    media_id = uri.rsplit("/", 1)[1]
    stored = server.config.media_path.resolve() / media_id[:2] / media_id[2:4] / media_id
    assert stored.read_bytes() == body
    assert stored.stat().st_mode & 0o777 == 0o600
    assert stored.parent.stat().st_mode & 0o777 == 0o700
    # Images are served inline.
    image_uri = await upload_ok(server, alice, png_bytes(), "image/png")
    response = await server.client.get(f"{DOWNLOAD}/{media_path(image_uri)}", headers=bob.headers)
    assert response.headers["content-disposition"].startswith("inline")
    assert response.headers["content-type"] == "image/png"


async def test_media_needs_authentication(server: RunningServer) -> None:
    alice = await server.register()
    uri = await upload_ok(server, alice, b"secret bytes")
    for path in (f"{DOWNLOAD}/{media_path(uri)}", f"{LEGACY_DOWNLOAD}/{media_path(uri)}",
                 "/_matrix/client/v1/media/config"):
        response = await server.client.get(path)
        assert response.status_code == 401
        assert response.json()["errcode"] == "M_MISSING_TOKEN"
    response = await server.client.post("/_matrix/media/v3/upload", content=b"x")
    assert response.status_code == 401
    # The access token may also come as a query parameter (matrix-nio does that).
    response = await server.client.get(
        f"{DOWNLOAD}/{media_path(uri)}", params={"access_token": alice.access_token}
    )
    assert response.status_code == 200 and response.content == b"secret bytes"


async def test_config_reports_the_upload_limit(server: RunningServer) -> None:
    alice = await server.register()
    for path in ("/_matrix/client/v1/media/config", "/_matrix/media/v3/config"):
        response = await server.client.get(path, headers=alice.headers)
        assert response.status_code == 200
        assert response.json() == {"m.upload.size": server.config.limits.max_file_bytes}


async def test_unknown_media_is_not_found(server: RunningServer) -> None:
    alice = await server.register()
    response = await server.client.get(
        f"{DOWNLOAD}/{server.config.server_name}/AAAAAAAAAAAAAAAAAAAAAAAA", headers=alice.headers
    )
    assert response.status_code == 404 and response.json()["errcode"] == "M_NOT_FOUND"


async def test_create_then_upload(server: RunningServer) -> None:
    alice = await server.register()
    bob = await server.register()
    response = await server.client.post("/_matrix/media/v1/create", headers=alice.headers)
    assert response.status_code == 200, response.text
    created = response.json()
    uri = created["content_uri"]
    assert created["unused_expires_at"] > int(time.time() * 1000)
    # Not uploaded yet.
    response = await server.client.get(f"{DOWNLOAD}/{media_path(uri)}", headers=alice.headers)
    assert response.status_code == 504 and response.json()["errcode"] == "M_NOT_YET_UPLOADED"
    put = f"/_matrix/media/v3/upload/{media_path(uri)}"
    # Only the creator may upload to it.
    response = await server.client.put(put, content=b"mine", headers={**bob.headers, "Content-Type": "text/plain"})
    assert response.status_code == 403 and response.json()["errcode"] == "M_FORBIDDEN"
    response = await server.client.put(
        put, content=b"hello", params={"filename": "a.txt"},
        headers={**alice.headers, "Content-Type": "text/plain"},
    )
    assert response.status_code == 200, response.text
    response = await server.client.put(put, content=b"again", headers={**alice.headers, "Content-Type": "text/plain"})
    assert response.status_code == 409 and response.json()["errcode"] == "M_CANNOT_OVERWRITE_MEDIA"
    response = await server.client.get(f"{DOWNLOAD}/{media_path(uri)}", headers=bob.headers)
    assert response.status_code == 200 and response.content == b"hello"
    assert response.headers["content-disposition"] == 'attachment; filename="a.txt"'


async def test_image_limit_at_and_over(server: RunningServer) -> None:
    alice = await server.register()
    limit = server.config.limits.max_image_bytes
    assert limit == 5 * MB
    body = b"\x89PNG\r\n\x1a\n" + b"i" * (limit - 8)
    uri = await upload_ok(server, alice, body, "image/png")
    response = await server.client.get(f"{DOWNLOAD}/{media_path(uri)}", headers=alice.headers)
    assert len(response.content) == limit
    # One byte over: refused, declared (Content-Length) or streamed (chunked).
    response = await upload(server, alice, body + b"!", "image/png")
    assert response.status_code == 413 and response.json()["errcode"] == "M_TOO_LARGE"
    response = await upload(server, alice, chunks(limit + 1), "image/jpeg")
    assert response.status_code == 413 and response.json()["errcode"] == "M_TOO_LARGE"
    # The same size is fine as a general file (the file limit is larger).
    await upload_ok(server, alice, body + b"!", "application/octet-stream")
    assert tmp_files(server) == []


async def test_file_limit_at_and_over_with_bounded_memory(server: RunningServer) -> None:
    """50 MB is accepted and streamed to disk: the process never holds it in memory."""
    alice = await server.register()
    limit = server.config.limits.max_file_bytes
    assert limit == 50 * MB
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before, _ = tracemalloc.get_traced_memory()
        response = await upload(server, alice, chunks(limit, fill=b"z"), "application/octet-stream")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert response.status_code == 200, response.text
    delta = peak - before
    print(f"traced peak during a 50 MB upload: {delta / MB:.2f} MB over baseline")
    assert delta < 16 * MB
    uri = response.json()["content_uri"]
    media_id = uri.rsplit("/", 1)[1]
    stored = server.config.media_path.resolve() / media_id[:2] / media_id[2:4] / media_id
    assert stored.stat().st_size == limit
    # Download streams it back (hash compared chunk by chunk).
    digest = hashlib.sha256()
    async with server.client.stream("GET", f"{DOWNLOAD}/{media_path(uri)}", headers=alice.headers) as resp:
        assert resp.status_code == 200
        async for part in resp.aiter_bytes():
            digest.update(part)
    expected = hashlib.sha256()
    async for part in chunks(limit, fill=b"z"):
        expected.update(part)
    assert digest.hexdigest() == expected.hexdigest()
    # One byte over the file limit: refused while streaming, nothing kept.
    response = await upload(server, alice, chunks(limit + 1), "application/octet-stream")
    assert response.status_code == 413 and response.json()["errcode"] == "M_TOO_LARGE"
    # A declared length over the limit is refused before the body is read.
    status, data = await raw_request(
        server, "POST /_matrix/media/v3/upload HTTP/1.1",
        {**alice.headers, "Content-Type": "application/octet-stream", "Content-Length": str(10 * limit)},
    )
    assert status == 413 and b"M_TOO_LARGE" in data
    assert tmp_files(server) == []


async def test_limits_are_configurable(make_config: Any) -> None:
    config = make_config(limits={"max_image_bytes": 1000, "max_file_bytes": 3000})
    async with serve_homeserver(config) as server:
        alice = await server.register()
        await upload_ok(server, alice, b"a" * 1000, "image/gif")
        assert (await upload(server, alice, b"a" * 1001, "image/gif")).status_code == 413
        await upload_ok(server, alice, b"a" * 3000)
        assert (await upload(server, alice, b"a" * 3001)).status_code == 413
        response = await server.client.get("/_matrix/media/v3/config", headers=alice.headers)
        assert response.json() == {"m.upload.size": 3000}


async def test_range_requests_and_resume(server: RunningServer) -> None:
    alice = await server.register()
    body = os.urandom(200_000)
    uri = await upload_ok(server, alice, body)
    url = f"{DOWNLOAD}/{media_path(uri)}"

    async def get(range_header: str) -> Any:
        return await server.client.get(url, headers={**alice.headers, "Range": range_header})

    response = await get("bytes=0-9")
    assert response.status_code == 206
    assert response.content == body[:10]
    assert response.headers["content-range"] == f"bytes 0-9/{len(body)}"
    response = await get("bytes=-500")
    assert response.status_code == 206 and response.content == body[-500:]
    # Resume: the first part was cut off after 123,457 bytes; fetch the rest.
    first = body[:123_457]
    response = await get(f"bytes={len(first)}-")
    assert response.status_code == 206
    assert response.headers["content-range"] == f"bytes {len(first)}-{len(body) - 1}/{len(body)}"
    assert first + response.content == body
    for unsatisfiable in (f"bytes={len(body)}-", f"bytes={len(body) + 10}-{len(body) + 20}", "bytes=-0",
                          "bytes=9-3", "items=0-1", "bytes=a-b"):
        response = await get(unsatisfiable)
        assert response.status_code == 416, unsatisfiable
        assert response.json()["errcode"] == "M_INVALID_PARAM"
        assert response.headers["content-range"] == f"bytes */{len(body)}"


async def test_thumbnails(server: RunningServer) -> None:
    alice = await server.register()
    for data, ctype, fmt in ((png_bytes(200, 100), "image/png", "PNG"), (jpeg_bytes(120, 240), "image/jpeg", "JPEG")):
        uri = await upload_ok(server, alice, data, ctype)
        for prefix in (THUMBNAIL, "/_matrix/media/v3/thumbnail"):
            response = await server.client.get(
                f"{prefix}/{media_path(uri)}", params={"width": 32, "height": 32, "method": "scale"},
                headers=alice.headers,
            )
            assert response.status_code == 200, response.text
            assert response.headers["content-type"] == ctype
            image = Image.open(io.BytesIO(response.content))
            assert image.format == fmt and max(image.size) <= 32
        response = await server.client.get(
            f"{THUMBNAIL}/{media_path(uri)}", params={"width": 40, "height": 40, "method": "crop"},
            headers=alice.headers,
        )
        assert Image.open(io.BytesIO(response.content)).size == (40, 40)
    # No thumbnails of non-images, fake images or with bad parameters.
    pdf = await upload_ok(server, alice, b"%PDF-1.4", "application/pdf")
    fake = await upload_ok(server, alice, b"not really a png", "image/png")
    cases: list[tuple[str, dict[str, str | int]]] = [
        (pdf, {"width": 32, "height": 32}), (fake, {"width": 32, "height": 32}),
        (fake, {"width": 0, "height": 32}), (fake, {"width": 32, "height": 32, "method": "zoom"}),
    ]
    for uri, params in cases:
        response = await server.client.get(f"{THUMBNAIL}/{media_path(uri)}", params=params, headers=alice.headers)
        assert response.status_code == 400 and response.json()["errcode"] == "M_INVALID_PARAM"
    response = await server.client.get(f"{THUMBNAIL}/{media_path(pdf)}", headers=alice.headers)
    assert response.status_code == 400 and response.json()["errcode"] == "M_MISSING_PARAM"


async def test_upload_rate_limit(make_config: Any) -> None:
    # A manual clock keeps the rate-limit window from rolling over mid-test.
    async with serve_homeserver(make_config(rate_limits={"media_per_minute": 3}), clock=ManualClock()) as server:
        alice = await server.register()
        for _ in range(3):
            await upload_ok(server, alice, b"x")
        response = await upload(server, alice, b"x")
        assert response.status_code == 429 and response.json()["errcode"] == "M_LIMIT_EXCEEDED"
        response = await server.client.post("/_matrix/media/v1/create", headers=alice.headers)
        assert response.status_code == 429
        # Another user has their own budget.
        await upload_ok(server, await server.register(), b"x")


async def test_abandoned_uploads_are_cleaned_up(make_config: Any) -> None:
    clock = ManualClock()
    async with serve_homeserver(make_config(), clock=clock) as server:
        alice = await server.register()
        created = (await server.client.post("/_matrix/media/v1/create", headers=alice.headers)).json()
        kept = (await server.client.post("/_matrix/media/v1/create", headers=alice.headers)).json()
        tmp = server.config.media_path / "tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        orphan = tmp / "0123456789abcdef.part"
        orphan.write_bytes(b"half an upload")
        media = server.hs.services.media
        assert await media.cleanup() == 0
        assert orphan.exists()
        clock.advance(23 * 3600 * 1000)
        # Uploading to the second one before it expires keeps it.
        response = await server.client.put(
            f"/_matrix/media/v3/upload/{media_path(kept['content_uri'])}", content=b"done",
            headers={**alice.headers, "Content-Type": "text/plain"},
        )
        assert response.status_code == 200
        clock.advance(2 * 3600 * 1000)
        removed = await media.cleanup()
        # At least the expired media id and the orphan temp file (other tests'
        # pending uploads in the shared database expire as this clock jumps, too).
        assert removed >= 2
        assert not orphan.exists()
        response = await server.client.put(
            f"/_matrix/media/v3/upload/{media_path(created['content_uri'])}", content=b"late",
            headers={**alice.headers, "Content-Type": "text/plain"},
        )
        assert response.status_code == 404 and response.json()["errcode"] == "M_NOT_FOUND"
        response = await server.client.get(f"{DOWNLOAD}/{media_path(kept['content_uri'])}", headers=alice.headers)
        assert response.status_code == 200 and response.content == b"done"


async def test_interrupted_upload_leaves_no_temp_file(server: RunningServer) -> None:
    import asyncio

    alice = await server.register()
    host, port = server.base_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    head = (
        "POST /_matrix/media/v3/upload HTTP/1.1\r\n"
        f"Host: {host}\r\nAuthorization: Bearer {alice.access_token}\r\n"
        "Content-Type: application/octet-stream\r\nContent-Length: 5000000\r\n\r\n"
    )
    writer.write(head.encode() + b"p" * 300_000)
    await writer.drain()
    for _ in range(200):
        if tmp_files(server):
            break
        await asyncio.sleep(0.02)
    assert tmp_files(server), "the upload should be in progress"
    writer.close()
    for _ in range(500):
        if not tmp_files(server):
            break
        await asyncio.sleep(0.02)
    assert tmp_files(server) == []
    del reader


def test_media_ids_never_start_with_a_dash() -> None:
    """An id on an admin's command line (``quarantine-media ID``) must not read as an option;
    one in 64 ids of token_urlsafe starts with "-", so 2,000 draws would show one."""
    from homeserver.services.media import MEDIA_ID, new_media_id
    ids = [new_media_id() for _ in range(2000)]
    assert not any(i.startswith("-") for i in ids)
    assert all(MEDIA_ID.match(i) and len(i) == 24 for i in ids)
