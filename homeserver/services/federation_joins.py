"""A local user joining, leaving or knocking on a room this server is not resident in
(server-server API: "Joining Rooms", "Leaving Rooms", "Knocking").

``make_*`` on one of the given servers gives an event template; this server
fills in the time (and, v1/v2, the origin), hashes and signs it, and
``send_*`` it to the same server.  For a join the answer carries the room's
state before the join and its auth chain: every event is checked (format,
signatures, content hash, its own auth events) and stored as an outlier; the
join is then received at that state, which creates the room here, puts the
state into the room's stream and the room into the user's ``/sync``.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any
from urllib.parse import quote

from common.errors import Codes, MatrixError
from homeserver.services.event_auth import CREATE, server_of
from homeserver.services.events import compute_event_id, hash_and_sign
from homeserver.services.federation_events import FederationEvents
from homeserver.services.incoming import Received
from homeserver.services.room_versions import ROOM_VERSIONS, RoomVersion
from homeserver.signing_key import SigningKey
from homeserver.storage.graph import StateIds

logger = logging.getLogger(__name__)
JsonDict = dict[str, Any]
MEMBER = "m.room.member"
MAX_VIA_SERVERS = 10


def _q(value: str) -> str:
    return quote(value, safe="")


class RemoteMembership:
    def __init__(self, federation: FederationEvents, signing_key: SigningKey, server_name: str) -> None:
        self.federation = federation
        self.incoming = federation.incoming
        self.signing_key = signing_key
        self.server_name = server_name

    def candidates(self, room_id: str, servers: list[str]) -> list[str]:
        """The servers to ask: the given ones, then the room id's own server (before v12)."""
        out = [s for s in dict.fromkeys(servers) if isinstance(s, str) and s and s != self.server_name]
        domain = room_id.partition(":")[2]
        if domain and domain != self.server_name and domain not in out:
            out.append(domain)
        if not out:
            raise MatrixError(404, Codes.NOT_FOUND, "No server to join the room through: give server_name/via")
        return out[:MAX_VIA_SERVERS]

    async def _make(self, server: str, kind: str, room_id: str, user_id: str,
                    extra: JsonDict | None) -> tuple[RoomVersion, JsonDict]:
        query = {"ver": list(ROOM_VERSIONS)} if kind in ("join", "knock") else None
        answer = await self.federation.call(
            server, "GET", f"/_matrix/federation/v1/make_{kind}/{_q(room_id)}/{_q(user_id)}", query=query)
        identifier = answer.get("room_version", "1")
        template = answer.get("event")
        if not isinstance(identifier, str) or identifier not in ROOM_VERSIONS:
            raise MatrixError(400, Codes.INCOMPATIBLE_ROOM_VERSION,
                              f"The room's version {str(identifier)[:20]!r} is not supported here")
        content = template.get("content") if isinstance(template, dict) else None
        if (not isinstance(template, dict) or not isinstance(content, dict) or template.get("type") != MEMBER
                or template.get("sender") != user_id or template.get("state_key") != user_id
                or content.get("membership") != kind or template.get("room_id") != room_id):
            raise MatrixError(502, Codes.UNKNOWN, f"{server} answered make_{kind} with an unusable template")
        version = ROOM_VERSIONS[identifier]
        event = {k: v for k, v in template.items() if k not in ("signatures", "hashes", "unsigned")}
        event["content"] = {**content, **(extra or {}), "membership": kind}
        event["origin_server_ts"] = self.incoming.clock.now_ms()
        if version.event_format == "v1":
            event["origin"] = self.server_name
            if not isinstance(event.get("event_id"), str):
                event["event_id"] = f"${secrets.token_urlsafe(18)}:{self.server_name}"
        else:
            event.pop("event_id", None)
            event.pop("origin", None)
        hash_and_sign(event, self.server_name, self.signing_key.version, self.signing_key.private_key, version)
        return version, event

    async def _handshake(self, kind: str, room_id: str, user_id: str, servers: list[str],
                         extra: JsonDict | None = None) -> tuple[str, RoomVersion, JsonDict, JsonDict]:
        """make_* then send_* on the first server that answers; (server, version, event, answer)."""
        errors: list[str] = []
        last: MatrixError | None = None
        for server in self.candidates(room_id, servers):
            try:
                version, event = await self._make(server, kind, room_id, user_id, extra)
                event_id = compute_event_id(event, version)
                tail = f"send_{kind}/{_q(room_id)}/{_q(event_id)}"
                if kind == "knock":  # send_knock has only a v1
                    answer = await self.federation.call(server, "PUT", f"/_matrix/federation/v1/{tail}", json=event)
                else:  # v2, or the deprecated v1 for a server without v2 (spec: v2 preferred)
                    answer = await self.federation.call_v2_or_v1(
                        server, f"/_matrix/federation/v2/{tail}", event, f"/_matrix/federation/v1/{tail}", event)
                return server, version, event, answer
            except MatrixError as exc:
                logger.info("%s of %s through %s failed: %s", kind, room_id, server, exc.message)
                errors.append(f"{server}: {exc.message}")
                last = exc
                if exc.status == 403:
                    break  # refused by the room's rules: another server will say the same
        assert last is not None
        # The room version a server could not offer goes to the client with its error (spec, make_join 400).
        body = getattr(last, "body", None)
        extra = ({"room_version": body["room_version"][:100]} if isinstance(body, dict)
                 and last.errcode == Codes.INCOMPATIBLE_ROOM_VERSION and isinstance(body.get("room_version"), str)
                 else None)
        raise MatrixError(last.status if last.status in (400, 403, 404) else 502, last.errcode,
                          f"Could not {kind} the room: " + "; ".join(errors)[:900], extra=extra)

    async def join(self, user_id: str, room_id: str, servers: list[str], content: JsonDict | None = None) -> str:
        """``content``: member content of ours (display name, avatar, reason) over the template's."""
        server, version, event, answer = await self._handshake("join", room_id, user_id, servers, content)
        signed = answer.get("event")
        if isinstance(signed, dict):
            try:
                if compute_event_id(signed, version) == compute_event_id(event, version):
                    event = signed  # a restricted join: now also signed by the authorising server
            except ValueError:
                pass
        state: list[Any] = answer.get("state") or []
        chain: list[Any] = answer.get("auth_chain") or []
        if not isinstance(state, list) or not isinstance(chain, list):
            raise MatrixError(502, Codes.UNKNOWN, f"{server} answered send_join without a state list")
        await self.federation.store_outliers(version, [*chain, *state])
        before = await self._state_map(version, state)
        create = (await self.incoming.graph.get_graph_events([before.get(CREATE, "")])).get(before.get(CREATE, ""))
        if create is None or (create.pdu.get("content") or {}).get("room_version", "1") != version.identifier:
            raise MatrixError(502, Codes.UNKNOWN, f"{server} sent a join state without the room's create event")
        received = await self.incoming.receive_at_state(version.identifier, event, before)
        self._check(received, "join")
        return room_id

    async def _state_map(self, version: RoomVersion, state: list[Any]) -> StateIds:
        ids = []
        for pdu in state:
            if isinstance(pdu, dict) and isinstance(pdu.get("state_key"), str):
                try:
                    ids.append(compute_event_id(pdu, version))
                except ValueError:
                    continue
        known = await self.incoming.graph.get_graph_events(ids)
        return {(str(e.pdu["type"]), str(e.pdu["state_key"])): e.event_id for e in known.values()
                if e.status != "rejected"}

    @staticmethod
    def _check(received: Received, kind: str) -> None:
        if received.status in ("rejected", "soft_failed"):
            raise MatrixError(403, Codes.FORBIDDEN, f"The {kind} was refused: {received.reason}")

    async def leave(self, user_id: str, room_id: str, servers: list[str], reason: str | None = None) -> JsonDict:
        """Leave (or decline an invite to) a room through a resident server; the signed leave."""
        extra = {"reason": reason} if reason else None
        _, _, event, _ = await self._handshake("leave", room_id, user_id, servers, extra)
        return event

    async def knock(self, user_id: str, room_id: str, servers: list[str], reason: str | None = None) -> JsonDict:
        extra = {"reason": reason} if reason else None
        _, _, event, answer = await self._handshake("knock", room_id, user_id, servers, extra)
        return {"event": event, "knock_room_state": answer.get("knock_room_state") or []}

    @staticmethod
    def servers_of(user_ids: list[str]) -> list[str]:
        return list(dict.fromkeys(server_of(u) for u in user_ids))
