"""Event and room reports: filed by users (client API), read and deleted by admins."""

from __future__ import annotations

from tests.homeserver.admin.helpers import A1, expect
from tests.homeserver.room_helpers import create_room, send_text
from tests.support.server import Account, RunningServer


async def test_reports_reach_the_admin_api(server: RunningServer, admin: Account) -> None:
    alice = await server.register("alice")
    bob = await server.register("bob")
    outsider = await server.register("outsider")
    room = await create_room(server, alice, name="Noisy", invite=[bob.user_id])
    expect(await server.api("POST", f"rooms/{room}/join", bob))
    spam = await send_text(server, alice, room, "buy now")
    expect(await server.api("POST", f"rooms/{room}/report/{spam}", bob, json={"reason": "spam", "score": -100}))
    expect(await server.api("POST", f"rooms/{room}/report", bob, json={"reason": "whole room is spam"}))
    # Only what the reporter can see can be reported.
    expect(await server.api("POST", f"rooms/{room}/report/{spam}", outsider, json={"reason": "x"}), 404,
           "M_NOT_FOUND")
    expect(await server.api("POST", f"rooms/{room}/report", outsider, json={}), 404, "M_NOT_FOUND")
    expect(await server.api("POST", f"rooms/{room}/report/{spam}", bob, json={"score": 5}), 400,
           "M_INVALID_PARAM")

    listed = expect(await server.api("GET", A1 + "/event_reports", admin, params={"room_id": room}))
    assert listed["total"] == 2
    newest, oldest = listed["event_reports"]
    assert newest["event_id"] is None and newest["reason"] == "whole room is spam"
    assert oldest["event_id"] == spam and oldest["sender"] == alice.user_id and oldest["score"] == -100
    assert oldest["user_id"] == bob.user_id and oldest["name"] == "Noisy"
    detail = expect(await server.api("GET", f"{A1}/event_reports/{oldest['id']}", admin))
    assert detail["event_json"]["content"]["body"] == "buy now" and detail["reason"] == "spam"
    forward = expect(await server.api("GET", A1 + "/event_reports", admin, params={"room_id": room, "dir": "f"}))
    assert [r["id"] for r in forward["event_reports"]] == [oldest["id"], newest["id"]]
    expect(await server.api("DELETE", f"{A1}/event_reports/{oldest['id']}", admin))
    expect(await server.api("GET", f"{A1}/event_reports/{oldest['id']}", admin), 404, "M_NOT_FOUND")
    expect(await server.api("DELETE", f"{A1}/event_reports/{oldest['id']}", admin), 404, "M_NOT_FOUND")
    expect(await server.api("GET", f"{A1}/event_reports/abc", admin), 400, "M_INVALID_PARAM")
