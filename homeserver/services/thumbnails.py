"""Safe image handling with Pillow: content sniffing, avatar checks, thumbnails.

Images are only decoded after their header says they are JPEG or PNG and
their declared dimensions are within :data:`MAX_PIXELS` (Pillow's own
decompression-bomb guard is set to the same bound).  Everything here is
blocking and meant to run in a worker thread (``asyncio.to_thread``).
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

MAX_PIXELS = 40_000_000
# Thumbnails decode the image: bound the decoded size (about 48 MB as RGBA).
MAX_THUMBNAIL_SOURCE_PIXELS = 12_000_000
MAX_THUMBNAIL_SIDE = 1024

Image.MAX_IMAGE_PIXELS = MAX_PIXELS

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8\xff"

FORMAT_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg"}


class ImageRejected(ValueError):
    """The bytes are not an acceptable JPEG or PNG image."""


@dataclass(frozen=True)
class ImageInfo:
    content_type: str
    width: int
    height: int


def sniff(head: bytes) -> str | None:
    """``image/png`` or ``image/jpeg`` from the magic bytes, else None."""
    if head.startswith(PNG_MAGIC):
        return "image/png"
    if head.startswith(JPEG_MAGIC):
        return "image/jpeg"
    return None


def inspect_image(path: Path) -> ImageInfo:
    """Check that ``path`` is a well-formed JPEG/PNG of sane size (no full decode)."""
    with open(path, "rb") as fh:
        sniffed = sniff(fh.read(8))
    if sniffed is None:
        raise ImageRejected("not a JPEG or PNG image")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path, formats=["PNG", "JPEG"]) as img:
                width, height = img.size
                fmt = img.format
                if fmt not in FORMAT_TYPES or FORMAT_TYPES[fmt] != sniffed:
                    raise ImageRejected("image format does not match its content")
                if width <= 0 or height <= 0 or width * height > MAX_PIXELS:
                    raise ImageRejected("image dimensions are out of range")
                img.verify()
            _decode_cheaply(path)
    except ImageRejected:
        raise
    except Exception as exc:  # any decoder complaint means "not acceptable"
        raise ImageRejected(f"image does not decode: {type(exc).__name__}") from None
    return ImageInfo(sniffed, width, height)


def _decode_cheaply(path: Path) -> None:
    """Decode the pixel data, which ``verify()`` does not do for JPEG: a truncated
    JPEG passed it, was accepted as an avatar and made /thumbnail answer 500.

    JPEG decodes at 1/8 scale (DCT scaling), so the cost stays small; PNG
    chunks were CRC-checked by ``verify()`` and are decoded when not huge.
    """
    with Image.open(path, formats=["PNG", "JPEG"]) as img:
        if img.format == "JPEG":
            img.draft("RGB", (max(1, img.size[0] // 8), max(1, img.size[1] // 8)))
        elif img.size[0] * img.size[1] > MAX_THUMBNAIL_SOURCE_PIXELS:
            return
        img.load()


def make_thumbnail(path: Path, width: int, height: int, method: str) -> tuple[bytes, str]:
    """A thumbnail no larger than needed for ``width`` x ``height``; (bytes, content type)."""
    info = inspect_image(path)
    try:
        return _thumbnail(path, info, width, height, method)
    except ImageRejected:
        raise
    except Exception as exc:  # a decoder complaint is the image's fault, not the server's
        raise ImageRejected(f"image does not decode: {type(exc).__name__}") from None


def _thumbnail(path: Path, info: ImageInfo, width: int, height: int, method: str) -> tuple[bytes, str]:
    width = max(1, min(width, MAX_THUMBNAIL_SIDE))
    height = max(1, min(height, MAX_THUMBNAIL_SIDE))
    with Image.open(path, formats=["PNG", "JPEG"]) as source:
        if source.format == "JPEG":
            # Let the JPEG decoder scale down while decoding (DCT scaling).
            source.draft("RGB", (width * 2, height * 2))
        if source.size[0] * source.size[1] > MAX_THUMBNAIL_SOURCE_PIXELS:
            raise ImageRejected("image is too large to thumbnail")
        source.load()
        info = ImageInfo(info.content_type, source.size[0], source.size[1])
        img: Image.Image = source
        if method == "crop":
            scale = max(width / info.width, height / info.height)
            if scale < 1:
                img = img.resize(
                    (max(1, round(info.width * scale)), max(1, round(info.height * scale)))
                )
            left = max(0, (img.width - width) // 2)
            top = max(0, (img.height - height) // 2)
            img = img.crop((left, top, left + min(width, img.width), top + min(height, img.height)))
        else:
            img = img.copy()
            img.thumbnail((width, height))
        out = io.BytesIO()
        if info.content_type == "image/jpeg":
            img.convert("RGB").save(out, format="JPEG", quality=85)
        else:
            img.save(out, format="PNG")
    return out.getvalue(), info.content_type
