"""`python -m homeserver` with the operations settings: JSON log lines with request ids and
/metrics on its own listener."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import httpx

from tests.homeserver.test_serve import start_server, wait_up, write_config
from tests.support.server import free_port


async def test_json_logs_and_metrics_listener(tmp_path: Path) -> None:
    port, metrics_port = free_port(), free_port()
    extra = f'[admin]\njson_logs = true\nmetrics_listener = "127.0.0.1:{metrics_port}"\n'
    proc = start_server(write_config(tmp_path, port, f"sqlite://{tmp_path / 'hs.db'}", extra))
    base = f"http://127.0.0.1:{port}"
    try:
        await wait_up(base, proc=proc)
        async with httpx.AsyncClient() as client:
            assert (await client.get(base + "/metrics")).status_code == 404
            await wait_up(f"http://127.0.0.1:{metrics_port}", proc=proc)
            scraped = await client.get(f"http://127.0.0.1:{metrics_port}/metrics")
            assert scraped.status_code == 200 and "parley_http_requests_total" in scraped.text
            answer = await client.get(base + "/_matrix/client/versions", headers={"X-Request-ID": "trace-1"})
            assert answer.headers["x-request-id"] == "trace-1"
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    lines = [line for line in out.decode().splitlines() if line.strip()]
    entries = [json.loads(line) for line in lines]  # every line is a JSON object
    assert any(e["logger"] == "homeserver.storage.migrate" for e in entries)
    assert all({"ts", "level", "logger", "message", "request_id"} <= set(e) for e in entries)
