"""matrix-nio, a real Matrix client library, against the homeserver."""

from __future__ import annotations

import nio

from tests.support.server import RunningServer


async def test_nio_register_login_whoami_devices(server: RunningServer, tmp_path: object) -> None:
    client = nio.AsyncClient(server.base_url, "nio-user")
    try:
        registered = await client.register("nio-user", "nio password 123", device_name="nio")
        assert isinstance(registered, nio.RegisterResponse), registered
        assert registered.user_id == f"@nio-user:{server.config.server_name}"

        second = nio.AsyncClient(server.base_url, "nio-user")
        try:
            login = await second.login("nio password 123", device_name="second nio")
            assert isinstance(login, nio.LoginResponse), login
            whoami = await second.whoami()
            assert isinstance(whoami, nio.WhoamiResponse), whoami
            assert whoami.user_id == registered.user_id
            assert whoami.device_id == login.device_id
            devices = await second.devices()
            assert isinstance(devices, nio.DevicesResponse), devices
            names = {d.id: d.display_name for d in devices.devices}
            assert names[login.device_id] == "second nio"
            assert registered.device_id in names
            bad = await second.login("wrong password")
            assert isinstance(bad, nio.LoginError)
            assert bad.status_code == "M_FORBIDDEN"
        finally:
            await second.close()
    finally:
        await client.close()
