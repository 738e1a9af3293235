"""What the worker's handler groups (:mod:`worker_messages`, :mod:`worker_people`) share.

:class:`WorkerParts` declares the worker state and plumbing they use;
:class:`client_tk.worker.Worker` provides it.  The helpers below are plain
functions (no Tk, no state).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from client_tk import bridge as b
from client_tk.core.client import ChatClient
from client_tk.core.events import Message
from client_tk.widgets.images import thumbnail_file


class WorkerParts:
    bridge: b.Bridge
    cache: Path
    names: dict[str, str]
    avatars: dict[str, str]
    latest: dict[str, tuple[int, str, str | None]]
    read_at: dict[str, int]
    _sas: asyncio.Future[bool] | None

    @property
    def c(self) -> ChatClient:
        raise NotImplementedError

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        raise NotImplementedError

    def _schedule_snapshot(self) -> None:
        raise NotImplementedError

    def _resolve(self, users: list[str]) -> None:
        raise NotImplementedError

    def _remember_profile(self, user: str, profile: dict[str, Any]) -> None:
        raise NotImplementedError


def preview_of(message: Message) -> str:
    """One line for the conversation list."""
    if message.redacted:
        return "Message deleted"
    if message.kind == "image":
        return "[image]"
    if message.kind == "file":
        return "[file] " + message.body
    return " ".join(message.body.split())[:120]


def read_image(path: Path) -> tuple[bytes, str]:
    thumb_check = thumbnail_file(path)  # validates size, dimensions and format
    del thumb_check
    data = path.read_bytes()
    kind = "image/png" if data[:8] == b"\x89PNG\r\n\x1a\n" else \
        "image/gif" if data[:4] == b"GIF8" else "image/webp" if data[8:12] == b"WEBP" else "image/jpeg"
    return data, kind


def unique_path(path: Path) -> Path:
    if not path.exists() and not Path(str(path) + ".part").exists():
        return path
    stem, suffix = path.stem, path.suffix
    for i in range(1, 1000):
        candidate = path.with_name(f"{stem} ({i}){suffix}")
        if not candidate.exists():
            return candidate
    return path.with_name(f"{stem}-{os.getpid()}{suffix}")

