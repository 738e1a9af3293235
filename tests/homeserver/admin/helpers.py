"""Helpers for the admin API tests."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from tests.support.server import Account, RunningServer

SECRET = "test shared secret"
A1 = "/_synapse/admin/v1"
A2 = "/_synapse/admin/v2"


def mac_for(nonce: str, username: str, password: str, admin: bool, secret: str = SECRET) -> str:
    """The HMAC exactly as Synapse documents it (independent of the server's code)."""
    mac = hmac.new(secret.encode(), digestmod=hashlib.sha1)
    for part in (nonce, username, password):
        mac.update(part.encode() + b"\x00")
    mac.update(b"admin" if admin else b"notadmin")
    return mac.hexdigest()


async def register_with_secret(server: RunningServer, username: str, password: str,
                               admin: bool = False) -> Account:
    nonce = (await server.client.get(A1 + "/register")).json()["nonce"]
    body = {"nonce": nonce, "username": username, "password": password, "admin": admin,
            "mac": mac_for(nonce, username, password, admin)}
    response = await server.client.post(A1 + "/register", json=body)
    assert response.status_code == 200, response.text
    data = response.json()
    return Account(data["user_id"], data["device_id"], data["access_token"], password)


def expect(response: Any, status: int = 200, errcode: str | None = None) -> Any:
    assert response.status_code == status, response.text
    body = response.json()
    if errcode is not None:
        assert body["errcode"] == errcode, body
    return body
