"""Receipts, typing, presence, account data and filters (migration 0003).

The composite-key tables are written and read with raw SQL in the
repositories (upserts, stream positions); each model names the first key
column as its primary key only to satisfy Tortoise.
"""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class Receipt(Model):
    # Key is (room_id, receipt_type, user_id, thread_id).
    room_id = fields.CharField(max_length=255, primary_key=True)
    receipt_type = fields.CharField(max_length=32)
    user_id = fields.CharField(max_length=255)
    thread_id = fields.CharField(max_length=128)
    event_id = fields.CharField(max_length=255)
    event_pos = fields.BigIntField()
    ts = fields.BigIntField()
    stream_pos = fields.BigIntField()

    class Meta:
        table = "receipts"


class Typing(Model):
    # Key is (room_id, user_id).
    room_id = fields.CharField(max_length=255, primary_key=True)
    user_id = fields.CharField(max_length=255)
    active = fields.BooleanField()
    expires_ts = fields.BigIntField()
    stream_pos = fields.BigIntField()

    class Meta:
        table = "typing"


class Presence(Model):
    user_id = fields.CharField(max_length=255, primary_key=True)
    state = fields.CharField(max_length=16)
    status_msg = fields.TextField(null=True)
    explicit = fields.BooleanField(default=False)
    last_active_ts = fields.BigIntField()
    last_seen_ts = fields.BigIntField()
    stream_pos = fields.BigIntField()

    class Meta:
        table = "presence"


class AccountData(Model):
    # Key is (user_id, room_id, data_type); room_id "" for global data.
    user_id = fields.CharField(max_length=255, primary_key=True)
    room_id = fields.CharField(max_length=255)
    data_type = fields.CharField(max_length=255)
    content = fields.TextField()
    stream_pos = fields.BigIntField()

    class Meta:
        table = "account_data"


class Filter(Model):
    # Key is (user_id, filter_id).
    user_id = fields.CharField(max_length=255, primary_key=True)
    filter_id = fields.CharField(max_length=64)
    filter_json = fields.TextField()
    created_ts = fields.BigIntField()

    class Meta:
        table = "filters"
