"""Media repository, media references, profile fields with visibility,
e-mail lookups and the server secret behind placeholder user ids."""

from __future__ import annotations

from migrations.ddl import create_index, create_table


def upgrade(dialect: str) -> list[str]:
    return [
        create_table(
            dialect,
            "media",
            [
                ("media_id", "str:64", "NOT NULL"),
                ("uploader", "id", "NOT NULL"),
                ("content_type", "str:255", "NOT NULL"),
                ("size", "bigint", "NOT NULL DEFAULT 0"),
                ("sha256", "str:64"),
                ("filename", "str:255"),
                # "pending" (created, not yet uploaded) or "complete".
                ("state", "str:16", "NOT NULL"),
                ("created_ts", "bigint", "NOT NULL"),
                ("upload_expires_ts", "bigint"),
            ],
            primary_key=["media_id"],
        ),
        create_index(dialect, "media", "ix_media_state_expiry", ["state", "upload_expires_ts"]),
        create_index(dialect, "media", "ix_media_uploader", ["uploader", "created_ts"]),
        create_table(
            dialect,
            "media_refs",
            [
                ("media_id", "str:64", "NOT NULL"),
                ("room_id", "id", "NOT NULL"),
                ("event_id", "id", "NOT NULL"),
                ("created_ts", "bigint", "NOT NULL"),
            ],
            primary_key=["media_id", "room_id", "event_id"],
        ),
        create_index(dialect, "media_refs", "ix_media_refs_room", ["room_id"]),
        create_index(dialect, "media_refs", "ix_media_refs_event", ["event_id"]),
        create_table(
            dialect,
            "profile_fields",
            [
                ("user_id", "id", "NOT NULL"),
                ("field_name", "str:128", "NOT NULL"),
                ("value", "text"),
                # "everyone", "shared_room" or "nobody".
                ("visibility", "str:16", "NOT NULL"),
                ("updated_ts", "bigint", "NOT NULL"),
            ],
            primary_key=["user_id", "field_name"],
        ),
        create_index(dialect, "profile_fields", "ix_profile_fields_name", ["field_name"]),
        create_table(
            dialect,
            "email_lookups",
            [
                ("asker", "id", "NOT NULL"),
                ("target", "id", "NOT NULL"),
                ("last_ts", "bigint", "NOT NULL"),
            ],
            primary_key=["asker", "target"],
        ),
        create_index(dialect, "email_lookups", "ix_email_lookups_target", ["target"]),
        create_table(
            dialect,
            "server_secrets",
            [
                ("name", "str:64", "NOT NULL"),
                ("value", "str:128", "NOT NULL"),
            ],
            primary_key=["name"],
        ),
    ]
