"""Device pairing: start, claim, send, poll; expiry, wrong tokens, replay, limits, two instances."""

from __future__ import annotations

import asyncio
from typing import Any

from homeserver.services.clock import ManualClock
from tests.homeserver.test_keys import assert_error, login
from tests.support.server import Account, RunningServer, serve_homeserver

P = "/_matrix/client/unstable/im.parley/pairing/"
GENEROUS = {"rate_limits": {"pairing_per_minute": 1000}}


async def _start(server: RunningServer, **body: Any) -> dict[str, Any]:
    response = await server.api("POST", P + "start", json=body)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def _claim(server: RunningServer, account: Account, code: Any) -> Any:
    return await server.api("POST", P + "claim", account, json={"code": code})


async def _poll(server: RunningServer, token: str) -> Any:
    return await server.api("POST", P + "poll", json={"poll_token": token})


async def test_pairing_end_to_end_and_replay(make_config: Any) -> None:
    async with serve_homeserver(make_config(**GENEROUS)) as server:
        alice = await server.register("alice")
        started = await _start(server, ephemeral_key="EPHEMERAL-PUBLIC", device_display_name="Laptop")
        code, token = started["code"], started["poll_token"]
        assert len(code) == 8 and code.isdigit()
        assert started["expires_in_ms"] == 120_000

        waiting = await _poll(server, token)
        assert waiting.status_code == 200
        assert waiting.json()["status"] == "waiting" and waiting.json()["claimed"] is False

        claimed = await _claim(server, alice, code)
        assert claimed.status_code == 200, claimed.text
        pairing_id = claimed.json()["pairing_id"]
        assert claimed.json()["ephemeral_key"] == "EPHEMERAL-PUBLIC"
        assert claimed.json()["device_display_name"] == "Laptop"
        # A claimed code cannot be claimed again (same answer as an unknown one).
        assert_error(await _claim(server, alice, code), 404, "M_NOT_FOUND")
        assert (await _poll(server, token)).json()["claimed"] is True

        # Only the claiming device may send.
        phone = await login(server, alice, "PHONE")
        payload = {"ciphertext": "opaque" * 100, "nonce": "n"}
        assert_error(await server.api("POST", P + "send", phone, json={"pairing_id": pairing_id, "payload": payload}),
                     404, "M_NOT_FOUND")
        sent = await server.api("POST", P + "send", alice, json={"pairing_id": pairing_id, "payload": payload})
        assert sent.status_code == 200 and sent.json() == {}
        again = await server.api("POST", P + "send", alice, json={"pairing_id": pairing_id, "payload": "other"})
        assert_error(again, 400, "M_INVALID_PARAM")

        # A wrong token learns nothing; the right one gets the payload exactly once.
        session_id = token.split(".")[0]
        for wrong in (session_id + ".wrongsecret", "nosuchsession.secret", session_id, "", "x" * 300):
            response = await _poll(server, wrong)
            assert response.status_code in (400, 404), response.text
        ready = await _poll(server, token)
        assert ready.status_code == 200
        assert ready.json() == {"status": "ready", "payload": payload, "user_id": alice.user_id,
                                "device_id": alice.device_id}
        assert_error(await _poll(server, token), 404, "M_NOT_FOUND")  # replay
        assert_error(await server.api("POST", P + "send", alice, json={"pairing_id": pairing_id, "payload": "x"}),
                     404, "M_NOT_FOUND")


async def test_concurrent_polls_deliver_the_payload_once(make_config: Any) -> None:
    async with serve_homeserver(make_config(**GENEROUS)) as server:
        alice = await server.register("alice")
        started = await _start(server)
        pairing_id = (await _claim(server, alice, started["code"])).json()["pairing_id"]
        await server.api("POST", P + "send", alice, json={"pairing_id": pairing_id, "payload": "secret"})
        results = await asyncio.gather(*(_poll(server, started["poll_token"]) for _ in range(10)))
        delivered = [r for r in results if r.status_code == 200]
        assert len(delivered) == 1 and delivered[0].json()["payload"] == "secret"
        assert all(r.status_code == 404 for r in results if r.status_code != 200)


async def test_codes_expire_after_120_seconds(make_config: Any) -> None:
    clock = ManualClock()
    async with serve_homeserver(make_config(**GENEROUS), clock=clock) as server:
        alice = await server.register("alice")
        late = await _start(server)
        clock.advance(120_001)
        assert_error(await _claim(server, alice, late["code"]), 404, "M_NOT_FOUND")
        assert_error(await _poll(server, late["poll_token"]), 404, "M_NOT_FOUND")

        # Claimed in time but the payload comes too late.
        slow = await _start(server)
        pairing_id = (await _claim(server, alice, slow["code"])).json()["pairing_id"]
        clock.advance(119_000)
        assert (await _poll(server, slow["poll_token"])).json()["expires_in_ms"] == 1000
        clock.advance(1000)
        assert_error(await server.api("POST", P + "send", alice, json={"pairing_id": pairing_id, "payload": "x"}),
                     404, "M_NOT_FOUND")
        # Housekeeping removes expired sessions from the database.
        await server.hs.services.pairing.expire()
        assert await server.hs.services.pairing.repo.get(slow["poll_token"].split(".")[0]) is None


async def test_wrong_codes_are_limited_per_user(make_config: Any) -> None:
    clock = ManualClock()
    async with serve_homeserver(make_config(**GENEROUS), clock=clock) as server:
        mallory = await server.register("mallory")
        alice = await server.register("alice")
        target = await _start(server)
        wrong = "00000000" if target["code"] != "00000000" else "11111111"
        for bad in (wrong, "1234", "abcdefgh", 12345678, wrong):
            assert_error(await _claim(server, mallory, bad), 404, "M_NOT_FOUND")
        # Five failures: even the right code is refused for the rest of the window.
        locked = await _claim(server, mallory, target["code"])
        assert_error(locked, 429, "M_LIMIT_EXCEEDED")
        assert locked.json()["retry_after_ms"] > 0
        # Other users are not affected.
        assert (await _claim(server, alice, target["code"])).status_code == 200
        clock.advance(600_000)
        fresh = await _start(server)
        assert (await _claim(server, mallory, fresh["code"])).status_code == 200


async def test_code_bound_to_a_user(make_config: Any) -> None:
    async with serve_homeserver(make_config(**GENEROUS)) as server:
        alice = await server.register("alice")
        bob = await server.register("bob")
        started = await _start(server, user_id=alice.user_id)
        assert_error(await _claim(server, bob, started["code"]), 404, "M_NOT_FOUND")
        assert (await _claim(server, alice, started["code"])).status_code == 200
        bad = await server.api("POST", P + "start", json={"user_id": "@x:elsewhere.example"})
        assert_error(bad, 400, "M_INVALID_PARAM")
        bad = await server.api("POST", P + "start", json={"ephemeral_key": 5})
        assert_error(bad, 400, "M_INVALID_PARAM")
        unauth = await server.api("POST", P + "claim", json={"code": started["code"]})
        assert unauth.status_code == 401
        too_big = await server.api("POST", P + "send", alice, json={"pairing_id": "x", "payload": "a" * 70_000})
        assert too_big.status_code == 413


async def test_pairing_is_rate_limited(make_config: Any) -> None:
    clock = ManualClock()  # a fixed-window limit must not roll over mid-test
    async with serve_homeserver(make_config(rate_limits={"pairing_per_minute": 3}), clock=clock) as server:
        for _ in range(3):
            await _start(server)
        assert_error(await server.api("POST", P + "start", json={}), 429, "M_LIMIT_EXCEEDED")
        alice = await server.register("alice")
        for _ in range(3):
            assert (await _claim(server, alice, "99999999")).status_code in (404, 429)
        assert_error(await _claim(server, alice, "99999999"), 429, "M_LIMIT_EXCEEDED")
        clock.advance(60_000)
        await _start(server)


async def test_pairing_across_two_instances(make_config: Any) -> None:
    first_config = make_config(**GENEROUS)
    second_config = make_config(server_name=first_config.server_name, **GENEROUS)
    async with serve_homeserver(first_config) as first, serve_homeserver(second_config) as second:
        alice = await first.register("alice")
        started = await _start(first, ephemeral_key="E")          # new device talks to instance 1
        claimed = await _claim(second, alice, started["code"])     # old device talks to instance 2
        assert claimed.status_code == 200, claimed.text
        pairing_id = claimed.json()["pairing_id"]
        assert (await _poll(first, started["poll_token"])).json()["claimed"] is True
        sent = await second.api("POST", P + "send", alice, json={"pairing_id": pairing_id, "payload": {"k": "v"}})
        assert sent.status_code == 200
        ready = await _poll(first, started["poll_token"])
        assert ready.json()["payload"] == {"k": "v"}
        assert_error(await _poll(second, started["poll_token"]), 404, "M_NOT_FOUND")


async def test_concurrent_wrong_codes_cannot_race_past_the_cap(make_config: Any) -> None:
    """The failure counter was read, then written: 30 guesses at once all passed the check."""
    async with serve_homeserver(make_config(**GENEROUS)) as server:
        mallory = await server.register("mallory")
        target = await _start(server)
        guesses = [f"{n:08d}" for n in range(30) if f"{n:08d}" != target["code"]][:30]
        responses = await asyncio.gather(*(_claim(server, mallory, g) for g in guesses))
        statuses = sorted(r.status_code for r in responses)
        assert statuses.count(404) == 5, statuses
        assert set(statuses) == {404, 429}
        assert_error(await _claim(server, mallory, target["code"]), 429, "M_LIMIT_EXCEEDED")


async def test_claiming_key_reaches_the_new_device_for_the_security_code(make_config: Any) -> None:
    """Issue 15: the approving device's ephemeral key and id go to the new device while it
    waits, so both can show the SAS before the payload; a malformed key is refused up front."""
    async with serve_homeserver(make_config(**GENEROUS)) as server:
        alice = await server.register("alice")
        started = await _start(server, ephemeral_key="NEW-DEVICE-KEY", device_display_name="Laptop")
        waiting = (await _poll(server, started["poll_token"])).json()
        assert "approving_key" not in waiting  # nothing before a claim
        bad = await server.api("POST", P + "claim", alice, json={"code": started["code"], "ephemeral_key": 7})
        assert_error(bad, 400, "M_INVALID_PARAM")
        claimed = await server.api("POST", P + "claim", alice,
                                   json={"code": started["code"], "ephemeral_key": "APPROVING-KEY"})
        assert claimed.status_code == 200, claimed.text
        waiting = (await _poll(server, started["poll_token"])).json()
        assert waiting["status"] == "waiting" and waiting["claimed"] is True
        assert (waiting["approving_key"], waiting["approving_user_id"], waiting["approving_device_id"]) == \
            ("APPROVING-KEY", alice.user_id, alice.device_id)
