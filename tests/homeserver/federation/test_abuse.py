"""Abuse limits: the per-origin rate limit, refused signatures in the log, one sender per destination."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from homeserver.federation.errors import RemoteError
from homeserver.federation.xmatrix import authorization_header
from homeserver.storage.federation_queue import OutboxRepository
from tests.support.federation import Cluster, cluster

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
