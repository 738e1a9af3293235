"""Concurrent writes that used to answer 500 (MariaDB deadlocks, exhausted retries)."""

from __future__ import annotations

import asyncio

from tests.support.server import RunningServer

ALG = "m.megolm_backup.v1.curve25519-aes-sha2"


async def test_concurrent_profile_writes_all_succeed(server: RunningServer) -> None:
    """INSERT IGNORE then UPDATE in one transaction deadlocked on MariaDB (1213) and answered 500."""
    alice = await server.register()
    path = f"profile/{alice.user_id}/displayname"
    phone = f"profile/{alice.user_id}/im.parley.phone"
    responses = await asyncio.gather(*(
        server.api("PUT", path, alice, json={"displayname": f"name {n}"}) for n in range(20)
    ), *(server.api("DELETE", path, alice) for _ in range(10)), *(
        server.api("PUT", phone, alice, json={"im.parley.phone": f"+42077700{n:04}"}) for n in range(10)
    ), *(
        server.api("PUT", "/_matrix/client/unstable/im.parley/profile/visibility", alice,
                   json={"im.parley.phone": "everyone"}) for _ in range(10)
    ))
    assert [r.status_code for r in responses if r.status_code != 200] == [], [r.text for r in responses]
    final = await server.api("GET", path, alice)
    assert final.status_code in (200, 404)


async def test_forty_concurrent_backup_versions_get_forty_numbers(server: RunningServer) -> None:
    alice = await server.register()
    responses = await asyncio.gather(*(
        server.api("POST", "room_keys/version", alice, json={"algorithm": ALG, "auth_data": {
            "public_key": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8", "n": n}})
        for n in range(40)
    ))
    assert [r.status_code for r in responses] == [200] * 40, [r.text for r in responses if r.status_code != 200]
    versions = sorted(int(r.json()["version"]) for r in responses)
    assert versions == list(range(versions[0], versions[0] + 40))
