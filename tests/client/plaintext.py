"""What the server keeps, read straight from its database and media folder,
to show that no plaintext of what clients sent ever reaches it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from pathlib import Path
from typing import Any


async def dump_database(config: Any) -> bytes:
    """Every text/blob value of every table, read straight from the database."""
    url: str = config.database.url
    out: list[bytes] = []
    if url.startswith("sqlite"):
        import sqlite3

        path = url.removeprefix("sqlite://").split("?")[0]
        db = sqlite3.connect(path)
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            for row in db.execute(f'SELECT * FROM "{table}"'):
                out += [v.encode() if isinstance(v, str) else bytes(v) for v in row
                        if isinstance(v, (str, bytes))]
        db.close()
    else:
        import pymysql

        rest = url.removeprefix("mysql://")
        creds, _, hostdb = rest.partition("@")
        user, _, password = creds.partition(":")
        hostport, _, name = hostdb.partition("/")
        host, _, port = hostport.partition(":")
        conn = pymysql.connect(host=host, port=int(port or 3306), user=user, password=password,
                               database=name.split("?")[0])
        with conn.cursor() as cur:
            cur.execute("SHOW TABLES")
            for (table,) in cur.fetchall():
                cur.execute(f"SELECT * FROM `{table}`")
                for row in cur.fetchall():
                    out += [v.encode() if isinstance(v, str) else bytes(v) for v in row
                            if isinstance(v, (str, bytes))]
        conn.close()
    return b"\n".join(out)


def read_tree(folder: Path) -> bytes:
    if not folder.exists():
        return b""
    return b"".join(p.read_bytes() for p in folder.rglob("*") if p.is_file())


async def assert_server_holds_no_plaintext(config: Any, texts: Iterable[str]) -> None:
    """No message text (long enough not to occur by chance) is in any column or media file."""
    dump = await dump_database(config)
    media = await asyncio.to_thread(read_tree, Path(config.media_path))
    assert b"m.room.encrypted" in dump  # the dump really holds the conversation
    for text in texts:
        assert len(text) >= 12, f"too short to test for: {text!r}"
        assert text.encode() not in dump, f"plaintext in the database: {text!r}"
        assert text.encode() not in media, f"plaintext in the media folder: {text!r}"
