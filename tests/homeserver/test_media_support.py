"""Helpers for the media, profile and lookup tests (no tests here)."""

from __future__ import annotations

import asyncio
import io
import struct
import zlib
from collections.abc import AsyncIterator
from typing import Any

from PIL import Image

from tests.support.server import Account, RunningServer

UPLOAD = "/_matrix/media/v3/upload"
DOWNLOAD = "/_matrix/client/v1/media/download"
LEGACY_DOWNLOAD = "/_matrix/media/v3/download"
THUMBNAIL = "/_matrix/client/v1/media/thumbnail"
UNSTABLE = "/_matrix/client/unstable/im.parley"


def png_bytes(width: int = 16, height: int = 16, color: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), color).save(out, format="PNG")
    return out.getvalue()


def jpeg_bytes(width: int = 16, height: int = 16) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (10, 120, 200)).save(out, format="JPEG")
    return out.getvalue()


def padded_png(total: int) -> bytes:
    """A valid PNG of exactly ``total`` bytes (padding in a private ancillary chunk)."""
    base = png_bytes(8, 8)
    iend = base.rindex(b"IEND") - 4  # start of the IEND chunk (its length field)
    pad = total - len(base) - 12
    assert pad >= 0
    kind = b"prVt"
    data = b"\0" * pad
    chunk = struct.pack(">I", pad) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    result = base[:iend] + chunk + base[iend:]
    assert len(result) == total
    return result


async def chunks(total: int, size: int = 64 * 1024, fill: bytes = b"x") -> AsyncIterator[bytes]:
    """``total`` bytes in chunks, without ever holding them all (no Content-Length)."""
    block = fill * size
    sent = 0
    while sent < total:
        n = min(size, total - sent)
        yield block[:n]
        sent += n


async def upload(
    server: RunningServer, account: Account, content: Any, content_type: str = "application/octet-stream",
    filename: str | None = None, headers: dict[str, str] | None = None,
) -> Any:
    params = {"filename": filename} if filename else None
    return await server.client.post(
        UPLOAD, content=content, params=params,
        headers={**account.headers, "Content-Type": content_type, **(headers or {})},
    )


async def upload_ok(server: RunningServer, account: Account, content: bytes,
                    content_type: str = "application/octet-stream", filename: str | None = None) -> str:
    response = await upload(server, account, content, content_type, filename)
    assert response.status_code == 200, response.text
    uri = response.json()["content_uri"]
    assert isinstance(uri, str) and uri.startswith(f"mxc://{server.config.server_name}/")
    return uri


def media_path(uri: str) -> str:
    return uri[len("mxc://"):]


async def raw_request(server: RunningServer, request_line: str, headers: dict[str, str],
                      body: bytes = b"") -> tuple[int, bytes]:
    """Send a request byte-for-byte (no client-side path normalisation)."""
    host, port = server.base_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        head = request_line + "\r\n" + f"Host: {host}\r\nConnection: close\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        if body:
            head += f"Content-Length: {len(body)}\r\n"
        writer.write(head.encode("latin-1") + b"\r\n" + body)
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), 30)
    finally:
        writer.close()
    status = int(data.split(b" ", 2)[1])
    return status, data
