"""The server's Ed25519 signing key, generated on first start (file mode 0600).

File format (one line, as Synapse uses): ``ed25519 <key_id> <unpadded base64 seed>``.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from common.canonical_json import unpadded_b64decode, unpadded_b64encode


@dataclass(frozen=True)
class SigningKey:
    key_id: str  # e.g. "ed25519:a_Xyz1"
    private_key: Ed25519PrivateKey

    @property
    def public_key_b64(self) -> str:
        raw = self.private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        return unpadded_b64encode(raw)

    @property
    def version(self) -> str:
        return self.key_id.split(":", 1)[1]


def load_or_create_signing_key(path: Path) -> SigningKey:
    if path.exists():
        text = path.read_text().strip()
        try:
            algorithm, version, seed_b64 = text.split()
            if algorithm != "ed25519":
                raise ValueError(algorithm)
            seed = unpadded_b64decode(seed_b64)
            key = Ed25519PrivateKey.from_private_bytes(seed)
        except ValueError as exc:
            raise RuntimeError(f"signing key file {path} is malformed: {exc}") from None
        if path.stat().st_mode & 0o077:
            os.chmod(path, 0o600)
        return SigningKey(f"ed25519:{version}", key)
    version = "a_" + secrets.token_urlsafe(3).replace("-", "x").replace("_", "y")
    key = Ed25519PrivateKey.generate()
    from cryptography.hazmat.primitives.serialization import NoEncryption, PrivateFormat

    seed = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(f"ed25519 {version} {unpadded_b64encode(seed)}\n")
    return SigningKey(f"ed25519:{version}", key)
