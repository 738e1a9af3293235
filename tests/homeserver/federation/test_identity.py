"""Server identity over real TLS: keys served and signed, fetched and cached, the notary, X-Matrix."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from homeserver.federation.errors import DestinationUnreachable, RemoteError
from homeserver.federation.keyring import parse_key_response
from homeserver.federation.xmatrix import authorization_header
from tests.support.federation import Cluster, cluster

H1, H2 = "hs1.localhost", "hs2.localhost"


async def test_keys_are_served_signed_and_valid(pair: Cluster) -> None:
    hs1 = pair.running[H1]
    response = await hs1.client.get("/_matrix/key/v2/server")
    assert response.status_code == 200
    doc = response.json()
    now = hs1.hs.services.clock.now_ms()
    keys = parse_key_response(H1, doc, now)  # checks the self-signature with every key
    assert [k.key_id for k in keys] == [hs1.hs.signing_key.key_id]
    assert doc["valid_until_ts"] > now + 3600_000 and doc["old_verify_keys"] == {}
    tampered = dict(doc, valid_until_ts=doc["valid_until_ts"] + 1)
    with pytest.raises(ValueError, match="not signed"):
        parse_key_response(H1, tampered, now)


async def test_version_and_well_known(pair: Cluster) -> None:
    hs1 = pair.running[H1]
    version = (await hs1.client.get("/_matrix/federation/v1/version")).json()
    assert version["server"]["name"] == "Parley"
    delegation = (await hs1.client.get("/.well-known/matrix/server")).json()
    assert delegation == {"m.server": f"{H1}:{pair.nodes[H1].port}"}


async def test_remote_keys_fetched_over_tls_and_cached(pair: Cluster) -> None:
    hs1, hs2 = pair.running[H1], pair.running[H2]
    key_id = hs1.hs.signing_key.key_id
    found = await hs2.hs.federation.keyring.lookup(H1, key_id)
    assert found is not None
    assert found.valid_until_ts is not None and found.valid_until_ts > hs2.hs.services.clock.now_ms()
    with hs2.hs.database.activated():
        cached = await hs2.hs.federation.keyring.cache.get(H1, key_id)
    assert cached is not None and cached.public_key == hs1.hs.signing_key.public_key_b64
    # A key id the server never had is not invented.
    assert await hs2.hs.federation.keyring.lookup(H1, "ed25519:nope") is None


async def test_concurrent_lookups_of_an_unknown_key_all_wait_for_the_one_fetch(pair: Cluster) -> None:
    """Requests from a server arriving together: the first lookup fetches its keys, the others
    wait for that fetch (they used to see its cooldown, find nothing cached yet and answer 401)."""
    hs1, hs2 = pair.running[H1], pair.running[H2]
    key_id = hs1.hs.signing_key.key_id
    found = await asyncio.gather(*(hs2.hs.federation.keyring.lookup(H1, key_id) for _ in range(5)))
    assert all(key is not None for key in found), found


async def test_notary_cosigns(pair: Cluster) -> None:
    hs1, hs2 = pair.running[H1], pair.running[H2]
    one = await hs2.client.get(f"/_matrix/key/v2/query/{H1}", params={"minimum_valid_until_ts": 1})
    assert one.status_code == 200, one.text
    [doc] = one.json()["server_keys"]
    assert set(doc["signatures"]) == {H1, H2}
    parse_key_response(H1, doc, 0)  # still the origin's own signed response
    with hs1.hs.database.activated():
        await hs1.hs.federation.keyring.verify_json(H2, doc, at_ts=hs1.hs.services.clock.now_ms())
    many = await hs2.client.post("/_matrix/key/v2/query", json={
        "server_keys": {H1: {hs1.hs.signing_key.key_id: {"minimum_valid_until_ts": 0}}, H2: {}}})
    assert many.status_code == 200, many.text
    assert sorted(d["server_name"] for d in many.json()["server_keys"]) == [H1, H2]
    bad = await hs2.client.post("/_matrix/key/v2/query", json={"server_keys": []})
    assert bad.status_code == 400 and bad.json()["errcode"] == "M_BAD_JSON"


async def test_signed_request_is_accepted(pair: Cluster) -> None:
    hs1, hs2 = pair.running[H1], pair.running[H2]
    alice = await hs2.register("alice")
    await hs2.api("PUT", f"profile/{alice.user_id}/displayname", alice, json={"displayname": "Alice"})
    with hs1.hs.database.activated():
        answer = await hs1.hs.federation.client.request(
            H2, "GET", "/_matrix/federation/v1/query/profile", query={"user_id": alice.user_id})
    assert answer["displayname"] == "Alice"
    with hs1.hs.database.activated(), pytest.raises(RemoteError) as missing:
        await hs1.hs.federation.client.request(
            H2, "GET", "/_matrix/federation/v1/query/profile", query={"user_id": f"@nobody:{H2}"})
    assert missing.value.remote_status == 404 and missing.value.errcode == "M_NOT_FOUND"


def _header(origin: str, destination: str, key_id: str, key: Ed25519PrivateKey, uri: str,
            method: str = "GET") -> dict[str, str]:
    return {"Authorization": authorization_header(method, uri, origin, destination, None, key_id, key)}


async def test_forged_and_misaddressed_requests_are_refused(pair: Cluster) -> None:
    hs1, hs2 = pair.running[H1], pair.running[H2]
    alice = await hs2.register("alice")
    uri = f"/_matrix/federation/v1/query/profile?user_id=%40alice%3A{H2}"
    assert alice.user_id == f"@alice:{H2}"
    real_key_id, real_key = hs1.hs.signing_key.key_id, hs1.hs.signing_key.private_key

    async def status(headers: dict[str, str], path: str = uri) -> tuple[int, str, str]:
        response = await hs2.client.get(path, headers=headers)
        body = response.json()
        return response.status_code, body.get("errcode", ""), body.get("error", "")

    assert (await status(_header(H1, H2, real_key_id, real_key, uri)))[0] == 200
    code, errcode, error = await status({})
    assert (code, errcode) == (401, "M_UNAUTHORIZED") and "Missing" in error
    # Signed with another key under hs1's key id: a forgery.
    code, errcode, error = await status(_header(H1, H2, real_key_id, Ed25519PrivateKey.generate(), uri))
    assert (code, errcode) == (401, "M_UNAUTHORIZED") and "invalid" in error
    # A key id hs1 does not have.
    code, errcode, _ = await status(_header(H1, H2, "ed25519:forged", real_key, uri))
    assert (code, errcode) == (401, "M_UNAUTHORIZED")
    # For another destination, or signed for another path.
    code, errcode, error = await status(_header(H1, "hs3.localhost", real_key_id, real_key, uri))
    assert (code, errcode) == (401, "M_UNAUTHORIZED") and "not for this server" in error
    code, errcode, _ = await status(_header(H1, H2, real_key_id, real_key, uri + "x"))
    assert (code, errcode) == (401, "M_UNAUTHORIZED")
    # An origin claiming to be hs2 itself, and an unparsable header.
    code, errcode, _ = await status(_header(H2, H2, real_key_id, real_key, uri))
    assert (code, errcode) == (401, "M_UNAUTHORIZED")
    code, errcode, _ = await status({"Authorization": "X-Matrix origin"})
    assert (code, errcode) == (401, "M_UNAUTHORIZED")


async def test_denied_origin_is_forbidden(tmp_path: Path) -> None:
    async with cluster(tmp_path, 2, start=False) as servers:
        hs1 = await servers.start(H1)
        hs2 = await servers.start(H2, admin={"server_deny_list": "hs1.*"})
        uri = "/_matrix/federation/v1/query/profile?user_id=%40x%3Ahs2.localhost"
        response = await hs2.client.get(uri, headers=_header(H1, H2, hs1.hs.signing_key.key_id,
                                                              hs1.hs.signing_key.private_key, uri))
        assert response.status_code == 403 and response.json()["errcode"] == "M_FORBIDDEN"
        with hs2.hs.database.activated(), pytest.raises(Exception, match="not allowed"):
            await hs2.hs.federation.client.request(H1, "GET", "/_matrix/federation/v1/version")


async def test_certificate_of_another_ca_is_refused(tmp_path: Path) -> None:
    async with cluster(tmp_path / "a", 2, start=False) as servers:
        hs1 = await servers.start(H1)
        # hs2 trusts a different CA: hs1's certificate does not verify.
        other = await servers.start(H2, federation={"ca_file": str(_other_ca(tmp_path / "b"))})
        with other.hs.database.activated(), pytest.raises(DestinationUnreachable, match="CERTIFICATE|certificate"):
            await other.hs.federation.client.request(H1, "GET", "/_matrix/federation/v1/version",
                                                     authenticated=False)
        assert hs1 is not None


def _other_ca(directory: Path) -> str:
    from tests.support.test_ca import TestCA

    return TestCA.create(directory, "another CA").ca_file
