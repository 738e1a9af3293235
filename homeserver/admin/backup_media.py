"""Backup and restore of media kept in an object store (``[media] store = "s3"``).

A backup holds media in the filesystem store's layout (``media/<aa>/<bb>/<id>``)
whatever the store, so a backup of an S3 deployment restores into a folder
deployment and the other way round.  The filesystem store itself is copied
as a folder by :mod:`homeserver.admin.backup`.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

from homeserver.config import Config
from homeserver.storage.media_store import STORE_ID, FilesystemMediaStore, make_media_store


class MediaRestoreError(Exception):
    pass


async def export_store(config: Config, target: Path) -> int:
    """Copy every object of the configured store into ``target``; the number copied."""
    store = make_media_store(config.media, config.media_path, config.data_path)
    layout = FilesystemMediaStore(target)
    await asyncio.to_thread(target.mkdir, mode=0o700, exist_ok=True)
    count = 0
    try:
        async for media_id in store.ids():
            try:
                async with store.local_copy(media_id) as copy:
                    await asyncio.to_thread(_place, copy, layout.path(media_id))
                    count += 1
            except FileNotFoundError:
                continue  # deleted since it was listed
    finally:
        await store.close()
    return count


async def ensure_empty(config: Config) -> None:
    """Refuse (MediaRestoreError) a store that already holds media: checked before anything is restored."""
    store = make_media_store(config.media, config.media_path, config.data_path)
    try:
        async for _ in store.ids():
            raise MediaRestoreError(f"the media bucket {config.media.bucket!r} (prefix "
                                    f"{config.media.prefix!r}) is not empty")
    finally:
        await store.close()


async def import_store(config: Config, source: Path) -> int:
    """Put every media file of a backup's ``source`` folder into the configured store."""
    store = make_media_store(config.media, config.media_path, config.data_path)
    try:
        files = await asyncio.to_thread(_backup_files, source)
        for media_id, path, size in files:
            await store.put(media_id, path, size, "application/octet-stream")
    finally:
        await store.close()
    return len(files)


def _place(copy: Path, final: Path) -> None:
    final.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    shutil.copyfile(copy, final)
    os.chmod(final, 0o600)


def _backup_files(source: Path) -> list[tuple[str, Path, int]]:
    """(media id, path, size) of the media files laid out in ``source``."""
    layout = FilesystemMediaStore(source)
    out: list[tuple[str, Path, int]] = []
    for folder, _, files in os.walk(source):
        for name in sorted(files):
            if STORE_ID.match(name) and Path(folder).resolve() == layout.path(name).parent:
                path = Path(folder) / name
                out.append((name, path, path.stat().st_size))
    return out
