"""Incoming ``PUT /_matrix/federation/v1/send/{txnId}``: checked, applied once, answered the same on replay.

Spec, "Transactions": the body names its ``origin`` (it must be the
authenticated one), at most 50 PDUs and 100 EDUs.  The PDUs go to the
installed :class:`~homeserver.federation.pdus.PduHandler`, the EDUs to
:class:`~homeserver.federation.edus.EduHandler` (an EDU that cannot be applied
is logged and skipped: EDUs have no answer).  The answer is stored per
(this server, origin, txn id) before it is returned, so a replay gets the
stored answer and nothing is applied twice; a replay that meets the first
attempt still running waits for it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from common.canonical_json import encode_canonical_json
from common.errors import Codes, MatrixError
from common.strict_json import loads_strict
from homeserver.federation.edus import EduHandler
from homeserver.federation.pdus import PduHandler
from homeserver.services.clock import Clock
from homeserver.storage.federation_txns import ReceivedTransactions

logger = logging.getLogger(__name__)

JsonDict = dict[str, Any]
MAX_PDUS, MAX_EDUS = 50, 100
MAX_TXN_ID_LENGTH = 255
# An attempt that has not answered after this long died with its instance: taken over.
STALE_ATTEMPT_MS = 5 * 60_000
# A replay waits this long for the first attempt, then asks the origin to retry.
REPLAY_WAIT_S = 30.0
REPLAY_POLL_S = 0.2
KEEP_ANSWERS_MS = 7 * 24 * 3600_000


def check_transaction(origin: str, txn_id: str, body: JsonDict) -> tuple[list[JsonDict], list[JsonDict]]:
    """The transaction's PDUs and EDUs, or a Matrix error saying what is wrong."""
    if not txn_id or len(txn_id) > MAX_TXN_ID_LENGTH:
        raise MatrixError(400, Codes.INVALID_PARAM, f"The transaction id must have 1 to {MAX_TXN_ID_LENGTH} characters")
    if body.get("origin") != origin:
        raise MatrixError(403, Codes.FORBIDDEN, "The transaction's origin is not the server that signed the request")
    ts = body.get("origin_server_ts")
    if ts is not None and (not isinstance(ts, int) or isinstance(ts, bool)):
        raise MatrixError(400, Codes.BAD_JSON, "origin_server_ts must be an integer")
    pdus, edus = body.get("pdus", []), body.get("edus", [])
    if not isinstance(pdus, list) or not all(isinstance(p, dict) for p in pdus):
        raise MatrixError(400, Codes.BAD_JSON, "pdus must be a list of objects")
    if not isinstance(edus, list) or not all(isinstance(e, dict) for e in edus):
        raise MatrixError(400, Codes.BAD_JSON, "edus must be a list of objects")
    # The counts are rules of the body's schema (spec: "Must not include more than 50 PDUs / 100 EDUs"):
    # 400 like every other malformed body; 413 stays for bodies over max_transaction_bytes.
    if len(pdus) > MAX_PDUS:
        raise MatrixError(400, Codes.BAD_JSON,
                          f"A transaction carries at most {MAX_PDUS} PDUs, this one has {len(pdus)}")
    if len(edus) > MAX_EDUS:
        raise MatrixError(400, Codes.BAD_JSON,
                          f"A transaction carries at most {MAX_EDUS} EDUs, this one has {len(edus)}")
    return pdus, edus


class TransactionReceiver:
    def __init__(self, server_name: str, store: ReceivedTransactions, edus: EduHandler,
                 pdu_handler: Callable[[], PduHandler], clock: Clock) -> None:
        self.server_name = server_name
        self.store = store
        self.edus = edus
        self.pdu_handler = pdu_handler
        self.clock = clock

    async def receive(self, origin: str, txn_id: str, body: JsonDict) -> JsonDict:
        pdus, edus = check_transaction(origin, txn_id, body)
        waited = 0.0
        while True:
            now = self.clock.now_ms()
            first, answer = await self.store.begin(self.server_name, origin, txn_id, now, now - STALE_ATTEMPT_MS)
            if first:
                break
            if answer is not None:
                stored: JsonDict = loads_strict(answer)
                return stored
            if waited >= REPLAY_WAIT_S:
                raise MatrixError(429, Codes.LIMIT_EXCEEDED, "This transaction is still being processed",
                                  extra={"retry_after_ms": 5000}, headers={"Retry-After": "5"})
            await asyncio.sleep(REPLAY_POLL_S)
            waited += REPLAY_POLL_S
        try:
            results = await self.pdu_handler().handle_pdus(origin, pdus) if pdus else {}
            for edu in edus:
                await self.edus.handle(origin, edu)
        except BaseException:
            await self.store.abandon(self.server_name, origin, txn_id)
            raise
        response: JsonDict = {"pdus": results}
        await self.store.finish(self.server_name, origin, txn_id, encode_canonical_json(response).decode())
        return response

    async def expire(self) -> None:
        await self.store.expire(self.clock.now_ms() - KEEP_ANSWERS_MS)
