"""Circular avatars: a picture cropped to a circle, or the initial letter on a colour
derived from the name; optional green "online" dot.  Pillow only (Tk-free helpers)
plus :func:`avatar_photo`, which must run on the Tk thread."""

from __future__ import annotations

import hashlib
from functools import lru_cache
from typing import Any

from PIL import Image, ImageDraw, ImageFont, ImageTk

PALETTE = ("#e06c75", "#d19a66", "#e5c07b", "#98c379", "#56b6c2", "#61afef",
           "#c678dd", "#be5046", "#7f848e", "#3ba55d", "#5865f2", "#eb459e")
ONLINE = "#3ba55d"
SUPERSAMPLE = 4


def colour_for(name: str) -> str:
    digest = hashlib.sha256(name.encode()).digest()
    return PALETTE[digest[0] % len(PALETTE)]


def initial_of(name: str) -> str:
    text = name.lstrip("@#!").strip()
    return (text[:1] or "?").upper()


@lru_cache(maxsize=8)
def _font(size: int) -> Any:
    for candidate in ("DejaVuSans-Bold.ttf", "LiberationSans-Bold.ttf", "Arial Bold.ttf"):
        try:
            return ImageFont.truetype(candidate, size)
        except OSError:
            continue
    return ImageFont.load_default()


def avatar_image(name: str, size: int = 40, picture: Image.Image | None = None,
                 online: bool | None = None) -> Image.Image:
    """An RGBA image of ``size`` px: a circle with a picture or an initial, plus a dot."""
    big = size * SUPERSAMPLE
    mask = Image.new("L", (big, big), 0)
    ImageDraw.Draw(mask).ellipse((0, 0, big - 1, big - 1), fill=255)
    if picture is not None:
        pic = picture.convert("RGBA")
        side = min(pic.size)
        left, top = (pic.width - side) // 2, (pic.height - side) // 2
        face = pic.crop((left, top, left + side, top + side)).resize((big, big))
    else:
        face = Image.new("RGBA", (big, big), colour_for(name))
        draw = ImageDraw.Draw(face)
        font = _font(int(big * 0.5))
        letter = initial_of(name)
        box = draw.textbbox((0, 0), letter, font=font)
        draw.text(((big - (box[2] - box[0])) / 2 - box[0], (big - (box[3] - box[1])) / 2 - box[1]),
                  letter, fill="white", font=font)
    out = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    out.paste(face, (0, 0), mask)
    if online is not None:
        dot = big // 3
        x0 = big - dot
        ImageDraw.Draw(out).ellipse((x0 - 2, x0 - 2, big - 1, big - 1), fill=ONLINE if online else "#6c757d",
                                    outline="#222222", width=SUPERSAMPLE * 2)
    return out.resize((size, size), Image.Resampling.LANCZOS)


def avatar_photo(master: Any, name: str, size: int = 40, picture: Image.Image | None = None,
                 online: bool | None = None) -> ImageTk.PhotoImage:
    """Tk thread only.  Keep a reference to the result or Tk drops the image."""
    return ImageTk.PhotoImage(avatar_image(name, size, picture, online), master=master)


class AvatarCache:
    """Tk thread: decoded pictures per mxc:// URI, bounded (least recently used goes first).

    :meth:`photo` answers at once: the picture when it is here, else the letter
    avatar, asking ``fetch`` (once per URI) to download and decode it on the
    worker; :meth:`put` stores the answer, after which views render again.
    """

    def __init__(self, fetch: Any, max_pictures: int = 256, max_composed: int = 512,
                 clock: Any = None) -> None:
        import time
        from collections import OrderedDict
        self.fetch = fetch
        self.clock = clock or time.monotonic
        self.max_pictures = max_pictures
        self.max_composed = max_composed
        self.pictures: OrderedDict[str, Image.Image] = OrderedDict()
        self.composed: OrderedDict[tuple[str, str, int, bool | None], Image.Image] = OrderedDict()
        self.pending: set[str] = set()
        # mxc -> (failures, when to ask again): a failed download is retried later, with backoff
        self.failed: dict[str, tuple[int, float]] = {}

    def put(self, mxc: str, picture: Image.Image) -> None:
        self.pending.discard(mxc)
        self.failed.pop(mxc, None)
        self.pictures[mxc] = picture
        self.pictures.move_to_end(mxc)
        while len(self.pictures) > self.max_pictures:
            old, _ = self.pictures.popitem(last=False)
            for key in [k for k in self.composed if k[0] == old]:
                del self.composed[key]

    def fail(self, mxc: str) -> None:
        self.pending.discard(mxc)
        failures = self.failed.get(mxc, (0, 0.0))[0] + 1
        self.failed[mxc] = (failures, self.clock() + min(300.0, 2.0 ** failures))

    def picture(self, mxc: str | None) -> Image.Image | None:
        """The decoded picture, or None (then asks for it, unless it failed a moment ago)."""
        if not mxc or not mxc.startswith("mxc://"):
            return None
        picture = self.pictures.get(mxc)
        if picture is not None:
            self.pictures.move_to_end(mxc)
            return picture
        failed = self.failed.get(mxc)
        if mxc not in self.pending and (failed is None or self.clock() >= failed[1]):
            self.pending.add(mxc)
            self.fetch(mxc)
        return None

    def image(self, name: str, size: int, mxc: str | None = None, online: bool | None = None) -> Image.Image:
        """The composed avatar (picture when known, else the letter), cached per look."""
        picture = self.picture(mxc)
        # a letter avatar is its letter on its colour: "Conversation 0001" and "Conversation 0002"
        # (both C, perhaps one colour) share one image instead of composing one each
        letter = "" if picture is not None else initial_of(name) + colour_for(name)
        key = (mxc if picture is not None and mxc else "", letter, size, online)
        composed = self.composed.get(key)
        if composed is None:
            composed = avatar_image(name, size, picture, online)
            self.composed[key] = composed
            while len(self.composed) > self.max_composed:
                self.composed.popitem(last=False)
        else:
            self.composed.move_to_end(key)
        return composed

    def photo(self, master: Any, name: str, size: int, mxc: str | None = None,
              online: bool | None = None) -> ImageTk.PhotoImage:
        """Tk thread only; keep a reference.  ``photo.parley_picture`` tells a picture from a letter."""
        shown = self.picture(mxc) is not None
        photo = ImageTk.PhotoImage(self.image(name, size, mxc, online), master=master)
        photo.parley_picture = shown  # type: ignore[attr-defined]
        return photo
