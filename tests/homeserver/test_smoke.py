from __future__ import annotations

from tests.support.server import RunningServer


async def test_register_and_whoami(server: RunningServer) -> None:
    alice = await server.register("alice")
    response = await server.api("GET", "account/whoami", alice)
    assert response.status_code == 200
    assert response.json() == {"user_id": alice.user_id, "device_id": alice.device_id, "is_guest": False}
