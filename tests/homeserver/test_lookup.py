"""Finding people by e-mail without revealing who is registered; placeholder accounts."""

from __future__ import annotations

import re
import secrets
import statistics
import time
from typing import Any

from common.crypto.keys import IdentityKeyPair, OneTimePreKey, SignedPreKey
from homeserver.services.clock import ManualClock
from tests.homeserver.test_media_support import UNSTABLE
from tests.support.server import Account, RunningServer, serve_homeserver
from tests.support.smtp import SmtpSink

LOOKUP = UNSTABLE + "/lookup/email"
DAY_MS = 24 * 3600 * 1000


def new_email() -> str:
    return f"who-{secrets.token_hex(5)}@example.test"


def email_config(smtp_sink: SmtpSink, **extra: Any) -> dict[str, Any]:
    return {"registration": {"open": True, "require_email": False}, "smtp": smtp_sink.smtp_config(),
            "rate_limits": {"email_lookup_per_minute": 1000}, **extra}


async def register_with_email(server: RunningServer, smtp_sink: SmtpSink, email: str,
                              username: str | None = None) -> Account:
    secret = secrets.token_hex(8)
    username = username or f"real{secrets.token_hex(4)}"
    response = await server.api("POST", "register/email/requestToken",
                                json={"email": email, "client_secret": secret, "send_attempt": 1})
    assert response.status_code == 200, response.text
    sid = response.json()["sid"]
    code = await smtp_sink.wait_for_code(email)
    response = await server.api("POST", UNSTABLE + "/email/submitToken",
                                json={"sid": sid, "client_secret": secret, "token": code})
    assert response.status_code == 200, response.text
    first = await server.api("POST", "register", json={"username": username, "password": "long enough pw"})
    session = first.json()["session"]
    response = await server.api("POST", "register", json={
        "username": username, "password": "long enough pw",
        "auth": {"type": "m.login.email.identity", "session": session,
                 "threepid_creds": {"sid": sid, "client_secret": secret}}})
    assert response.status_code == 200, response.text
    data = response.json()
    return Account(data["user_id"], data["device_id"], data["access_token"], "long enough pw")


def generate_key_upload(user_id: str, device_id: str, now_ms: int) -> dict[str, Any]:
    """A ``/keys/upload`` body like a Parley client's: self-signed device keys
    carrying a signed pre-key, and five signed one-time pre-keys."""
    identity = IdentityKeyPair.generate()
    device_keys = identity.device_keys(user_id, device_id)
    device_keys.pop("signatures", None)
    device_keys["im.parley.signed_pre_key"] = SignedPreKey.generate(1, now_ms).signed_public(
        identity, user_id, device_id)
    device_keys = identity.sign_json(device_keys, user_id, device_id)
    otks = {f"im.parley.signed_x25519:{key_id}": OneTimePreKey.generate(key_id).signed_public(
        identity, user_id, device_id) for key_id in range(1, 6)}
    return {"device_keys": device_keys, "one_time_keys": otks}


async def lookup(server: RunningServer, asker: Account, email: Any) -> Any:
    return await server.api("POST", LOOKUP, asker, json={"email": email})


async def query_keys(server: RunningServer, asker: Account, user_id: str) -> dict[str, Any]:
    response = await server.api("POST", "keys/query", asker, json={"device_keys": {user_id: []}})
    assert response.status_code == 200, response.text
    devices: dict[str, Any] = response.json()["device_keys"].get(user_id, {})
    return devices


def shape(value: Any) -> Any:
    """The JSON structure with every leaf replaced by its type (ids and keys differ, shapes must not)."""
    if isinstance(value, dict):
        return {("<id>" if ("@" in k or ":" in k) else k): shape(v) for k, v in sorted(value.items())}
    if isinstance(value, list):
        return [shape(v) for v in value]
    return type(value).__name__


async def test_lookup_answers_the_same_for_registered_and_unregistered(
    make_config: Any, smtp_sink: SmtpSink
) -> None:
    async with serve_homeserver(make_config(**email_config(smtp_sink))) as server:
        asker = await server.register()
        registered_email = new_email()
        real = await register_with_email(server, smtp_sink, registered_email)
        # A real Parley client uploads its keys.
        response = await server.api("POST", "keys/upload", real,
                                    json=generate_key_upload(real.user_id, real.device_id, 0))
        assert response.status_code == 200, response.text

        registered = await lookup(server, asker, registered_email.upper())
        unregistered_email = new_email()
        unregistered = await lookup(server, asker, unregistered_email)
        assert registered.status_code == unregistered.status_code == 200
        assert registered.headers["content-type"] == unregistered.headers["content-type"]
        assert shape(registered.json()) == shape(unregistered.json()) == {"user_id": "str"}
        assert registered.json()["user_id"] == real.user_id
        placeholder = unregistered.json()["user_id"]
        assert re.fullmatch(rf"@[a-z0-9]+:{re.escape(server.config.server_name)}", placeholder)
        # Stable: the same address gives the same id, to anyone, every time.
        assert (await lookup(server, asker, unregistered_email)).json()["user_id"] == placeholder
        other = await server.register()
        assert (await lookup(server, other, unregistered_email.upper())).json()["user_id"] == placeholder
        # The placeholder looks like a user who has not set a profile.
        fresh = await server.register()
        for user_id in (placeholder, fresh.user_id):
            default = {"displayname": user_id[1:].split(":")[0]}  # the localpart, never stored
            response = await server.api("GET", f"profile/{user_id}", asker)
            assert response.status_code == 200 and response.json() == default
            response = await server.api("GET", f"profile/{user_id}/displayname", asker)
            assert response.status_code == 200 and response.json() == default
        # The asker may query both users' keys: the registered user's device
        # answers; the placeholder has no device and no key at all (the
        # server never makes keys for a person: the conversation waits).
        real_keys = await query_keys(server, asker, real.user_id)
        assert len(real_keys) == 1
        assert await query_keys(server, asker, placeholder) == {}
        response = await server.api("POST", "keys/claim", asker, json={
            "one_time_keys": {placeholder: {"ANYDEVICE": "im.parley.signed_x25519"}}})
        assert response.status_code == 200, response.text
        assert response.json()["one_time_keys"].get(placeholder, {}) == {}

        # Durations of both paths (printed, not asserted: no timed assertions).
        timings: dict[str, list[float]] = {"registered": [], "unregistered (first lookup)": [],
                                           "unregistered (repeat)": []}
        registered_addresses = [registered_email]
        for _ in range(4):
            email = new_email()
            await register_with_email(server, smtp_sink, email)
            registered_addresses.append(email)
        for email in registered_addresses:
            start = time.perf_counter()
            assert (await lookup(server, other, email)).status_code == 200
            timings["registered"].append(time.perf_counter() - start)
            email = new_email()
            start = time.perf_counter()
            assert (await lookup(server, other, email)).status_code == 200
            timings["unregistered (first lookup)"].append(time.perf_counter() - start)
            start = time.perf_counter()
            assert (await lookup(server, other, email)).status_code == 200
            timings["unregistered (repeat)"].append(time.perf_counter() - start)
        for name, values in timings.items():
            print(f"e-mail lookup, {name}: median {statistics.median(values) * 1000:.1f} ms "
                  f"(min {min(values) * 1000:.1f}, max {max(values) * 1000:.1f})")


async def test_lookup_validation_auth_and_rate_limit(make_config: Any) -> None:
    # A manual clock keeps the rate-limit window from rolling over mid-test.
    clock = ManualClock()
    async with serve_homeserver(make_config(rate_limits={"email_lookup_per_minute": 3}), clock=clock) as server:
        asker = await server.register()
        assert (await server.api("POST", LOOKUP, json={"email": new_email()})).status_code == 401
        for bad, code in (("not an address", "M_INVALID_PARAM"), ("a@b", "M_INVALID_PARAM"),
                          (None, "M_MISSING_PARAM"), (42, "M_MISSING_PARAM"), ("x" * 300 + "@example.org", "M_INVALID_PARAM")):
            response = await lookup(server, asker, bad)
            assert response.status_code == 400 and response.json()["errcode"] == code, bad
        for _ in range(3):
            assert (await lookup(server, asker, new_email())).status_code == 200
        response = await lookup(server, asker, new_email())
        assert response.status_code == 429 and response.json()["errcode"] == "M_LIMIT_EXCEEDED"
        assert response.json()["retry_after_ms"] > 0
        # Per asker.
        assert (await lookup(server, await server.register(), new_email())).status_code == 200


async def test_registration_gets_the_chosen_name_and_the_lookup_id_becomes_its_alias(
        make_config: Any, smtp_sink: SmtpSink) -> None:
    async with serve_homeserver(make_config(**email_config(smtp_sink))) as server:
        asker = await server.register()
        email = new_email()
        placeholder = (await lookup(server, asker, email)).json()["user_id"]
        assert await query_keys(server, asker, placeholder) == {}
        # The e-mail code flow treats the address as unregistered (a code is sent).
        chosen = f"zed{secrets.token_hex(3)}"
        account = await register_with_email(server, smtp_sink, email, username=chosen)
        assert account.user_id == f"@{chosen}:{server.config.server_name}" != placeholder
        # Only the real login device exists; its keys come from the person's client.
        response = await server.api("GET", "devices", account)
        assert [d["device_id"] for d in response.json()["devices"]] == [account.device_id]
        assert await query_keys(server, asker, account.user_id) == {}
        # Looking the address up again finds the account under the chosen name.
        assert (await lookup(server, asker, email)).json()["user_id"] == account.user_id
        # The lookup id is an alias: an invitation to it reaches the account.
        room = await server.api("POST", "createRoom", asker, json={"invite": [placeholder]})
        assert room.status_code == 200, room.text
        state = await server.api("GET", f"rooms/{room.json()['room_id']}/state/m.room.member/{account.user_id}",
                                 asker)
        assert state.status_code == 200 and state.json()["membership"] == "invite"
        invite = await server.api("POST", f"rooms/{room.json()['room_id']}/invite", asker,
                                  json={"user_id": placeholder})
        assert invite.status_code == 200, invite.text  # the same account, invited already
        # Nobody else can take the chosen name, nor the lookup id.
        for name in (chosen, placeholder[1:].split(":", 1)[0]):
            taken = await server.api("GET", "register/available", params={"username": name})
            assert taken.status_code == 400 and taken.json()["errcode"] == "M_USER_IN_USE", name
        # Login works with the password and the e-mail address.
        response = await server.api("POST", "login", json={
            "type": "m.login.password", "password": "long enough pw",
            "identifier": {"type": "m.id.thirdparty", "medium": "email", "address": email}})
        assert response.status_code == 200 and response.json()["user_id"] == account.user_id


async def test_placeholders_cannot_log_in(server: RunningServer) -> None:
    asker = await server.register()
    email = new_email()
    placeholder = (await lookup(server, asker, email)).json()["user_id"]
    for identifier in ({"type": "m.id.user", "user": placeholder},
                       {"type": "m.id.thirdparty", "medium": "email", "address": email}):
        response = await server.api("POST", "login", json={
            "type": "m.login.password", "password": "anything at all", "identifier": identifier})
        assert response.status_code == 403 and response.json()["errcode"] == "M_FORBIDDEN"


async def test_stale_placeholders_are_removed(make_config: Any) -> None:
    clock = ManualClock()
    async with serve_homeserver(make_config(), clock=clock) as server:
        asker = await server.register()
        old_email, young_email = new_email(), new_email()
        old = (await lookup(server, asker, old_email)).json()["user_id"]
        service = server.hs.services.placeholders

        async def cleanup() -> int:
            with server.hs.database.activated():
                removed: int = await service.cleanup()
            return removed

        clock.advance(20 * DAY_MS)
        young = (await lookup(server, asker, young_email)).json()["user_id"]
        assert await cleanup() == 0
        clock.advance(11 * DAY_MS)
        assert await cleanup() == 1  # only this server's placeholders are looked at
        response = await server.api("GET", f"profile/{old}", asker)
        assert response.status_code == 404
        assert await query_keys(server, asker, old) == {}
        assert (await server.api("GET", f"profile/{young}", asker)).status_code == 200
        # Looking the address up again reserves the same id afresh (still keyless).
        assert (await lookup(server, asker, old_email)).json()["user_id"] == old
        assert await query_keys(server, asker, old) == {}
        assert (await server.api("GET", f"profile/{old}", asker)).status_code == 200
