"""Presence rows on the "presence" stream.

A row changes position only when what others see changes (state or status
message); the ``last_seen_ts`` heartbeat of a syncing user is written
without a new position.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from homeserver.storage.database import Database, Row
from homeserver.storage.streams import StreamRepository

STREAM = "presence"

_COLUMNS = "user_id, state, status_msg, explicit, last_active_ts, last_seen_ts, stream_pos"

# Keep IN lists well below every backend's parameter limit.
_CHUNK = 500


@dataclass(frozen=True)
class PresenceRow:
    user_id: str
    state: str
    status_msg: str | None
    explicit: bool
    last_active_ts: int
    last_seen_ts: int
    stream_pos: int


def _row(row: Row) -> PresenceRow:
    return PresenceRow(
        str(row["user_id"]),
        str(row["state"]),
        None if row["status_msg"] is None else str(row["status_msg"]),
        bool(row["explicit"]),
        int(row["last_active_ts"]),
        int(row["last_seen_ts"]),
        int(row["stream_pos"]),
    )


class PresenceRepository:
    def __init__(self, db: Database, streams: StreamRepository) -> None:
        self.db = db
        self.streams = streams

    async def get(self, user_id: str) -> PresenceRow | None:
        row = await self.db.fetch_one(
            f"SELECT {_COLUMNS} FROM presence WHERE user_id = ?", (user_id,)
        )
        return _row(row) if row else None

    async def get_many(self, user_ids: Iterable[str]) -> list[PresenceRow]:
        ids = sorted(set(user_ids))
        out: list[PresenceRow] = []
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start:start + _CHUNK]
            marks = ", ".join("?" for _ in chunk)
            rows = await self.db.fetch(
                f"SELECT {_COLUMNS} FROM presence WHERE user_id IN ({marks})", chunk
            )
            out.extend(_row(r) for r in rows)
        return out

    async def changed(self, since: int, upto: int) -> list[PresenceRow]:
        rows = await self.db.fetch(
            f"SELECT {_COLUMNS} FROM presence WHERE stream_pos > ? AND stream_pos <= ? "
            "ORDER BY stream_pos",
            (since, upto),
        )
        return [_row(r) for r in rows]

    async def write(
        self,
        user_id: str,
        state: str,
        status_msg: str | None,
        keep_status_msg: bool,
        explicit: bool,
        active: bool,
        now_ms: int,
        allowed: Callable[[PresenceRow | None], bool] | None = None,
    ) -> PresenceRow | None:
        """Set ``state`` with a new stream position; return the new row, or None
        if nothing visible changed (or ``allowed(current row)`` said no)."""
        async with self.db.transaction() as conn:
            # Allocating first serialises presence writers: the read below is current.
            position = await self.streams.advance(conn, STREAM)
            row = await self.db.fetch_one(
                f"SELECT {_COLUMNS} FROM presence WHERE user_id = ?", (user_id,), conn=conn
            )
            old = _row(row) if row else None
            if allowed is not None and not allowed(old):
                return None
            if keep_status_msg:
                status_msg = old.status_msg if old else None
            last_active = now_ms if active or old is None else old.last_active_ts
            if old is not None and old.state == state and old.status_msg == status_msg:
                await self.db.execute(
                    "UPDATE presence SET last_seen_ts = ?, last_active_ts = ?, explicit = ? "
                    "WHERE user_id = ?",
                    (now_ms, last_active, explicit, user_id),
                    conn=conn,
                )
                return None
            new = PresenceRow(
                user_id, state, status_msg, explicit, last_active, now_ms, position
            )
            await self.db.execute(
                self.db.upsert_sql(
                    "presence",
                    ["user_id"],
                    ["user_id", "state", "status_msg", "explicit", "last_active_ts",
                     "last_seen_ts", "stream_pos"],
                ),
                (new.user_id, new.state, new.status_msg, new.explicit, new.last_active_ts,
                 new.last_seen_ts, new.stream_pos),
                conn=conn,
            )
            return new

    async def touch(self, user_id: str, now_ms: int, active: bool) -> None:
        """Record a sign of life (and activity) without changing what others see."""
        if active:
            await self.db.execute(
                "UPDATE presence SET last_seen_ts = ?, last_active_ts = ? WHERE user_id = ?",
                (now_ms, now_ms, user_id),
            )
        else:
            await self.db.execute(
                "UPDATE presence SET last_seen_ts = ? WHERE user_id = ?", (now_ms, user_id)
            )

    async def stale(self, seen_before_ms: int, limit: int = 1000) -> list[str]:
        """Users shown as online or unavailable who were last seen before the cutoff."""
        rows = await self.db.fetch(
            "SELECT user_id FROM presence WHERE state <> 'offline' AND last_seen_ts < ? LIMIT "
            + str(int(limit)),
            (seen_before_ms,),
        )
        return [str(r["user_id"]) for r in rows]

    async def mark_offline_if_stale(self, user_id: str, seen_before_ms: int) -> PresenceRow | None:
        """Mark one stale user offline (re-checked under the stream lock)."""
        async with self.db.transaction() as conn:
            position = await self.streams.advance(conn, STREAM)
            changed = await self.db.execute(
                "UPDATE presence SET state = 'offline', explicit = 0, stream_pos = ? "
                "WHERE user_id = ? AND state <> 'offline' AND last_seen_ts < ?",
                (position, user_id, seen_before_ms),
                conn=conn,
            )
            if not changed:
                return None
            row = await self.db.fetch_one(
                f"SELECT {_COLUMNS} FROM presence WHERE user_id = ?", (user_id,), conn=conn
            )
        return _row(row) if row else None
