"""The materialised current state (``room_state``) rewritten from a resolved state map.

The incoming-event path resolves the state at the forward extremities and
calls these inside its room write transaction.
"""

from __future__ import annotations

from homeserver.storage.events import RoomWriter


async def set_state_row(writer: RoomWriter, key: tuple[str, str], event_id: str | None) -> None:
    """Point the current-state row of ``key`` at ``event_id`` (a timeline event), or drop it."""
    if event_id is None:
        await writer.delete_state(*key)
        return
    row = await writer.db.fetch_one("SELECT stream_pos FROM events WHERE event_id = ?", (event_id,), conn=writer.conn)
    if row is None:
        await writer.delete_state(*key)  # not a timeline event (an outlier): not shown as state
        return
    await writer.db.execute(
        writer.db.upsert_sql("room_state", ["room_id", "type", "state_key"],
                             ["room_id", "type", "state_key", "event_id", "stream_pos"]),
        (writer.room_id, key[0], key[1], event_id, int(row["stream_pos"])), conn=writer.conn,
    )


async def current_state_rows(writer: RoomWriter) -> dict[tuple[str, str], str]:
    rows = await writer.db.fetch("SELECT type, state_key, event_id FROM room_state WHERE room_id = ?",
                                 (writer.room_id,), conn=writer.conn)
    return {(str(r["type"]), str(r["state_key"])): str(r["event_id"]) for r in rows}
