"""The hostile-input sweep: every route of the route table, attacked as an attacker would.

An attacker (with an account, a room where they are admin and a room shared
with the victim) sends malformed and hostile path values, bodies, query
strings and tokens to every (path, method) of ``all_routes()``
(tests/support/hostile.py builds the plan).  The sweep fails on any 5xx, any
request that does not answer within the client timeout (a hang), any error
body that is not a Matrix error, and any JSON response that is not valid
JSON.  Afterwards the victim's stored data and /sync must be intact.

Run it alone:  PARLEY_TEST_DB=sqlite|mysql pytest tests/homeserver/test_hostile_sweep.py
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx

from tests.homeserver.room_helpers import create_room, send_text, sync
from tests.support.hostile import Probe, SweepTargets, encode_path, plan
from tests.support.server import Account, RunningServer, serve_homeserver

HANG_S = 10.0
PARALLEL = 6


def _check_response(probe: Probe, response: httpx.Response) -> str | None:
    """None when the answer is acceptable, else why not."""
    where = f"{probe.method} {probe.path[:120]} [{probe.label}] -> {response.status_code}"
    if response.status_code >= 500:
        return f"{where}: {response.text[:300]}"
    ctype = response.headers.get("content-type", "")
    if response.status_code >= 400 or ctype.startswith("application/json"):
        try:
            body = json.loads(response.content.decode("utf-8"), parse_constant=_refuse)
        except (ValueError, UnicodeDecodeError) as exc:
            return f"{where}: not valid JSON ({exc}): {response.content[:200]!r}"
        # A 401 that starts user-interactive auth is the spec's answer, not an error body.
        uia = response.status_code == 401 and isinstance(body, dict) and isinstance(body.get("flows"), list) \
            and isinstance(body.get("session"), str)
        if response.status_code >= 400 and not uia and not (
            isinstance(body, dict) and isinstance(body.get("errcode"), str)
            and body["errcode"].startswith("M_") and isinstance(body.get("error"), str)
        ):
            return f"{where}: not a Matrix error body: {response.text[:200]}"
    return None


def _refuse(name: str) -> Any:
    raise ValueError(f"{name} in a response")


class Attacker:
    """Mallory: logs in again (or re-registers) when a probe logged them out."""

    def __init__(self, server: RunningServer, account: Account) -> None:
        self.server = server
        self.account = account

    async def ensure_logged_in(self) -> None:
        who = await self.server.api("GET", "account/whoami", self.account)
        if who.status_code == 200:
            return
        login = await self.server.api("POST", "login", json={
            "type": "m.login.password", "password": self.account.password,
            "identifier": {"type": "m.id.user", "user": self.account.user_id},
        })
        if login.status_code == 200:
            data = login.json()
            self.account = Account(data["user_id"], data["device_id"], data["access_token"],
                                   self.account.password)
        else:
            self.account = await self.server.register()


async def _send(server: RunningServer, attacker: Attacker, probe: Probe) -> str | None:
    headers = dict(probe.headers or {})
    if probe.authenticated:
        headers.update(attacker.account.headers)
    if probe.content is not None:
        headers.setdefault("Content-Type", "application/json")
    try:
        response = await server.client.request(
            probe.method, encode_path(probe.path, probe.params), content=probe.content,
            headers=headers, timeout=HANG_S,
        )
    except httpx.TimeoutException:
        return f"{probe.method} {probe.path[:120]} [{probe.label}]: no answer within {HANG_S} s"
    return _check_response(probe, response)


async def _setup(server: RunningServer) -> tuple[Account, Attacker, dict[str, Any]]:
    victim = await server.register("victim")
    mallory = await server.register("mallory")
    await server.api("PUT", f"profile/{victim.user_id}/displayname", victim, json={"displayname": "Victim"})
    await server.api("PUT", f"user/{victim.user_id}/account_data/org.example.kept", victim,
                     json={"kept": 1})
    private = await create_room(server, victim, name="private")
    kept_event = await send_text(server, victim, private, "kept message")
    shared = await create_room(server, mallory, preset="public_chat", invite=[victim.user_id])
    joined = await server.api("POST", f"rooms/{shared}/join", victim, json={})
    assert joined.status_code == 200, joined.text
    event = await send_text(server, mallory, shared, "hello")
    upload = await server.client.post("/_matrix/media/v3/upload", content=b"plain text",
                                      headers={**mallory.headers, "Content-Type": "text/plain"})
    assert upload.status_code == 200, upload.text
    media_id = upload.json()["content_uri"].rsplit("/", 1)[1]
    created = await server.api("POST", "room_keys/version", mallory,
                               json={"algorithm": "m.megolm_backup.v1.curve25519-aes-sha2",
                                     "auth_data": {"public_key": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"}})
    filt = await server.api("POST", f"user/{mallory.user_id}/filter", mallory, json={})
    targets = {
        "room_id": shared, "room_id_or_alias": shared, "event_type": "m.room.message",
        "state_key": "", "event_id": event, "txn_id": "t1", "device_id": mallory.device_id,
        "version": created.json().get("version", "1"), "session_id": "s1",
        "server_name": server.config.server_name, "media_id": media_id, "file_name": "f.txt",
        "user_id": mallory.user_id, "key_name": "displayname", "receipt_type": "m.read",
        "type": "m.x", "tag": "u.t", "filter_id": filt.json().get("filter_id", "0"),
    }
    kept = {"private": private, "event": kept_event}
    return victim, Attacker(server, mallory), {"targets": targets, "kept": kept}


async def _sweep(server: RunningServer, attacker: Attacker, probes: list[Probe]) -> list[str]:
    failures: list[str] = []
    limit = asyncio.Semaphore(PARALLEL)

    async def one(probe: Probe) -> None:
        async with limit:
            problem = await _send(server, attacker, probe)
        if problem:
            failures.append(problem)

    # Routes one after another (a probe may log the attacker out), probes of a route in parallel.
    batch: list[Probe] = []
    for probe in probes:
        if batch and probe.route != batch[0].route:
            await asyncio.gather(*(one(p) for p in batch))
            await attacker.ensure_logged_in()
            batch = []
        batch.append(probe)
    await asyncio.gather(*(one(p) for p in batch))
    return failures


async def test_every_route_survives_hostile_input(make_config: Any) -> None:
    config = make_config(limits={"max_sync_timeout_ms": 500})
    async with serve_homeserver(config) as server:
        victim, attacker, context = await _setup(server)
        before = await sync(server, victim)
        probes = plan(SweepTargets(context["targets"]), victim.user_id)
        failures = await _sweep(server, attacker, probes)
        print(f"hostile sweep: {len(probes)} requests, {len(failures)} failures")
        assert not failures, f"{len(failures)} of {len(probes)} hostile requests failed:\n" + "\n".join(
            sorted(failures)[:80])

        # The victim's data and /sync survived.
        after = await sync(server, victim)
        assert context["kept"]["private"] in after["rooms"]["join"]
        incremental = await sync(server, victim, since=before["next_batch"])
        assert isinstance(incremental["next_batch"], str)
        again = await sync(server, victim, since=incremental["next_batch"])
        assert isinstance(again["next_batch"], str)
        private, kept_event = context["kept"]["private"], context["kept"]["event"]
        event = await server.api("GET", f"rooms/{private}/event/{kept_event}", victim)
        assert event.status_code == 200 and event.json()["content"]["body"] == "kept message"
        profile = await server.api("GET", f"profile/{victim.user_id}/displayname", victim)
        assert profile.json() == {"displayname": "Victim"}
        data = await server.api("GET", f"user/{victim.user_id}/account_data/org.example.kept", victim)
        assert data.json() == {"kept": 1}
