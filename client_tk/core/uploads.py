"""Files that wait in the outbox for their upload (written while the server could not be reached).

A file is encrypted once, when the user sends it.  If the upload cannot
reach the server, the *ciphertext* is kept next to the local store
(``uploads/<local id>.bin``, owner-only; the key stays in the encrypted
store, inside the waiting entry's payload) and the entry waits like a text
written offline.  When the server answers again, the outbox driver uploads
it (reporting :class:`TransferProgress` with the entry's local id as the
transfer id), puts the ``mxc://`` URI in the payload, and the message is
encrypted and sent in its place in the room's order.  A refused upload
(too large, no quota) marks the entry failed with the server's reason:
Retry uploads it again, Delete drops it and its ciphertext.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from client_tk.core.events import TransferProgress
from client_tk.core.outbox import FAILED, Outbox
from client_tk.core.processor import Staged
from client_tk.core.store import atomic_write
from client_tk.core.transport import MEDIA_V3
from common.errors import MatrixError

if TYPE_CHECKING:
    from client_tk.core.engine import ClientEngine

JsonDict = dict[str, Any]
UPLOADS = "uploads"


def ciphertext_path(folder: Path, local_id: str) -> Path:
    return folder / UPLOADS / f"{local_id}.bin"


def keep_ciphertext(folder: Path, local_id: str, data: bytes) -> Path:
    path = ciphertext_path(folder, local_id)
    path.parent.mkdir(mode=0o700, exist_ok=True)
    atomic_write(path, data)
    os.chmod(path, 0o600)
    return path


def drop_ciphertext(folder: Path, local_id: str) -> None:
    ciphertext_path(folder, local_id).unlink(missing_ok=True)


async def upload_waiting(engine: ClientEngine, box: Outbox, name: str, entry: JsonDict,
                         changed: Callable[[str], Any]) -> bool:
    """Upload a waiting file entry's ciphertext; True when its payload now has the URI.

    Raises :class:`TransportFailure` while offline (it keeps waiting); a refusal marks it failed."""
    path = ciphertext_path(engine.store.folder, name)
    try:
        data = path.read_bytes()
    except OSError as exc:
        await _fail(engine, box, name, entry, f"the file to send is gone: {exc}", changed)
        return False

    def report(done: int, total: int) -> None:
        engine.bus.emit(TransferProgress(name, "upload", done, total))

    try:
        result = await engine.http.upload(MEDIA_V3 + "/upload", data, "application/octet-stream",
                                          progress=report)
    except MatrixError as exc:
        if 400 <= exc.status < 500 and exc.status not in (408, 429):
            await _fail(engine, box, name, entry, f"{exc.errcode}: {exc.message}", changed)
            return False
        raise

    def stage() -> Staged:
        now = box.get(name)
        if now is None or not now.get("upload"):
            return Staged()  # deleted meanwhile
        payload = dict(now["payload"])
        payload["file"] = {**payload["file"], "url": str(result["content_uri"])}
        box.store.put("outbox", name, {**now, "payload": payload, "upload": None})
        return Staged(events=[changed(str(now["room_id"]))])
    async with engine.lock:
        await engine._commit(stage)
    drop_ciphertext(engine.store.folder, name)
    return True


async def _fail(engine: ClientEngine, box: Outbox, name: str, entry: JsonDict, reason: str,
                changed: Callable[[str], Any]) -> None:
    def stage() -> Staged:
        now = box.get(name)
        if now is None:
            return Staged()
        box.store.put("outbox", name, {**now, "state": FAILED, "error": reason,
                                       "attempts": int(now.get("attempts", 0)) + 1})
        return Staged(events=[changed(str(entry["room_id"]))])
    async with engine.lock:
        await engine._commit(stage)
