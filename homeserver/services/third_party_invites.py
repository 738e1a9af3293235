"""Inviting by third-party identifier (client-server API "Third-party invites",
Identity Service API "Invitation storage", server-server API "3pid/onbind").

``POST /rooms/{id}/invite`` with ``id_server``, ``medium`` and ``address`` looks the
identifier up at the identity server: a bound one is invited as that user; an
unbound one is stored there and published in the room as an
``m.room.third_party_invite`` (state key: the invite's token).  When the identifier
is bound later, the identity server calls ``/_matrix/federation/v1/3pid/onbind``
with its signature over (mxid, token); the homeserver then makes the invite in the
inviter's name.  A client may also present such a signature itself when joining
(``third_party_signed``).  The signature must be by a key the room's invite
published and that the identity server still vouches for (``key_validity_url``).
"""

from __future__ import annotations

import logging
from typing import Any

from common.errors import Codes, MatrixError
from common.identifiers import parse_user_id
from homeserver.services.event_auth_tpi import published_keys, verifying_keys
from homeserver.services.events import EventSpec
from homeserver.services.identity_client import IdentityServerClient
from homeserver.services.membership import MembershipService
from homeserver.services.threepids import required_text

logger = logging.getLogger(__name__)

JsonDict = dict[str, Any]
TPI = "m.room.third_party_invite"


def _display_name(address: str) -> str:
    """What the room shows for an unbound invitee: the address with its local part cut short."""
    local, _, domain = address.partition("@")
    return f"{local[:3]}...@{domain}" if domain else f"{address[:3]}..."


class ThirdPartyInviteService:
    def __init__(self, membership: MembershipService, identity: IdentityServerClient, server_name: str) -> None:
        self.membership = membership
        self.identity = identity
        self.server_name = server_name

    def check_request(self, body: JsonDict) -> tuple[str, str, str, str]:
        """medium, address, id_server and id_access_token of an invite, or a clear error."""
        medium, address = required_text(body, "medium"), required_text(body, "address")
        id_server = self.identity.check_server(body.get("id_server"))
        return medium, address, id_server, required_text(body, "id_access_token")

    async def invite(self, user_id: str, room_id: str, body: JsonDict) -> None:
        """POST /rooms/{roomId}/invite with a third-party identifier."""
        medium, address, id_server, token = self.check_request(body)
        await self.membership.check_entry(room_id)
        # Told to no identity server before the inviter is known to be in the room.
        held = await self.membership.repo.membership(room_id, user_id)
        if held is None or held.membership != "join":
            raise MatrixError(403, Codes.FORBIDDEN, "You are not in this room")
        mxid = await self.identity.lookup(id_server, token, medium, address)
        if mxid is not None:
            await self.membership.invite(user_id, room_id, mxid)
            return
        stored = await self.identity.store_invite(
            id_server, token, {"medium": medium, "address": address, "room_id": room_id, "sender": user_id})
        keys = [k for k in stored["public_keys"] if isinstance(k, dict)
                and isinstance(k.get("public_key"), str) and isinstance(k.get("key_validity_url"), str)]
        if not keys:
            raise MatrixError(502, Codes.UNKNOWN, "The identity server gave no usable public keys")
        display_name = stored.get("display_name")
        content = {
            "display_name": display_name if isinstance(display_name, str) else _display_name(address),
            "key_validity_url": keys[0]["key_validity_url"], "public_key": keys[0]["public_key"],
            "public_keys": [{"public_key": k["public_key"], "key_validity_url": k["key_validity_url"]} for k in keys],
        }
        await self.membership.sender.send(room_id, [EventSpec(TPI, user_id, content, stored["token"])])

    async def on_bind(self, body: JsonDict) -> None:
        """POST /_matrix/federation/v1/3pid/onbind: the invites waiting for the identifier
        are made good, each on its own (a failing one does not stop the others).  When
        none of them could be, the identity server is told why (the first reason)."""
        mxid, invites = body.get("mxid"), body.get("invites", [])
        if not isinstance(mxid, str) or not isinstance(invites, list):
            raise MatrixError(400, Codes.BAD_JSON, "mxid and invites are required")
        failures: list[MatrixError] = []
        completed = 0
        for invite in invites:
            signed = invite.get("signed") if isinstance(invite, dict) else None
            room_id, sender = (invite.get("room_id"), invite.get("sender")) if isinstance(invite, dict) else (None, None)
            if not isinstance(signed, dict) or signed.get("mxid") != mxid \
                    or not isinstance(room_id, str) or not isinstance(sender, str):
                failures.append(MatrixError(400, Codes.BAD_JSON, "An invite lacks signed, room_id or sender"))
                continue
            try:
                await self._complete(room_id, sender, mxid, signed)
                completed += 1
            except MatrixError as exc:
                logger.info("third-party invite to %s in %s not completed: %s", mxid, room_id, exc.message)
                failures.append(exc)
        if failures and not completed:
            raise failures[0]

    async def join(self, user_id: str, room_id: str, third_party_signed: Any) -> None:
        """``third_party_signed`` of /join: the invite is made from it, then the join."""
        if not isinstance(third_party_signed, dict):
            raise MatrixError(400, Codes.BAD_JSON, "third_party_signed must be an object")
        sender = required_text(third_party_signed, "sender")
        if required_text(third_party_signed, "mxid") != user_id:
            raise MatrixError(403, Codes.FORBIDDEN, "third_party_signed is for another user")
        required_text(third_party_signed, "token")
        held = await self.membership.repo.membership(room_id, user_id)
        if held is None or held.membership not in ("invite", "join"):
            await self._complete(room_id, sender, user_id, dict(third_party_signed))

    async def _complete(self, room_id: str, sender: str, mxid: str, signed: JsonDict) -> None:
        await self.membership.check_entry(room_id)
        if parse_user_id(sender)[1] != self.server_name:
            raise MatrixError(400, Codes.INVALID_PARAM, "The inviter is not on this server")
        token = signed.get("token")
        invite = await self.membership.events.state_event(room_id, TPI, token) if isinstance(token, str) else None
        if invite is None:
            raise MatrixError(403, Codes.FORBIDDEN, "No third-party invite with that token in the room")
        content = invite.content
        signers = verifying_keys(signed, published_keys(content))
        if not signers or not await self._still_valid(content, signers):
            raise MatrixError(403, Codes.FORBIDDEN, "The identity server's signature is not valid")
        member = await self.membership.rooms.member_content(mxid, "invite", {
            "third_party_invite": {"display_name": content.get("display_name", ""), "signed": signed}})
        await self.membership.sender.send(room_id, [EventSpec("m.room.member", sender, member, mxid)])

    async def _still_valid(self, content: JsonDict, signers: list[str]) -> bool:
        urls = {content.get("public_key"): content.get("key_validity_url")}
        for entry in content.get("public_keys") or []:
            if isinstance(entry, dict):
                urls[entry.get("public_key")] = entry.get("key_validity_url")
        for key in signers:
            url = urls.get(key)
            if isinstance(url, str) and await self.identity.key_is_valid(url, key):
                return True
        return False
