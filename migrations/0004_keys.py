"""End-to-end keys: device keys (with Parley's signed pre-key), one-time and
fallback keys, the device-list stream, key-query grants, room key backup and
device pairing sessions."""

from __future__ import annotations

from migrations.ddl import create_index, create_table


def upgrade(dialect: str) -> list[str]:
    return [
        create_table(
            dialect,
            "e2e_device_keys",
            [
                ("user_id", "id", "NOT NULL"),
                ("device_id", "str:64", "NOT NULL"),
                # The device's Ed25519 key (unpadded base64): may never change.
                ("ed25519_key", "str:64", "NOT NULL"),
                # The signed device_keys object exactly as uploaded (JSON).
                ("key_json", "text", "NOT NULL"),
                # Parley's signed pre-key, NULL for devices without one (e.g. Olm clients).
                ("spk_key", "str:64"),
                ("spk_created_ts", "bigint"),
                ("updated_ts", "bigint", "NOT NULL"),
            ],
            primary_key=["user_id", "device_id"],
        ),
        create_table(
            dialect,
            "e2e_one_time_keys",
            [
                ("id", "auto"),
                ("user_id", "id", "NOT NULL"),
                ("device_id", "str:64", "NOT NULL"),
                ("algorithm", "str:64", "NOT NULL"),
                ("key_id", "str:128", "NOT NULL"),
                ("key_json", "text", "NOT NULL"),
                ("created_ts", "bigint", "NOT NULL"),
            ],
            unique=[["user_id", "device_id", "algorithm", "key_id"]],
        ),
        create_table(
            dialect,
            "e2e_fallback_keys",
            [
                ("user_id", "id", "NOT NULL"),
                ("device_id", "str:64", "NOT NULL"),
                ("algorithm", "str:64", "NOT NULL"),
                ("key_id", "str:128", "NOT NULL"),
                ("key_json", "text", "NOT NULL"),
                ("used", "bool", "NOT NULL DEFAULT 0"),
                ("created_ts", "bigint", "NOT NULL"),
            ],
            primary_key=["user_id", "device_id", "algorithm"],
        ),
        create_table(
            dialect,
            "device_list_changes",
            [
                ("id", "auto"),
                # Position in the "device_lists" stream.
                ("position", "bigint", "NOT NULL"),
                ("user_id", "id", "NOT NULL"),
                ("device_id", "str:64", "NOT NULL"),
                ("created_ts", "bigint", "NOT NULL"),
            ],
        ),
        create_index(dialect, "device_list_changes", "ix_device_list_changes_pos", ["position"]),
        create_table(
            dialect,
            "key_query_grants",
            [
                ("requester_id", "id", "NOT NULL"),
                ("target_id", "id", "NOT NULL"),
                ("created_ts", "bigint", "NOT NULL"),
            ],
            primary_key=["requester_id", "target_id"],
        ),
        create_table(
            dialect,
            "room_key_backup_versions",
            [
                ("user_id", "id", "NOT NULL"),
                ("version", "bigint", "NOT NULL"),
                ("algorithm", "str:255", "NOT NULL"),
                ("auth_data", "text", "NOT NULL"),
                ("etag", "bigint", "NOT NULL DEFAULT 0"),
                ("deleted", "bool", "NOT NULL DEFAULT 0"),
                ("created_ts", "bigint", "NOT NULL"),
            ],
            primary_key=["user_id", "version"],
        ),
        create_table(
            dialect,
            "room_key_backup_keys",
            [
                ("user_id", "id", "NOT NULL"),
                ("version", "bigint", "NOT NULL"),
                ("room_id", "id", "NOT NULL"),
                ("session_id", "str:128", "NOT NULL"),
                ("first_message_index", "bigint", "NOT NULL"),
                ("forwarded_count", "bigint", "NOT NULL"),
                ("is_verified", "bool", "NOT NULL"),
                ("session_data", "text", "NOT NULL"),
            ],
            primary_key=["user_id", "version", "room_id", "session_id"],
        ),
        create_table(
            dialect,
            "pairing_sessions",
            [
                ("session_id", "str:64", "NOT NULL"),
                # SHA-256 of the 8-digit code (unique while the row exists).
                ("code_hash", "str:64", "NOT NULL"),
                ("poll_token_hash", "str:64", "NOT NULL"),
                # Optional: only this user may claim the code.
                ("expected_user_id", "id"),
                ("ephemeral_key", "text"),
                ("device_display_name", "str:255"),
                ("pairing_id", "str:64"),
                ("claimed_user_id", "id"),
                ("claimed_device_id", "str:64"),
                ("payload", "text"),
                ("polls", "int", "NOT NULL DEFAULT 0"),
                ("created_ts", "bigint", "NOT NULL"),
                ("expires_ts", "bigint", "NOT NULL"),
            ],
            primary_key=["session_id"],
            unique=[["code_hash"], ["pairing_id"]],
        ),
        create_index(dialect, "pairing_sessions", "ix_pairing_sessions_expires", ["expires_ts"]),
        create_table(
            dialect,
            "pairing_claim_failures",
            [
                ("user_id", "id", "NOT NULL"),
                ("window_start", "bigint", "NOT NULL"),
                ("failures", "int", "NOT NULL"),
            ],
            primary_key=["user_id"],
        ),
    ]
