"""A newly paired device gets the history once, as an archive (issue 15: no standing escrow)."""

from __future__ import annotations

from pathlib import Path

from client_tk.core.client import ChatClient
from client_tk.core.crypto import E2EError
from client_tk.core.history import export_messages, import_messages
from tests.client.conftest import MakeClient, bodies, until
from tests.client.plaintext import assert_server_holds_no_plaintext
from tests.client.test_multidevice import joined_dm, pair
from tests.support.server import RunningServer


def media_files(server: RunningServer) -> list[Path]:
    root = Path(server.config.media_path)
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


async def test_paired_device_reads_history_from_the_archive_and_the_archive_is_deleted(
    server: RunningServer, new_user: MakeClient, clients: list[ChatClient], tmp_path: Path
) -> None:
    alice = await new_user("alice")
    bob = await new_user("bob")
    room = await joined_dm(alice, bob)
    for text in ("the oldest message of all", "the second old message"):
        await alice.send_text(room, text)
    await bob.send_text(room, "the old reply from bob")
    await until(lambda: "the old reply from bob" in bodies(alice, room), what="reply")
    assert not alice.backup.enabled and media_files(server) == []
    alice2 = await pair(server, alice, tmp_path / "alice-dev2")
    clients.append(alice2)
    # The archive came and went: the history is on the new device, nothing left on the server.
    assert bodies(alice2, room) == ["the oldest message of all", "the second old message", "the old reply from bob"]
    assert media_files(server) == []
    assert not alice2.backup.enabled and alice2.store.items("backup_queue") == {}
    # New messages reach the new device over its own sessions.
    alice2.start()
    await until(lambda: room in alice2.rooms, what="room on the new device")
    await bob.send_text(room, "after the pairing")
    await until(lambda: "after the pairing" in bodies(alice2, room), what="new device reads")
    await assert_server_holds_no_plaintext(server.config, ["the oldest message of all", "the second old message", "the old reply from bob"])


def test_import_refuses_foreign_archives_and_keeps_only_well_formed_entries(tmp_path: Path) -> None:
    from client_tk.core.store import LocalStore

    store = LocalStore(tmp_path / "s")
    store.unlock(b"\x01" * 32)
    for bad in ({}, {"type": "parley_history", "v": 2, "messages": []}, {"type": "x", "v": 1}):
        try:
            import_messages(store, bad)
        except E2EError:
            continue
        raise AssertionError(f"accepted {bad}")
    good = {"room_id": "!r:x", "event_id": "$e", "ts": 5,
            "message": {"room_id": "!r:x", "event_id": "$e", "ts": 5, "body": "hi"}}
    mislabelled = {**good, "event_id": "$other"}  # entry and message disagree
    assert import_messages(store, {"type": "parley_history", "v": 1,
                                   "messages": [good, mislabelled, "junk"]}) == 1
    assert store.get_message("$e") is not None and store.get_message("$other") is None
    store.put("rooms", "!r:x", {})
    assert [m["event_id"] for m in export_messages(store)["messages"]] == ["$e"]
