"""Invites across servers (server-server API, "Inviting to a room", ``PUT /v2/invite``).

* **A local user invites a remote user**: the invite is stored in the room as
  any event, then sent to the invitee's server with the room's stripped
  state; its signature is added to our copy.  A server that refuses gets
  the invite revoked (when the inviter may) and the client a clear error.
* **A remote server invites a local user**: the event must be the sender's
  server's, for an existing local user, of a supported room version, with
  valid signatures; this server signs it and answers.  In a room this server
  is not in, the invite and the stripped state go into the user's /sync;
  joining then goes through the inviter's server, and declining sends the
  leave back through ``make_leave``/``send_leave``.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any
from urllib.parse import quote

from common.canonical_json import encode_canonical_json
from common.errors import Codes, MatrixError
from homeserver.services.event_auth import server_of
from homeserver.services.event_sender import EventSender
from homeserver.services.events import EventSpec, compute_event_id, hash_and_sign, stripped_state
from homeserver.services.federation_events import FederationEvents
from homeserver.services.federation_joins import RemoteMembership
from homeserver.services.federation_membership import sign_event
from homeserver.services.incoming import MissingEvents
from homeserver.services.room_versions import ROOM_VERSIONS, RoomVersion
from homeserver.services.server_acl import ACL, check_server_allowed
from homeserver.signing_key import SigningKey
from homeserver.storage.accounts import UserRepository
from homeserver.storage.remote_membership import RemoteMembershipRepository

logger = logging.getLogger(__name__)
JsonDict = dict[str, Any]
MEMBER = "m.room.member"
INVITE_STATE_TYPES = ("m.room.create", "m.room.join_rules", "m.room.name", "m.room.avatar", "m.room.encryption",
                      "m.room.canonical_alias", "m.room.topic")
MAX_INVITE_STATE = 50
V1_INVITE_VERSIONS = ("1", "2")


def _q(value: str) -> str:
    return quote(value, safe="")


def _stripped(value: Any) -> list[JsonDict]:
    """The inviter's stripped state, kept to its documented shape."""
    out: list[JsonDict] = []
    for item in value if isinstance(value, list) else []:
        if (isinstance(item, dict) and isinstance(item.get("type"), str) and isinstance(item.get("sender"), str)
                and isinstance(item.get("state_key", ""), str) and isinstance(item.get("content"), dict)):
            out.append(stripped_state(item))
    return out[:MAX_INVITE_STATE]


class RemoteInvites:
    def __init__(self, federation: FederationEvents, remote: RemoteMembership, sender: EventSender,
                 repo: RemoteMembershipRepository, users: UserRepository, signing_key: SigningKey,
                 server_name: str) -> None:
        self.federation = federation
        self.incoming = federation.incoming
        self.events = federation.events
        self.remote = remote
        self.sender = sender
        self.repo = repo
        self.users = users
        self.signing_key = signing_key
        self.server_name = server_name

    # ------------------------------------------------------------ outgoing
    async def invite(self, inviter: str, room_id: str, target: str, content: JsonDict) -> None:
        """A local user invites ``target`` of another server."""
        [event] = await self.sender.send(room_id, [EventSpec(MEMBER, inviter, content, target)])
        head = await self.events.room_head(room_id)
        assert head is not None
        state = (await self.events.current_state([room_id], types=list(INVITE_STATE_TYPES)))[room_id]
        body = {"room_version": head.room_version, "event": event.pdu,
                "invite_room_state": [stripped_state(e.pdu) for e in state]}
        destination = server_of(target)
        tail = f"invite/{_q(room_id)}/{_q(event.event_id)}"
        # The deprecated v1 form carries no room version: only for rooms of version 1 or 2 (spec).
        v1_path = f"/_matrix/federation/v1/{tail}" if head.room_version in V1_INVITE_VERSIONS else None
        v1_body = {**event.pdu, "unsigned": {**event.pdu.get("unsigned", {}),
                                             "invite_room_state": body["invite_room_state"]}}
        try:
            answer = await self.federation.call_v2_or_v1(
                destination, f"/_matrix/federation/v2/{tail}", body, v1_path, v1_body)
        except MatrixError as exc:
            await self._revoke(inviter, room_id, target)
            raise MatrixError(exc.status if exc.status in (400, 403, 404) else 502, exc.errcode,
                              f"{destination} did not accept the invite: {exc.message}") from None
        signed = answer.get("event")
        try:  # room v6+ events are strict canonical JSON; none can carry a float
            encode_canonical_json(signed)
        except ValueError:
            await self._revoke(inviter, room_id, target)
            raise MatrixError(400, Codes.BAD_JSON,
                              f"{destination} answered the invite with an event that is not canonical JSON") from None
        signatures = signed.get("signatures") if isinstance(signed, dict) else None
        theirs = signatures.get(destination) if isinstance(signatures, dict) else None
        if isinstance(theirs, dict):
            await self.events.db.execute(
                "UPDATE events SET pdu = ? WHERE event_id = ?",
                (self._with_signatures(event.pdu, destination, theirs), event.event_id))

    @staticmethod
    def _with_signatures(pdu: JsonDict, server: str, signatures: JsonDict) -> str:
        from common.canonical_json import encode_canonical_json

        merged = {**pdu, "signatures": {**pdu.get("signatures", {}), server: dict(signatures)}}
        return encode_canonical_json(merged).decode("utf-8")

    async def _revoke(self, inviter: str, room_id: str, target: str) -> None:
        try:
            await self.sender.send(room_id, [EventSpec(MEMBER, inviter, {"membership": "leave"}, target)])
        except MatrixError as exc:
            logger.warning("could not revoke a refused invite in %s: %s", room_id, exc.message)

    # ------------------------------------------------------------ incoming
    async def on_invite(self, origin: str, room_id: str, event_id: str, body: JsonDict) -> JsonDict:
        """PUT /_matrix/federation/v2/invite/{roomId}/{eventId}"""
        identifier = body.get("room_version", "1")
        if not isinstance(identifier, str) or identifier not in ROOM_VERSIONS:
            raise MatrixError(400, Codes.INCOMPATIBLE_ROOM_VERSION,
                              f"This server does not support room version {str(identifier)[:20]!r}",
                              extra={"room_version": str(identifier)[:20]})
        version = ROOM_VERSIONS[identifier]
        pdu = body.get("event")
        content = pdu.get("content") if isinstance(pdu, dict) else None
        if not isinstance(pdu, dict) or not isinstance(content, dict) or pdu.get("type") != MEMBER \
                or content.get("membership") != "invite" or not isinstance(pdu.get("state_key"), str):
            raise MatrixError(400, Codes.BAD_JSON, "The event must be an m.room.member invite")
        target, sender = str(pdu["state_key"]), pdu.get("sender")
        if not isinstance(sender, str) or server_of(sender) != origin:
            raise MatrixError(403, Codes.FORBIDDEN, "The inviter does not belong to the requesting server")
        if pdu.get("room_id") != room_id and not version.room_id_from_create:
            raise MatrixError(400, Codes.BAD_JSON, "The event belongs to another room")
        if server_of(target) != self.server_name:
            raise MatrixError(400, Codes.BAD_JSON, "The invited user is not one of this server's")
        if await self.events.room_head(room_id) is not None:  # a denied server learns nothing more
            acl = await self.events.state_event(room_id, *ACL)
            check_server_allowed(origin, acl.content if acl is not None else None)
        user = await self.users.get(target)
        if user is None or user.deactivated:
            raise MatrixError(404, Codes.NOT_FOUND, "Unknown user")
        try:
            if compute_event_id(pdu, version) != event_id:
                raise MatrixError(400, Codes.BAD_JSON, "The event id in the path is not the event's id")
        except ValueError as exc:
            raise MatrixError(400, Codes.BAD_JSON, str(exc)) from None
        _, checked = await self.incoming.validated(identifier, pdu)
        signed = sign_event(dict(checked), self.server_name, self.signing_key, version)
        if await self._resident(room_id):
            try:
                received = await self.incoming.receive(identifier, signed)
            except MissingEvents:
                received = None  # the inviter's /send brings what is missing with it
            if received is not None and received.status == "rejected":
                raise MatrixError(403, Codes.FORBIDDEN, f"The invite is not allowed: {received.reason}")
        elif not await self.incoming.graph.get_graph_events([event_id]):
            pos = await self.repo.store(room_id, identifier, event_id, signed, self.incoming.clock.now_ms(),
                                        _stripped(body.get("invite_room_state")))
            await self.incoming.notifier.notify([target], "events", pos)
        return {"event": signed}

    def _local_leave(self, user_id: str, room_id: str, after: str, version: RoomVersion,
                     reason: str | None) -> JsonDict:
        content: JsonDict = {"membership": "leave", **({"reason": reason} if reason else {})}
        event: JsonDict = {"type": MEMBER, "state_key": user_id, "sender": user_id, "room_id": room_id,
                           "content": content, "origin_server_ts": self.incoming.clock.now_ms(), "depth": 1,
                           "auth_events": [], "prev_events": [after] if version.event_format != "v1" else []}
        if version.event_format == "v1":
            event["event_id"] = f"${secrets.token_urlsafe(18)}:{self.server_name}"
            event["origin"] = self.server_name
        return hash_and_sign(event, self.server_name, self.signing_key.version, self.signing_key.private_key,
                             version)

    async def _resident(self, room_id: str) -> bool:
        head = await self.events.room_head(room_id)
        return head is not None and head.state_group is not None

    # ------------------------------------------------------------ declining
    async def leave(self, user_id: str, room_id: str, reason: str | None = None) -> None:
        """Decline an invite to (or leave) a room this server is not in, through the inviter's server."""
        member = await self.events.state_event(room_id, MEMBER, user_id)
        servers = [server_of(member.sender)] if member is not None else []
        head = await self.events.room_head(room_id)
        version = ROOM_VERSIONS[head.room_version if head is not None else "1"]
        try:
            event = await self.remote.leave(user_id, room_id, servers, reason)
        except MatrixError as exc:
            if member is None or member.membership not in ("invite", "knock"):
                raise
            # The room's servers refuse or cannot be reached: the invite (or knock) is still declined
            # here, by a leave of our own outside the room's graph, so the user is not stuck with it.
            logger.info("declining %s in %s here only: %s", member.membership, room_id, exc.message)
            event = self._local_leave(user_id, room_id, member.event_id, version, reason)
        pos = await self.repo.store(room_id, version.identifier, compute_event_id(event, version), event,
                                    self.incoming.clock.now_ms())
        await self.incoming.notifier.notify([user_id], "events", pos)
