"""The one network edge of the client: Matrix requests over httpx.

* HTTP/2 always: ``http://`` URLs use h2c (``http1=False``), ``https://``
  negotiates h2 by ALPN with certificate verification on (``insecure`` only
  for dev servers with self-signed certificates).
* Every request has a timeout; long-polls get ``timeout + margin``.
* Only idempotent requests are retried (GET, PUT — the Matrix API makes sends
  idempotent through transaction ids — and requests marked ``idempotent``),
  on transport errors and 5xx/429, with exponential backoff.
* Errors come back as :class:`common.errors.MatrixError` (server answers) or
  :class:`TransportFailure` (no answer: connection refused, timeout, ...).
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import quote

import httpx

from common.errors import MatrixError

logger = logging.getLogger(__name__)

JsonDict = dict[str, Any]
CLIENT_V3 = "/_matrix/client/v3"
UNSTABLE = "/_matrix/client/unstable/im.parley"
MEDIA_V3 = "/_matrix/media/v3"


class TransportFailure(Exception):
    """The server could not be reached or did not answer in time."""


def q(segment: str) -> str:
    """Quote one path segment (room ids, event ids, user ids...)."""
    return quote(segment, safe="")


class Transport:
    """Thin async wrapper: JSON in, JSON out, Matrix errors as exceptions."""

    def __init__(
        self,
        base_url: str,
        *,
        access_token: str | None = None,
        timeout: float = 30.0,
        insecure: bool = False,
        retries: int = 3,
        ca_file: str | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.access_token = access_token
        self.timeout = timeout
        self.retries = retries
        verify: bool | ssl.SSLContext = True
        if insecure:
            verify = False
        elif ca_file is not None:
            verify = ssl.create_default_context(cafile=ca_file)
        def make() -> httpx.AsyncClient:
            return httpx.AsyncClient(
                base_url=self.base_url, http2=True, http1=False, verify=verify,
                timeout=httpx.Timeout(timeout),
                limits=httpx.Limits(max_connections=20, max_keepalive_connections=10),
            )

        # Three connections: the /sync long-poll and big transfers each get their own,
        # because an HTTP/2 stream waiting for flow-control credit on a connection
        # shared with a long-poll stalls until the long-poll returns (measured:
        # seconds per 20 MB upload, up to minutes under load).
        self._client = make()
        self._sync_client = make()
        self._media_client = make()

    async def aclose(self) -> None:
        for client in (self._client, self._sync_client, self._media_client):
            await client.aclose()

    def _headers(self, auth: bool, extra: dict[str, str] | None = None) -> dict[str, str]:
        headers = dict(extra or {})
        if auth and self.access_token:
            headers["Authorization"] = f"Bearer {self.access_token}"
        return headers

    async def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        params: dict[str, Any] | None = None,
        auth: bool = True,
        request_timeout: float | None = None,
        idempotent: bool | None = None,
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> JsonDict:
        """One API call; ``path`` is absolute (``/_matrix/...``)."""
        retry = idempotent if idempotent is not None else method in ("GET", "PUT", "DELETE")
        attempts = 1 + (self.retries if retry else 0)
        delay = 0.5
        last: Exception | None = None
        for attempt in range(attempts):
            try:
                client = self._sync_client if path.endswith("/sync") else self._client
                response = await client.request(
                    method, path,
                    json=body if content is None and body is not None else None,
                    content=content,
                    params=params,
                    headers=self._headers(auth, headers),
                    timeout=request_timeout if request_timeout is not None else self.timeout,
                )
            except httpx.TransportError as exc:
                last = TransportFailure(f"{method} {path}: {type(exc).__name__}: {exc}")
            else:
                if response.status_code < 400:
                    return _json(response)
                err = _error(response)
                retryable = response.status_code >= 500 or response.status_code == 429
                if not (retry and retryable) or attempt == attempts - 1:
                    raise err
                last = err
                if response.status_code == 429:
                    wait = err.extra.get("retry_after_ms")
                    if isinstance(wait, int):
                        delay = max(delay, min(wait / 1000, 10.0))
            if attempt < attempts - 1:
                await asyncio.sleep(delay)
                delay = min(delay * 2, 8.0)
        assert last is not None
        raise last

    async def get(self, path: str, **kw: Any) -> JsonDict:
        return await self.request("GET", path, **kw)

    async def post(self, path: str, body: Any = None, **kw: Any) -> JsonDict:
        return await self.request("POST", path, body if body is not None else {}, **kw)

    async def put(self, path: str, body: Any = None, **kw: Any) -> JsonDict:
        return await self.request("PUT", path, body if body is not None else {}, **kw)

    # ------------------------------------------------------------ raw bytes
    async def upload(
        self, path: str, data: bytes, content_type: str, *, params: dict[str, Any] | None = None,
        progress: Callable[[int, int], None] | None = None, chunk: int = 256 * 1024,
    ) -> JsonDict:
        """POST bytes with an upload progress callback (idempotent=False)."""
        total = len(data)

        async def body() -> AsyncIterator[bytes]:
            sent = 0
            for start in range(0, total, chunk):
                piece = data[start:start + chunk]
                sent += len(piece)
                yield piece
                if progress is not None:
                    progress(sent, total)

        try:
            response = await self._media_client.post(
                path, content=body(), params=params,
                headers=self._headers(True, {"Content-Type": content_type,
                                             "Content-Length": str(total)}),
                timeout=max(self.timeout, 120.0),
            )
        except httpx.TransportError as exc:
            raise TransportFailure(f"upload {path}: {type(exc).__name__}: {exc}") from exc
        if response.status_code >= 400:
            raise _error(response)
        return _json(response)

    async def download(
        self, path: str, sink: Callable[[bytes], object], *, offset: int = 0,
        progress: Callable[[int, int], None] | None = None,
    ) -> int:
        """Stream a download into ``sink`` starting at ``offset`` (a Range
        request, so an interrupted download resumes).  Returns the total size."""
        headers = self._headers(True, {"Range": f"bytes={offset}-"} if offset else None)
        try:
            async with self._media_client.stream("GET", path, headers=headers,
                                           timeout=max(self.timeout, 120.0)) as response:
                if response.status_code >= 400:
                    await response.aread()
                    raise _error(response)
                if offset and response.status_code != 206:
                    raise TransportFailure("server ignored the Range header")
                total = _total_size(response, offset)
                done = offset
                async for piece in response.aiter_bytes():
                    sink(piece)
                    done += len(piece)
                    if progress is not None:
                        progress(done, total or done)
                return total or done
        except httpx.TransportError as exc:
            raise TransportFailure(f"download {path}: {type(exc).__name__}: {exc}") from exc


def _total_size(response: httpx.Response, offset: int) -> int:
    content_range = response.headers.get("content-range", "")
    if "/" in content_range:
        tail = content_range.rsplit("/", 1)[1]
        if tail.isdigit():
            return int(tail)
    length = response.headers.get("content-length")
    return offset + int(length) if length and length.isdigit() else 0


def _json(response: httpx.Response) -> JsonDict:
    if not response.content:
        return {}
    try:
        data = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise MatrixError(response.status_code, "M_NOT_JSON", "server answered with non-JSON") from None
    if not isinstance(data, dict):
        raise MatrixError(response.status_code, "M_NOT_JSON", "server answered with a non-object")
    return data


def _error(response: httpx.Response) -> MatrixError:
    try:
        data = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        data = None
    if isinstance(data, dict) and isinstance(data.get("errcode"), str):
        extra = {k: v for k, v in data.items() if k not in ("errcode", "error")}
        return MatrixError(response.status_code, data["errcode"], str(data.get("error", "")), extra)
    extra = dict(data) if isinstance(data, dict) else {}  # e.g. a user-interactive auth challenge
    return MatrixError(response.status_code, "M_UNKNOWN", f"HTTP {response.status_code}", extra)
