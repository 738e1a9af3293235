"""Exception hierarchy of :mod:`common.crypto`.

Every failure the library reports is a :class:`CryptoError`, so callers can
catch one type at the boundary and still tell the cases apart.  Whenever one
of these is raised by a ``decrypt`` method, the object it was called on is
left exactly as it was before the call (commit-on-success).
"""

from __future__ import annotations


class CryptoError(Exception):
    """Base class of every error raised by :mod:`common.crypto`."""


class InvalidKey(CryptoError):
    """A key has the wrong length or encoding, or is a low-order point."""


class InvalidSignature(CryptoError):
    """An Ed25519 signature (raw or on signed JSON) did not verify."""


class InvalidHeader(CryptoError):
    """A message, envelope or serialised object is malformed."""


class UnsupportedVersion(InvalidHeader):
    """A versioned format carries a version this code does not understand."""


class DecryptionFailed(CryptoError):
    """AEAD authentication failed: wrong key, or tampered header/ciphertext."""


class WrongPassword(DecryptionFailed):
    """A password envelope did not open (wrong password or corrupted blob)."""


class IntegrityError(DecryptionFailed):
    """A streamed attachment is truncated, reordered, extended or its hash differs."""


class DuplicateMessage(CryptoError):
    """The message key was already used (a replay) or has been discarded."""


class TooManySkippedMessages(CryptoError):
    """Accepting the message would skip more keys than ``MAX_SKIP`` allows."""


class WeakParameters(CryptoError):
    """An envelope asks for KDF parameters below the accepted floor."""


class UnknownPreKey(CryptoError):
    """An initial message names a one-time or signed pre-key we do not hold."""


class SessionNotReady(CryptoError):
    """The session cannot send yet (responder before the first message)."""


__all__ = [
    "CryptoError",
    "DecryptionFailed",
    "DuplicateMessage",
    "IntegrityError",
    "InvalidHeader",
    "InvalidKey",
    "InvalidSignature",
    "SessionNotReady",
    "TooManySkippedMessages",
    "UnknownPreKey",
    "UnsupportedVersion",
    "WeakParameters",
    "WrongPassword",
]
