"""Placeholders have no devices and no keys (issue 15).

Placeholders reserved before this migration got a server-made device with
identity, signed pre-key and one-time keys (private halves discarded).  Those
keys mislead whoever invites the person (they encrypt to keys nobody holds),
so they go, together with anything queued for those devices.
"""

from __future__ import annotations

_PLACEHOLDERS = "SELECT user_id FROM users WHERE is_placeholder = 1"
_TABLES = ("e2e_one_time_keys", "e2e_fallback_keys", "e2e_device_keys", "to_device_messages",
           "access_tokens", "devices")


def upgrade(dialect: str) -> list[str]:
    del dialect  # the same statements on SQLite and MySQL
    return [f"DELETE FROM {table} WHERE user_id IN ({_PLACEHOLDERS})" for table in _TABLES]
