"""Parley end-to-end encryption: the Signal protocols on ``cryptography``.

Layout (one module per specification part; docstrings cite the sections):

``primitives``      X25519 (with low-order check), Ed25519 and the
                    Ed25519→X25519 conversion, HKDF-SHA256, HMAC-SHA256,
                    AES-256-GCM.
``keys``            :class:`IdentityKeyPair` (Ed25519; X25519 form for DH),
                    :class:`SignedPreKey`, :class:`OneTimePreKey`; public
                    forms are Matrix-signed JSON (:mod:`common.canonical_json`).
``x3dh``            X3DH §3: :class:`PreKeyBundle`, :func:`x3dh_initiate`,
                    :func:`x3dh_respond`.
``pqxdh``           PQXDH rev. 3 (X3DH + ML-KEM-1024): :class:`KemPreKey`,
                    :class:`PQPreKeyBundle`, :func:`pqxdh_initiate`,
                    :func:`pqxdh_respond`, downgrade rules
                    (:func:`choose_handshake`, :func:`check_incoming`).
``kem_prekeys``     Signed ML-KEM-1024 one-time and last-resort pre-keys.
``double_ratchet``  Double Ratchet §3 with header as AD, bounded skipping,
                    commit-on-success, replay detection.
``session``         :class:`Session` = X3DH + Double Ratchet per peer device,
                    wire encoding of pre-key / normal messages.
``sender_keys``     Group Sender Keys with a per-sender Ed25519 signing key.
``envelope``        Password envelope (``PRLY`` v1, PBKDF2 600k or scrypt)
                    and the local-storage key / ``encrypt_local``.
``attachments``     Per-file key, chunked streaming AES-GCM (STREAM).
``sas``             Pairing short authentication strings over the pairing
                    transcript (:class:`~common.crypto.sas.PairingAgreement`).
``history_archive`` The once-only history archive for a newly paired device.
``replay``          Own-message counters and the per-device replay window.
``account_keys``    Independent identity / storage / login / backup keys
                    (store format 2) and the migration from format 1.
``key_backup``      Opt-in backup entries bound to room, event and backup version.
``trust``           Pinned identity keys: a changed safety number blocks sending
                    until accepted; unreachable-device reports.
``safety_numbers``  Signal-style 60-digit safety numbers.
``serialization``   Versioned ``{"type", "v", ...}`` dict helpers.
``errors``          :class:`CryptoError` and its subclasses.

Typical client use::

    ik = IdentityKeyPair.generate()
    spk = SignedPreKey.generate(key_id=1)
    otks = [OneTimePreKey.generate(i) for i in range(100)]
    upload(ik.device_keys(user, dev), spk.signed_public(ik, user, dev),
           [k.signed_public(ik, user, dev) for k in otks])

    # Alice, with Bob's claimed keys:
    session = Session.initiate(ik, PreKeyBundle.from_dict(bundle_json))
    wire = encode_message(session.encrypt(b"hi"))
    # Bob:
    msg = decode_message(wire)
    result = Session.accept(ik_b, msg, "@alice:hs", "ALICEDEV", [spk], otk_lookup)
    # ...delete result.one_time_prekey_id, store result.session

    out = OutboundSenderKey.create()
    dist = out.distribution().to_bytes()        # send over each pairwise Session
    inbound = InboundSenderKey.from_distribution(SenderKeyDistribution.from_bytes(dist))
    inbound.decrypt(out.encrypt(b"hello room", room_id.encode()).to_bytes(), room_id.encode())
"""

from __future__ import annotations

from common.canonical_json import (
    encode_canonical_json,
    sign_json,
    signable_bytes,
    verify_signed_json,
)
from common.crypto.attachments import (
    AttachmentDecryptor,
    AttachmentEncryptor,
    AttachmentInfo,
    decrypt_attachment,
    decrypt_stream,
    encrypt_attachment,
    encrypt_stream,
)
from common.crypto.double_ratchet import MAX_SKIP, DoubleRatchet, Header, RatchetMessage
from common.crypto.envelope import (
    DEFAULT_KDF,
    KdfParams,
    decrypt_local,
    decrypt_with_password,
    derive_local_storage_key,
    encrypt_local,
    encrypt_with_password,
    needs_upgrade,
    open_identity,
    seal_identity,
)
from common.crypto.errors import (
    CryptoError,
    DecryptionFailed,
    DuplicateMessage,
    IntegrityError,
    InvalidHeader,
    InvalidKey,
    InvalidSignature,
    SessionNotReady,
    TooManySkippedMessages,
    UnknownPreKey,
    UnsupportedVersion,
    WeakParameters,
    WrongPassword,
)
from common.crypto.keys import (
    IdentityKeyPair,
    IdentityPublicKey,
    OneTimePreKey,
    SignedPreKey,
)
from common.crypto.pqxdh import (
    PQXDH_ALGORITHM,
    DowngradeRefused,
    KemPreKey,
    PQPreKeyBundle,
    PQXDHHeader,
    check_incoming,
    choose_handshake,
    pqxdh_initiate,
    pqxdh_respond,
)
from common.crypto.safety_numbers import SafetyNumber, safety_number
from common.crypto.sender_keys import (
    InboundSenderKey,
    OutboundSenderKey,
    SenderKeyDistribution,
    SenderKeyMessage,
)
from common.crypto.session import (
    AcceptResult,
    PreKeyMessage,
    Session,
    decode_message,
    encode_message,
)
from common.crypto.x3dh import (
    PreKeyBundle,
    X3DHHeader,
    X3DHResult,
    x3dh_initiate,
    x3dh_respond,
)

__all__ = [
    "DEFAULT_KDF",
    "MAX_SKIP",
    "PQXDH_ALGORITHM",
    "AcceptResult",
    "AttachmentDecryptor",
    "AttachmentEncryptor",
    "AttachmentInfo",
    "CryptoError",
    "DecryptionFailed",
    "DoubleRatchet",
    "DowngradeRefused",
    "DuplicateMessage",
    "Header",
    "IdentityKeyPair",
    "IdentityPublicKey",
    "InboundSenderKey",
    "IntegrityError",
    "InvalidHeader",
    "InvalidKey",
    "InvalidSignature",
    "KdfParams",
    "KemPreKey",
    "OneTimePreKey",
    "OutboundSenderKey",
    "PQPreKeyBundle",
    "PQXDHHeader",
    "PreKeyBundle",
    "PreKeyMessage",
    "RatchetMessage",
    "SafetyNumber",
    "SenderKeyDistribution",
    "SenderKeyMessage",
    "Session",
    "SessionNotReady",
    "SignedPreKey",
    "TooManySkippedMessages",
    "UnknownPreKey",
    "UnsupportedVersion",
    "WeakParameters",
    "WrongPassword",
    "X3DHHeader",
    "X3DHResult",
    "check_incoming",
    "choose_handshake",
    "decode_message",
    "decrypt_attachment",
    "decrypt_local",
    "decrypt_stream",
    "decrypt_with_password",
    "derive_local_storage_key",
    "encode_canonical_json",
    "encode_message",
    "encrypt_attachment",
    "encrypt_local",
    "encrypt_stream",
    "encrypt_with_password",
    "needs_upgrade",
    "open_identity",
    "pqxdh_initiate",
    "pqxdh_respond",
    "safety_number",
    "seal_identity",
    "sign_json",
    "signable_bytes",
    "verify_signed_json",
    "x3dh_initiate",
    "x3dh_respond",
]
