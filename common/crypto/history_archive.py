"""The history a new device receives once, at pairing.

The approving device serialises what the new device should be able to read
(message keys, cached messages: the client decides), encrypts it as an
attachment (:func:`common.crypto.attachments.encrypt_attachment`: a fresh key,
chunked AES-256-GCM, SHA-256 of the ciphertext), uploads the ciphertext as
media, and sends the new device only the *descriptor* -- the attachment key,
hash and media id -- sealed under the pairing key that
:class:`common.crypto.sas.PairingAgreement` releases after the user confirmed
the code::

    descriptor = {"type": "history_archive", "v": 1, "media_id": ...,
                  "attachment": AttachmentInfo.to_dict()}
    sealed     = nonce (12) || AES-256-GCM(pairing key, canonical JSON(descriptor),
                                           aad = b"Parley history archive v1")

The new device opens the descriptor, downloads and decrypts the archive,
imports it, and deletes the media.  Nothing about the archive outlives the
pairing: the pairing key is ephemeral, and the attachment key exists only
inside the sealed descriptor.  A server in the middle of the pairing is caught
by the code comparison before any of this is sent; a tampered descriptor or
archive fails to open.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from common.crypto import primitives as P
from common.crypto.attachments import AttachmentInfo, decrypt_attachment, encrypt_attachment
from common.crypto.errors import InvalidHeader
from common.crypto.serialization import JsonDict, check_version, dumps, get_str, loads

ARCHIVE_AAD = b"Parley history archive v1"


@dataclass(frozen=True)
class ArchiveDescriptor:
    media_id: str
    attachment: AttachmentInfo

    TYPE = "history_archive"
    VERSIONS = (1,)

    def to_dict(self) -> JsonDict:
        return {"type": self.TYPE, "v": 1, "media_id": self.media_id,
                "attachment": self.attachment.to_dict()}

    @classmethod
    def from_dict(cls, d: Any) -> ArchiveDescriptor:
        check_version(d, cls.TYPE, cls.VERSIONS)
        return cls(get_str(d, "media_id"), AttachmentInfo.from_dict(d.get("attachment")))


def encrypt_archive(archive: JsonDict) -> tuple[bytes, AttachmentInfo]:
    """Ciphertext to upload as media, and its key/hash (for the descriptor)."""
    return encrypt_attachment(dumps(archive))


def seal_descriptor(pairing_key: bytes, descriptor: ArchiveDescriptor) -> bytes:
    nonce = P.random_bytes(P.NONCE_LEN)
    return nonce + P.aes_gcm_encrypt(pairing_key, nonce, dumps(descriptor.to_dict()), ARCHIVE_AAD)


def open_descriptor(pairing_key: bytes, sealed: bytes) -> ArchiveDescriptor:
    """Raises :class:`DecryptionFailed` for another pairing key or a tampered blob."""
    if len(sealed) < P.NONCE_LEN + P.TAG_LEN:
        raise InvalidHeader("sealed archive descriptor truncated")
    plain = P.aes_gcm_decrypt(pairing_key, sealed[:P.NONCE_LEN], sealed[P.NONCE_LEN:], ARCHIVE_AAD)
    return ArchiveDescriptor.from_dict(loads(plain))


def decrypt_archive(ciphertext: bytes, descriptor: ArchiveDescriptor) -> JsonDict:
    """The archive; raises :class:`IntegrityError` if the media was changed."""
    return loads(decrypt_attachment(ciphertext, descriptor.attachment))


__all__ = ["ArchiveDescriptor", "decrypt_archive", "encrypt_archive", "open_descriptor",
           "seal_descriptor"]
