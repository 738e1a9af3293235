"""Safety numbers: pinned value, independent recomputation, symmetry."""

from __future__ import annotations

import hashlib

from common.crypto import IdentityKeyPair, safety_number

A = IdentityKeyPair.from_seed(bytes(range(32)))
B = IdentityKeyPair.from_seed(bytes(range(32, 64)))
ALICE, BOB = "@alice:example.org", "@bob:example.org"


def _half(user: str, key: bytes) -> str:
    h = b"\x00\x00" + key + user.encode()
    for _ in range(5200):
        h = hashlib.sha512(h + key).digest()
    return "".join(f"{int.from_bytes(h[i : i + 5], 'big') % 100000:05d}" for i in range(0, 30, 5))


def test_pinned_and_independent() -> None:
    sn = safety_number(ALICE, A.public, BOB, B.public)
    a, b = _half(ALICE, A.public.ed25519), _half(BOB, B.public.ed25519)
    assert sn.digits == min(a, b) + max(a, b)
    assert len(sn.digits) == 60 and sn.digits.isdigit()
    assert sn.digits == EXPECTED
    assert len(sn.formatted().split()) == 12


def test_symmetric_and_sensitive() -> None:
    sn = safety_number(ALICE, A.public, BOB, B.public)
    assert safety_number(BOB, B.public.ed25519, ALICE, A.public.ed25519) == sn
    other = IdentityKeyPair.generate()
    assert safety_number(ALICE, A.public, BOB, other.public) != sn
    assert safety_number(ALICE, A.public, "@bob2:example.org", B.public) != sn


EXPECTED = "595877001691390065257683999191992630197476935152018764232722"
