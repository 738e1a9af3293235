"""Attachments encrypted and decrypted in 1 MiB blocks (the files a chat sends and receives)."""

from __future__ import annotations

import io
import os
from pathlib import Path

from common.crypto import AttachmentDecryptor, AttachmentEncryptor, AttachmentInfo


def encrypt_file(path: Path) -> tuple[bytes, AttachmentInfo]:
    """The encrypted bytes of ``path`` and what decrypts them."""
    enc = AttachmentEncryptor()
    out = io.BytesIO()
    with path.open("rb") as src:
        while block := src.read(1024 * 1024):
            out.write(enc.update(block))
    out.write(enc.finalize())
    return out.getvalue(), enc.info


def decrypt_file(part: Path, tmp: Path, info: AttachmentInfo) -> None:
    """Decrypt ``part`` into ``tmp`` (owner-only, flushed to disk); raises on a bad tag."""
    dec = AttachmentDecryptor(info)
    with part.open("rb") as src, open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as dst:
        while block := src.read(1024 * 1024):
            dst.write(dec.update(block))
        dst.write(dec.finalize())
        dst.flush()
        os.fsync(dst.fileno())
