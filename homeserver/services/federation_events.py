"""PDUs from other servers: the ``PduHandler`` of ``PUT /send/{txnId}`` and the fetching that
fills gaps (server-server API, "Checks performed on receipt of a PDU", "Retrieving events").

Each PDU goes through :class:`~homeserver.services.incoming.IncomingEvents`
(format, signatures, content hash, auth events, state before, soft fail).
When it names events this server lacks:

* missing **auth events**: ``GET /event_auth/{roomId}/{eventId}`` from the
  origin, stored as outliers (checked against their own auth events);
* missing **prev events**: ``POST /get_missing_events/{roomId}`` between the
  room's forward extremities and the event, the answers received oldest
  first; if a gap remains, ``GET /state_ids/{roomId}?event_id=`` at each
  missing prev event, the unknown state and auth-chain events fetched with
  ``GET /event/{eventId}`` and stored as outliers, and the event received at
  the resolution of those states.

The origin must pass the room's ``m.room.server_acl`` (checked against the
current state before anything is stored).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any, Protocol

from common.errors import Codes, MatrixError
from homeserver.services.event_auth import server_of
from homeserver.services.events import compute_event_id, reference_ids
from homeserver.services.incoming import IncomingEvents, MissingEvents, Received
from homeserver.services.room_versions import ROOM_VERSIONS, RoomVersion
from homeserver.services.server_acl import ACL, check_server_allowed
from homeserver.storage.graph import StateIds

logger = logging.getLogger(__name__)
JsonDict = dict[str, Any]
# Bounds on what one incoming event may make this server fetch.
MISSING_EVENTS_LIMIT = 10
MAX_FETCHED_STATE = 5000


class FederationRequester(Protocol):
    """The outgoing signed client (``homeserver.federation``): one request, its JSON answer;
    raises :class:`MatrixError` when the remote refuses or cannot be reached."""

    async def request(self, destination: str, method: str, path: str, *, query: dict[str, Any] | None = None,
                      json: Any = None, v1_wrapped: bool = False) -> JsonDict: ...


def unknown_endpoint(exc: MatrixError) -> bool:
    """The remote does not know the endpoint (spec, "Unsupported endpoints": 404/405 ``M_UNRECOGNIZED``;
    a 404 without a Matrix error body counts too, as servers without the route answer)."""
    remote_status = getattr(exc, "remote_status", None)
    if remote_status not in (404, 405):
        return False
    body = getattr(exc, "body", None)
    return exc.errcode == Codes.UNRECOGNIZED or not (isinstance(body, dict) and body.get("errcode"))


def _q(value: str) -> str:
    from urllib.parse import quote

    return quote(value, safe="")


def event_id_of(pdu: JsonDict, version: RoomVersion | None) -> str:
    """The id a PDU has in its room's version (best effort for a room this server does not know)."""
    try:
        return compute_event_id(pdu, version or ROOM_VERSIONS["11"])
    except (ValueError, KeyError, TypeError):
        event_id = pdu.get("event_id")
        return event_id if isinstance(event_id, str) else "$unknown"


class FederationEvents:
    def __init__(self, incoming: IncomingEvents, client: FederationRequester | None = None) -> None:
        self.incoming = incoming
        self.events = incoming.events
        self.graph = incoming.graph
        self.client = client

    async def call(self, destination: str, method: str, path: str, *, query: dict[str, Any] | None = None,
                   json: Any = None, v1_wrapped: bool = False) -> JsonDict:
        """One outgoing request; the transport's own errors become the Matrix error they stand for."""
        if self.client is None:
            raise MatrixError(400, Codes.UNKNOWN, "Federation is not enabled on this server")
        try:
            return await self.client.request(destination, method, path, query=query, json=json,
                                             v1_wrapped=v1_wrapped)
        except MatrixError:
            raise
        except Exception as exc:
            convert = getattr(exc, "to_matrix_error", None)
            if callable(convert):
                raise convert() from exc
            raise

    async def call_v2_or_v1(self, destination: str, v2_path: str, v2_body: Any, v1_path: str | None,
                            v1_body: Any) -> JsonDict:
        """``PUT`` a v2 endpoint; when the remote does not know it, the deprecated v1 form (its answer
        unwrapped from ``[200, {...}]``).  ``v1_path`` None: no v1 fallback."""
        try:
            return await self.call(destination, "PUT", v2_path, json=v2_body)
        except MatrixError as exc:
            if v1_path is None or not unknown_endpoint(exc):
                raise
            logger.info("%s does not know %s: trying the v1 form", destination[:255], v2_path.split("/")[4])
        return await self.call(destination, "PUT", v1_path, json=v1_body, v1_wrapped=True)

    # ------------------------------------------------------------ PduHandler
    async def handle_pdus(self, origin: str, pdus: list[JsonDict]) -> dict[str, JsonDict]:
        """The ``pdus`` of a transaction from ``origin``: event id -> ``{}`` or ``{"error": ...}``."""
        results: dict[str, JsonDict] = {}
        for pdu in pdus:
            if not isinstance(pdu, dict):
                continue
            room_id = pdu.get("room_id")
            head = await self.events.room_head(room_id) if isinstance(room_id, str) else None
            version = ROOM_VERSIONS.get(head.room_version) if head is not None else None
            event_id = event_id_of(pdu, version)
            if head is None or version is None:
                results[event_id] = {"error": "This server is not in that room"}
                continue
            try:
                received = await self.receive(origin, version, pdu)
            except MatrixError as exc:
                results[event_id] = {"error": f"{exc.errcode}: {exc.message}"}
                continue
            if received.status == "rejected":
                logger.info("rejected PDU %s from %s: %s", received.event_id, origin, received.reason)
                results[received.event_id] = {"error": f"rejected: {received.reason}"}
            else:
                results[received.event_id] = {}
        return results

    async def receive(self, origin: str, version: RoomVersion, pdu: JsonDict) -> Received:
        """One PDU from ``origin`` in a room this server is in, fetching what it lacks."""
        room_id = str(pdu.get("room_id"))
        acl = await self.events.state_event(room_id, *ACL)
        check_server_allowed(origin, acl.content if acl is not None else None)
        sender = pdu.get("sender")
        if not isinstance(sender, str) or ":" not in sender:
            raise MatrixError(400, Codes.BAD_JSON, "A PDU needs a sender")
        # A PDU may come from a server other than its sender's: the resident server of a
        # send_join/send_leave/send_knock passes the new member's event on to the room's other
        # servers.  Its authenticity is the sender's server's signature (checked on receipt),
        # and the room's ACL applies to that server as well as to the one relaying it.
        check_server_allowed(server_of(sender), acl.content if acl is not None else None)
        return await self._receive(origin, version, pdu, fill_gaps=True)

    async def _receive(self, origin: str, version: RoomVersion, pdu: JsonDict, fill_gaps: bool) -> Received:
        for _ in range(3):
            try:
                return await self.incoming.receive(version.identifier, pdu)
            except MissingEvents as missing:
                if self.client is None:
                    raise MatrixError(400, Codes.UNKNOWN, f"Unknown events referenced: {missing}") from None
                auth = set(reference_ids(pdu.get("auth_events")))
                if any(m in auth for m in missing.event_ids):
                    logger.info("auth events of %s unknown here (%s): asking %s", event_id_of(pdu, version),
                                str(missing)[:300], origin[:255])
                    await self.fetch_auth_chain(origin, version, pdu)
                    continue
                if not fill_gaps:
                    raise MatrixError(400, Codes.UNKNOWN, f"Unknown prev events: {missing}") from None
                await self._missing_events(origin, version, pdu)
                try:
                    return await self.incoming.receive(version.identifier, pdu)
                except MissingEvents:
                    return await self._receive_over_gap(origin, version, pdu)
        raise MatrixError(400, Codes.UNKNOWN, "The event's auth events could not be fetched")

    # ------------------------------------------------------------ fetching
    async def fetch_auth_chain(self, origin: str, version: RoomVersion, pdu: JsonDict) -> None:
        """The auth chain of ``pdu`` from ``origin`` (``event_auth``), stored as outliers."""
        event_id = event_id_of(pdu, version)
        answer = await self.call(
            origin, "GET", f"/_matrix/federation/v1/event_auth/{_q(str(pdu['room_id']))}/{_q(event_id)}")
        chain = answer.get("auth_chain")
        await self.store_outliers(version, chain if isinstance(chain, list) else [])

    async def store_outliers(self, version: RoomVersion, pdus: Iterable[Any]) -> None:
        """Events known without their place in the graph, stored after their auth events."""
        pending = sorted((p for p in pdus if isinstance(p, dict)), key=lambda p: int(p.get("depth", 0))
                         if isinstance(p.get("depth"), int) else 0)
        for _ in range(len(pending) + 1):
            if not pending:
                return
            waiting = []
            for pdu in pending:
                try:
                    await self.incoming.receive_outlier(version.identifier, pdu)
                except MissingEvents:
                    waiting.append(pdu)
                except MatrixError as exc:
                    logger.info("refused fetched event: %s", exc.message)
            if len(waiting) == len(pending):
                return  # their auth events are not to be had
            pending = waiting

    async def _missing_events(self, origin: str, version: RoomVersion, pdu: JsonDict) -> None:
        room_id = str(pdu["room_id"])
        earliest = [e for e, _ in await self.graph.extremities(room_id)]
        answer = await self.call(
            origin, "POST", f"/_matrix/federation/v1/get_missing_events/{_q(room_id)}",
            json={"earliest_events": earliest, "latest_events": [event_id_of(pdu, version)],
                  "limit": MISSING_EVENTS_LIMIT, "min_depth": 0})
        fetched = answer.get("events")
        for event in sorted((e for e in fetched if isinstance(e, dict)) if isinstance(fetched, list) else [],
                            key=lambda e: int(e.get("depth", 0)) if isinstance(e.get("depth"), int) else 0):
            try:
                await self._receive(origin, version, event, fill_gaps=False)
            except MatrixError as exc:
                logger.info("a fetched missing event was not stored: %s", exc.message)

    async def _fetch_events(self, origin: str, version: RoomVersion, event_ids: Iterable[str]) -> None:
        fetched = []
        for event_id in list(event_ids)[:MAX_FETCHED_STATE]:
            answer = await self.call(origin, "GET", f"/_matrix/federation/v1/event/{_q(event_id)}")
            pdus = answer.get("pdus")
            if isinstance(pdus, list) and pdus and isinstance(pdus[0], dict):
                fetched.append(pdus[0])
        await self.store_outliers(version, fetched)

    async def state_after(self, origin: str, version: RoomVersion, room_id: str, event_id: str) -> StateIds:
        """The state after ``event_id`` as ``origin`` has it, its events fetched and stored."""
        answer = await self.call(origin, "GET", f"/_matrix/federation/v1/state_ids/{_q(room_id)}",
                                           query={"event_id": event_id})
        ids = [i for k in ("auth_chain_ids", "pdu_ids") for i in answer.get(k) or [] if isinstance(i, str)]
        known = await self.graph.get_graph_events(ids + [event_id])
        await self._fetch_events(origin, version, [i for i in [*ids, event_id] if i not in known])
        pdu_ids = [i for i in answer.get("pdu_ids") or [] if isinstance(i, str)]
        events = await self.graph.get_graph_events(pdu_ids + [event_id])
        state: StateIds = {}
        for i in pdu_ids:
            if i in events and "state_key" in events[i].pdu:
                state[(str(events[i].pdu["type"]), str(events[i].pdu["state_key"]))] = i
        itself = events.get(event_id)
        if itself is not None and "state_key" in itself.pdu and itself.status != "rejected":
            state[(str(itself.pdu["type"]), str(itself.pdu["state_key"]))] = event_id
        return state

    async def _receive_over_gap(self, origin: str, version: RoomVersion, pdu: JsonDict) -> Received:
        room_id = str(pdu["room_id"])
        prevs = reference_ids(pdu.get("prev_events"))
        known = await self.graph.get_graph_events(prevs)
        states = []
        for prev in prevs:
            event = known.get(prev)
            if event is not None and event.state_group is not None:
                states.append(await self.graph.state_ids(event.state_group))
            else:
                states.append(await self.state_after(origin, version, room_id, prev))
        before = await self.incoming.resolve_states(version, states)
        return await self.incoming.receive_at_state(version.identifier, pdu, before)
