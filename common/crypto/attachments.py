"""Encrypted attachments: a fresh AES-256-GCM key per file, streamed in chunks.

Format (the STREAM construction of Hoang, Reyhanitabar, Rogaway and Vizár,
"Online Authenticated-Encryption and its Nonce-Reuse Misuse-Resistance")::

    header  = b"PRLA" | version 0x01 | chunk_size (uint32 BE) | nonce_prefix (7)
    chunk_i = AES-256-GCM(key, nonce_prefix || i (uint32 BE) || last (1 byte),
                          plaintext_i, aad = header)

Every chunk but the last holds exactly ``chunk_size`` plaintext bytes; the
last one (flag 1) holds 0..chunk_size bytes, so an empty file is one 16-byte
chunk.  Reordering changes ``i``, truncation loses the ``last`` flag,
appending follows a ``last`` chunk, and the header is bound as AAD, so each
is detected (:class:`IntegrityError`).  :class:`AttachmentInfo` additionally
carries SHA-256 of the whole ciphertext (header included), checked at the
end, so the ciphertext can be verified or addressed without the key.

Streaming decryption releases plaintext before the end of the file is
authenticated: callers must discard what they wrote if ``finalize`` (or
:func:`decrypt_stream`) raises.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from typing import Any, BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from common.crypto import primitives as P
from common.crypto.errors import (
    IntegrityError,
    InvalidHeader,
    InvalidKey,
    UnsupportedVersion,
)
from common.crypto.serialization import JsonDict, b64d, b64e, check_version

MAGIC = b"PRLA"
VERSION = 1
_HEADER = struct.Struct(">4sBI7s")
HEADER_LEN = _HEADER.size  # 16
DEFAULT_CHUNK_SIZE = 64 * 1024
MAX_CHUNK_SIZE = 16 * 1024 * 1024
_MAX_CHUNKS = 2**32


@dataclass(frozen=True)
class AttachmentInfo:
    """What the sender puts in the (end-to-end encrypted) message."""

    key: bytes
    sha256: bytes  # of the full ciphertext
    size: int = 0  # ciphertext length, informational

    TYPE = "attachment"
    VERSIONS = (1,)

    def to_dict(self) -> JsonDict:
        return {
            "type": self.TYPE,
            "v": 1,
            "key": b64e(self.key),
            "hashes": {"sha256": b64e(self.sha256)},
            "size": self.size,
        }

    @classmethod
    def from_dict(cls, d: Any) -> AttachmentInfo:
        check_version(d, cls.TYPE, cls.VERSIONS)
        hashes = d.get("hashes")
        if not isinstance(hashes, dict):
            raise InvalidHeader("attachment: missing hashes")
        size = d.get("size", 0)
        if not isinstance(size, int) or size < 0:
            raise InvalidHeader("attachment: bad size")
        return cls(
            b64d(d.get("key"), length=32, field="key"),
            b64d(hashes.get("sha256"), length=32, field="sha256"),
            size,
        )


def _nonce(prefix: bytes, index: int, last: bool) -> bytes:
    if index >= _MAX_CHUNKS:
        raise IntegrityError("too many chunks")
    return prefix + struct.pack(">IB", index, 1 if last else 0)


class AttachmentEncryptor:
    """Incremental encryptor: ``update()`` any number of times, then ``finalize()``."""

    def __init__(self, key: bytes | None = None, chunk_size: int = DEFAULT_CHUNK_SIZE) -> None:
        if not 1 <= chunk_size <= MAX_CHUNK_SIZE:
            raise ValueError("chunk_size out of range")
        self.key = key if key is not None else P.random_bytes(32)
        if len(self.key) != 32:
            raise InvalidKey("attachment key must be 32 bytes")
        self._aead = AESGCM(self.key)
        self._chunk = chunk_size
        self._prefix = P.random_bytes(7)
        self._header = _HEADER.pack(MAGIC, VERSION, chunk_size, self._prefix)
        self._buf = bytearray()
        self._index = 0
        self._hash = hashlib.sha256()
        self._size = 0
        self._started = False
        self._info: AttachmentInfo | None = None

    def _emit(self, data: bytes) -> bytes:
        self._hash.update(data)
        self._size += len(data)
        return data

    def _start(self) -> bytes:
        if self._started:
            return b""
        self._started = True
        return self._emit(self._header)

    def update(self, data: bytes) -> bytes:
        if self._info is not None:
            raise ValueError("encryptor already finalised")
        out = [self._start()]
        view, pos = memoryview(bytes(self._buf) + data if self._buf else data), 0
        while len(view) - pos > self._chunk:  # more follows: not the last chunk
            nonce = _nonce(self._prefix, self._index, False)
            piece = view[pos : pos + self._chunk]
            out.append(self._emit(self._aead.encrypt(nonce, piece, self._header)))
            self._index += 1
            pos += self._chunk
        self._buf = bytearray(view[pos:])
        return b"".join(out)

    def finalize(self) -> bytes:
        if self._info is not None:
            raise ValueError("encryptor already finalised")
        head = self._start()
        nonce = _nonce(self._prefix, self._index, True)
        tail = self._emit(self._aead.encrypt(nonce, bytes(self._buf), self._header))
        self._buf.clear()
        self._info = AttachmentInfo(self.key, self._hash.digest(), self._size)
        return head + tail

    @property
    def info(self) -> AttachmentInfo:
        if self._info is None:
            raise ValueError("call finalize() first")
        return self._info


class AttachmentDecryptor:
    """Incremental decryptor; raises :class:`IntegrityError` on any tampering."""

    def __init__(self, info: AttachmentInfo) -> None:
        self._info = info
        self._aead = AESGCM(info.key)
        self._hash = hashlib.sha256()
        self._buf = bytearray()
        self._header: bytes | None = None
        self._prefix = b""
        self._chunk = 0
        self._index = 0
        self._done = False

    def _parse_header(self) -> None:
        if self._header is not None or len(self._buf) < HEADER_LEN:
            return
        header = bytes(self._buf[:HEADER_LEN])
        magic, version, chunk, prefix = _HEADER.unpack(header)
        if magic != MAGIC:
            raise InvalidHeader("not a Parley attachment")
        if version != VERSION:
            raise UnsupportedVersion(f"attachment version {version}")
        if not 1 <= chunk <= MAX_CHUNK_SIZE:
            raise InvalidHeader("attachment chunk size out of range")
        self._header, self._prefix, self._chunk = header, prefix, chunk
        del self._buf[:HEADER_LEN]

    def _open(self, data: bytes | memoryview, last: bool) -> bytes:
        assert self._header is not None
        nonce = _nonce(self._prefix, self._index, last)
        try:
            plain = self._aead.decrypt(nonce, data, self._header)
        except InvalidTag as exc:
            raise IntegrityError(f"chunk {self._index} failed authentication") from exc
        self._index += 1
        return plain

    def update(self, data: bytes) -> bytes:
        if self._done:
            raise ValueError("decryptor already finalised")
        self._hash.update(data)
        self._buf += data
        self._parse_header()
        if self._header is None:
            return b""
        out = []
        step = self._chunk + P.TAG_LEN
        view, pos = memoryview(bytes(self._buf)), 0
        while len(view) - pos > step:
            out.append(self._open(view[pos : pos + step], False))
            pos += step
        self._buf = bytearray(view[pos:])
        return b"".join(out)

    def finalize(self) -> bytes:
        """Open the last chunk and check the whole-file SHA-256."""
        if self._done:
            raise ValueError("decryptor already finalised")
        self._done = True
        if self._header is None:
            raise IntegrityError("attachment truncated before its header")
        if len(self._buf) < P.TAG_LEN:
            raise IntegrityError("attachment truncated")
        plain = self._open(bytes(self._buf), True)
        self._buf.clear()
        if not P.constant_time_equal(self._hash.digest(), self._info.sha256):
            raise IntegrityError("attachment SHA-256 mismatch")
        return plain


def encrypt_stream(
    src: BinaryIO, dst: BinaryIO, *, key: bytes | None = None, chunk_size: int = DEFAULT_CHUNK_SIZE
) -> AttachmentInfo:
    """Encrypt ``src`` into ``dst`` chunk by chunk; return the key and hash."""
    enc = AttachmentEncryptor(key, chunk_size)
    while block := src.read(chunk_size):
        dst.write(enc.update(block))
    dst.write(enc.finalize())
    return enc.info


def decrypt_stream(
    src: BinaryIO, dst: BinaryIO, info: AttachmentInfo, *, read_size: int = DEFAULT_CHUNK_SIZE
) -> int:
    """Decrypt ``src`` into ``dst``; return plaintext bytes written.  On
    :class:`IntegrityError` the caller must discard ``dst``."""
    dec = AttachmentDecryptor(info)
    written = 0
    while block := src.read(read_size):
        written += dst.write(dec.update(block))
    written += dst.write(dec.finalize())
    return written


def encrypt_attachment(
    data: bytes, *, key: bytes | None = None, chunk_size: int = DEFAULT_CHUNK_SIZE
) -> tuple[bytes, AttachmentInfo]:
    enc = AttachmentEncryptor(key, chunk_size)
    ciphertext = b"".join((enc.update(data), enc.finalize()))
    return ciphertext, enc.info


def decrypt_attachment(ciphertext: bytes, info: AttachmentInfo) -> bytes:
    """All-in-memory decryption: returns plaintext only if all checks pass."""
    dec = AttachmentDecryptor(info)
    return dec.update(ciphertext) + dec.finalize()
