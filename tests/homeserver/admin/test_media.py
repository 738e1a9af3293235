"""Admin API for media over real HTTP: list per user, quarantine, delete by id and by age."""

from __future__ import annotations

import time

from tests.homeserver.admin.helpers import A1, expect
from tests.homeserver.test_media_support import DOWNLOAD, THUMBNAIL, media_path, png_bytes, upload_ok
from tests.support.server import Account, RunningServer


async def test_list_media_of_a_user(server: RunningServer, admin: Account) -> None:
    alice = await server.register("alice")
    first = await upload_ok(server, alice, b"one", "text/plain", filename="one.txt")
    second = await upload_ok(server, alice, b"second file", "application/pdf")
    body = expect(await server.api("GET", f"{A1}/users/{alice.user_id}/media", admin))
    assert body["total"] == 2
    rows = {m["media_id"]: m for m in body["media"]}
    one = rows[first.rsplit("/", 1)[1]]
    assert one["media_type"] == "text/plain" and one["media_length"] == 3 and one["upload_name"] == "one.txt"
    assert one["quarantined_by"] is None
    assert second.rsplit("/", 1)[1] in rows
    page = expect(await server.api("GET", f"{A1}/users/{alice.user_id}/media", admin, params={"limit": 1}))
    assert len(page["media"]) == 1 and page["next_token"] == 1
    expect(await server.api("GET", f"{A1}/users/@nobody:{server.config.server_name}/media", admin), 404,
           "M_NOT_FOUND")


async def test_quarantine_hides_media_until_released(server: RunningServer, admin: Account) -> None:
    alice = await server.register("alice")
    uri = await upload_ok(server, alice, png_bytes(64, 64), "image/png")
    path = media_path(uri)
    expect_ok = await server.client.get(f"{DOWNLOAD}/{path}", headers=alice.headers)
    assert expect_ok.status_code == 200
    expect(await server.api("POST", f"{A1}/media/quarantine/{path}", admin, json={}))
    expect(await server.client.get(f"{DOWNLOAD}/{path}", headers=alice.headers), 404, "M_NOT_FOUND")
    thumb = await server.client.get(f"{THUMBNAIL}/{path}", params={"width": 32, "height": 32},
                                    headers=alice.headers)
    expect(thumb, 404, "M_NOT_FOUND")
    listed = expect(await server.api("GET", f"{A1}/users/{alice.user_id}/media", admin))
    assert listed["media"][0]["quarantined_by"] == admin.user_id
    expect(await server.api("POST", f"{A1}/media/unquarantine/{path}", admin, json={}))
    assert (await server.client.get(f"{DOWNLOAD}/{path}", headers=alice.headers)).status_code == 200
    body = expect(await server.api("POST", f"{A1}/user/{alice.user_id}/media/quarantine", admin, json={}))
    assert body == {"num_quarantined": 1}
    expect(await server.client.get(f"{DOWNLOAD}/{path}", headers=alice.headers), 404, "M_NOT_FOUND")
    expect(await server.api("POST", f"{A1}/media/quarantine/other.example/abcd", admin, json={}), 404,
           "M_NOT_FOUND")


async def test_delete_media_by_id_and_by_age(server: RunningServer, admin: Account) -> None:
    alice = await server.register("alice")
    doomed = await upload_ok(server, alice, b"delete me")
    body = expect(await server.api("DELETE", f"{A1}/media/{media_path(doomed)}", admin))
    assert body == {"deleted_media": [doomed.rsplit("/", 1)[1]], "total": 1}
    expect(await server.client.get(f"{DOWNLOAD}/{media_path(doomed)}", headers=alice.headers), 404)
    expect(await server.api("DELETE", f"{A1}/media/{media_path(doomed)}", admin), 404, "M_NOT_FOUND")

    old = await upload_ok(server, alice, b"old file")
    avatar = await upload_ok(server, alice, png_bytes(32, 32), "image/png")
    expect(await server.api("PUT", f"profile/{alice.user_id}/avatar_url", alice, json={"avatar_url": avatar}))
    cutoff = int(time.time() * 1000) + 1
    body = expect(await server.api("POST", A1 + "/media/delete", admin, params={"before_ts": cutoff}))
    assert old.rsplit("/", 1)[1] in body["deleted_media"]
    assert avatar.rsplit("/", 1)[1] not in body["deleted_media"]  # profiles are kept by default
    assert (await server.client.get(f"{DOWNLOAD}/{media_path(avatar)}", headers=alice.headers)).status_code == 200
    expect(await server.client.get(f"{DOWNLOAD}/{media_path(old)}", headers=alice.headers), 404)
    expect(await server.api("POST", A1 + "/media/delete", admin), 400, "M_INVALID_PARAM")


async def test_delete_all_media_of_a_user(server: RunningServer, admin: Account) -> None:
    alice = await server.register("alice")
    first = await upload_ok(server, alice, b"first")
    second = await upload_ok(server, alice, b"second")
    body = expect(await server.api("DELETE", f"{A1}/users/{alice.user_id}/media", admin))
    assert sorted(body["deleted_media"]) == sorted(u.rsplit("/", 1)[1] for u in (first, second))
    assert body["total"] == 2
    for uri in (first, second):
        expect(await server.client.get(f"{DOWNLOAD}/{media_path(uri)}", headers=alice.headers), 404)
    assert expect(await server.api("GET", f"{A1}/users/{alice.user_id}/media", admin))["total"] == 0
