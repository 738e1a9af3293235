"""Profile fields with their visibility, e-mail lookups, and server secrets
(the key behind placeholder user ids)."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class ProfileField(Model):
    # Key is (user_id, field_name); written with raw SQL upserts.
    user_id = fields.CharField(max_length=255, primary_key=True)
    field_name = fields.CharField(max_length=128)
    value = fields.TextField(null=True)
    visibility = fields.CharField(max_length=16)
    updated_ts = fields.BigIntField()

    class Meta:
        table = "profile_fields"


class EmailLookup(Model):
    # Key is (asker, target); written with raw SQL upserts.
    asker = fields.CharField(max_length=255, primary_key=True)
    target = fields.CharField(max_length=255)
    last_ts = fields.BigIntField()

    class Meta:
        table = "email_lookups"


class ServerSecret(Model):
    name = fields.CharField(max_length=64, primary_key=True)
    value = fields.CharField(max_length=128)

    class Meta:
        table = "server_secrets"
