"""Throwaway MariaDB/MySQL databases for tests (created, then dropped)."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator

MYSQL_URL = os.environ.get("PARLEY_TEST_MYSQL_URL", "mysql://root:@127.0.0.1:3306")


@contextlib.contextmanager
def mysql_database(prefix: str) -> Iterator[str]:
    """Create ``<prefix>_<random>`` (exact, no-pad collation) and yield its URL; drop it after."""
    import pymysql

    name = f"{prefix}_{secrets.token_hex(4)}"
    creds, _, hostport = MYSQL_URL.removeprefix("mysql://").partition("@")
    user, _, password = creds.partition(":")
    host, _, port = hostport.partition(":")
    conn = pymysql.connect(host=host, port=int(port or 3306), user=user, password=password)
    try:
        with conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE {name} CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin")
        yield f"{MYSQL_URL}/{name}"
    finally:
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {name}")
        conn.close()
