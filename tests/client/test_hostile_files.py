"""The client's guards against what a server or peer sends: file names and images.

Audit items H10 (malicious image data reaching the image decoder) and H11
(a server-chosen file name such as ``../../.bashrc`` proposed on save).
"""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from PIL import Image

from client_tk.widgets.images import ImageRejected, avatar_rgba, sanitize_filename, thumbnail_rgba


@pytest.mark.parametrize(("hostile", "safe"), [
    ("../../../.bashrc", "bashrc"),
    ("..\\..\\Windows\\system32\\evil.dll", "evil.dll"),
    ("/etc/passwd", "passwd"),
    ("report\x00.pdf\n", "report.pdf"),
    ("CON.txt", "download_CON.txt"),
    ("", "download"),
    ("...", "download"),
])
def test_file_names_from_the_network_lose_their_path_parts(hostile: str, safe: str) -> None:
    assert sanitize_filename(hostile) == safe


def test_long_names_keep_their_extension() -> None:
    name = sanitize_filename("x" * 500 + ".jpeg")
    assert len(name) <= 120 and name.endswith(".jpeg")


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header declares huge dimensions (a decompression bomb's header)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return (b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(ihdr)) + chunk
            + struct.pack(">I", zlib.crc32(chunk)) + b"\x00" * 64)


def test_images_over_the_pixel_limit_are_refused_before_decoding() -> None:
    with pytest.raises(ImageRejected):
        thumbnail_rgba(_png_header_only(100_000, 100_000))
    with pytest.raises(ImageRejected):
        avatar_rgba(_png_header_only(50_000, 50_000))


def test_garbage_and_truncated_images_are_refused_not_crashing() -> None:
    out = io.BytesIO()
    Image.new("RGB", (300, 200), (1, 2, 3)).save(out, format="JPEG")
    whole = out.getvalue()
    for data in (b"not an image", whole[:40], b"\x89PNG\r\n\x1a\n" + b"\xff" * 100):
        with pytest.raises(ImageRejected):
            thumbnail_rgba(data)
    assert thumbnail_rgba(whole).width <= 320
