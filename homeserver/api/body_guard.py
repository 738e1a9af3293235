"""Plain ASGI middleware that keeps request bodies from holding a connection.

Two ways a body can hold a connection, both guarded here:

* **Slow bodies.**  A client that starts a body and then trickles or stops
  would hold its request for as long as it likes.  Each chunk must arrive
  within ``idle_timeout_s`` or the request is answered 408 (and closed).
* **Unread bodies.**  When a handler answers before reading the body (a
  401, a 429, a 413), Hypercorn keeps pushing the rest of the body into a
  bounded per-request queue that nobody reads any more: its reader blocks,
  the client blocks writing, and nobody gets an answer.  So before the
  response starts, the rest of the body is read and dropped (up to
  ``drain_bytes``; the connection then stays usable for its next request);
  past that budget a background reader keeps the queue moving until the
  body ends, the client goes, or a chunk is late.
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from common.errors import Codes, MatrixError


class BodyTimeout(MatrixError):
    def __init__(self, seconds: float) -> None:
        super().__init__(408, Codes.UNKNOWN, f"The request body did not arrive within {seconds:g} s",
                         headers={"Connection": "close"})


class BodyGuardMiddleware:
    def __init__(self, app: ASGIApp, idle_timeout_s: float, drain_bytes: int) -> None:
        self.app = app
        self.idle_timeout_s = idle_timeout_s
        self.drain_bytes = drain_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body_done = False
        # Set with body_done: a drain must stop when another reader (Starlette's
        # disconnect listener of a streamed response) took the last chunk.
        ended = asyncio.Event()
        timeout = self.idle_timeout_s
        background: asyncio.Task[None] | None = None

        async def guarded_receive() -> Message:
            nonlocal body_done
            if body_done:
                # Only the disconnect notice is left; waiting for it is legitimate (long-polls).
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), timeout)
            except TimeoutError:
                body_done = True  # the 408 closes the connection; nothing more to wait for
                ended.set()
                raise BodyTimeout(timeout) from None
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_done = True
                ended.set()
            return message

        async def drain(budget: int | None) -> None:
            while not body_done and (budget is None or budget >= 0):
                chunk = asyncio.ensure_future(guarded_receive())
                stop = asyncio.ensure_future(ended.wait())
                await asyncio.wait({chunk, stop}, return_when=asyncio.FIRST_COMPLETED)
                stop.cancel()
                if not chunk.done():
                    chunk.cancel()  # a cancelled queue read loses no message
                    return
                if chunk.exception() is not None:
                    return  # BodyTimeout: the client went quiet
                if budget is not None:
                    budget -= len(chunk.result().get("body", b""))

        async def guarded_send(message: Message) -> None:
            nonlocal background
            if message["type"] == "http.response.start" and not body_done:
                await drain(self.drain_bytes)
                if not body_done:
                    background = asyncio.create_task(drain(None))
            await send(message)

        try:
            await self.app(scope, guarded_receive, guarded_send)
        finally:
            if background is not None:
                await background
