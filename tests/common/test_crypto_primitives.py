"""Primitives against published test vectors (RFC 5869, 4231, 7748, 8032, libsodium)."""

from __future__ import annotations

import hmac

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common.canonical_json import verify_signed_json
from common.crypto import primitives as P
from common.crypto.errors import DecryptionFailed, InvalidKey, InvalidSignature
from common.crypto.keys import IdentityKeyPair, IdentityPublicKey

H = bytes.fromhex


def test_hkdf_rfc5869_case1() -> None:
    okm = P.hkdf_sha256(
        H("0b" * 22), salt=H("000102030405060708090a0b0c"), info=H("f0f1f2f3f4f5f6f7f8f9"),
        length=42,
    )
    assert okm == H(
        "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
    )


def test_hkdf_rfc5869_case3_no_salt() -> None:
    okm = P.hkdf_sha256(H("0b" * 22), salt=None, info=b"", length=42)
    assert okm == H(
        "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8"
    )


def test_hmac_rfc4231_case1() -> None:
    assert P.hmac_sha256(H("0b" * 20), b"Hi There") == H(
        "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
    )


def test_x25519_rfc7748_section5() -> None:
    k = P.load_x25519_private(
        H("a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4")
    )
    u = H("e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c")
    assert P.x25519(k, u) == H("c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552")


def test_x25519_rfc7748_section6() -> None:
    a = P.load_x25519_private(H("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"))
    b = P.load_x25519_private(H("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb"))
    assert P.x25519_public_bytes(a) == H(
        "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
    )
    assert P.x25519_public_bytes(b) == H(
        "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"
    )
    shared = H("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742")
    assert P.x25519(a, P.x25519_public_bytes(b)) == shared
    assert P.x25519(b, P.x25519_public_bytes(a)) == shared


@pytest.mark.parametrize("u", [bytes(32), (1).to_bytes(32, "little")])
def test_x25519_rejects_low_order(u: bytes) -> None:
    with pytest.raises(InvalidKey):
        P.x25519(P.generate_x25519(), u)


def test_ed25519_rfc8032_test1() -> None:
    k = P.load_ed25519_private(
        H("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
    )
    assert P.ed25519_public_bytes(k) == H(
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
    )
    assert k.sign(b"") == H(
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bac"
        "c61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
    )


def test_ed25519_to_x25519_libsodium_vector() -> None:
    # libsodium test/default/ed25519_convert.c
    seed = H("421151a459faeade3d247115f94aedae42318124095afabe4d1451a559faedee")
    ik = IdentityKeyPair.from_seed(seed)
    assert ik.public.x25519 == H(
        "f1814f0e8ff1043d8a44d25babff3cedcae6c22c3edaa48f857ae70de2baae50"
    )
    assert P.ed25519_seed_to_x25519(seed) == H(
        "8052030376d47112be7f73ed7a019293dd12ad910b654455798b4667d73de166"
    )


@settings(max_examples=25, deadline=None)
@given(st.binary(min_size=32, max_size=32), st.binary(min_size=32, max_size=32))
def test_ed25519_to_x25519_dh_agrees_both_ways(seed_a: bytes, seed_b: bytes) -> None:
    a, b = IdentityKeyPair.from_seed(seed_a), IdentityKeyPair.from_seed(seed_b)
    # The converted private scalar's public key is the converted public key.
    assert P.x25519_public_bytes(a.dh_private) == a.public.x25519
    assert P.x25519(a.dh_private, b.public.x25519) == P.x25519(b.dh_private, a.public.x25519)
    x = P.generate_x25519()
    assert P.x25519(x, a.public.x25519) == P.x25519(a.dh_private, P.x25519_public_bytes(x))


def test_ed25519_public_validation() -> None:
    with pytest.raises(InvalidKey):
        P.ed25519_public_to_x25519((1).to_bytes(32, "little"))  # neutral element
    with pytest.raises(InvalidKey):
        P.ed25519_public_to_x25519((2**255 - 1).to_bytes(32, "little"))  # y >= p
    with pytest.raises(InvalidKey):
        P.ed25519_public_to_x25519(b"\x00" * 31)
    not_on_curve = next(
        y.to_bytes(32, "little")
        for y in range(2, 100)
        if not _is_point(y)
    )
    with pytest.raises(InvalidKey):
        IdentityPublicKey(not_on_curve)


def _is_point(y: int) -> bool:
    p = 2**255 - 19
    d = (-121665 * pow(121666, -1, p)) % p
    x2 = (y * y - 1) * pow(d * y * y + 1, -1, p) % p
    return x2 == 0 or pow(x2, (p - 1) // 2, p) == 1


def test_aes_gcm_roundtrip_and_tamper() -> None:
    key, nonce = bytes(32), bytes(12)
    ct = P.aes_gcm_encrypt(key, nonce, b"hello", b"ad")
    assert P.aes_gcm_decrypt(key, nonce, ct, b"ad") == b"hello"
    # NIST-style fixed output for an all-zero key/nonce (pinned)
    assert P.aes_gcm_encrypt(key, nonce, b"") == H("530f8afbc74536b9a963b4f1c4cb738b")
    with pytest.raises(DecryptionFailed):
        P.aes_gcm_decrypt(key, nonce, ct, b"other")
    bad = bytes([ct[0] ^ 1]) + ct[1:]
    with pytest.raises(DecryptionFailed):
        P.aes_gcm_decrypt(key, nonce, bad, b"ad")
    with pytest.raises(DecryptionFailed):
        P.aes_gcm_decrypt(key, nonce, b"short", b"ad")
    with pytest.raises(InvalidKey):
        P.aes_gcm_encrypt(bytes(16), nonce, b"")


def test_identity_signing_and_device_keys() -> None:
    ik = IdentityKeyPair.from_seed(bytes(range(32)))
    sig = ik.sign(b"msg")
    ik.public.verify(sig, b"msg")
    with pytest.raises(InvalidSignature):
        ik.public.verify(sig, b"other")
    dk = ik.device_keys("@a:hs", "DEV")
    assert verify_signed_json(dk, "@a:hs", "DEV", ik.public.key)
    assert dk["keys"]["ed25519:DEV"] == ik.public.to_b64()
    assert IdentityKeyPair.from_dict(ik.to_dict()).public == ik.public


@settings(max_examples=50, deadline=None)
@given(
    st.binary(max_size=80),
    st.one_of(st.none(), st.binary(min_size=1, max_size=80)),
    st.binary(max_size=40),
    st.integers(1, 255 * 32),
)
def test_hkdf_matches_stdlib_hmac(ikm: bytes, salt: bytes | None, info: bytes, n: int) -> None:
    """RFC 5869 written out over the standard library's HMAC."""
    prk = hmac.digest(salt or bytes(32), ikm, "sha256")
    out, block, i = b"", b"", 1
    while len(out) < n:
        block = hmac.digest(prk, block + info + bytes([i]), "sha256")
        out, i = out + block, i + 1
    assert P.hkdf_sha256(ikm, salt=salt, info=info, length=n) == out[:n]
