"""``python -m bench`` (``tox -e bench``): crypto figures, then the load bench on every server.

    python -m bench                       # crypto + load at the default size (< 15 min)
    python -m bench --quick               # crypto --quick + load --size tiny
    python -m bench --no-crypto --servers parley-sqlite,synapse
    python -m bench --no-load

Options other than ``--quick``, ``--no-crypto`` and ``--no-load`` go to
``python -m bench.load`` (see its ``--help``).
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import crypto_bench  # noqa: E402
from bench.load import __main__ as load  # noqa: E402


def messages_per_second(fn: Callable[[], object], budget: float) -> float:
    fn()
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < budget:
        fn()
        calls += 1
    return calls / (time.perf_counter() - start)


def crypto_messages(budget: float) -> list[dict[str, object]]:
    """Messages encrypted and decrypted per second: a DM to 2 devices and a group of 50.

    A DM message is one Double Ratchet encryption per recipient device; a group
    message is one Sender Key encryption (signed) that every member device
    verifies and decrypts.  Encrypt figures are the sender's whole cost per
    message; decrypt figures are one receiving device's cost per message.
    """
    from common.crypto import InboundSenderKey, OutboundSenderKey

    body = os.urandom(256)
    out: list[dict[str, object]] = []

    def timed(devices: int, encrypt: Callable[[], list[object]],
              decrypt: Callable[[list[object]], None]) -> tuple[float, float]:
        enc = dec = 0.0
        n, start = 0, time.perf_counter()
        while time.perf_counter() - start < budget or n < 10:
            t0 = time.perf_counter()
            sealed = encrypt()
            t1 = time.perf_counter()
            decrypt(sealed)
            enc += t1 - t0
            dec += time.perf_counter() - t1
            n += 1
        return n / enc, n * devices / dec

    pairs = [crypto_bench.ratchet_pair() for _ in range(2)]

    def dm_decrypt(sealed: list[object]) -> None:
        for (_, receiver), message in zip(pairs, sealed, strict=True):
            receiver.decrypt(message)  # type: ignore[arg-type]

    enc, dec = timed(2, lambda: [sender.encrypt(body) for sender, _ in pairs], dm_decrypt)
    out.append({"bench": "crypto_message", "case": "dm_2_devices", "bytes": len(body),
                "encrypt_msgs_per_s": round(enc, 1), "decrypt_msgs_per_s_per_device": round(dec, 1)})

    sender_key = OutboundSenderKey.create()
    members = [InboundSenderKey.from_distribution(sender_key.distribution()) for _ in range(49)]
    room = b"!bench:localhost"

    def group_decrypt(sealed: list[object]) -> None:
        for member in members:
            member.decrypt(sealed[0], room)  # type: ignore[arg-type]

    enc, dec = timed(49, lambda: [sender_key.encrypt(body, room)], group_decrypt)
    out.append({"bench": "crypto_message", "case": "group_50_members", "bytes": len(body),
                "encrypt_msgs_per_s": round(enc, 1), "decrypt_msgs_per_s_per_device": round(dec, 1)})
    for row in out:
        print(f"{row['case']:20} encrypt {row['encrypt_msgs_per_s']:>10} msgs/s   "
              f"decrypt {row['decrypt_msgs_per_s_per_device']:>10} msgs/s per receiving device")
    for row in out:
        print(json.dumps(row, sort_keys=True))
    return out


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    quick = "--quick" in args
    no_crypto = "--no-crypto" in args
    no_load = "--no-load" in args
    rest = [a for a in args if a not in ("--quick", "--no-crypto", "--no-load")]
    status = 0
    if not no_crypto:
        print("== crypto (bench.crypto_bench" + (" --quick" if quick else "") + ")", flush=True)
        status |= crypto_bench.main(["--quick"] if quick else [])
        print("== crypto messages (256-byte body)", flush=True)
        crypto_messages(0.2 if quick else 1.0)
    if not no_load:
        print("== load (bench.load)", flush=True)
        if quick and "--size" not in rest:
            rest = ["--size", "tiny", *rest]
        status |= load.main(rest)
    return status


if __name__ == "__main__":
    raise SystemExit(main())
