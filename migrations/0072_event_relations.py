"""Event relations (client-server API, "Relationships": /relations, /threads):
which event each event points at with ``m.relates_to`` (issue 21).

Filled for new events when they are stored; existing events are copied here
from their JSON by this migration.  Readers join ``events`` and skip redacted
ones, so a redaction or a purge needs no change here.
"""

from __future__ import annotations

from migrations.ddl import create_index, create_table

_PATH = "'$.content.\"m.relates_to\".{}'"


def _backfill(dialect: str) -> str:
    if dialect == "sqlite":
        def value(field: str) -> str:
            return f"json_extract(pdu, {_PATH.format(field)})"

        def is_text(field: str) -> str:
            return f"json_type(pdu, {_PATH.format(field)}) = 'text'"
        valid = "json_valid(pdu)"
    else:
        def value(field: str) -> str:
            return f"JSON_UNQUOTE(JSON_EXTRACT(pdu, {_PATH.format(field)}))"

        def is_text(field: str) -> str:
            return f"JSON_TYPE(JSON_EXTRACT(pdu, {_PATH.format(field)})) = 'STRING'"
        valid = "JSON_VALID(pdu)"
    return (
        "INSERT INTO event_relations (event_id, room_id, relates_to, rel_type, type, sender, stream_pos) "
        f"SELECT event_id, room_id, {value('event_id')}, {value('rel_type')}, type, sender, stream_pos "
        f"FROM events WHERE INSTR(pdu, 'm.relates_to') > 0 AND {valid} "
        f"AND {is_text('event_id')} AND {is_text('rel_type')} "
        f"AND LENGTH({value('event_id')}) BETWEEN 1 AND 255 AND LENGTH({value('rel_type')}) BETWEEN 1 AND 255"
    )


def upgrade(dialect: str) -> list[str]:
    return [
        create_table(
            dialect,
            "event_relations",
            [
                ("event_id", "id", "NOT NULL"),
                ("room_id", "id", "NOT NULL"),
                ("relates_to", "id", "NOT NULL"),
                ("rel_type", "id", "NOT NULL"),
                ("type", "id", "NOT NULL"),
                ("sender", "id", "NOT NULL"),
                ("stream_pos", "bigint", "NOT NULL"),
            ],
            primary_key=["event_id"],
        ),
        create_index(dialect, "event_relations", "ix_event_relations_parent",
                     ["room_id", "relates_to", "stream_pos"]),
        create_index(dialect, "event_relations", "ix_event_relations_type",
                     ["room_id", "rel_type", "stream_pos"]),
        _backfill(dialect),
    ]
