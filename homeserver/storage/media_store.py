"""Where media files live: the media-store interface and the filesystem store.

The media service decides *what* is stored (ids, limits, rows in ``media``);
a store only keeps bytes under a media id.  Two stores:

* :class:`FilesystemMediaStore` - ``<root>/<aa>/<bb>/<mediaId>`` (files 0600,
  folders 0700); a deployment of several instances shares ``root`` (e.g. on a
  network file system).  Ids are checked against ``[A-Za-z0-9_-]{4,64}`` and
  the resolved path must lie inside ``root`` (the C6 path-traversal fix).
* :class:`homeserver.storage.media_s3.S3MediaStore` - objects in an
  S3-compatible bucket: instances then share no folder at all.

Uploads are first spooled to a local temporary file (``spool_dir``) while they
are counted and hashed; only a complete upload is handed to :meth:`put`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import BinaryIO, Protocol

from homeserver.media_config import S3, MediaConfig

STORE_ID = re.compile(r"^[A-Za-z0-9_-]{4,64}\Z")
CHUNK = 64 * 1024


class MediaStoreUnavailable(RuntimeError):
    """The store could not be reached or refused the operation (answered 503, never 500)."""


class MediaStore(Protocol):
    # Local folder for uploads in progress and temporary copies (never shared).
    spool_dir: Path

    async def put(self, media_id: str, source: Path, size: int, content_type: str) -> None:
        """Store the complete file ``source`` under ``media_id`` (``source`` may be moved away)."""
        ...

    async def local_path(self, media_id: str) -> Path | None:
        """The file itself when the store is a folder (served as it is); None for remote stores."""
        ...

    async def open_range(self, media_id: str, first: int, last: int) -> AsyncIterator[bytes]:
        """Bytes ``first``..``last`` (inclusive); FileNotFoundError before any byte if missing."""
        ...

    def local_copy(self, media_id: str) -> contextlib.AbstractAsyncContextManager[Path]:
        """A local file with the media's bytes for the duration of the block (FileNotFoundError)."""
        ...

    async def delete(self, media_ids: list[str]) -> None:
        """Remove the files; missing ones are not an error."""
        ...

    async def exists(self, media_id: str) -> bool: ...

    def ids(self) -> AsyncIterator[str]:
        """Every stored media id (backups)."""
        ...

    async def close(self) -> None: ...


def checked(media_id: str) -> str:
    if not STORE_ID.match(media_id):
        raise FileNotFoundError(media_id)
    return media_id


class FilesystemMediaStore:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.spool_dir = self.root / "tmp"

    def path(self, media_id: str) -> Path:
        checked(media_id)
        path = (self.root / media_id[:2] / media_id[2:4] / media_id).resolve()
        if not path.is_relative_to(self.root) or path.parent.parent.parent != self.root:
            raise FileNotFoundError(media_id)
        return path

    async def put(self, media_id: str, source: Path, size: int, content_type: str) -> None:
        final = self.path(media_id)
        for folder in (final.parent.parent, final.parent):
            folder.mkdir(mode=0o700, exist_ok=True)
            os.chmod(folder, 0o700)
        os.replace(source, final)  # the spool is inside root: one file system, atomic

    async def local_path(self, media_id: str) -> Path | None:
        path = self.path(media_id)
        return path if path.is_file() else None

    async def open_range(self, media_id: str, first: int, last: int) -> AsyncIterator[bytes]:
        path = self.path(media_id)
        return _file_chunks(await asyncio.to_thread(open, path, "rb"), first, last)

    @contextlib.asynccontextmanager
    async def local_copy(self, media_id: str) -> AsyncIterator[Path]:
        path = self.path(media_id)
        if not path.is_file():
            raise FileNotFoundError(media_id)
        yield path

    async def delete(self, media_ids: list[str]) -> None:
        for media_id in media_ids:
            with contextlib.suppress(FileNotFoundError):
                self.path(media_id).unlink(missing_ok=True)

    async def exists(self, media_id: str) -> bool:
        try:
            return self.path(media_id).is_file()
        except FileNotFoundError:
            return False

    async def ids(self) -> AsyncIterator[str]:
        if not self.root.is_dir():
            return
        for folder, _, files in os.walk(self.root):
            if Path(folder) == self.spool_dir:
                continue
            for name in sorted(files):
                if STORE_ID.match(name) and Path(folder) == self.path(name).parent:
                    yield name

    async def close(self) -> None:
        return None


async def _file_chunks(handle: BinaryIO, first: int, last: int) -> AsyncIterator[bytes]:
    try:
        await asyncio.to_thread(handle.seek, first)
        left = last - first + 1
        while left > 0:
            chunk = await asyncio.to_thread(handle.read, min(CHUNK, left))
            if not chunk:
                return
            left -= len(chunk)
            yield chunk
    finally:
        handle.close()


def make_media_store(config: MediaConfig, media_path: Path, data_path: Path) -> MediaStore:
    """The store ``[media] store`` names: the folder ``media_path`` unless it says "s3"
    (then uploads spool in ``<data_path>/media-spool``, a folder of this instance only)."""
    if config.store == S3:
        from homeserver.storage.media_s3 import S3MediaStore

        return S3MediaStore(config, data_path / "media-spool")
    return FilesystemMediaStore(media_path)
