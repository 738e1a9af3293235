"""Room aliases and the public room directory (client-server API, "Room Directory",
"Listing rooms").

Aliases are created here only for this server (``#name:<our server>``); an
alias of another server is resolved by asking that server (``remote``, the
federation's ``query/directory``), and so is its ``/publicRooms`` (``remote_rooms``).  A room
appears in ``/publicRooms`` when it is published
(``visibility: public`` at creation or ``PUT /directory/list/room/{roomId}``).
"""

from __future__ import annotations

from typing import Any, Protocol

from common.errors import Codes, MatrixError
from common.identifiers import parse_room_id, split_id
from homeserver.services.clock import Clock
from homeserver.services.event_auth import StateMap, required_event_level, user_power
from homeserver.services.remote_queries import RemoteQueries
from homeserver.services.rooms import RoomService
from homeserver.storage.room_directory import RoomDirectoryRepository

JsonDict = dict[str, Any]

MAX_PUBLIC_ROOMS_LIMIT = 500
DEFAULT_PUBLIC_ROOMS_LIMIT = 100
_SUMMARY_TYPES = (
    "m.room.name", "m.room.topic", "m.room.avatar", "m.room.canonical_alias", "m.room.join_rules",
    "m.room.history_visibility", "m.room.guest_access", "m.room.create",
)


class RemoteAliases(Protocol):
    async def resolve(self, server: str, alias: str) -> JsonDict: ...


def parse_alias(alias: Any) -> tuple[str, str]:
    if not isinstance(alias, str):
        raise MatrixError(400, Codes.INVALID_PARAM, "Room aliases are strings")
    local, server = split_id(alias, "#")
    if any(c.isspace() for c in local):
        raise MatrixError(400, Codes.INVALID_PARAM, "Room aliases contain no white space")
    return local, server


class RoomDirectoryService:
    def __init__(self, repo: RoomDirectoryRepository, rooms: RoomService, clock: Clock) -> None:
        self.repo = repo
        self.rooms = rooms
        self.clock = clock
        self.server_name = rooms.server_name
        # Set by the federation layer when it is on: resolves other servers' aliases.
        self.remote: RemoteAliases | None = None
        # Other servers' /publicRooms (set by the composition root when federation is on).
        self.remote_rooms: RemoteQueries | None = None

    # ----------------------------------------------------------------- aliases
    def _local_alias(self, alias: Any) -> str:
        _, server = parse_alias(alias)
        if server != self.server_name:
            raise MatrixError(400, Codes.INVALID_PARAM, "Aliases can only be created on this server")
        return str(alias)

    async def alias_for_new_room(self, name: Any) -> str:
        """``room_alias_name`` of createRoom: the full alias, refused early if taken."""
        if not isinstance(name, str) or not name or ":" in name or "#" in name:
            raise MatrixError(400, Codes.INVALID_PARAM, "room_alias_name must be the alias' local part")
        alias = self._local_alias(f"#{name}:{self.server_name}")
        if await self.repo.alias(alias) is not None:
            raise MatrixError(400, Codes.ROOM_IN_USE, "Room alias already taken")
        return alias

    async def add_for_new_room(self, alias: str, room_id: str, creator: str) -> None:
        if not await self.repo.add_alias(alias, room_id, creator, self.clock.now_ms()):
            raise MatrixError(400, Codes.ROOM_IN_USE, "Room alias already taken")

    async def put_alias(self, user_id: str, alias: Any, room_id: Any) -> None:
        """PUT /directory/room/{roomAlias}"""
        alias = self._local_alias(alias)
        if not isinstance(room_id, str):
            raise MatrixError(400, Codes.MISSING_PARAM, "room_id is required")
        parse_room_id(room_id)
        if await self.rooms.events.room_head(room_id) is None:
            raise MatrixError(404, Codes.NOT_FOUND, "Unknown room")
        await self.rooms.require_joined(user_id, room_id)
        if not await self.repo.add_alias(alias, room_id, user_id, self.clock.now_ms()):
            raise MatrixError(409, Codes.UNKNOWN, "Room alias already exists")

    async def resolve(self, alias: Any) -> JsonDict:
        """GET /directory/room/{roomAlias}"""
        _, server = parse_alias(alias)
        if server != self.server_name:
            if self.remote is None:
                raise MatrixError(404, Codes.NOT_FOUND, f"Room alias {str(alias)[:80]} not found")
            return await self.remote.resolve(server, str(alias))
        row = await self.repo.alias(str(alias))
        if row is None:
            raise MatrixError(404, Codes.NOT_FOUND, f"Room alias {str(alias)[:80]} not found")
        return {"room_id": row.room_id, "servers": [self.server_name]}

    async def room_id_for(self, alias: str) -> str:
        return str((await self.resolve(alias))["room_id"])

    async def _state(self, room_id: str) -> StateMap:
        events = (await self.rooms.events.current_state([room_id]))[room_id]
        return {(e.type, e.state_key or ""): e.pdu for e in events}

    async def _may_administer(self, user_id: str, room_id: str) -> bool:
        """Whether ``user_id`` may change the room's canonical alias (and so its directory entries)."""
        state = await self._state(room_id)
        member = state.get(("m.room.member", user_id))
        if member is None or (member.get("content") or {}).get("membership") != "join":
            return False
        return user_power(state, user_id) >= required_event_level(state, "m.room.canonical_alias", True)

    async def delete_alias(self, user_id: str, alias: Any) -> None:
        """DELETE /directory/room/{roomAlias}: its creator or a room moderator."""
        parse_alias(alias)
        row = await self.repo.alias(str(alias))
        if row is None:
            raise MatrixError(404, Codes.NOT_FOUND, "Room alias not found")
        if row.creator != user_id and not await self._may_administer(user_id, row.room_id):
            raise MatrixError(403, Codes.FORBIDDEN, "You may not delete this alias")
        await self.repo.delete_alias(row.room_alias)

    async def room_aliases(self, user_id: str, room_id: str) -> JsonDict:
        """GET /rooms/{roomId}/aliases: for members and readers of world-readable rooms."""
        parse_room_id(room_id)
        membership = await self.rooms.repo.membership(room_id, user_id)
        if membership is None or membership.membership != "join":
            hv = await self.rooms.events.state_event(room_id, "m.room.history_visibility", "")
            if hv is None or hv.content.get("history_visibility") != "world_readable":
                raise MatrixError(403, Codes.FORBIDDEN, "You are not in this room")
        return {"aliases": await self.repo.aliases_of(room_id)}

    async def check_canonical_alias(self, room_id: str, content: JsonDict) -> None:
        """An ``m.room.canonical_alias`` event names only aliases of this room (spec: M_BAD_ALIAS)."""
        names = []
        if content.get("alias") is not None:
            names.append(content["alias"])
        alt = content.get("alt_aliases", [])
        if not isinstance(alt, list):
            raise MatrixError(400, Codes.INVALID_PARAM, "alt_aliases must be a list")
        names += alt
        for name in names:
            parse_alias(name)
            row = await self.repo.alias(str(name))
            if row is None or row.room_id != room_id:
                raise MatrixError(400, Codes.BAD_ALIAS, f"{str(name)[:80]} is not an alias of this room")

    async def check_guest_join(self, room_id_or_alias: str) -> None:
        """Guests join only rooms whose ``m.room.guest_access`` is ``can_join`` (spec)."""
        room_id = room_id_or_alias
        if room_id_or_alias.startswith("#"):
            room_id = await self.room_id_for(room_id_or_alias)
        event = await self.rooms.events.state_event(room_id, "m.room.guest_access", "")
        if event is None or event.content.get("guest_access") != "can_join":
            raise MatrixError(403, Codes.GUEST_ACCESS_FORBIDDEN, "Guests cannot join this room")

    # --------------------------------------------------------------- directory
    async def visibility(self, room_id: str) -> JsonDict:
        """GET /directory/list/room/{roomId}"""
        parse_room_id(room_id)
        if await self.rooms.events.room_head(room_id) is None:
            raise MatrixError(404, Codes.NOT_FOUND, "Unknown room")
        return {"visibility": "public" if await self.repo.is_published(room_id) else "private"}

    async def set_visibility(self, user_id: str, room_id: str, visibility: Any) -> None:
        """PUT /directory/list/room/{roomId}"""
        parse_room_id(room_id)
        if visibility not in ("public", "private"):
            raise MatrixError(400, Codes.INVALID_PARAM, "visibility must be public or private")
        if await self.rooms.events.room_head(room_id) is None:
            raise MatrixError(404, Codes.NOT_FOUND, "Unknown room")
        if not await self._may_administer(user_id, room_id):
            raise MatrixError(403, Codes.FORBIDDEN, "You may not change this room's directory visibility")
        await self.publish(room_id, visibility == "public")

    async def publish(self, room_id: str, public: bool) -> None:
        if public:
            await self.repo.publish(room_id, self.server_name, self.clock.now_ms())
        else:
            await self.repo.unpublish(room_id)

    async def public_rooms_search(self, body: JsonDict, server: Any) -> JsonDict:
        """POST /publicRooms (client and federation): the body's limit, since and filter."""
        search_filter = body.get("filter", {})
        if not isinstance(search_filter, dict):
            raise MatrixError(400, Codes.BAD_JSON, "filter must be an object")
        return await self.public_rooms(body.get("limit"), body.get("since"),
                                       search_filter.get("generic_search_term"), server)

    async def public_rooms(self, limit: Any, since: Any, search: Any, server: Any) -> JsonDict:
        """GET and POST /publicRooms: published rooms, most members first, paged by offset."""
        if server is not None and server != self.server_name:
            if self.remote_rooms is None or not isinstance(server, str):
                raise MatrixError(400, Codes.INVALID_PARAM, "Only this server's directory can be listed")
            remote_limit = limit if isinstance(limit, int) and not isinstance(limit, bool) and limit >= 0 else None
            return await self.remote_rooms.public_rooms(server, remote_limit,
                                                        since if isinstance(since, str) else None)
        if limit is None:
            limit = DEFAULT_PUBLIC_ROOMS_LIMIT
        if isinstance(limit, str) and limit.isdigit():
            limit = int(limit)
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 0:
            raise MatrixError(400, Codes.INVALID_PARAM, "limit must be a non-negative integer")
        limit = min(limit, MAX_PUBLIC_ROOMS_LIMIT)
        offset = 0
        if since is not None:
            if not isinstance(since, str) or not since.startswith("o") or not since[1:].isdigit():
                raise MatrixError(400, Codes.INVALID_PARAM, "Unknown pagination token")
            offset = int(since[1:])
        if search is not None and not isinstance(search, str):
            raise MatrixError(400, Codes.INVALID_PARAM, "generic_search_term must be a string")
        entries = await self.summaries(await self.repo.published(self.server_name))
        if search:
            needle = search.casefold()
            entries = [e for e in entries if any(
                needle in str(e.get(k, "")).casefold() for k in ("name", "topic", "canonical_alias")
            )]
        entries.sort(key=lambda e: (-int(e["num_joined_members"]), str(e["room_id"])))
        page = entries[offset:offset + limit] if limit else []
        out: JsonDict = {"chunk": page, "total_room_count_estimate": len(entries)}
        if offset + len(page) < len(entries) and limit:
            out["next_batch"] = f"o{offset + len(page)}"
        if offset > 0:
            out["prev_batch"] = f"o{max(0, offset - max(limit, 1))}"
        return out

    async def summaries(self, room_ids: list[str]) -> list[JsonDict]:
        """The public-rooms chunk entry of each room (rooms without state are left out)."""
        if not room_ids:
            return []
        states = await self.rooms.events.current_state(room_ids, _SUMMARY_TYPES)
        counts = await self.rooms.repo.member_counts(room_ids)
        entries = []
        for room_id in room_ids:
            state = {e.type: e.content for e in states.get(room_id, []) if e.state_key == ""}
            if not state:
                continue  # purged
            entry: JsonDict = {
                "room_id": room_id,
                "num_joined_members": counts.get(room_id, {}).get("join", 0),
                "world_readable": state.get("m.room.history_visibility", {}).get("history_visibility")
                == "world_readable",
                "guest_can_join": state.get("m.room.guest_access", {}).get("guest_access") == "can_join",
                "join_rule": state.get("m.room.join_rules", {}).get("join_rule", "invite"),
            }
            for key, (event_type, field) in {
                "name": ("m.room.name", "name"), "topic": ("m.room.topic", "topic"),
                "avatar_url": ("m.room.avatar", "url"), "canonical_alias": ("m.room.canonical_alias", "alias"),
            }.items():
                value = state.get(event_type, {}).get(field)
                if isinstance(value, str) and value:
                    entry[key] = value
            room_type = state.get("m.room.create", {}).get("type")
            if isinstance(room_type, str):
                entry["room_type"] = room_type
            entries.append(entry)
        return entries

    async def on_room_purged(self, room_id: str) -> None:
        await self.repo.delete_room(room_id)
