"""Throughput of the common.crypto protocols next to their primitives.

Run from the repository root::

    python -m bench.crypto_bench            # ~1 s per measurement, < 60 s
    python -m bench.crypto_bench --quick    # CI smoke, < 10 s

Prints a table, then one JSON object per line (``{"bench": ...}``).  The
figure to quote is ``ratio``: protocol cost divided by the cost of its
dominant primitive measured in the same run, which is stable across
machines where raw ops/s are not.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from common.crypto import (  # noqa: E402
    IdentityKeyPair,
    InboundSenderKey,
    OneTimePreKey,
    OutboundSenderKey,
    PreKeyBundle,
    SignedPreKey,
    encrypt_attachment,
    encrypt_with_password,
    x3dh_initiate,
    x3dh_respond,
)
from common.crypto import primitives as P  # noqa: E402
from common.crypto.double_ratchet import DoubleRatchet  # noqa: E402
from common.crypto.pqxdh import KemPreKey, PQPreKeyBundle, pqxdh_initiate, pqxdh_respond  # noqa: E402

KIB = 1024


@dataclass
class Result:
    name: str
    seconds_per_op: float
    unit_bytes: int = 0
    ratio_to: str = ""
    ratio: float = 0.0
    model: str = ""

    @property
    def ops_per_s(self) -> float:
        return 1.0 / self.seconds_per_op

    def to_json(self) -> dict[str, object]:
        d: dict[str, object] = {
            "bench": self.name,
            "ops_per_s": round(self.ops_per_s, 1),
            "us_per_op": round(self.seconds_per_op * 1e6, 2),
        }
        if self.unit_bytes:
            d["mib_per_s"] = round(self.unit_bytes * self.ops_per_s / 2**20, 1)
        if self.ratio_to:
            d["ratio_to"] = self.ratio_to
            d["ratio"] = round(self.ratio, 2)
            d["model"] = self.model
        return d


def measure(fn: Callable[[], object], budget: float, ops_per_call: int = 1) -> float:
    """Seconds per op: calls ``fn`` repeatedly for about ``budget`` seconds."""
    fn()  # warm-up
    calls, start = 0, time.perf_counter()
    deadline = start + budget
    while True:
        fn()
        calls += 1
        now = time.perf_counter()
        if now >= deadline:
            return (now - start) / (calls * ops_per_call)


def ratchet_pair() -> tuple[DoubleRatchet, DoubleRatchet]:
    sk, spk = os.urandom(32), P.generate_x25519()
    a = DoubleRatchet.init_initiator(sk, P.x25519_public_bytes(spk), b"ad")
    b = DoubleRatchet.init_responder(sk, spk, b"ad")
    b.decrypt(a.encrypt(b"start"))
    return a, b


def run(budget: float, with_kdf: bool) -> list[Result]:
    msg = os.urandom(KIB)
    key, nonce = os.urandom(32), os.urandom(12)
    x1, x2 = P.generate_x25519(), P.generate_x25519()
    x2_pub = P.x25519_public_bytes(x2)
    ed = P.generate_ed25519()
    ed_pub = ed.public_key()
    sig = ed.sign(msg[:100])
    big = os.urandom(64 * KIB)
    mib = os.urandom(2**20)

    r: dict[str, Result] = {}

    def add(name: str, fn: Callable[[], object], n: int = 1, unit: int = 0) -> None:
        r[name] = Result(name, measure(fn, budget, n), unit)

    # ---- primitives
    add("aes_gcm_encrypt_1KiB", lambda: P.aes_gcm_encrypt(key, nonce, msg, b"ad"), unit=KIB)
    add("aes_gcm_encrypt_64KiB", lambda: P.aes_gcm_encrypt(key, nonce, big), unit=64 * KIB)
    add("hmac_sha256_32B", lambda: P.hmac_sha256(key, nonce))
    add("sha256_1MiB", lambda: hashlib.sha256(mib).digest(), unit=2**20)
    add("hkdf_sha256_64B", lambda: P.hkdf_sha256(key, salt=nonce, info=b"i", length=64))
    add("x25519_dh", lambda: P.x25519(x1, x2_pub))
    add("x25519_keygen", P.generate_x25519)
    add("ed25519_sign", lambda: ed.sign(msg[:100]))
    add("ed25519_verify", lambda: ed_pub.verify(sig, msg[:100]))

    # ---- X3DH: full handshake (bundle verification + both sides)
    alice, bob = IdentityKeyPair.generate(), IdentityKeyPair.generate()
    spk, otk = SignedPreKey.generate(1), OneTimePreKey.generate(1)
    bundle = PreKeyBundle.create(bob, "@bob:x", "B", spk, otk)

    def x3dh() -> None:
        res = x3dh_initiate(alice, bundle)
        x3dh_respond(bob, res.header, spk, otk)

    add("x3dh_handshake", x3dh)

    # ---- PQXDH (X3DH + ML-KEM-1024): the same handshake plus one encapsulation
    kem = KemPreKey.generate(1)
    kem_pub = kem.private.public_key()
    pq_bundle = PQPreKeyBundle.create(bob, "@bob:x", "B", spk, kem, otk)

    def pqxdh() -> None:
        res = pqxdh_initiate(alice, pq_bundle)
        pqxdh_respond(bob, res.header, spk, kem, otk)

    add("mlkem1024_encaps+decaps", lambda: kem.decapsulate(kem_pub.encapsulate()[1]))
    add("pqxdh_handshake", pqxdh)

    # ---- Double Ratchet
    a, b = ratchet_pair()

    def dr_same_direction() -> None:
        b.decrypt(a.encrypt(msg))

    add("dr_encrypt_decrypt_1KiB", dr_same_direction, unit=KIB)
    c, d = ratchet_pair()

    def dr_ping_pong() -> None:
        d.decrypt(c.encrypt(msg))
        c.decrypt(d.encrypt(msg))

    add("dr_ping_pong_1KiB_per_msg", dr_ping_pong, n=2, unit=KIB)

    # ---- Sender keys
    out = OutboundSenderKey.create()
    inbound = InboundSenderKey.from_distribution(out.distribution())

    def sender_key() -> None:
        inbound.decrypt(out.encrypt(msg, b"!room"), b"!room")

    add("sender_key_encrypt_verify_decrypt_1KiB", sender_key, unit=KIB)

    # ---- Attachments (1 MiB, 64 KiB chunks)
    add("attachment_encrypt_1MiB", lambda: encrypt_attachment(mib), unit=2**20)
    r["aes_gcm+sha256_1MiB"] = Result(
        "aes_gcm+sha256_1MiB",
        r["aes_gcm_encrypt_64KiB"].seconds_per_op * 16 + r["sha256_1MiB"].seconds_per_op,
        2**20,
    )

    if with_kdf:  # one real password envelope (PBKDF2-SHA256, 600k iterations)
        start = time.perf_counter()
        encrypt_with_password(b"seed" * 8, "password")
        r["password_envelope_pbkdf2_600k"] = Result(
            "password_envelope_pbkdf2_600k", time.perf_counter() - start
        )

    # ---- ratios to the dominant primitive (model = what the op is made of)
    def ratio(name: str, base: str, base_cost: float, model: str) -> None:
        r[name].ratio_to, r[name].model = base, model
        r[name].ratio = r[name].seconds_per_op / base_cost

    def cost(*names: str) -> float:
        return sum(r[n].seconds_per_op for n in names)

    ratio("x3dh_handshake", "x25519_dh", cost("x25519_dh"),
          "8 DH + 1 keygen + 2 Ed25519 verify + JSON canonicalisation")
    ratio("pqxdh_handshake", "x3dh_handshake", cost("x3dh_handshake"),
          "X3DH + 1 KEM verify + ML-KEM-1024 encaps/decaps + key decode + 1 Ed25519 verify")
    ratio("dr_encrypt_decrypt_1KiB", "hmac_sha256_32B", cost("hmac_sha256_32B"),
          "4 HMAC + 2 HKDF + 2 AES-GCM(1 KiB) + state copy")
    ratio("dr_ping_pong_1KiB_per_msg", "x25519_dh", cost("x25519_dh"),
          "per message: 2 DH + 1 keygen + 2 KDF_RK + the same-direction cost")
    ratio("sender_key_encrypt_verify_decrypt_1KiB", "ed25519_sign+verify",
          cost("ed25519_sign", "ed25519_verify"), "1 sign + 1 verify + 4 HMAC + 2 HKDF + 2 AES-GCM")
    ratio("attachment_encrypt_1MiB", "aes_gcm+sha256_1MiB", cost("aes_gcm+sha256_1MiB"),
          "16 AES-GCM(64 KiB) + SHA-256(1 MiB) + buffering")
    return list(r.values())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="CI smoke run (< 10 s)")
    parser.add_argument("--budget", type=float, help="seconds per measurement")
    args = parser.parse_args(argv)
    budget = args.budget if args.budget is not None else (0.08 if args.quick else 1.0)
    started = time.perf_counter()
    results = run(budget, with_kdf=True)
    print(f"{'benchmark':42} {'ops/s':>12} {'us/op':>10} {'MiB/s':>8}  ratio to primitive")
    for res in results:
        j = res.to_json()
        mib = f"{j['mib_per_s']:8.1f}" if "mib_per_s" in j else " " * 8
        ratio = f"{res.ratio:7.2f} x {res.ratio_to}" if res.ratio_to else ""
        print(f"{res.name:42} {res.ops_per_s:12.1f} {res.seconds_per_op * 1e6:10.2f} {mib}  {ratio}")
    print(f"# total {time.perf_counter() - started:.1f} s, python {sys.version.split()[0]}")
    for res in results:
        print(json.dumps(res.to_json(), sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
