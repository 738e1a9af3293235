"""Accounts, devices and access tokens."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class User(Model):
    user_id = fields.CharField(max_length=255, primary_key=True)
    localpart = fields.CharField(max_length=255)
    email = fields.CharField(max_length=254, null=True)
    password_hash = fields.CharField(max_length=255, null=True)
    login_key = fields.CharField(max_length=64, null=True)
    is_placeholder = fields.BooleanField(default=False)
    deactivated = fields.BooleanField(default=False)
    created_ts = fields.BigIntField()

    class Meta:
        table = "users"


class Device(Model):
    id = fields.BigIntField(primary_key=True)
    user_id = fields.CharField(max_length=255)
    device_id = fields.CharField(max_length=64)
    display_name = fields.CharField(max_length=255, null=True)
    last_seen_ip = fields.CharField(max_length=64, null=True)
    last_seen_ts = fields.BigIntField(null=True)
    created_ts = fields.BigIntField()

    class Meta:
        table = "devices"


class AccessToken(Model):
    id = fields.BigIntField(primary_key=True)
    token_hash = fields.CharField(max_length=64)
    user_id = fields.CharField(max_length=255)
    device_id = fields.CharField(max_length=64)
    created_ts = fields.BigIntField()
    is_guest = fields.BooleanField(default=False)

    class Meta:
        table = "access_tokens"
