"""Abuse: the per-origin rate limit, refused signatures in the log, one sender per destination; forged,
foreign, unauthorised and oversized PDUs refused; requests signed for another destination or origin refused."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from homeserver.federation.errors import RemoteError
from homeserver.federation.xmatrix import authorization_header
from homeserver.storage.federation_queue import OutboxRepository
from tests.homeserver.federation.test_joins import create_room
from tests.support.federation import Cluster, cluster
from tests.support.pdus import craft_pdu, send_pdus

H1, H2 = "hs1.localhost", "hs2.localhost"
VERSION = "/_matrix/federation/v1/query/profile?user_id=%40nobody%3Ahs2.localhost"


async def test_rate_limit_per_origin(tmp_path: Path) -> None:
    async with cluster(tmp_path, 2, start=False) as servers:
        hs1 = await servers.start(H1)
        await servers.start(H2, federation={"requests_per_minute_per_origin": 3})
        statuses = []
        for _ in range(4):
            with hs1.hs.database.activated():
                try:
                    await hs1.hs.federation.client.request(H2, "GET", "/_matrix/federation/v1/query/profile",
                                                           query={"user_id": f"@nobody:{H2}"})
                except RemoteError as exc:
                    statuses.append((exc.remote_status, exc.errcode))
        assert statuses == [(404, "M_NOT_FOUND")] * 3 + [(429, "M_LIMIT_EXCEEDED")]


async def test_refused_signature_is_logged_without_the_signature(pair: Cluster,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    hs1, hs2 = pair.running[H1], pair.running[H2]
    header = authorization_header("GET", VERSION, H1, H2, None, hs1.hs.signing_key.key_id,
                                  Ed25519PrivateKey.generate())
    with caplog.at_level(logging.WARNING, logger="homeserver.federation.request_auth"):
        response = await hs2.client.get(VERSION, headers={"Authorization": header})
    assert response.status_code == 401
    [record] = [r for r in caplog.records if "refused federation request" in r.getMessage()]
    message = record.getMessage()
    assert H1 in message and "/_matrix/federation/v1/query/profile" in message
    assert header.rsplit('sig="', 1)[1].rstrip('"') not in message and "nobody" not in message


async def test_one_sender_per_destination(pair: Cluster) -> None:
    """Instances sharing a database: the lease lets one of them send to a destination at a time."""
    hs1 = pair.running[H1]
    outbox = OutboxRepository(hs1.hs.database)
    with hs1.hs.database.activated():
        await outbox.enqueue("lease.test", ["dest.test"], "edu", "{}", 1000)
        assert await outbox.claim("lease.test", "dest.test", "instance-a", 1000, 60_000)
        assert not await outbox.claim("lease.test", "dest.test", "instance-b", 2000, 60_000)
        assert await outbox.claim("lease.test", "dest.test", "instance-a", 2000, 60_000)  # renewal
        assert await outbox.pending_destinations("lease.test", 3000) == []  # held
        # The holder died: after the lease another instance takes over.
        assert await outbox.claim("lease.test", "dest.test", "instance-b", 62_001, 60_000)
        await outbox.release("lease.test", "dest.test", "instance-b")
        assert await outbox.pending_destinations("lease.test", 62_002) == ["dest.test"]


async def test_forged_foreign_unauthorised_and_oversized_pdus_are_refused(pair: Cluster) -> None:
    hs1, hs2 = pair.running[H1], pair.running[H2]
    alice, bob = await hs1.register("alice"), await hs2.register("bob")
    room_id = await create_room(hs2, bob, room_version="11")
    joined = await hs1.api("POST", f"join/{room_id}", alice, params={"server_name": H2}, json={})
    assert joined.status_code == 200, joined.text
    levels_before = (await hs2.api("GET", f"rooms/{room_id}/state/m.room.power_levels", bob)).json()

    def message(text: str) -> dict[str, str]:
        return {"msgtype": "m.text", "body": text}

    forged_id, forged = await craft_pdu(hs1, hs2, room_id, alice.user_id, "m.room.message", message("forged"),
                                        key=Ed25519PrivateKey.generate())
    # hs1 speaking for a user of hs2: only hs2 can sign bob's events.
    foreign_id, foreign = await craft_pdu(hs1, hs2, room_id, bob.user_id, "m.room.message", message("as bob"))
    # Signed by hs1 but failing the auth rules: a user who never joined; alice raising herself.
    stranger_id, stranger = await craft_pdu(hs1, hs2, room_id, f"@eve:{H1}", "m.room.message", message("eve"))
    raise_id, raised = await craft_pdu(hs1, hs2, room_id, alice.user_id, "m.room.power_levels",
                                       dict(levels_before, users={alice.user_id: 100}), state_key="")
    big_id, big = await craft_pdu(hs1, hs2, room_id, alice.user_id, "m.room.message", message("x" * 70_000))
    good_id, good = await craft_pdu(hs1, hs2, room_id, alice.user_id, "m.room.message", message("fine"))
    answer = await send_pdus(hs1, H2, [forged, foreign, stranger, raised, big, good])
    assert f"not signed by {H1}" in answer[forged_id]["error"]
    assert f"not signed by {H2}" in answer[foreign_id]["error"]
    assert answer[stranger_id]["error"].startswith("rejected")
    assert answer[raise_id]["error"].startswith("rejected")
    assert answer[big_id]["error"].startswith("M_TOO_LARGE")
    assert answer[good_id] == {}
    # Only the good event is in the room; the refused power levels changed nothing.
    for event_id in (forged_id, foreign_id, stranger_id, raise_id, big_id):
        response = await hs2.api("GET", f"rooms/{room_id}/event/{event_id}", bob)
        assert response.status_code == 404, (event_id, response.text)
    assert (await hs2.api("GET", f"rooms/{room_id}/event/{good_id}", bob)).status_code == 200
    assert (await hs2.api("GET", f"rooms/{room_id}/state/m.room.power_levels", bob)).json() == levels_before


async def test_requests_for_another_destination_or_from_a_claimed_origin_are_refused(pair: Cluster) -> None:
    hs1, hs2 = pair.running[H1], pair.running[H2]
    key = hs1.hs.signing_key
    # Signed by hs1 for a request to another server, replayed to hs2.
    elsewhere = authorization_header("GET", VERSION, H1, "hs9.localhost", None, key.key_id, key.private_key)
    # hs1's signature under the claim that the request comes from hs2.
    claimed = authorization_header("GET", VERSION, H2, H2, None, key.key_id, key.private_key)
    for header in (elsewhere, claimed):
        response = await hs2.client.get(VERSION, headers={"Authorization": header})
        assert response.status_code == 401, response.text
        assert response.json()["errcode"] == "M_UNAUTHORIZED"
