"""The one network edge of the client: Matrix requests over httpx.

* HTTP/2 always: ``http://`` URLs use h2c (``http1=False``), ``https://``
  negotiates h2 by ALPN with certificate verification on (``insecure`` only
  for dev servers with self-signed certificates).
* Every request has a timeout; long-polls get ``timeout + margin``.
* **Every** request that failed before any byte of an answer arrived (refused
  or reset connection, a kept-alive connection the server closed under it,
  write errors) is retried, with the same body and the same
  ``Idempotency-Key`` header (and, for sends, the same transaction id in the
  path), so a server that deduplicates on it applies it once.  Idempotent
  requests (GET, PUT, DELETE — the Matrix API makes sends idempotent through
  transaction ids — and requests marked ``idempotent``) are also retried after
  read timeouts, broken answers and 5xx/429.  A ``409`` with ``retry_after_ms``
  (the server is still running the first attempt under this key) is asked again.  Backoff is exponential with
  jitter (:mod:`tenacity`), so clients do not retry in lockstep.
* Idle connections are dropped after :data:`KEEPALIVE_EXPIRY` seconds, below
  the server's keep-alive timeout (Hypercorn: 5 s), so the client rarely
  reuses a connection the server is closing.
* Downloads lease a connection (:mod:`client_tk.core.download_clients`): one
  that ends early retires its connection, whose HTTP/2 flow-control window
  httpcore would otherwise leave short (the next download stalled).
* Errors come back as :class:`common.errors.MatrixError` (server answers) or
  :class:`TransportFailure` (no answer: connection refused, timeout, ...).
"""

from __future__ import annotations

import json
import logging
import secrets
import ssl
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import quote

import httpx
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from client_tk.core.download_clients import DownloadClients
from common.errors import MatrixError

logger = logging.getLogger(__name__)

JsonDict = dict[str, Any]
CLIENT_V3 = "/_matrix/client/v3"
UNSTABLE = "/_matrix/client/unstable/im.parley"
MEDIA_V3 = "/_matrix/media/v3"
KEEPALIVE_EXPIRY = 2.0  # seconds; below Hypercorn's keep_alive_timeout (5 s)
IDEMPOTENCY_HEADER = "Idempotency-Key"
# Failures where the request cannot have been answered: nothing of a response arrived.
_NO_ANSWER = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.WriteError,
              httpx.WriteTimeout, httpx.RemoteProtocolError, httpx.ReadError)


class TransportFailure(Exception):
    """The server could not be reached or did not answer in time."""


class _Retryable(Exception):
    """One attempt failed in a way that a new attempt may fix."""

    def __init__(self, error: Exception, wait_at_least: float = 0.0) -> None:
        super().__init__(str(error))
        self.error = error
        self.wait_at_least = wait_at_least


def _backoff() -> Callable[[RetryCallState], float]:
    jittered = wait_exponential_jitter(multiplier=0.25, max=8.0, jitter=0.5)

    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome is not None else None
        floor = exc.wait_at_least if isinstance(exc, _Retryable) else 0.0
        return max(float(jittered(state)), floor)

    return wait


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
                limits=httpx.Limits(max_connections=20, max_keepalive_connections=10,
                                    keepalive_expiry=KEEPALIVE_EXPIRY),
            )

        # Three connections: the /sync long-poll and big transfers each get their own,
        # because an HTTP/2 stream waiting for flow-control credit on a connection
        # shared with a long-poll stalls until the long-poll returns (measured:
        # seconds per 20 MB upload, up to minutes under load).
        self._client = make()
        self._sync_client = make()
        self._media_client = make()
        self._downloads = DownloadClients(make)

    async def aclose(self) -> None:
        for client in (self._client, self._sync_client, self._media_client):
            await client.aclose()
        await self._downloads.aclose()

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
        client = self._sync_client if path.endswith("/sync") else self._client
        hdrs = self._headers(auth, headers)
        if method != "GET":
            hdrs.setdefault(IDEMPOTENCY_HEADER, secrets.token_urlsafe(16))

        def build() -> httpx.Request:
            return client.build_request(
                method, path, json=body if content is None and body is not None else None,
                content=content, params=params, headers=hdrs,
                timeout=request_timeout if request_timeout is not None else self.timeout)

        return await self._with_retries(client, build, retry, f"{method} {path}")

    async def _with_retries(self, client: httpx.AsyncClient, build: Callable[[], httpx.Request],
                            idempotent: bool, what: str) -> JsonDict:
        attempts = AsyncRetrying(stop=stop_after_attempt(1 + self.retries), wait=_backoff(),
                                 retry=retry_if_exception_type(_Retryable), reraise=True)
        try:
            async for attempt in attempts:
                with attempt:
                    return await self._attempt(client, build(), idempotent, what)
        except _Retryable as exc:
            raise exc.error from None
        raise AssertionError("unreachable")  # pragma: no cover

    async def _attempt(self, client: httpx.AsyncClient, request: httpx.Request,
                       idempotent: bool, what: str) -> JsonDict:
        """Send once; raise :class:`_Retryable` when another attempt is safe and may help."""
        try:
            response = await client.send(request, stream=True)
        except httpx.TransportError as exc:
            failure = TransportFailure(f"{what}: {type(exc).__name__}: {exc}")
            if isinstance(exc, _NO_ANSWER) or idempotent:
                logger.info("retrying %s: no answer (%s)", what, type(exc).__name__)
                raise _Retryable(failure) from exc
            raise failure from exc
        try:
            await response.aread()  # from here on, part of an answer has arrived
        except httpx.TransportError as exc:
            failure = TransportFailure(f"{what}: {type(exc).__name__}: {exc}")
            if idempotent:
                raise _Retryable(failure) from exc
            raise failure from exc
        finally:
            await response.aclose()
        if response.status_code < 400:
            return _json(response)
        err = _error(response)
        wait = err.extra.get("retry_after_ms")
        floor = min(wait / 1000, 10.0) if isinstance(wait, int) else 0.0
        if idempotent and (response.status_code >= 500 or response.status_code == 429):
            raise _Retryable(err, floor)
        if response.status_code == 409 and isinstance(wait, int) and request.headers.get(IDEMPOTENCY_HEADER):
            # The first attempt under this key is still running on the server: ask again later.
            raise _Retryable(err, floor)
        raise err

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
        """POST bytes with an upload progress callback (retried only when no answer arrived)."""
        total = len(data)

        async def body() -> AsyncIterator[bytes]:
            sent = 0
            for start in range(0, total, chunk):
                piece = data[start:start + chunk]
                sent += len(piece)
                yield piece
                if progress is not None:
                    progress(sent, total)

        hdrs = self._headers(True, {"Content-Type": content_type, "Content-Length": str(total),
                                    IDEMPOTENCY_HEADER: secrets.token_urlsafe(16)})

        def build() -> httpx.Request:
            return self._media_client.build_request(
                "POST", path, content=body(), params=params, headers=hdrs,
                timeout=max(self.timeout, 120.0))

        return await self._with_retries(self._media_client, build, False, f"upload {path}")

    async def download(
        self, path: str, sink: Callable[[bytes], object], *, offset: int = 0,
        progress: Callable[[int, int], None] | None = None,
    ) -> int:
        """Stream a download into ``sink`` starting at ``offset`` (a Range
        request, so an interrupted download resumes).  Returns the total size."""
        headers = self._headers(True, {"Range": f"bytes={offset}-"} if offset else None)
        # Downloads lease their connection (see download_clients: an early end retires it).
        try:
            async with self._downloads.lease() as lease, lease.client.stream(
                    "GET", path, headers=headers, timeout=max(self.timeout, 120.0)) as response:
                if response.status_code >= 400:
                    await response.aread()
                    lease.completed()
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
                lease.completed()
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
