"""A real S3-compatible server for the media-store tests: moto's server (``moto[server]``).

It runs as its own process (``moto_server``) on a free loopback port and speaks
the S3 REST API over HTTP, so the homeserver's aiobotocore client talks to it
exactly as to AWS S3 or MinIO.  Each test gets its own bucket.
"""

from __future__ import annotations

import contextlib
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.support.server import free_port

ACCESS_KEY = "parley-test-key"
SECRET_KEY = "parley-test-secret"


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    process: subprocess.Popen[bytes]

    def new_bucket(self) -> str:
        """Create an empty bucket (path-style PUT, as any S3 client would)."""
        import boto3

        name = f"parley-{secrets.token_hex(6)}"
        client = boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                              aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY)
        client.create_bucket(Bucket=name)
        return name

    def media_settings(self, bucket: str) -> dict[str, Any]:
        """The ``[media]`` section of a homeserver that keeps its media in ``bucket``."""
        return {"media": {"store": "s3", "endpoint": self.endpoint, "bucket": bucket,
                          "access_key_id": ACCESS_KEY, "secret_access_key": SECRET_KEY}}

    def objects(self, bucket: str) -> dict[str, bytes]:
        import boto3

        client = boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                              aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY)
        found = client.list_objects_v2(Bucket=bucket).get("Contents", [])
        return {o["Key"]: client.get_object(Bucket=bucket, Key=o["Key"])["Body"].read() for o in found}


@contextlib.contextmanager
def s3_server(log: Path) -> Iterator[S3Server]:
    port = free_port()
    with open(log, "ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=out, stderr=subprocess.STDOUT,
        )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120  # a liveness bound for a loaded machine, not a timing claim
        while True:
            if process.poll() is not None:
                raise AssertionError(f"moto_server exited:\n{log.read_text(errors='replace')}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    pass
                if httpx.get(endpoint + "/moto-api/", timeout=5).status_code < 500:
                    break
            except (OSError, httpx.HTTPError):
                pass
            if time.monotonic() > deadline:
                raise AssertionError("moto_server did not start")
            time.sleep(0.2)
        yield S3Server(endpoint, process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
