"""Registration with an e-mail code, logout, and password login again on a second device."""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path
from typing import Any

import pytest

from client_tk.core.account import approve_pairing, finish_pairing, login, register, start_pairing
from client_tk.core.client import ChatClient
from client_tk.core.transport import CLIENT_V3, Transport
from common.errors import MatrixError
from tests.client.conftest import PASSWORD, Screens, bodies, options, until
from tests.support.server import serve_homeserver
from tests.support.smtp import SmtpSink


def _email() -> str:
    return f"person-{secrets.token_hex(4)}@example.test"


async def _whoami(base_url: str, token: str) -> dict[str, Any]:
    http = Transport(base_url, access_token=token)
    try:
        return await http.get(CLIENT_V3 + "/account/whoami")
    finally:
        await http.aclose()


async def test_email_registration_logout_and_password_login(
    make_config: Any, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    config = make_config(registration={"open": False, "require_email": True}, smtp=smtp_sink.smtp_config())
    made: list[ChatClient] = []
    async with serve_homeserver(config) as server:
        try:
            # Without an e-mail the closed server refuses (dummy auth is not offered).
            with pytest.raises(MatrixError) as refused:
                await register(options(server.base_url, tmp_path / "nobody"), f"no{secrets.token_hex(3)}",
                               PASSWORD)
            assert refused.value.status == 401

            alice_mail, bob_mail = _email(), _email()
            alice = await register(options(server.base_url, tmp_path / "alice-dev1"),
                                   f"alice{secrets.token_hex(3)}", PASSWORD, email=alice_mail,
                                   code_provider=smtp_sink.wait_for_code)
            made.append(alice)
            bob = await register(options(server.base_url, tmp_path / "bob-dev1"),
                                 f"bob{secrets.token_hex(3)}", PASSWORD, email=bob_mail,
                                 code_provider=smtp_sink.wait_for_code)
            made.append(bob)
            assert smtp_sink.messages_to(alice_mail), "the code went out by e-mail"
            assert (await _whoami(server.base_url, str(alice.http.access_token)))["user_id"] == alice.user_id
            # The verified address finds the account.
            assert await bob.lookup_email(alice_mail.upper()) == alice.user_id
            for c in (alice, bob):
                c.start()

            # A second device for Alice (paired by code: it needs the identity key).
            opts2 = options(server.base_url, tmp_path / "alice-dev2")
            request = await start_pairing(opts2, alice.user_id)
            screens = Screens()
            waiting = asyncio.create_task(finish_pairing(opts2, request, PASSWORD, confirm=screens.side("new"),
                                                         poll_interval=0.1))
            await approve_pairing(alice, request.code, confirm=screens.side("old"))
            alice2 = await waiting
            made.append(alice2)
            alice2.start()
            device2 = alice2.device_id
            assert device2 in {d["device_id"] for d in await alice.list_devices()}

            room = await bob.dm_by_email(alice_mail)
            await until(lambda: room in alice.rooms, what="alice sees the invite")
            await alice.accept(room)
            await until(lambda: room in alice2.rooms and alice2.rooms[room].membership == "join",
                        what="second device sees the room")
            await bob.send_text(room, "to both devices")
            await until(lambda: "to both devices" in bodies(alice2, room), what="second device reads")

            # Logout: the device is gone, its token is dead, the local store keeps its history.
            token = str(alice2.http.access_token)
            await alice2.logout()
            made.remove(alice2)
            assert device2 not in {d["device_id"] for d in await alice.list_devices()}
            with pytest.raises(MatrixError) as dead:
                await _whoami(server.base_url, token)
            assert dead.value.errcode == "M_UNKNOWN_TOKEN"
            await until(lambda: alice.user_id in _outdated(bob), what="bob hears of alice's device change")

            # Password login on that second device: same device id, keys published again, readable.
            again = await login(opts2, alice.user_id, PASSWORD, method="password")
            made.append(again)
            assert again.device_id == device2
            assert again.http.access_token != token
            again.start()
            assert "to both devices" in bodies(again, room)
            await bob.send_text(room, "after the password login")
            await until(lambda: "after the password login" in bodies(again, room), what="device 2 reads again")
            await again.send_text(room, "sent from device 2 again")
            await until(lambda: "sent from device 2 again" in bodies(bob, room), what="bob reads device 2")
        finally:
            for c in made:
                try:
                    await c.close()
                except Exception:
                    pass



def _outdated(client: ChatClient) -> list[str]:
    record = client.store.get("state", "outdated")
    return list(record["users"]) if record else []
