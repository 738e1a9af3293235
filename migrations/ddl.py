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


# ------------------------------------------------------ MariaDB vs Oracle MySQL
# Identifiers must compare exactly, trailing spaces included (a NO PAD binary
# collation).  MariaDB calls it utf8mb4_nopad_bin; Oracle MySQL 8 has no such
# collation but utf8mb4_0900_bin is binary and NO PAD as well.  MySQL 5.7 has
# neither (utf8mb4_bin pads), so it is refused.
MARIADB_COLLATION = "utf8mb4_nopad_bin"
MYSQL8_COLLATION = "utf8mb4_0900_bin"


def server_flavour(version: str) -> tuple[str, tuple[int, ...]]:
    """``("mariadb" | "mysql", (major, minor, ...))`` from ``SELECT VERSION()``."""
    flavour = "mariadb" if "mariadb" in version.lower() else "mysql"
    if flavour == "mariadb" and version.startswith("5.5.5-"):
        version = version[len("5.5.5-"):]  # the prefix old replication clients needed
    number = version.split("-", 1)[0]
    parts = []
    for piece in number.split("."):
        digits = "".join(ch for ch in piece if ch.isdigit())
        if not digits:
            break
        parts.append(int(digits))
    return flavour, tuple(parts)


def collation_for_server(version: str) -> str:
    flavour, number = server_flavour(version)
    if flavour == "mariadb":
        if number < (10, 2):
            raise ValueError(f"MariaDB {version} is too old: Parley needs 10.2 or later (NO PAD collations)")
        return MARIADB_COLLATION
    if number < (8, 0):
        raise ValueError(
            f"MySQL {version} is too old: Parley needs MySQL 8.0 or later (utf8mb4_0900_bin, a NO PAD collation)"
        )
    return MYSQL8_COLLATION


def adapt_to_server(statement: str, version: str) -> str:
    """A migration statement (written for MariaDB) for the server that reported ``version``."""
    collation = collation_for_server(version)
    return statement if collation == MARIADB_COLLATION else statement.replace(MARIADB_COLLATION, collation)
