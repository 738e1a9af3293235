"""Pairing is authenticated by a short code (issue 15): a server in the middle is caught.

Both devices show the SAS of the pairing transcript (user, pairing code, both
device names, both ephemeral keys) and the user compares the two screens.  The
malicious server here swaps the new device's ephemeral key for its own before
the old device claims the code: the two screens show different codes, the
user says so on both, the old device sends nothing (no payload exists on the
server) and the new device gets no account.
"""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path

import pytest

from client_tk.core.account import approve_pairing, finish_pairing, start_pairing
from client_tk.core.client import ChatClient
from common.crypto import primitives as P
from common.crypto.sas import SasMismatch
from tests.client.conftest import PASSWORD, MakeClient, Screens, options
from tests.support.server import RunningServer


async def test_substituted_pairing_key_shows_different_codes_and_nothing_is_sent(
    server: RunningServer, new_user: MakeClient, clients: list[ChatClient], tmp_path: Path
) -> None:
    alice = await new_user("alice")
    opts = options(server.base_url, tmp_path / "alice-new")
    request = await start_pairing(opts, alice.user_id)
    mallory = P.x25519_public_bytes(P.generate_x25519())
    db = server.hs.database
    with db.activated():  # the server hands the old device its own key instead
        changed = await db.execute("UPDATE pairing_sessions SET ephemeral_key = ? WHERE claimed_user_id IS NULL",
                                   (base64.b64encode(mallory).decode().rstrip("="),))
    assert changed >= 1
    screens = Screens()
    new_side = asyncio.create_task(finish_pairing(opts, request, PASSWORD, confirm=screens.side("new"),
                                                  poll_interval=0.1))
    with pytest.raises(SasMismatch):
        await approve_pairing(alice, request.code, confirm=screens.side("old"))
    with pytest.raises(SasMismatch):
        await new_side
    assert screens.codes["new"] != screens.codes["old"]
    with db.activated():
        rows = await db.fetch("SELECT payload FROM pairing_sessions WHERE claimed_user_id = ?", (alice.user_id,))
    assert rows and all(r["payload"] is None for r in rows)  # nothing secret was sent
    assert not (tmp_path / "alice-new").exists() or not any((tmp_path / "alice-new").rglob("store.db"))
