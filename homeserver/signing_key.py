"""The server's Ed25519 signing key.

The key is shared by every instance of a deployment through the database
(:class:`homeserver.storage.server_keys.ServerKeyRepository`): the first
instance to start creates it.  A deployment that still has the older
``signing.key`` file in its data folder (``ed25519 <version> <unpadded
base64 seed>``, as Synapse writes it) keeps that key: it is imported the
first time.

:class:`SigningKey` is built empty by ``create_app`` and filled once at
start-up, before the first request, so services can hold it from the start.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from common.canonical_json import unpadded_b64decode, unpadded_b64encode


class SigningKeyNotLoaded(RuntimeError):
    """The key was used before start-up loaded it from the database."""


class SigningKey:
    def __init__(self, key_id: str | None = None, private_key: Ed25519PrivateKey | None = None) -> None:
        self._key_id = key_id
        self._private_key = private_key

    def load(self, key_id: str, private_key: Ed25519PrivateKey) -> None:
        self._key_id, self._private_key = key_id, private_key

    @property
    def loaded(self) -> bool:
        return self._private_key is not None

    @property
    def key_id(self) -> str:  # e.g. "ed25519:a_Xyz1"
        if self._key_id is None:
            raise SigningKeyNotLoaded("the server signing key is not loaded yet")
        return self._key_id

    @property
    def private_key(self) -> Ed25519PrivateKey:
        if self._private_key is None:
            raise SigningKeyNotLoaded("the server signing key is not loaded yet")
        return self._private_key

    @property
    def public_key_b64(self) -> str:
        raw = self.private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        return unpadded_b64encode(raw)

    @property
    def version(self) -> str:
        return self.key_id.split(":", 1)[1]

    @property
    def seed_b64(self) -> str:
        return unpadded_b64encode(self.private_key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption()))


def generate_signing_key() -> SigningKey:
    version = "a_" + secrets.token_urlsafe(3).replace("-", "x").replace("_", "y")
    return SigningKey(f"ed25519:{version}", Ed25519PrivateKey.generate())


def key_from_seed(seed_b64: str) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(unpadded_b64decode(seed_b64))


def read_signing_key_file(path: Path) -> SigningKey | None:
    """The key of an older deployment's ``signing.key`` file, or None if there is none."""
    if not path.exists():
        return None
    text = path.read_text().strip()
    try:
        algorithm, version, seed_b64 = text.split()
        if algorithm != "ed25519":
            raise ValueError(algorithm)
        key = key_from_seed(seed_b64)
    except ValueError as exc:
        raise RuntimeError(f"signing key file {path} is malformed: {exc}") from None
    return SigningKey(f"ed25519:{version}", key)
