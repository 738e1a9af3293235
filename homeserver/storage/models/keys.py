"""End-to-end keys, room key backup and device pairing (tables of migration 0004).

The repositories in ``storage/keys.py``, ``storage/key_backup.py`` and
``storage/pairing.py`` mostly use raw SQL (conditional deletes, upserts);
these models document the tables and serve simple reads.  Tables with a
composite primary key declare one of its columns as the ORM key: never
update those rows through the ORM.
"""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class DeviceKeys(Model):
    user_id = fields.CharField(max_length=255, primary_key=True)  # PK (user_id, device_id)
    device_id = fields.CharField(max_length=64)
    ed25519_key = fields.CharField(max_length=64)
    key_json = fields.TextField()
    spk_key = fields.CharField(max_length=64, null=True)
    spk_created_ts = fields.BigIntField(null=True)
    updated_ts = fields.BigIntField()

    class Meta:
        table = "e2e_device_keys"


class OneTimeKey(Model):
    id = fields.BigIntField(primary_key=True)
    user_id = fields.CharField(max_length=255)
    device_id = fields.CharField(max_length=64)
    algorithm = fields.CharField(max_length=64)
    key_id = fields.CharField(max_length=128)
    key_json = fields.TextField()
    created_ts = fields.BigIntField()

    class Meta:
        table = "e2e_one_time_keys"


class FallbackKey(Model):
    user_id = fields.CharField(max_length=255, primary_key=True)  # PK (user_id, device_id, algorithm)
    device_id = fields.CharField(max_length=64)
    algorithm = fields.CharField(max_length=64)
    key_id = fields.CharField(max_length=128)
    key_json = fields.TextField()
    used = fields.BooleanField(default=False)
    created_ts = fields.BigIntField()

    class Meta:
        table = "e2e_fallback_keys"


class DeviceListChange(Model):
    id = fields.BigIntField(primary_key=True)
    position = fields.BigIntField()
    user_id = fields.CharField(max_length=255)
    device_id = fields.CharField(max_length=64)
    created_ts = fields.BigIntField()

    class Meta:
        table = "device_list_changes"


class KeyQueryGrant(Model):
    requester_id = fields.CharField(max_length=255, primary_key=True)  # PK (requester_id, target_id)
    target_id = fields.CharField(max_length=255)
    created_ts = fields.BigIntField()

    class Meta:
        table = "key_query_grants"


class RoomKeyBackupVersion(Model):
    user_id = fields.CharField(max_length=255, primary_key=True)  # PK (user_id, version)
    version = fields.BigIntField()
    algorithm = fields.CharField(max_length=255)
    auth_data = fields.TextField()
    etag = fields.BigIntField(default=0)
    deleted = fields.BooleanField(default=False)
    created_ts = fields.BigIntField()

    class Meta:
        table = "room_key_backup_versions"


class RoomKeyBackupKey(Model):
    user_id = fields.CharField(max_length=255, primary_key=True)  # PK (user_id, version, room_id, session_id)
    version = fields.BigIntField()
    room_id = fields.CharField(max_length=255)
    session_id = fields.CharField(max_length=128)
    first_message_index = fields.BigIntField()
    forwarded_count = fields.BigIntField()
    is_verified = fields.BooleanField()
    session_data = fields.TextField()

    class Meta:
        table = "room_key_backup_keys"


class PairingSession(Model):
    session_id = fields.CharField(max_length=64, primary_key=True)
    code_hash = fields.CharField(max_length=64)
    poll_token_hash = fields.CharField(max_length=64)
    expected_user_id = fields.CharField(max_length=255, null=True)
    ephemeral_key = fields.TextField(null=True)
    device_display_name = fields.CharField(max_length=255, null=True)
    pairing_id = fields.CharField(max_length=64, null=True)
    claimed_user_id = fields.CharField(max_length=255, null=True)
    claimed_device_id = fields.CharField(max_length=64, null=True)
    payload = fields.TextField(null=True)
    approving_key = fields.TextField(null=True)
    polls = fields.IntField(default=0)
    created_ts = fields.BigIntField()
    expires_ts = fields.BigIntField()

    class Meta:
        table = "pairing_sessions"


class PairingClaimFailures(Model):
    user_id = fields.CharField(max_length=255, primary_key=True)
    window_start = fields.BigIntField()
    failures = fields.IntField()

    class Meta:
        table = "pairing_claim_failures"
