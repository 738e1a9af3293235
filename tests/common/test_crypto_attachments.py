"""Streaming attachment encryption: round trips and every kind of tampering."""

from __future__ import annotations

import hashlib
import io
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common.crypto.attachments import (
    HEADER_LEN,
    AttachmentDecryptor,
    AttachmentEncryptor,
    AttachmentInfo,
    decrypt_attachment,
    decrypt_stream,
    encrypt_attachment,
    encrypt_stream,
)
from common.crypto.errors import IntegrityError, InvalidHeader, UnsupportedVersion

CHUNK = 32


@settings(max_examples=60, deadline=None)
@given(
    st.binary(max_size=600),
    st.integers(1, 100),
    st.lists(st.integers(1, 97), min_size=1, max_size=8),
)
def test_roundtrip_any_chunking(data: bytes, chunk: int, feeds: list[int]) -> None:
    enc = AttachmentEncryptor(chunk_size=chunk)
    pieces, i, j = [], 0, 0
    while i < len(data):
        step = feeds[j % len(feeds)]
        pieces.append(enc.update(data[i : i + step]))
        i, j = i + step, j + 1
    pieces.append(enc.finalize())
    ct = b"".join(pieces)
    info = AttachmentInfo.from_dict(enc.info.to_dict())
    assert info.size == len(ct)
    dec = AttachmentDecryptor(info)
    out = [dec.update(ct[k : k + 13]) for k in range(0, len(ct), 13)]
    out.append(dec.finalize())
    assert b"".join(out) == data
    assert decrypt_attachment(ct, info) == data


def test_streams_with_files() -> None:
    data = bytes(range(256)) * 1000
    src, dst = io.BytesIO(data), io.BytesIO()
    info = encrypt_stream(src, dst, chunk_size=4096)
    dst.seek(0)
    out = io.BytesIO()
    assert decrypt_stream(dst, out, info, read_size=1000) == len(data)
    assert out.getvalue() == data


def _chunks(ct: bytes) -> tuple[bytes, list[bytes]]:
    size = CHUNK + 16
    body = ct[HEADER_LEN:]
    return ct[:HEADER_LEN], [body[i : i + size] for i in range(0, len(body), size)]


def _reject(ct: bytes, info: AttachmentInfo, key_too: bool = True) -> None:
    with pytest.raises(IntegrityError):
        decrypt_attachment(ct, info)
    if key_too:  # even with a matching hash, the AEAD layer notices
        forged = AttachmentInfo(info.key, hashlib.sha256(ct).digest())
        with pytest.raises((IntegrityError, InvalidHeader)):
            decrypt_attachment(ct, forged)


def test_truncation_reorder_append_detected() -> None:
    data = bytes(range(200))
    ct, info = encrypt_attachment(data, chunk_size=CHUNK)
    header, chunks = _chunks(ct)
    assert len(chunks) == 7
    _reject(header + b"".join(chunks[:-1]), info)  # drop the last chunk
    _reject(header + b"".join(chunks[:3]), info)  # cut at a chunk boundary
    _reject(ct[:-5], info)  # cut inside a chunk
    swapped = chunks[:]
    swapped[1], swapped[2] = swapped[2], swapped[1]
    _reject(header + b"".join(swapped), info)
    _reject(ct + chunks[0], info)  # appended
    flipped = bytearray(ct)
    flipped[HEADER_LEN + 3] ^= 1
    _reject(bytes(flipped), info)
    # Header: change the nonce prefix (bound by the nonce and as AAD).
    bad_header = bytearray(ct)
    bad_header[10] ^= 1
    _reject(bytes(bad_header), info)


def test_exact_multiple_and_empty() -> None:
    for data in (b"", b"x" * CHUNK, b"x" * (3 * CHUNK)):
        ct, info = encrypt_attachment(data, chunk_size=CHUNK)
        assert decrypt_attachment(ct, info) == data
    ct, info = encrypt_attachment(b"", chunk_size=CHUNK)
    assert len(ct) == HEADER_LEN + 16


def test_header_errors() -> None:
    ct, info = encrypt_attachment(b"abc", chunk_size=CHUNK)
    with pytest.raises(InvalidHeader):
        decrypt_attachment(b"XXXX" + ct[4:], info)
    with pytest.raises(UnsupportedVersion):
        decrypt_attachment(ct[:4] + b"\x02" + ct[5:], info)
    huge = ct[:5] + struct.pack(">I", 2**31) + ct[9:]
    with pytest.raises(InvalidHeader):
        decrypt_attachment(huge, info)
    with pytest.raises(IntegrityError):
        decrypt_attachment(ct[:10], info)
    wrong_key = AttachmentInfo(bytes(32), info.sha256)
    with pytest.raises(IntegrityError):
        decrypt_attachment(ct, wrong_key)


def test_fresh_key_per_file() -> None:
    _, a = encrypt_attachment(b"same")
    _, b = encrypt_attachment(b"same")
    assert a.key != b.key and a.sha256 != b.sha256
