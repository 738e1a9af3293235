"""Discovery endpoints, error shapes, body limits, HTTP/2, signing key and schema checks."""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from common.canonical_json import unpadded_b64encode
from homeserver.storage.database import Database
from homeserver.storage.migrate import SchemaTooNewError
from tests.support.server import RunningServer, serve_homeserver


async def test_versions_and_well_known(server: RunningServer) -> None:
    versions = (await server.api("GET", "/_matrix/client/versions")).json()
    assert "v1.1" in versions["versions"]  # exactly which: test_versions_honest.py
    client = (await server.api("GET", "/.well-known/matrix/client")).json()
    assert client["m.homeserver"]["base_url"].startswith("http")
    # No federation listener configured: no delegation (tests/federation/ covers the rest).
    delegation = await server.api("GET", "/.well-known/matrix/server")
    assert delegation.status_code == 404 and delegation.json()["errcode"] == "M_NOT_FOUND"


async def test_unknown_endpoint_and_method(server: RunningServer) -> None:
    response = await server.api("GET", "no/such/thing")
    assert response.status_code == 404
    assert response.json() == {"errcode": "M_UNRECOGNIZED", "error": "Unrecognized request"}
    wrong_method = await server.api("DELETE", "login")
    assert wrong_method.status_code == 405
    assert wrong_method.json()["errcode"] == "M_UNRECOGNIZED"


@pytest.mark.parametrize(
    "content, errcode",
    [(b"{not json", "M_NOT_JSON"), (b"[1, 2]", "M_BAD_JSON"), (b"", "M_NOT_JSON"),
     (b'{"a": NaN}', "M_NOT_JSON"), (b"\xff\xfe", "M_NOT_JSON")],
)
async def test_malformed_json(server: RunningServer, content: bytes, errcode: str) -> None:
    response = await server.client.post("/_matrix/client/v3/login", content=content)
    assert response.status_code == 400
    assert response.json()["errcode"] == errcode


async def test_oversized_body_refused_by_declared_length(server: RunningServer) -> None:
    limit = server.config.limits.max_request_bytes
    response = await server.client.post("/_matrix/client/v3/login", content=b"x" * (limit + 1))
    assert response.status_code == 413
    assert response.json()["errcode"] == "M_TOO_LARGE"


async def test_oversized_chunked_body_refused_while_streaming(server: RunningServer) -> None:
    limit = server.config.limits.max_request_bytes
    chunks = limit // 16384 + 1  # no Content-Length: the server must count

    async def body() -> Any:
        for _ in range(chunks):
            yield b" " * 16384

    response = await server.client.post("/_matrix/client/v3/login", content=body())
    assert response.status_code == 413
    assert response.json()["errcode"] == "M_TOO_LARGE"


async def test_http2_cleartext(server: RunningServer) -> None:
    async with httpx.AsyncClient(base_url=server.base_url, http2=True, http1=False) as client:
        response = await client.get("/_matrix/client/versions")
    assert response.http_version == "HTTP/2"
    assert response.status_code == 200


async def test_concurrent_requests_on_one_http2_connection(server: RunningServer) -> None:
    account = await server.register()
    async with httpx.AsyncClient(base_url=server.base_url, http2=True, http1=False) as client:
        responses = await asyncio.gather(*[
            client.get("/_matrix/client/v3/account/whoami", headers=account.headers) for _ in range(50)])
    assert {r.status_code for r in responses} == {200}


async def test_signing_key_lives_in_the_database_and_data_dir_is_private(server: RunningServer) -> None:
    data = Path(server.config.data_dir)
    assert stat.S_IMODE(os.stat(data).st_mode) == 0o700
    assert not (data / "signing.key").exists()
    rows = await server.hs.database.fetch("SELECT key_id FROM server_signing_keys WHERE server_name = ?",
                                          (server.config.server_name,))
    assert rows == [{"key_id": server.hs.signing_key.key_id}]
    assert server.hs.signing_key.key_id.startswith("ed25519:")


def _write_key_file(data_dir: Path, text: str) -> None:
    data_dir.mkdir(parents=True)
    (data_dir / "signing.key").write_text(text)


async def test_an_older_deployments_key_file_is_imported(make_config: Any) -> None:
    config = make_config()
    seed = Ed25519PrivateKey.generate().private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    _write_key_file(Path(config.data_dir), f"ed25519 a_old {unpadded_b64encode(seed)}\n")
    async with serve_homeserver(config) as running:
        assert running.hs.signing_key.key_id == "ed25519:a_old"
        assert running.hs.signing_key.seed_b64 == unpadded_b64encode(seed)


async def test_signing_key_survives_restart(make_config: Any) -> None:
    config = make_config()
    async with serve_homeserver(config) as first:
        key_id = first.hs.signing_key.key_id
        public = first.hs.signing_key.public_key_b64
    async with serve_homeserver(config) as second:
        assert second.hs.signing_key.key_id == key_id
        assert second.hs.signing_key.public_key_b64 == public


async def test_server_refuses_newer_schema(make_config: Any) -> None:
    config = make_config()
    async with serve_homeserver(config) as running:
        db = running.hs.database
        with db.activated():
            await db.execute("INSERT INTO schema_version (version, applied_ts) VALUES (?, ?)", (9999, 0))
    try:
        with pytest.raises(SchemaTooNewError, match="9999"):
            await Database(config.database_url).open()
    finally:
        cleanup = Database(config.database_url)
        await cleanup.connect()
        with cleanup.activated():
            await cleanup.execute("DELETE FROM schema_version WHERE version = ?", (9999,))
        await cleanup.close()


async def test_many_concurrent_requests_keep_their_database_context(
    server: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Each request activates the homeserver's database context for itself; a
    shared reset token once broke under concurrency (requests died unanswered)."""
    account = await server.register()
    statuses: list[int] = []

    async def worker(client: httpx.AsyncClient) -> None:
        for _ in range(25):
            response = await client.get("/_matrix/client/v3/account/whoami", headers=account.headers)
            statuses.append(response.status_code)

    # 16 connections, each with its own stream of requests.
    clients = [httpx.AsyncClient(base_url=server.base_url, timeout=60) for _ in range(16)]
    try:
        await asyncio.gather(*[worker(c) for c in clients])
    finally:
        for client in clients:
            await client.aclose()
    assert statuses == [200] * 400
    assert "different Context" not in caplog.text
