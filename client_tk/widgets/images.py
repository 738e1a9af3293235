"""Safe image handling: decode only within size and dimension limits; sanitise file names.

Decoding runs on the worker thread (:func:`thumbnail_rgba` returns raw RGBA
bytes); only :func:`to_photo` (cheap) runs on the Tk thread.
"""

from __future__ import annotations

import io
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

MAX_IMAGE_BYTES = 10 * 1024 * 1024
MAX_IMAGE_PIXELS = 40_000_000
Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS  # Pillow raises DecompressionBombError above 2x this
ALLOWED_FORMATS = ("PNG", "JPEG", "GIF", "WEBP", "BMP")


class ImageRejected(ValueError):
    """The bytes are too large, too many pixels, or not an allowed image format."""


@dataclass(frozen=True)
class Thumbnail:
    width: int
    height: int
    rgba: bytes


def thumbnail_rgba(data: bytes, max_w: int = 320, max_h: int = 240) -> Thumbnail:
    """Check size, then the header's dimensions, then decode and shrink."""
    if len(data) > MAX_IMAGE_BYTES:
        raise ImageRejected(f"image is larger than {MAX_IMAGE_BYTES // (1024 * 1024)} MB")
    try:
        with Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS) as img:
            w, h = img.size  # from the header, before any pixel is decoded
            if w <= 0 or h <= 0 or w * h > MAX_IMAGE_PIXELS:
                raise ImageRejected(f"image dimensions {w}x{h} are over the limit")
            img.draft("RGB", (max_w, max_h))
            img.thumbnail((max_w, max_h))
            rgba = img.convert("RGBA")
            return Thumbnail(rgba.width, rgba.height, rgba.tobytes())
    except ImageRejected:
        raise
    except (OSError, ValueError, Image.DecompressionBombError, SyntaxError) as exc:
        raise ImageRejected(f"not a readable image: {exc}") from None


MAX_AVATAR_BYTES = 4 * 1024 * 1024  # the server allows 2 MB; anything bigger is refused unread
AVATAR_PX = 128


def avatar_rgba(data: bytes, size: int = AVATAR_PX) -> Thumbnail:
    """A square ``size`` px RGBA picture cut from the centre of ``data`` (PNG or JPEG, as the
    server accepts for avatars; GIF/WEBP too).  Limits are checked before any pixel is decoded."""
    if len(data) > MAX_AVATAR_BYTES:
        raise ImageRejected(f"picture is larger than {MAX_AVATAR_BYTES // (1024 * 1024)} MB")
    try:
        with Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS) as img:
            w, h = img.size
            if w <= 0 or h <= 0 or w * h > MAX_IMAGE_PIXELS:
                raise ImageRejected(f"picture dimensions {w}x{h} are over the limit")
            img.draft("RGB", (size, size))
            rgba = img.convert("RGBA")
    except ImageRejected:
        raise
    except (OSError, ValueError, Image.DecompressionBombError, SyntaxError) as exc:
        raise ImageRejected(f"not a readable picture: {exc}") from None
    side = min(rgba.size)
    left, top = (rgba.width - side) // 2, (rgba.height - side) // 2
    square = rgba.crop((left, top, left + side, top + side)).resize((size, size), Image.Resampling.LANCZOS)
    return Thumbnail(size, size, square.tobytes())


def thumbnail_file(path: Path, max_w: int = 320, max_h: int = 240) -> Thumbnail:
    if path.stat().st_size > MAX_IMAGE_BYTES:
        raise ImageRejected("image file too large")
    return thumbnail_rgba(path.read_bytes(), max_w, max_h)


_UNSAFE = re.compile(r"[^\w.\- ()\[\]+,]", re.UNICODE)
_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)), *(f"LPT{i}" for i in range(1, 10))}


def sanitize_filename(name: str, default: str = "download") -> str:
    """A file name safe to create in a folder the user chose: no path parts, no control
    characters, no leading dots, no reserved device names, at most 120 characters."""
    name = unicodedata.normalize("NFC", name)
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")
    name = _UNSAFE.sub("_", name).strip(" .")
    if not name or name.split(".", 1)[0].upper() in _RESERVED:
        name = f"{default}_{name}" if name else default
    if len(name) > 120:
        stem, dot, ext = name.rpartition(".")
        name = (stem[: 110] + dot + ext[:9]) if dot and len(ext) < 10 else name[:120]
    return name
