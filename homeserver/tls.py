"""TLS helpers: the dev-mode self-signed certificate (refused outside dev mode by
Config.validate), and the trust of outgoing HTTPS clients."""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def trust_also(ca_file: str) -> ssl.SSLContext | bool:
    """httpx ``verify`` for the system's trust store plus the CA certificates in ``ca_file``
    (PEM; empty: the system's store alone)."""
    if not ca_file:
        return True
    context = ssl.create_default_context()
    context.load_verify_locations(cafile=ca_file)
    return context


def ensure_dev_certificate(data_dir: Path, server_name: str) -> tuple[str, str]:
    cert_path = data_dir / "dev-cert.pem"
    key_path = data_dir / "dev-key.pem"
    if cert_path.exists() and key_path.exists():
        return str(cert_path), str(key_path)
    host = server_name.rsplit(":", 1)[0] if not server_name.startswith("[") else server_name
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    alt: list[x509.GeneralName] = [x509.DNSName(host), x509.DNSName("localhost")]
    alt.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .sign(key, hashes.SHA256())
    )
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return str(cert_path), str(key_path)
