"""Query parameters and tokens that used to answer 500."""

from __future__ import annotations

from tests.homeserver.room_helpers import create_room
from tests.support.server import RunningServer


async def test_stream_tokens_past_2_63_are_invalid_params(server: RunningServer) -> None:
    """SQLite cannot bind integers past 2**63: such tokens answered 500."""
    alice = await server.register()
    room = await create_room(server, alice)
    cases = [
        ("sync", {"since": "p9223372036854775808"}),
        ("sync", {"since": "p1_2_99999999999999999999"}),
        (f"rooms/{room}/messages", {"from": "t9223372036854775808"}),
        (f"rooms/{room}/messages", {"from": "t1", "to": "p9223372036854775808"}),
        ("keys/changes", {"from": "p9223372036854775808", "to": "p1"}),
    ]
    for path, params in cases:
        response = await server.api("GET", path, alice, params=params)
        assert response.status_code == 400, (path, params, response.text)
        assert response.json()["errcode"] == "M_INVALID_PARAM"

