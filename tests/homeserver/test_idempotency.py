"""POSTs repeated with their Idempotency-Key are applied once (draft-ietf-httpapi-idempotency-key-header).

Against a real homeserver: the stored answer comes back for the same request,
a different request under the same key gets 422, keys belong to one user and
device (or, without a login, to the whole request), answers expire, and what
is stored opens nothing without the request itself.
"""

from __future__ import annotations

import secrets
import warnings
from typing import Any

import httpx

from homeserver.services.clock import ManualClock
from homeserver.services.idempotency import CREDENTIAL_TTL_MS
from tests.support.server import Account, RunningServer, serve_homeserver

CREATE = "/_matrix/client/v3/createRoom"
REGISTER = "/_matrix/client/v3/register"
UPLOAD = "/_matrix/media/v3/upload"


def _key() -> str:
    return secrets.token_urlsafe(16)


async def _post(server: RunningServer, path: str, key: str, account: Account | None = None,
                **kwargs: Any) -> httpx.Response:
    headers = {"Idempotency-Key": key, **(account.headers if account else {}), **kwargs.pop("headers", {})}
    return await server.client.post(path, headers=headers, **kwargs)


async def _rooms_of(server: RunningServer, user_id: str) -> list[str]:
    with server.hs.database.activated():
        rows = await server.hs.database.fetch("SELECT room_id FROM rooms WHERE creator = ?", (user_id,))
    return sorted(str(r["room_id"]) for r in rows)


async def _stored_rows(server: RunningServer) -> list[dict[str, Any]]:
    with server.hs.database.activated():
        return await server.hs.database.fetch(
            "SELECT lookup, fingerprint, answer, expires_ts FROM idempotent_requests")


async def test_a_repeat_gets_the_stored_answer_and_a_changed_request_gets_422(server: RunningServer) -> None:
    alice = await server.register()
    key = _key()
    first = await _post(server, CREATE, key, alice, json={"name": "Once"})
    assert first.status_code == 200, first.text
    assert "idempotent-replayed" not in first.headers
    with warnings.catch_warnings(record=True) as caught:  # the server runs on this loop
        warnings.simplefilter("always")
        again = await _post(server, CREATE, key, alice, json={"name": "Once"})
    assert not [w for w in caught if "Duplicate entry" in str(w.message)]  # no MariaDB warning per repeat
    assert again.status_code == 200 and again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert again.headers["content-type"] == first.headers["content-type"]
    assert await _rooms_of(server, alice.user_id) == [first.json()["room_id"]]

    other = await _post(server, CREATE, key, alice, json={"name": "Another"})
    assert other.status_code == 422 and other.json()["errcode"] == "M_INVALID_PARAM"
    elsewhere = await _post(server, "/_matrix/client/r0/createRoom", key, alice, json={"name": "Once"})
    assert elsewhere.status_code == 422  # the path is part of the request
    assert await _rooms_of(server, alice.user_id) == [first.json()["room_id"]]
    # The refused reuses did not disturb the stored answer.
    assert (await _post(server, CREATE, key, alice, json={"name": "Once"})).json() == first.json()

    fresh = await _post(server, CREATE, _key(), alice, json={"name": "Once"})
    assert fresh.status_code == 200 and fresh.json() != first.json()
    no_key = await server.api("POST", "createRoom", alice, json={"name": "Once"})
    assert no_key.status_code == 200
    assert len(await _rooms_of(server, alice.user_id)) == 3


async def test_keys_belong_to_one_user_and_device(server: RunningServer) -> None:
    alice, bob = await server.register(), await server.register()
    key = _key()
    mine = await _post(server, CREATE, key, alice, json={})
    theirs = await _post(server, CREATE, key, bob, json={})
    assert mine.status_code == theirs.status_code == 200
    assert mine.json() != theirs.json()
    assert "idempotent-replayed" not in theirs.headers
    login = await server.api("POST", "login", json={
        "type": "m.login.password", "identifier": {"type": "m.id.user", "user": alice.user_id},
        "password": alice.password})
    second_device = Account(alice.user_id, login.json()["device_id"], login.json()["access_token"],
                            alice.password)
    other_device = await _post(server, CREATE, key, second_device, json={})
    assert other_device.status_code == 200 and "idempotent-replayed" not in other_device.headers
    assert len(await _rooms_of(server, alice.user_id)) == 2 and len(await _rooms_of(server, bob.user_id)) == 1
    # The access token in the query string names the same device as the header.
    by_query = await server.client.post(CREATE, params={"access_token": bob.access_token},
                                        headers={"Idempotency-Key": key}, json={})
    assert by_query.json() == theirs.json() and by_query.headers["idempotent-replayed"] == "true"


async def test_without_a_login_the_key_covers_the_whole_request(server: RunningServer) -> None:
    key = _key()
    body = {"username": f"anon{secrets.token_hex(3)}", "password": "correct horse 1",
            "auth": {"type": "m.login.dummy"}}
    first = await _post(server, REGISTER, key, json=body)
    assert first.status_code == 200, first.text
    again = await _post(server, REGISTER, key, json=body)
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    # Someone else with the same key but another body is another request, not a 422.
    other = {**body, "username": f"anon{secrets.token_hex(3)}"}
    theirs = await _post(server, REGISTER, key, json=other)
    assert theirs.status_code == 200 and theirs.json()["user_id"] != first.json()["user_id"]
    assert "idempotent-replayed" not in theirs.headers
    with server.hs.database.activated():
        devices = await server.hs.database.fetch("SELECT device_id FROM devices WHERE user_id = ?",
                                                 (first.json()["user_id"],))
    assert [d["device_id"] for d in devices] == [first.json()["device_id"]]


async def test_only_successful_answers_are_kept(server: RunningServer) -> None:
    alice = await server.register()
    key = _key()
    before = await _stored_rows(server)
    refused = await _post(server, CREATE, key, alice, json={"preset": "no such preset"})
    assert refused.status_code == 400
    assert await _stored_rows(server) == before  # nothing kept, no lease left behind
    # The key is free again: the corrected request runs, under the same key.
    fixed = await _post(server, CREATE, key, alice, json={"preset": "private_chat"})
    assert fixed.status_code == 200 and "idempotent-replayed" not in fixed.headers
    # A UIA challenge (401) is not kept either: each repeat starts its own session.
    body = {"username": f"uia{secrets.token_hex(3)}", "password": "correct horse 1"}
    uia_key = _key()
    challenges = [await _post(server, REGISTER, uia_key, json=body) for _ in range(2)]
    assert [c.status_code for c in challenges] == [401, 401]
    assert challenges[0].json()["session"] != challenges[1].json()["session"]
    assert len(await _stored_rows(server)) == len(before) + 1  # only the room


async def test_malformed_keys_are_refused(server: RunningServer) -> None:
    alice = await server.register()
    for bad in ("", "x" * 256, "caf\u00e9", "tab\tinside", '""'):
        answer = await _post(server, CREATE, "", alice, headers={"Idempotency-Key": bad.encode("utf-8")},
                             json={})
        assert answer.status_code == 400, bad
        assert answer.json()["errcode"] == "M_INVALID_PARAM"
    # A structured-field string (quoted) is the same key as its bare text.
    quoted = await _post(server, CREATE, '"abc-123"', alice, json={})
    bare = await _post(server, CREATE, "abc-123", alice, json={})
    assert bare.json() == quoted.json() and bare.headers["idempotent-replayed"] == "true"


async def test_an_upload_is_kept_once_and_a_different_file_under_its_key_is_refused(
    server: RunningServer,
) -> None:
    alice = await server.register()
    key = _key()
    data = b"\x89PNG\r\n\x1a\n" + secrets.token_bytes(300_000)
    headers = {"Content-Type": "image/png"}
    first = await _post(server, UPLOAD, key, alice, content=data, headers=headers)
    again = await _post(server, UPLOAD, key, alice, content=data, headers=headers)
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    changed = await _post(server, UPLOAD, key, alice, content=data[:-1] + b"!", headers=headers)
    assert changed.status_code == 422
    as_jpeg = await _post(server, UPLOAD, key, alice, content=data, headers={"Content-Type": "image/jpeg"})
    assert as_jpeg.status_code == 422  # the content type is part of the request
    with server.hs.database.activated():
        media = await server.hs.database.fetch("SELECT media_id FROM media WHERE uploader = ?",
                                               (alice.user_id,))
    assert [m["media_id"] for m in media] == [first.json()["content_uri"].rsplit("/", 1)[1]]


async def test_answers_expire_and_housekeeping_deletes_them(make_config: Any) -> None:
    clock = ManualClock(start_ms=1_800_000_000_000)
    async with serve_homeserver(make_config(), clock=clock) as server:
        alice = await server.register()
        key = _key()
        first = await _post(server, CREATE, key, alice, json={})
        body = {"username": f"exp{secrets.token_hex(3)}", "password": "correct horse 1",
                "auth": {"type": "m.login.dummy"}}
        registered = await _post(server, REGISTER, key, json=body)
        assert registered.status_code == 200
        ours = [r for r in await _stored_rows(server) if r["expires_ts"] > clock.now_ms()]
        assert len(ours) == 2

        # Answers holding an access token go first.
        clock.advance(CREDENTIAL_TTL_MS)
        repeat = await _post(server, REGISTER, key, json=body)
        assert repeat.status_code == 400 and repeat.json()["errcode"] == "M_USER_IN_USE"
        assert (await _post(server, CREATE, key, alice, json={})).json() == first.json()

        clock.advance(server.config.limits.idempotency_ttl_ms)
        later = await _post(server, CREATE, key, alice, json={})
        assert later.status_code == 200 and later.json() != first.json()
        clock.advance(server.config.limits.idempotency_ttl_ms)
        with server.hs.database.activated():
            await server.hs.services.idempotency.expire()
        assert [r for r in await _stored_rows(server) if r["expires_ts"] <= clock.now_ms()] == []


async def test_stored_answers_open_only_with_the_request(server: RunningServer) -> None:
    key = _key()
    body = {"username": f"seal{secrets.token_hex(3)}", "password": "correct horse 1",
            "auth": {"type": "m.login.dummy"}}
    before = await _stored_rows(server)
    answer = (await _post(server, REGISTER, key, json=body)).json()
    alice = Account(answer["user_id"], answer["device_id"], answer["access_token"], body["password"])
    room = (await _post(server, CREATE, key, alice, json={"name": "sealed name"})).json()
    rows = [r for r in await _stored_rows(server) if r not in before]
    assert len(rows) == 2 and all(r["answer"] for r in rows)
    for row in rows:
        stored = repr(row).encode() + bytes(row["answer"])
        for secret in (key, answer["access_token"], answer["user_id"], answer["device_id"], room["room_id"]):
            assert secret.encode() not in stored
        assert len(row["lookup"]) == 64 and len(row["fingerprint"]) == 64
    # The replay opens them: the request is the key.
    assert (await _post(server, REGISTER, key, json=body)).json() == answer
    assert (await _post(server, CREATE, key, alice, json={"name": "sealed name"})).json() == room


async def test_pure_reads_and_position_updates_keep_no_answer(server: RunningServer) -> None:
    alice = await server.register()
    room = (await server.api("POST", "createRoom", alice, json={})).json()["room_id"]
    sent = await server.api("PUT", f"rooms/{room}/send/m.room.message/t1", alice,
                            json={"msgtype": "m.text", "body": "hi"})
    event_id = sent.json()["event_id"]
    before = await _stored_rows(server)
    key = _key()
    for path, body in ((f"/_matrix/client/v3/rooms/{room}/receipt/m.read/{event_id}", {}),
                       (f"/_matrix/client/v3/rooms/{room}/read_markers", {"m.fully_read": event_id}),
                       ("/_matrix/client/v3/keys/query", {"device_keys": {alice.user_id: []}})):
        answer = await _post(server, path, key, alice, json=body)
        assert answer.status_code == 200 and "idempotent-replayed" not in answer.headers, path
    assert await _stored_rows(server) == before


async def test_a_repeat_on_another_instance_gets_the_first_answer(make_config: Any) -> None:
    """Two instances of one deployment (one database): the answer one gave, the other replays."""
    config = make_config()
    async with serve_homeserver(config) as one, serve_homeserver(config.replace()) as two:
        alice = await one.register()
        key = _key()
        first = await _post(one, CREATE, key, alice, json={"name": "Shared"})
        again = await _post(two, CREATE, key, alice, json={"name": "Shared"})
        assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
        assert (await _post(two, CREATE, key, alice, json={"name": "Other"})).status_code == 422
        body = {"username": f"two{secrets.token_hex(3)}", "password": "correct horse 1",
                "auth": {"type": "m.login.dummy"}}
        registered = await _post(two, REGISTER, key, json=body)
        assert (await _post(one, REGISTER, key, json=body)).json() == registered.json()
        assert await _rooms_of(one, alice.user_id) == [first.json()["room_id"]]

