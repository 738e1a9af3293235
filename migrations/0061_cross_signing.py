"""Cross-signing keys and the signatures users upload for keys (issue 21)."""

from __future__ import annotations

from migrations.ddl import create_index, create_table


def upgrade(dialect: str) -> list[str]:
    return [
        create_table(
            dialect,
            "cross_signing_keys",
            [
                ("user_id", "id", "NOT NULL"),
                # "master", "self_signing" or "user_signing".
                ("key_usage", "str:32", "NOT NULL"),
                ("public_key", "str:64", "NOT NULL"),
                ("key_json", "text", "NOT NULL"),
                ("updated_ts", "bigint", "NOT NULL"),
            ],
            primary_key=["user_id", "key_usage"],
        ),
        create_table(
            dialect,
            "key_signatures",
            [
                ("target_user_id", "id", "NOT NULL"),
                # A device id, or the public key of a cross-signing key.
                # (Key ids are at most 128 characters so the primary key fits MySQL's limit.)
                ("target_key_id", "str:128", "NOT NULL"),
                ("signer_user_id", "id", "NOT NULL"),
                ("signer_key_id", "str:128", "NOT NULL"),
                ("signature", "str:255", "NOT NULL"),
                ("created_ts", "bigint", "NOT NULL"),
            ],
            primary_key=["target_user_id", "target_key_id", "signer_user_id", "signer_key_id"],
        ),
        create_index(dialect, "key_signatures", "ix_key_signatures_target", ["target_user_id"]),
    ]
