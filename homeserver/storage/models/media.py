"""Media metadata and the declared references from events to media."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class Media(Model):
    media_id = fields.CharField(max_length=64, primary_key=True)
    uploader = fields.CharField(max_length=255)
    content_type = fields.CharField(max_length=255)
    size = fields.BigIntField(default=0)
    sha256 = fields.CharField(max_length=64, null=True)
    filename = fields.CharField(max_length=255, null=True)
    state = fields.CharField(max_length=16)
    created_ts = fields.BigIntField()
    upload_expires_ts = fields.BigIntField(null=True)

    class Meta:
        table = "media"


class MediaRef(Model):
    # The table's key is (media_id, room_id, event_id); Tortoise needs one
    # primary-key field, so rows are written with raw SQL by the repository.
    media_id = fields.CharField(max_length=64, primary_key=True)
    room_id = fields.CharField(max_length=255)
    event_id = fields.CharField(max_length=255)
    created_ts = fields.BigIntField()

    class Meta:
        table = "media_refs"
