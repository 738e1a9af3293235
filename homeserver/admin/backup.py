"""``backup DIR`` and ``restore DIR``: the database, the media store and the signing key.

* **SQLite**: SQLite's online backup API copies the database page by page
  while the server keeps running (a consistent snapshot, even mid-write).
* **MariaDB/MySQL**: a consistent logical dump: one ``REPEATABLE READ``
  transaction ``WITH CONSISTENT SNAPSHOT`` reads every table (JSON lines per
  table, binary values base64), so all tables show the same instant without
  locking writers.  Restoring needs an *empty* database: the schema is created
  by the migrations, then the rows are inserted.
* The media store is copied after the database snapshot (uploads in between
  are copied too, as unreferenced files; a file deleted in between is missing
  from the copy), then the server signing key, then ``manifest.json``
  (written last: a directory without it is an incomplete backup).

A backup restores only into a configuration with the same ``server_name``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import shutil
import sqlite3
import time
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from homeserver.admin.backup_media import MediaRestoreError, ensure_empty, export_store, import_store
from homeserver.config import Config
from homeserver.media_config import S3
from homeserver.storage.database import Database
from homeserver.storage.migrate import known_migrations

FORMAT = "parley-backup-1"
BATCH = 500


class BackupError(Exception):
    """The backup or restore cannot proceed; the message says why."""


def add_commands(sub: Any) -> None:
    p = sub.add_parser("backup", help="back up the database, media and signing key into DIR (online)")
    p.add_argument("directory", type=Path)
    p.set_defaults(handler=None, action="backup")
    p = sub.add_parser("restore", help="restore a backup into the configured (empty) database and folders")
    p.add_argument("directory", type=Path)
    p.set_defaults(handler=None, action="restore")


def run(config: Config, args: argparse.Namespace) -> dict[str, Any]:
    if args.action == "backup":
        return backup(config, args.directory)
    return restore(config, args.directory)


# ------------------------------------------------------------------ helpers
def _sqlite_path(config: Config) -> Path:
    return Path(unquote(urlsplit(config.database_url).path) if config.database_url.startswith("sqlite:///")
                else config.database_url[len("sqlite://"):].split("?", 1)[0])


def _mysql_connect(url: str) -> Any:
    import pymysql

    parts = urlsplit(url)
    return pymysql.connect(
        host=parts.hostname or "127.0.0.1", port=parts.port or 3306, user=unquote(parts.username or "root"),
        password=unquote(parts.password or ""), database=parts.path.lstrip("/"), charset="utf8mb4",
        init_command="SET time_zone='+00:00'",
    )


def _empty_dir(path: Path, what: str) -> None:
    if path.exists() and any(path.iterdir()):
        raise BackupError(f"{what} {path} is not empty")
    path.mkdir(parents=True, exist_ok=True, mode=0o700)


def _encode(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):
        return {"b64": base64.b64encode(bytes(value)).decode()}
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {"b64"}:
        return base64.b64decode(value["b64"])
    return value


def _schema_version(dialect: str, fetch_one: Any) -> int:
    row = fetch_one("SELECT MAX(version) FROM schema_version")
    return int(row[0] or 0) if row else 0


# ------------------------------------------------------------------ backup
def backup(config: Config, dest: Path) -> dict[str, Any]:
    _empty_dir(dest, "backup directory")
    started = time.time()
    if config.database_url.startswith("sqlite:"):
        dialect, counts, version = "sqlite", _backup_sqlite(_sqlite_path(config), dest / "homeserver.db"), 0
        with sqlite3.connect(dest / "homeserver.db") as check:
            version = _schema_version("sqlite", lambda q: check.execute(q).fetchone())
    else:
        dialect = "mysql"
        counts, version = _dump_mysql(config.database_url, dest / "database")
    if config.media.store == S3:
        media = asyncio.run(export_store(config, dest / "media"))
    else:
        media = _copy_media(config.media_path, dest / "media")
    key = config.data_path / "signing.key"
    if key.exists():
        shutil.copy2(key, dest / "signing.key")
        os.chmod(dest / "signing.key", 0o600)
    manifest = {
        "format": FORMAT, "dialect": dialect, "server_name": config.server_name, "schema_version": version,
        "created_ts": int(started * 1000), "tables": counts, "media_files": media,
    }
    (dest / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True))
    return manifest


def _backup_sqlite(source: Path, target: Path) -> dict[str, int]:
    if not source.exists():
        raise BackupError(f"database {source} does not exist")
    src = sqlite3.connect(source, timeout=20)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)
        tables = [r[0] for r in dst.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                             "AND name NOT LIKE 'sqlite_%'")]
        counts = {t: int(dst.execute(f'SELECT COUNT(*) FROM "{t}"').fetchone()[0]) for t in tables}
    finally:
        dst.close()
        src.close()
    os.chmod(target, 0o600)
    return counts


def _dump_mysql(url: str, folder: Path) -> tuple[dict[str, int], int]:
    import pymysql.cursors

    folder.mkdir(mode=0o700)
    conn = _mysql_connect(url)
    counts: dict[str, int] = {}
    try:
        with conn.cursor() as cur:
            cur.execute("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            cur.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT")
            cur.execute("SHOW FULL TABLES WHERE Table_type = 'BASE TABLE'")
            tables = sorted(str(r[0]) for r in cur.fetchall())
            version = _schema_version("mysql", lambda q: (cur.execute(q), cur.fetchone())[1])
        for table in tables:
            with conn.cursor(pymysql.cursors.SSCursor) as cur, open(folder / f"{table}.jsonl", "w") as out:
                cur.execute(f"SELECT * FROM `{table}`")
                columns = [d[0] for d in cur.description]
                out.write(json.dumps({"columns": columns}) + "\n")
                n = 0
                for row in cur:
                    out.write(json.dumps([_encode(v) for v in row], ensure_ascii=False) + "\n")
                    n += 1
                counts[table] = n
        conn.commit()
    finally:
        conn.close()
    return counts, version


def _copy_media(source: Path, target: Path) -> int:
    if not source.is_dir():
        target.mkdir(mode=0o700)
        return 0
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("tmp"))
    return sum(len(files) for _, _, files in os.walk(target))


# ------------------------------------------------------------------ restore
def restore(config: Config, src: Path) -> dict[str, Any]:
    manifest_path = src / "manifest.json"
    if not manifest_path.exists():
        raise BackupError(f"{src} has no manifest.json: not a complete Parley backup")
    manifest = json.loads(manifest_path.read_text())
    if manifest.get("format") != FORMAT:
        raise BackupError(f"unknown backup format {manifest.get('format')!r}")
    if manifest["server_name"] != config.server_name:
        raise BackupError(f"the backup is of {manifest['server_name']}, the configuration is for "
                          f"{config.server_name}")
    latest = known_migrations()[-1].version
    if int(manifest["schema_version"]) > latest:
        raise BackupError("the backup was made by a newer Parley: upgrade Parley first")
    is_sqlite = config.database_url.startswith("sqlite:")
    if manifest["dialect"] != ("sqlite" if is_sqlite else "mysql"):
        raise BackupError(f"a {manifest['dialect']} backup restores only into a {manifest['dialect']} database")
    media_target = config.media_path
    if config.media.store != S3 and media_target.exists() and \
            any(p for p in media_target.iterdir() if p.name != "tmp"):
        raise BackupError(f"media folder {media_target} is not empty")
    key_target = config.data_path / "signing.key"
    if key_target.exists() and (src / "signing.key").exists() and \
            key_target.read_bytes() != (src / "signing.key").read_bytes():
        raise BackupError(f"{key_target} exists and holds another key")
    if config.media.store == S3:
        try:
            asyncio.run(ensure_empty(config))
        except MediaRestoreError as exc:
            raise BackupError(str(exc)) from None
    if is_sqlite:
        _restore_sqlite(src / "homeserver.db", _sqlite_path(config))
    else:
        _restore_mysql(config.database_url, src / "database")
    # Bring a backup made by an older Parley up to date.
    asyncio.run(_migrate(config.database_url))
    config.data_path.mkdir(parents=True, exist_ok=True, mode=0o700)
    if (src / "media").is_dir() and config.media.store == S3:
        asyncio.run(import_store(config, src / "media"))
    elif (src / "media").is_dir():
        shutil.copytree(src / "media", media_target, dirs_exist_ok=True)
        os.chmod(media_target, 0o700)
    if (src / "signing.key").exists() and not key_target.exists():
        shutil.copy2(src / "signing.key", key_target)
        os.chmod(key_target, 0o600)
    return {"restored": str(src), "server_name": config.server_name, "tables": manifest["tables"]}


async def _migrate(url: str) -> None:
    database = Database(url)
    await database.open()
    await database.close()


def _restore_sqlite(source: Path, target: Path) -> None:
    if target.exists() and target.stat().st_size > 0:
        raise BackupError(f"database {target} already exists: restore into an empty location")
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    src = sqlite3.connect(source)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()
    os.chmod(target, 0o600)


def _restore_mysql(url: str, folder: Path) -> None:
    conn = _mysql_connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW TABLES")
            if cur.fetchall():
                raise BackupError("the target database is not empty: restore into an empty database")
    finally:
        conn.close()
    asyncio.run(_migrate(url))  # creates the schema this Parley knows
    conn = _mysql_connect(url)
    try:
        with conn.cursor() as cur:
            for path in sorted(folder.glob("*.jsonl")):
                table = path.stem
                if table == "schema_version":
                    continue  # the migrations just recorded the schema as it now is
                with open(path) as rows:
                    columns = json.loads(rows.readline())["columns"]
                    cur.execute(f"DELETE FROM `{table}`")
                    sql = (f"INSERT INTO `{table}` ({', '.join(f'`{c}`' for c in columns)}) "
                           f"VALUES ({', '.join('%s' for _ in columns)})")
                    batch: list[list[Any]] = []
                    for line in rows:
                        batch.append([_decode(v) for v in json.loads(line)])
                        if len(batch) >= BATCH:
                            cur.executemany(sql, batch)
                            batch = []
                    if batch:
                        cur.executemany(sql, batch)
        conn.commit()
    finally:
        conn.close()
