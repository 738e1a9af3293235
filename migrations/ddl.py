"""A tiny portable DDL builder for the numbered migrations.

Column kinds: ``id`` (exact-compare identifier, 255 chars), ``str:N``
(exact-compare string of N chars), ``text`` (long text, e.g. JSON),
``blob``, ``int``, ``bigint``, ``bool``, ``auto`` (auto-increment
big-integer primary key).
"""

from __future__ import annotations

from collections.abc import Sequence

Column = tuple[str, str] | tuple[str, str, str]

_MYSQL_TABLE_OPTS = "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin"


def column_type(dialect: str, kind: str) -> str:
    if kind == "auto":
        return (
            "INTEGER PRIMARY KEY AUTOINCREMENT"
            if dialect == "sqlite"
            else "BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY"
        )
    if kind == "id":
        return "VARCHAR(255)"
    if kind.startswith("str:"):
        return f"VARCHAR({int(kind[4:])})"
    if kind == "text":
        return "TEXT" if dialect == "sqlite" else "LONGTEXT"
    if kind == "blob":
        return "BLOB" if dialect == "sqlite" else "LONGBLOB"
    if kind == "int":
        return "INTEGER" if dialect == "sqlite" else "INT"
    if kind == "bigint":
        return "INTEGER" if dialect == "sqlite" else "BIGINT"
    if kind == "bool":
        return "INTEGER" if dialect == "sqlite" else "TINYINT(1)"
    raise ValueError(f"unknown column kind {kind!r}")


def create_table(
    dialect: str,
    name: str,
    columns: Sequence[Column],
    primary_key: Sequence[str] = (),
    unique: Sequence[Sequence[str]] = (),
) -> str:
    """CREATE TABLE with columns ``(name, kind[, constraints])``."""
    lines = []
    for column in columns:
        col_name, kind = column[0], column[1]
        extra = column[2] if len(column) == 3 else ""
        lines.append(f"{col_name} {column_type(dialect, kind)} {extra}".rstrip())
    if primary_key:
        lines.append(f"PRIMARY KEY ({', '.join(primary_key)})")
    for i, cols in enumerate(unique):
        lines.append(f"CONSTRAINT uq_{name}_{i} UNIQUE ({', '.join(cols)})")
    body = ",\n  ".join(lines)
    opts = "" if dialect == "sqlite" else " " + _MYSQL_TABLE_OPTS
    return f"CREATE TABLE {name} (\n  {body}\n){opts}"


def create_index(dialect: str, table: str, name: str, columns: Sequence[str]) -> str:
    del dialect  # same syntax on both
    return f"CREATE INDEX {name} ON {table} ({', '.join(columns)})"


def add_column(dialect: str, table: str, column: Column) -> str:
    col_name, kind = column[0], column[1]
    extra = column[2] if len(column) == 3 else ""
    return f"ALTER TABLE {table} ADD COLUMN {col_name} {column_type(dialect, kind)} {extra}".rstrip()
