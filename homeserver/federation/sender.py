"""Outgoing transactions: a persisted queue per destination, retried with backoff, one sender at a time.

``queue_pdu`` / ``queue_edu`` store the item for each destination
(homeserver/storage/federation_queue.py) and wake the sender.  For each
destination with items, the instance that takes its lease sends
``PUT /_matrix/federation/v1/send/{txnId}`` with up to 50 PDUs and 100 EDUs
in queue order, deletes them once the destination answered 200, and goes
on until the queue is empty (so a destination that comes back catches up
on everything it missed).  An unreachable destination (or a 5xx/429) is
retried after an exponential, jittered delay (tenacity's
``wait_random_exponential``, counted in the database so every instance and
a restart see it); a destination that contacts us is retried at once.  A
transaction the destination refuses outright (another 4xx) is dropped and
logged: resending it would block the queue forever.

The transaction id names the items it carries (first and last id and a
digest of all), so a resend after a lost answer has the same id and the
destination answers it without applying it twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import secrets
from typing import Any
from urllib.parse import quote

import tenacity

from common.canonical_json import encode_canonical_json
from common.strict_json import loads_strict
from homeserver.federation.client import FederationClient
from homeserver.federation.errors import (
    DestinationNotAllowed,
    DestinationUnreachable,
    FederationError,
    RemoteError,
)
from homeserver.services.clock import Clock
from homeserver.storage.federation_queue import EDU, PDU, OutboxRepository, QueuedItem

logger = logging.getLogger(__name__)

JsonDict = dict[str, Any]
MAX_PDUS, MAX_EDUS = 50, 100
# How often an instance looks for work queued or left by others (and retries that came due).
POLL_INTERVAL_S = 2.0


def transaction_id(items: list[QueuedItem]) -> str:
    digest = hashlib.sha256(",".join(str(item.id) for item in items).encode()).hexdigest()[:12]
    return f"{items[0].id}-{items[-1].id}-{digest}"


class TransactionSender:
    def __init__(self, server_name: str, outbox: OutboxRepository, client: FederationClient, clock: Clock,
                 retry_min_ms: int, retry_max_ms: int, lease_ms: int) -> None:
        self.server_name = server_name
        self.outbox = outbox
        self.client = client
        self.clock = clock
        self.lease_ms = lease_ms
        self.owner = secrets.token_hex(8)  # this instance, in the lease column
        self._wait = tenacity.wait_random_exponential(multiplier=retry_min_ms / 1000, max=retry_max_ms / 1000)
        self._wake = asyncio.Event()
        self._sending: dict[str, asyncio.Task[None]] = {}
        self._again: set[str] = set()
        # Called with (destination) after each transaction it accepted (tests, metrics).
        self.delivered_listeners: list[Any] = []

    # -------------------------------------------------------------- queueing
    async def queue_pdu(self, destinations: set[str], pdu: JsonDict) -> None:
        await self._queue(destinations, PDU, encode_canonical_json(pdu).decode())

    async def queue_edu(self, destinations: set[str], edu_type: str, content: JsonDict) -> None:
        await self._queue(destinations, EDU, encode_canonical_json({"edu_type": edu_type, "content": content}).decode())

    async def _queue(self, destinations: set[str], kind: str, payload: str) -> None:
        targets = sorted(d for d in destinations if d != self.server_name)
        if not targets:
            return
        await self.outbox.enqueue(self.server_name, targets, kind, payload, self.clock.now_ms())
        for destination in targets:
            self._start(destination)

    async def remote_contacted_us(self, origin: str) -> None:
        """``origin`` is up (it sent us a request): retry it now if it was backing off."""
        if await self.outbox.reachable_again(self.server_name, origin):
            self._start(origin)

    # -------------------------------------------------------------- sending
    async def run(self) -> None:
        """Background loop: sends what is due, every POLL_INTERVAL_S or when woken."""
        while True:
            try:
                for destination in await self.outbox.pending_destinations(self.server_name, self.clock.now_ms()):
                    self._start(destination)
            except Exception:
                logger.exception("federation sender: looking for queued transactions failed")
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), POLL_INTERVAL_S)

    async def stop(self) -> None:
        tasks = list(self._sending.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def _start(self, destination: str) -> None:
        if destination in self._sending:
            self._again.add(destination)  # new items while sending: look again before stopping
            return
        task = asyncio.get_running_loop().create_task(self._deliver(destination))
        self._sending[destination] = task
        task.add_done_callback(lambda _: self._finished(destination))

    def _finished(self, destination: str) -> None:
        self._sending.pop(destination, None)
        if destination in self._again:
            self._again.discard(destination)
            self._wake.set()

    async def _deliver(self, destination: str) -> None:
        try:
            state = await self.outbox.state(self.server_name, destination)
            if state is not None and state.retry_at_ts > self.clock.now_ms():
                return  # backing off; the loop retries when it is due
            while await self.outbox.claim(self.server_name, destination, self.owner, self.clock.now_ms(),
                                          self.lease_ms):
                self._again.discard(destination)
                items = await self.outbox.batch(self.server_name, destination, MAX_PDUS, MAX_EDUS)
                if not items:
                    await self.outbox.release(self.server_name, destination, self.owner)
                    return
                if not await self._send(destination, items):
                    await self.outbox.release(self.server_name, destination, self.owner)
                    return
        except Exception:
            logger.exception("federation sender: delivering to %s failed", destination[:255])
            with contextlib.suppress(Exception):
                await self.outbox.release(self.server_name, destination, self.owner)

    async def _send(self, destination: str, items: list[QueuedItem]) -> bool:
        """One transaction; True to go on with the next one."""
        pdus: list[JsonDict] = []
        edus: list[JsonDict] = []
        for item in items:
            (pdus if item.kind == PDU else edus).append(loads_strict(item.payload))
        txn_id = transaction_id(items)
        body = {"origin": self.server_name, "origin_server_ts": self.clock.now_ms(), "pdus": pdus, "edus": edus}
        try:
            answer = await self.client.request(destination, "PUT", f"/_matrix/federation/v1/send/{quote(txn_id)}",
                                               json=body)
        except DestinationNotAllowed as exc:
            logger.warning("dropping %d queued items for %s: %s", len(items), destination[:255], exc.reason)
            await self.outbox.delete([item.id for item in items])
            return True
        except (DestinationUnreachable, RemoteError) as exc:
            permanent = isinstance(exc, RemoteError) and 400 <= exc.remote_status < 500 \
                and exc.remote_status not in (401, 408, 429)
            if not permanent:
                await self._back_off(destination, exc)
                return False
            logger.warning("%s refused transaction %s (%d items), dropped: %s", destination[:255], txn_id,
                           len(items), exc.reason)
            await self.outbox.delete([item.id for item in items])
            return True
        except FederationError as exc:
            await self._back_off(destination, exc)
            return False
        self._log_refused_pdus(destination, answer)
        await self.outbox.delete([item.id for item in items])
        await self.outbox.succeeded(self.server_name, destination, self.clock.now_ms())
        for listener in self.delivered_listeners:
            listener(destination)
        return True

    async def _back_off(self, destination: str, exc: FederationError) -> None:
        state = await self.outbox.state(self.server_name, destination)
        attempt = RetryAttempt((state.failures if state else 0) + 1)
        delay_ms = int(self._wait(attempt) * 1000)
        logger.info("%s unreachable (%s), retry %d in %d ms", destination[:255], exc.reason[:200],
                    attempt.attempt_number, delay_ms)
        await self.outbox.failed(self.server_name, destination, self.clock.now_ms() + delay_ms)

    def _log_refused_pdus(self, destination: str, answer: JsonDict) -> None:
        results = answer.get("pdus")
        if not isinstance(results, dict):
            return
        for event_id, result in results.items():
            if isinstance(result, dict) and result.get("error"):
                logger.info("%s refused PDU %s: %s", destination[:255], str(event_id)[:100],
                            str(result["error"])[:200])


class RetryAttempt(tenacity.RetryCallState):
    """The attempt number, as tenacity's wait strategies read it."""

    def __init__(self, attempt_number: int) -> None:
        super().__init__(None, None, (), {})  # type: ignore[arg-type]
        self.attempt_number = attempt_number
