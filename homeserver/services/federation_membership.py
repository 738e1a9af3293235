"""Membership handshakes where this server is resident in the room (server-server API:
``make_join``/``send_join`` v2, ``make_leave``/``send_leave`` v2, ``make_knock``/``send_knock``).

``make_*`` answers an unsigned event template built on the room's current
state and forward extremities, after checking that the change would be
allowed now (so the remote user learns "banned" or "invite only" before
signing anything).  For a restricted join of a user who is not invited, one
of *our* joined users who may invite is named in
``join_authorised_via_users_server`` and ``send_join`` adds this server's
signature (spec: "Restricted rooms").  ``send_*`` runs the signed event
through the incoming pipeline; only an accepted event is answered (the join
with the state before it and its auth chain), then it is handed to
``forward`` for the room's other servers.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from common.canonical_json import sign_json
from common.errors import Codes, MatrixError
from homeserver.services.event_auth import (
    CREATE,
    AuthError,
    auth_types_for_event,
    check_event_allowed,
    level_for,
    server_of,
    user_power,
)
from homeserver.services.events import compute_event_id, redact_event, stripped_state
from homeserver.services.federation_reads import FederationReads
from homeserver.services.incoming import MissingEvents
from homeserver.services.room_versions import RoomVersion
from homeserver.signing_key import SigningKey

JsonDict = dict[str, Any]
MEMBER = "m.room.member"
MAX_PREV_EVENTS = 10
KNOCK_STATE_TYPES = ("m.room.create", "m.room.join_rules", "m.room.name", "m.room.avatar", "m.room.encryption",
                     "m.room.canonical_alias", "m.room.topic")
# A PDU accepted from a remote server, for the room's other servers (the outgoing queue).
Forward = Callable[[str, JsonDict, str], Awaitable[None]]


def sign_event(pdu: JsonDict, server_name: str, key: SigningKey, version: RoomVersion) -> JsonDict:
    """Add this server's signature to an event someone else hashed (its hashes are kept)."""
    redacted = redact_event(pdu, version)
    redacted.pop("signatures", None)
    redacted.pop("unsigned", None)
    sign_json(redacted, server_name, key.version, key.private_key)
    signature = redacted["signatures"][server_name][key.key_id]
    pdu.setdefault("signatures", {}).setdefault(server_name, {})[key.key_id] = signature
    return pdu


class ResidentMembership:
    def __init__(self, reads: FederationReads, signing_key: SigningKey, server_name: str) -> None:
        self.reads = reads
        self.incoming = reads.incoming
        self.events = reads.events
        self.graph = reads.graph
        self.signing_key = signing_key
        self.server_name = server_name
        self.forward: Forward | None = None

    # ------------------------------------------------------------ make_*
    async def _resident(self, origin: str, room_id: str, user_id: str) -> RoomVersion:
        version = await self.reads.room_version(room_id)
        await self.reads.check_acl(origin, room_id)
        if server_of(user_id) != origin:
            raise MatrixError(403, Codes.FORBIDDEN, "The user does not belong to the requesting server")
        joined = await self.incoming.events_joined(room_id)
        if not any(server_of(u) == self.server_name for u in joined):
            raise MatrixError(404, Codes.NOT_FOUND, "This server has no user in that room")
        return version

    async def _state(self, room_id: str) -> dict[tuple[str, str], JsonDict]:
        current = (await self.events.current_state([room_id]))[room_id]
        return {(e.type, e.state_key or ""): {**e.pdu, "event_id": e.event_id} for e in current}

    async def make(self, origin: str, room_id: str, user_id: str, membership: str,
                   supported: list[str] | None = None) -> JsonDict:
        """GET /_matrix/federation/v1/make_{join,leave,knock}/{roomId}/{userId}"""
        version = await self._resident(origin, room_id, user_id)
        if supported is not None and version.identifier not in supported:
            raise MatrixError(400, Codes.INCOMPATIBLE_ROOM_VERSION,
                              f"The room is of version {version.identifier}, which the server does not support",
                              extra={"room_version": version.identifier})
        if membership == "knock" and not version.knocking:
            raise MatrixError(400, Codes.INCOMPATIBLE_ROOM_VERSION, "Knocking needs room version 7 or later",
                              extra={"room_version": version.identifier})
        state = await self._state(room_id)
        content: JsonDict = {"membership": membership}
        if membership == "join":
            via = await self._authoriser(state, room_id, user_id, version)
            if via is not None:
                content["join_authorised_via_users_server"] = via
        template = await self._template(room_id, user_id, content, state, version, origin)
        try:
            check_event_allowed(template, {k: v for k, v in state.items()
                                           if k in [CREATE, *auth_types_for_event(MEMBER, user_id, user_id, content,
                                                                                   version)]})
        except AuthError as exc:
            raise MatrixError(403, Codes.FORBIDDEN, f"The {membership} would not be allowed: {exc.message}") from None
        return {"room_version": version.identifier, "event": template}

    async def _authoriser(self, state: dict[tuple[str, str], JsonDict], room_id: str, user_id: str,
                          version: RoomVersion) -> str | None:
        rule = (state.get(("m.room.join_rules", "")) or {}).get("content", {}).get("join_rule")
        if not version.restricted or rule not in ("restricted", "knock_restricted"):
            return None
        current = (state.get((MEMBER, user_id)) or {}).get("content", {}).get("membership")
        if current in ("join", "invite"):
            return None
        allow = (state.get(("m.room.join_rules", "")) or {}).get("content", {}).get("allow") or []
        rooms = [c.get("room_id") for c in allow if isinstance(c, dict) and c.get("type") == "m.room_membership"]
        members = await self.events.member_events([(str(r), user_id) for r in rooms if isinstance(r, str)])
        if not any(e.membership == "join" for e in members.values()):
            raise MatrixError(403, Codes.FORBIDDEN, "The user is not joined to a room this room admits "
                                                    "(as far as this server knows)")
        invite_level = level_for(state, "invite")
        local = sorted((k[1] for k, e in state.items() if k[0] == MEMBER and server_of(k[1]) == self.server_name
                        and e.get("content", {}).get("membership") == "join"
                        and user_power(state, k[1]) >= invite_level), key=lambda u: -user_power(state, u))
        if not local:
            raise MatrixError(400, Codes.UNABLE_TO_AUTHORISE_JOIN, "No user of this server can authorise the join")
        return local[0]

    async def _template(self, room_id: str, user_id: str, content: JsonDict,
                        state: dict[tuple[str, str], JsonDict], version: RoomVersion, origin: str) -> JsonDict:
        extremities = (await self.graph.extremities(room_id))[:MAX_PREV_EVENTS]
        prev_ids = [e for e, _ in extremities]
        # Each auth event once: the create event is among the selected types already (before v12),
        # and Synapse rejects an event naming one twice (spec: duplicate entries are rejected).
        keys = dict.fromkeys([CREATE, *auth_types_for_event(MEMBER, user_id, user_id, content, version)])
        auth = [state[k] for k in keys if k in state and not (version.room_id_from_create and k == CREATE)]
        prev = await self.graph.get_graph_events(prev_ids)
        template: JsonDict = {
            "type": MEMBER, "state_key": user_id, "sender": user_id, "content": content, "room_id": room_id,
            "depth": max((p.depth for p in prev.values()), default=0) + 1,
            "origin_server_ts": self.incoming.clock.now_ms(),
            "prev_events": prev_ids, "auth_events": [a["event_id"] for a in auth],
        }
        if version.event_format == "v1":
            template["prev_events"] = [[e, prev[e].pdu.get("hashes", {}) if e in prev else {}] for e in prev_ids]
            template["auth_events"] = [[a["event_id"], a.get("hashes", {})] for a in auth]
            template["event_id"] = f"${secrets.token_urlsafe(18)}:{origin}"
            template["origin"] = origin
        return template

    # ------------------------------------------------------------ send_*
    async def send(self, origin: str, room_id: str, event_id: str, pdu: Any, membership: str) -> JsonDict:
        """PUT /_matrix/federation/v2/send_{join,leave,knock}/{roomId}/{eventId}"""
        if not isinstance(pdu, dict):
            raise MatrixError(400, Codes.BAD_JSON, "The body must be the signed event")
        content = pdu.get("content")
        user_id = pdu.get("sender")
        if (pdu.get("type") != MEMBER or not isinstance(content, dict) or content.get("membership") != membership
                or not isinstance(user_id, str) or pdu.get("state_key") != user_id):
            raise MatrixError(400, Codes.BAD_JSON, f"The event must be the user's own {membership} member event")
        if pdu.get("room_id") != room_id:
            raise MatrixError(400, Codes.BAD_JSON, "The event belongs to another room")
        version = await self._resident(origin, room_id, user_id)
        if membership == "knock" and not version.knocking:
            raise MatrixError(400, Codes.INCOMPATIBLE_ROOM_VERSION, "Knocking needs room version 7 or later")
        try:
            computed = compute_event_id(pdu, version)
        except ValueError as exc:
            raise MatrixError(400, Codes.BAD_JSON, str(exc)) from None
        if computed != event_id:
            raise MatrixError(400, Codes.BAD_JSON, "The event id in the path is not the event's id")
        via = content.get("join_authorised_via_users_server")
        if membership == "join" and version.restricted and isinstance(via, str):
            if server_of(via) != self.server_name:
                raise MatrixError(400, Codes.BAD_JSON, "The join is authorised by a user of another server")
            pdu = sign_event(pdu, self.server_name, self.signing_key, version)
        try:
            received = await self.incoming.receive(version.identifier, pdu)
        except MissingEvents as missing:
            raise MatrixError(400, Codes.BAD_JSON, f"The event refers to unknown events: {missing}") from None
        if received.status in ("rejected", "soft_failed"):
            raise MatrixError(403, Codes.FORBIDDEN, f"The {membership} is not allowed: {received.reason}")
        if self.forward is not None and received.status != "duplicate":
            await self.forward(room_id, pdu, origin)
        if membership == "leave":
            return {}
        if membership == "knock":
            state = await self._state(room_id)
            stripped = [stripped_state(e) for k, e in state.items() if k[0] in KNOCK_STATE_TYPES and k[1] == ""]
            return {"knock_room_state": stripped, "knock_state_events": stripped}
        return await self._join_answer(room_id, event_id, pdu, version)

    async def _join_answer(self, room_id: str, event_id: str, pdu: JsonDict, version: RoomVersion) -> JsonDict:
        event = (await self.graph.get_graph_events([event_id]))[event_id]
        before = await self.reads.state_before(version, event)
        state = await self.graph.get_graph_events(before.values())
        chain = await self.reads.auth_chain([*before.values(), event_id])
        servers = sorted({server_of(k[1]) for k, v in before.items() if k[0] == MEMBER and v in state
                          and (state[v].pdu.get("content") or {}).get("membership") == "join"} | {self.server_name})
        return {
            "origin": self.server_name, "event": pdu, "members_omitted": False, "servers_in_room": servers,
            "state": [e.pdu for e in state.values()],
            # The whole auth chain of the state (spec), state events in it included: the joining
            # server checks each state event against it.
            "auth_chain": [e.pdu for e in chain],
        }

