"""A remote server that answers the server-server reads from a :class:`RemoteRoom`'s graph.

It stands in for the network (the signed transport is tested on its own) so
the gap-filling of the PDU pipeline can be driven with real signed events.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from common.errors import Codes, MatrixError
from homeserver.services.events import reference_ids
from homeserver.services.room_versions import ROOM_VERSIONS
from homeserver.services.state_res import resolve
from tests.homeserver.graph_helpers import REMOTE, RemoteRoom


@dataclass
class RoomAnswers:
    room: RemoteRoom
    # Events the remote "does not have" (to force a state fetch over the gap).
    withheld: set[str] = field(default_factory=set)
    requests: list[tuple[str, str]] = field(default_factory=list)

    def _before(self, event_id: str) -> dict[tuple[str, str], str]:
        prevs = self.room.prevs[event_id]
        rules = ROOM_VERSIONS[self.room.version]
        return resolve(rules, [self.room.state_after[p] for p in prevs], self.room.events) if prevs else {}

    def _auth_chain(self, ids: list[str]) -> list[str]:
        seen: set[str] = set()
        frontier = {a for i in ids for a in reference_ids(self.room.events[i].get("auth_events"))}
        while frontier:
            seen |= frontier
            frontier = {a for i in frontier for a in reference_ids(self.room.events[i].get("auth_events"))} - seen
        return sorted(seen)

    async def request(self, destination: str, method: str, path: str, *, query: dict[str, Any] | None = None,
                      json: Any = None, v1_wrapped: bool = False) -> dict[str, Any]:
        assert destination == REMOTE
        assert not v1_wrapped  # the room's answers are all of the current (v1 unwrapped / v2) forms
        self.requests.append((method, path.split("/")[4]))
        parts = [unquote(p) for p in path.split("/")]
        kind = parts[4]
        if kind == "event":
            if parts[5] not in self.room.events:
                raise MatrixError(404, Codes.NOT_FOUND, "Unknown event")
            return {"origin": REMOTE, "origin_server_ts": 0, "pdus": [self.room.events[parts[5]]]}
        if kind == "event_auth":
            return {"auth_chain": [self.room.events[e] for e in self._auth_chain([parts[6]])]}
        if kind == "state_ids":
            assert query is not None
            state = list(self._before(query["event_id"]).values())
            return {"pdu_ids": state, "auth_chain_ids": self._auth_chain(state)}
        if kind == "get_missing_events":
            assert json is not None
            stop = set(json["earliest_events"])
            found: list[str] = []
            frontier = [p for e in json["latest_events"] for p in self.room.prevs[e]]
            while frontier and len(found) < json["limit"]:
                event_id = frontier.pop(0)
                if event_id in stop or event_id in found or event_id in self.withheld:
                    continue
                found.append(event_id)
                frontier += self.room.prevs[event_id]
            found.sort(key=lambda e: self.room.events[e]["depth"])
            return {"events": [self.room.events[e] for e in found]}
        raise MatrixError(404, Codes.UNRECOGNIZED, path)
