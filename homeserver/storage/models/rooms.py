"""Rooms, events, current state, memberships and to-device messages (see migration 0002).

Repositories mostly use raw SQL through :class:`Database` for these hot
tables; the models document the schema and serve simple lookups.
"""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class Room(Model):
    room_id = fields.CharField(max_length=255, primary_key=True)
    room_version = fields.CharField(max_length=16)
    creator = fields.CharField(max_length=255)
    is_direct = fields.BooleanField(default=False)
    created_ts = fields.BigIntField()
    last_event_id = fields.CharField(max_length=255, null=True)
    last_depth = fields.BigIntField(default=0)
    last_pos = fields.BigIntField(default=0)
    purged = fields.BooleanField(default=False)

    class Meta:
        table = "rooms"


class Event(Model):
    stream_pos = fields.BigIntField(primary_key=True, generated=False)
    event_id = fields.CharField(max_length=255, unique=True)
    room_id = fields.CharField(max_length=255)
    type = fields.CharField(max_length=255)
    state_key = fields.CharField(max_length=255, null=True)
    sender = fields.CharField(max_length=255)
    membership = fields.CharField(max_length=32, null=True)
    depth = fields.BigIntField()
    origin_server_ts = fields.BigIntField()
    pdu = fields.TextField()
    txn_device = fields.CharField(max_length=64, null=True)
    txn_id = fields.CharField(max_length=255, null=True)
    replaces_state = fields.CharField(max_length=255, null=True)
    prev_content = fields.TextField(null=True)
    prev_sender = fields.CharField(max_length=255, null=True)
    redacted_by = fields.CharField(max_length=255, null=True)

    class Meta:
        table = "events"


class RoomState(Model):
    # Composite key (room_id, type, state_key); Tortoise needs one pk field.
    room_id = fields.CharField(max_length=255, primary_key=True)
    type = fields.CharField(max_length=255)
    state_key = fields.CharField(max_length=255)
    event_id = fields.CharField(max_length=255)
    stream_pos = fields.BigIntField()

    class Meta:
        table = "room_state"


class RoomMembership(Model):
    # Composite key (room_id, user_id).
    room_id = fields.CharField(max_length=255, primary_key=True)
    user_id = fields.CharField(max_length=255)
    membership = fields.CharField(max_length=32)
    event_id = fields.CharField(max_length=255)
    stream_pos = fields.BigIntField()
    joined_since = fields.BigIntField(null=True)
    forgotten = fields.BooleanField(default=False)

    class Meta:
        table = "room_memberships"


class EventTxn(Model):
    # Composite key (user_id, device_id, txn_id).
    user_id = fields.CharField(max_length=255, primary_key=True)
    device_id = fields.CharField(max_length=64)
    txn_id = fields.CharField(max_length=255)
    event_id = fields.CharField(max_length=255)
    created_ts = fields.BigIntField()

    class Meta:
        table = "event_txns"


class ToDeviceMessage(Model):
    id = fields.BigIntField(primary_key=True)
    stream_pos = fields.BigIntField()
    user_id = fields.CharField(max_length=255)
    device_id = fields.CharField(max_length=64)
    sender = fields.CharField(max_length=255)
    type = fields.CharField(max_length=255)
    content = fields.TextField()

    class Meta:
        table = "to_device_messages"


class ToDeviceTxn(Model):
    # Composite key (sender, device_id, txn_id).
    sender = fields.CharField(max_length=255, primary_key=True)
    device_id = fields.CharField(max_length=64)
    txn_id = fields.CharField(max_length=255)
    created_ts = fields.BigIntField()

    class Meta:
        table = "to_device_txns"
