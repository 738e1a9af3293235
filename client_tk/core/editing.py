"""Editing one's messages and reacting to messages: the engine calls behind :class:`ChatClient`.

An edit or a reaction is an encrypted event like any message (it goes through
the outbox, so one written offline goes out when the server answers again);
how it is folded into the message it is about is :mod:`client_tk.core.relations`.
"""

from __future__ import annotations

import secrets

from client_tk.core import relations
from client_tk.core.engine import ClientEngine
from client_tk.core.transport import CLIENT_V3, q
from common.errors import MatrixError
from common.identifiers import is_valid_event_id

MAX_TEXT = 32_000


class MessageRelations(ClientEngine):
    def _target(self, room_id: str, event_id: str) -> dict[str, object]:
        if not is_valid_event_id(event_id):
            raise MatrixError(400, "M_INVALID_PARAM", "not an event id")
        cached = self.store.get_message(event_id)
        if cached is None or cached.get("room_id") != room_id:
            raise MatrixError(404, "M_NOT_FOUND", "that message is not in this conversation")
        if cached.get("redacted"):
            raise MatrixError(400, "M_INVALID_PARAM", "that message was deleted")
        return cached

    async def edit_message(self, room_id: str, event_id: str, text: str) -> str:
        """Replace the text of one of our messages (``m.replace``); returns the edit's event id."""
        cached = self._target(room_id, event_id)
        if cached.get("sender") != self.user_id:
            raise MatrixError(403, "M_FORBIDDEN", "You can only edit your own messages")
        if cached.get("kind") != "text":
            raise MatrixError(400, "M_INVALID_PARAM", "only a text message can be edited")
        text = text.strip()
        if not text:
            raise MatrixError(400, "M_INVALID_PARAM", "an edited message cannot be empty (delete it instead)")
        if len(text) > MAX_TEXT:
            raise MatrixError(413, "M_TOO_LARGE", "the message is too long")
        return await self.send_payload(room_id, relations.edit_payload(event_id, text))

    async def react(self, room_id: str, event_id: str, key: str) -> str | None:
        """Add our reaction ``key`` (``m.annotation``); None if we had reacted so already."""
        if not key or len(key) > relations.MAX_KEY:
            raise MatrixError(400, "M_INVALID_PARAM", f"a reaction has 1 to {relations.MAX_KEY} characters")
        self._target(room_id, event_id)
        if relations.own_reactions(self.store, event_id, self.user_id, key):
            return None
        return await self.send_payload(room_id, relations.reaction_payload(event_id, key))

    async def unreact(self, room_id: str, event_id: str, key: str) -> int:
        """Take our reaction ``key`` back (redacting it); returns how many were removed."""
        self._target(room_id, event_id)
        mine = relations.own_reactions(self.store, event_id, self.user_id, key)
        for reaction in mine:
            await self.http.put(f"{CLIENT_V3}/rooms/{q(room_id)}/redact/{q(reaction)}/"
                                f"{secrets.token_hex(8)}", {})
        return len(mine)
