"""The history a newly paired device receives once, at pairing (no standing escrow).

The approving device serialises what it can read -- the cached, decrypted
messages of every room it knows -- encrypts that as an attachment under a
fresh key (:mod:`common.crypto.history_archive`), uploads the ciphertext as
media and puts only the sealed *descriptor* (media id, attachment key and
hash) into the pairing payload, which travels under the pairing key.  The new
device downloads, checks and decrypts the archive, imports the messages into
its own store and asks the server to delete the media.  After that, nothing
on the server opens that history: the attachment key lived only inside the
pairing payload, which the server deletes on delivery.

Archive format (inside the attachment)::

    {"type": "parley_history", "v": 1,
     "messages": [{"room_id": ..., "event_id": ..., "ts": ..., "message": {...}}, ...]}
"""

from __future__ import annotations

import io
from typing import Any

from client_tk.core.crypto import E2EError, b64, unb64
from client_tk.core.store import LocalStore
from client_tk.core.transport import MEDIA_V3, UNSTABLE, Transport, q
from common.crypto import CryptoError
from common.crypto.history_archive import (
    ArchiveDescriptor,
    decrypt_archive,
    encrypt_archive,
    open_descriptor,
    seal_descriptor,
)
from common.errors import MatrixError

JsonDict = dict[str, Any]
ARCHIVE_TYPE = "parley_history"
MAX_ARCHIVE_MESSAGES = 100_000


def export_messages(store: LocalStore) -> JsonDict:
    """Every cached message of every known room (oldest first per room)."""
    out: list[JsonDict] = []
    for room_id in sorted(store.items("rooms")):
        for message in store.room_messages(room_id):
            out.append({"room_id": room_id, "event_id": str(message.get("event_id")),
                        "ts": int(message.get("ts", 0)), "message": message})
    return {"type": ARCHIVE_TYPE, "v": 1, "messages": out[-MAX_ARCHIVE_MESSAGES:]}


def import_messages(store: LocalStore, archive: Any) -> int:
    """Stage the archive's messages that this store does not have; returns how many."""
    if not isinstance(archive, dict) or archive.get("type") != ARCHIVE_TYPE or archive.get("v") != 1:
        raise E2EError("not a Parley history archive of a known version")
    entries = archive.get("messages")
    if not isinstance(entries, list):
        raise E2EError("history archive without messages")
    count = 0
    for entry in entries[:MAX_ARCHIVE_MESSAGES]:
        if not isinstance(entry, dict):
            continue
        room_id, event_id, ts, message = (entry.get("room_id"), entry.get("event_id"),
                                          entry.get("ts"), entry.get("message"))
        if not (isinstance(room_id, str) and isinstance(event_id, str) and isinstance(ts, int)
                and isinstance(message, dict) and message.get("event_id") == event_id
                and message.get("room_id") == room_id):
            continue
        if store.get_message(event_id) is None:
            store.put_message(room_id, event_id, ts, message)
            count += 1
    return count


async def send_archive(http: Transport, store: LocalStore, pairing_key: bytes) -> str:
    """Approving device: upload the encrypted archive; returns the sealed descriptor (base64)."""
    ciphertext, info = encrypt_archive(export_messages(store))
    result = await http.upload(MEDIA_V3 + "/upload", ciphertext, "application/octet-stream")
    descriptor = ArchiveDescriptor(str(result["content_uri"]), info)
    return b64(seal_descriptor(pairing_key, descriptor))


async def receive_archive(http: Transport, store: LocalStore, pairing_key: bytes, sealed: str) -> int:
    """New device: open the descriptor, fetch and decrypt the archive, import, delete the media.

    The caller commits the store."""
    try:
        descriptor = open_descriptor(pairing_key, unb64(sealed))
    except CryptoError as exc:
        raise E2EError(f"history descriptor does not open: {exc}") from exc
    uri = descriptor.media_id
    if not uri.startswith("mxc://") or uri.count("/") != 3:
        raise E2EError("history archive: bad media URL")
    server, media_id = uri[len("mxc://"):].split("/", 1)
    sink = io.BytesIO()
    await http.download(f"/_matrix/client/v1/media/download/{q(server)}/{q(media_id)}", sink.write)
    try:
        archive = decrypt_archive(sink.getvalue(), descriptor)
    except CryptoError as exc:
        raise E2EError(f"history archive does not decrypt: {exc}") from exc
    count = import_messages(store, archive)
    try:
        await http.post(UNSTABLE + "/media/delete", {"media_id": uri}, idempotent=True)
    except MatrixError as exc:
        if exc.status != 404:
            raise
    return count
