"""Serving the ASGI app with Hypercorn 0.18, with a bounded graceful shutdown.

Two Hypercorn problems are worked around here (no release fixes them yet):

* On Python 3.12.1+ ``asyncio.Server.wait_closed()`` waits for every open
  connection (python/cpython#104344), and Hypercorn awaits it *before* its
  ``graceful_timeout`` starts (pgjones/hypercorn#308): one request that never
  finishes keeps the server alive forever.  :func:`serve_bounded` therefore
  enforces the grace period itself and cancels what is left after it.
* When an HTTP/2 connection closes while a response is still being written
  (a client that gave up on a long-poll), Hypercorn stops its send task but
  leaves the stream buffers open, so the handler waits in ``drain()`` until
  the server stops.  :func:`fix_h2_closed_connections` releases them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from hypercorn.asyncio import serve
from hypercorn.config import Config as HypercornConfig
from hypercorn.events import Closed
from hypercorn.protocol.h2 import H2Protocol

logger = logging.getLogger(__name__)

# Time allowed, after the grace period, for Hypercorn's own clean-up.
CLEANUP_MARGIN_S = 1.0

_PATCH_FLAG = "_parley_releases_buffers_on_close"


def fix_h2_closed_connections() -> None:
    """Make a closed HTTP/2 connection release the responses blocked on it (idempotent)."""
    if getattr(H2Protocol, _PATCH_FLAG, False):
        return
    original = H2Protocol.handle

    async def handle(self: H2Protocol, event: Any) -> None:
        await original(self, event)
        if isinstance(event, Closed):
            for buffer in list(self.stream_buffers.values()):
                await buffer.close()

    H2Protocol.handle = handle  # type: ignore[method-assign]
    setattr(H2Protocol, _PATCH_FLAG, True)


async def serve_bounded(app: Any, config: HypercornConfig,
                        shutdown_trigger: Callable[[], Awaitable[object]]) -> None:
    """``hypercorn.asyncio.serve`` that returns at most ``graceful_timeout`` (+1 s) after the trigger.

    Requests in flight get the grace period to complete; connections still
    open after it are cancelled, as Hypercorn itself does on Python 3.11.
    """
    fix_h2_closed_connections()
    triggered = asyncio.Event()

    async def trigger() -> None:
        await shutdown_trigger()
        triggered.set()

    server = asyncio.ensure_future(serve(app, config, shutdown_trigger=trigger))  # type: ignore[arg-type]
    waiting = asyncio.ensure_future(triggered.wait())
    try:
        await asyncio.wait({server, waiting}, return_when=asyncio.FIRST_COMPLETED)
        if not server.done():
            await asyncio.wait({server}, timeout=config.graceful_timeout + CLEANUP_MARGIN_S)
        if not server.done():
            logger.warning("grace period of %.0f s is over: closing the connections still open",
                           config.graceful_timeout)
            server.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await server
            return
    finally:
        waiting.cancel()
        if not server.done():
            server.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await server
    server.result()


def without_lifespan(app: Any) -> Any:
    """``app`` for listeners whose start-up and shut-down the caller runs itself, once for all of them.

    Hypercorn runs an app's lifespan once per ``serve``: an app served on two
    listeners (client and federation) would open its database and start its
    background tasks twice, and the first listener to stop would close the
    database under the other.  The lifespan messages are answered at once here.
    """

    async def asgi(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "lifespan":
            await app(scope, receive, send)
            return
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    return asgi
