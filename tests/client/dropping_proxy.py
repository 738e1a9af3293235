"""A TCP proxy for h2c that kills connections under chosen requests.

It reads the client's HTTP/2 frames (and decodes request headers with
``hpack``) so that a test can say "the next POST to /createRoom dies":

* ``drop`` — the request's HEADERS frame is never forwarded and the
  connection is closed: the server never sees the request (a kept-alive
  connection the server closed just as the client wrote on it).
* ``lose_answer`` — the request is forwarded, then the connection is closed
  when the server starts answering: the server *did* apply it, the client
  never hears back.
* ``cut_answer`` — like ``lose_answer``, but the answer's HEADERS frame gets
  through before the connection dies (the answer had started).
* ``hold`` (:meth:`DroppingProxy.hold`) — the request is forwarded and the
  answer's HEADERS frame too (:attr:`DroppingProxy.answered` is set: the server
  applied it), but the answer's body is kept back until
  :meth:`DroppingProxy.release`: a slow answer, while the connection's other
  requests go on.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field

import hpack

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, CONTINUATION = 0x0, 0x1, 0x9
Match = Callable[[str, str], bool]


@dataclass
class _Rule:
    match: Match
    mode: str  # "drop" | "lose_answer" | "cut_answer" | "hold"
    left: int
    skip: int = 0  # matching requests let through untouched before the rule applies


@dataclass
class DroppingProxy:
    target_host: str
    target_port: int
    rules: list[_Rule] = field(default_factory=list)
    killed: list[tuple[str, str, str]] = field(default_factory=list)  # (mode, method, path)
    seen: list[tuple[str, str]] = field(default_factory=list)
    idempotency_keys: list[str | None] = field(default_factory=list)  # per request seen
    answered: asyncio.Event = field(default_factory=asyncio.Event)  # a held request's answer began
    _server: asyncio.Server | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _holding: list[set[int]] = field(default_factory=list)  # per connection: streams whose body waits
    _held: list[tuple[asyncio.StreamWriter, bytes]] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def kill(self, match: Match, mode: str = "drop", times: int = 1, skip: int = 0) -> None:
        self.rules.append(_Rule(match, mode, times, skip))

    def hold(self, match: Match) -> None:
        """The next matching request is applied, but its answer's body waits for :meth:`release`."""
        self.rules.append(_Rule(match, "hold", 1))

    def release(self) -> None:
        """Let the held answers through (in the order they came), and hold nothing more."""
        for streams in self._holding:
            streams.clear()
        held, self._held = self._held, []
        for writer, frame in held:
            writer.write(frame)

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task
        if self._server is not None:
            with contextlib.suppress(Exception):
                await self._server.wait_closed()

    def _rule_for(self, method: str, path: str) -> _Rule | None:
        for rule in self.rules:
            if rule.left > 0 and rule.match(method, path):
                if rule.skip > 0:
                    rule.skip -= 1
                    return None
                rule.left -= 1
                return rule
        return None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            up_reader, up_writer = await asyncio.open_connection(self.target_host, self.target_port)
        except OSError:
            writer.close()
            self._tasks.discard(task)
            return
        doomed: list[str] = []  # a mode: kill the connection when the server starts answering
        holding: set[int] = set()
        self._holding.append(holding)
        dead = asyncio.Event()
        down = asyncio.create_task(self._downstream(up_reader, writer, doomed, dead, holding))
        try:
            await self._upstream(reader, up_writer, doomed, dead, holding)
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            down.cancel()
            for w in (writer, up_writer):
                w.close()
            self._tasks.discard(task)

    async def _upstream(self, reader: asyncio.StreamReader, up: asyncio.StreamWriter,
                        doomed: list[str], dead: asyncio.Event, holding: set[int]) -> None:
        decoder = hpack.Decoder()
        up.write(await reader.readexactly(len(PREFACE)))
        while not dead.is_set():
            head = await reader.readexactly(9)
            length, kind = int.from_bytes(head[:3], "big"), head[3]
            payload = await reader.readexactly(length)
            if kind == HEADERS:
                headers = _headers(decoder, head[4], payload)
                method, path = headers.get(":method", ""), headers.get(":path", "")
                self.seen.append((method, path))
                self.idempotency_keys.append(headers.get("idempotency-key"))
                rule = self._rule_for(method, path)
                if rule is not None and rule.mode == "drop":
                    self.killed.append(("drop", method, path))
                    dead.set()
                    return
                if rule is not None and rule.mode == "hold":
                    holding.add(_stream(head))
                elif rule is not None:
                    self.killed.append((rule.mode, method, path))
                    doomed.append(rule.mode)
            up.write(head + payload)
            await up.drain()

    async def _downstream(self, up: asyncio.StreamReader, writer: asyncio.StreamWriter,
                          doomed: list[str], dead: asyncio.Event, holding: set[int]) -> None:
        try:
            while not dead.is_set():
                head = await up.readexactly(9)
                payload = await up.readexactly(int.from_bytes(head[:3], "big"))
                if _stream(head) in holding:
                    if head[3] == HEADERS:  # through: the client's header decoder keeps its order
                        self.answered.set()
                    elif head[3] == DATA:
                        self._held.append((writer, head + payload))
                        continue
                if head[3] == HEADERS and doomed:
                    dead.set()  # the server answered; the client never hears it (all of it)
                    if doomed[0] == "cut_answer":
                        writer.write(head + payload)
                        await writer.drain()
                    writer.close()
                    return
                writer.write(head + payload)
                await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            dead.set()
            writer.close()


def _stream(head: bytes) -> int:
    return int.from_bytes(head[5:9], "big") & 0x7FFFFFFF


def _headers(decoder: hpack.Decoder, flags: int, payload: bytes) -> dict[str, str]:
    """The header block of a HEADERS frame (padding and priority stripped)."""
    start, end = 0, len(payload)
    if flags & 0x8:  # PADDED
        start, end = 1, len(payload) - payload[0]
    if flags & 0x20:  # PRIORITY
        start += 5
    return {str(k): str(v) for k, v in decoder.decode(payload[start:end])}
