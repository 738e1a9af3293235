"""matrix-nio with real Olm (vodozemac, ``matrix-nio[e2e]``) uploads, queries and claims keys.

nio builds and signs the requests itself (``AsyncClient.keys_upload``) and
parses every answer with its own response schemas.  ``keys_query`` and
``keys_claim`` are sent through ``AsyncClient._send`` with ``nio.Api``
requests because nio only queries users it shares encrypted rooms with;
the responses still go through nio's ``receive_response``, which verifies
the device signatures and builds an Olm session from the claimed key.
"""

from __future__ import annotations

from pathlib import Path

import nio
import pytest

from tests.support.server import RunningServer

pytest.importorskip("vodozemac")


async def _nio_login(server: RunningServer, user: str, store: Path) -> nio.AsyncClient:
    await server.register(user, password="nio password 123")
    store.mkdir()  # noqa: ASYNC240 - a test's temporary folder
    client = nio.AsyncClient(
        server.base_url, user, store_path=str(store),
        config=nio.AsyncClientConfig(encryption_enabled=True, store_sync_tokens=False),
    )
    response = await client.login("nio password 123", device_name=f"{user} nio")
    assert isinstance(response, nio.LoginResponse), response
    return client


async def test_nio_uploads_queries_and_claims_olm_keys(server: RunningServer, tmp_path: Path) -> None:
    alice = await _nio_login(server, "nioalice", tmp_path / "alice")
    bob = await _nio_login(server, "niobob", tmp_path / "bob")
    try:
        assert alice.should_upload_keys
        uploaded = await alice.keys_upload()
        assert isinstance(uploaded, nio.KeysUploadResponse), uploaded
        assert uploaded.signed_curve25519_count > 0
        assert not alice.should_upload_keys  # nio is satisfied with the counts

        # Alice sees her own device keys, exactly as nio signed them.
        method, path, data = nio.Api.keys_query(alice.access_token, {alice.user_id})
        own = await alice._send(nio.KeysQueryResponse, method, path, data)
        assert isinstance(own, nio.KeysQueryResponse), own
        device = own.device_keys[alice.user_id][alice.device_id]
        assert device["keys"][f"ed25519:{alice.device_id}"] == alice.olm.account.identity_keys["ed25519"]

        # Bob looked Alice up (the e-mail lookup grants this), so he may query and claim.
        await server.hs.services.keys.grant_lookup(bob.user_id, alice.user_id)
        method, path, data = nio.Api.keys_query(bob.access_token, {alice.user_id})
        queried = await bob._send(nio.KeysQueryResponse, method, path, data)
        assert isinstance(queried, nio.KeysQueryResponse), queried
        known = bob.device_store[alice.user_id][alice.device_id]  # signature verified by nio
        assert known.ed25519 == alice.olm.account.identity_keys["ed25519"]

        claimed = await bob.keys_claim({alice.user_id: [alice.device_id]})
        assert isinstance(claimed, nio.KeysClaimResponse), claimed
        keys = claimed.one_time_keys[alice.user_id][alice.device_id]
        assert len(keys) == 1 and next(iter(keys)).startswith("signed_curve25519:")
        # nio verified the one-time key's signature and started an Olm session with it.
        assert bob.olm.session_store.get(known.curve25519)

        counts = await server.hs.services.keys.one_time_key_counts(alice.user_id, alice.device_id)
        assert counts["signed_curve25519"] == uploaded.signed_curve25519_count - 1
    finally:
        await alice.close()
        await bob.close()
