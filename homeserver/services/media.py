"""The media repository: streamed uploads, downloads, thumbnails, avatars, deletion.

The bytes live in a media store (``storage/media_store.py``): a folder
(``<media_dir>/<aa>/<bb>/<mediaId>``, the default) or an S3-compatible bucket
(``[media] store = "s3"``).  ``mediaId`` is server-generated (24 URL-safe
random characters).  Every id a client supplies is checked against
``[A-Za-z0-9_-]{1,64}`` and the server name against ours *before* the store is
asked, and the filesystem store keeps every path inside its folder (the
earlier application's C6 path-traversal fix).

Uploads stream to a local temporary file (the store's spool folder) while the
bytes are counted and hashed; the upload is refused with 413 ``M_TOO_LARGE``
as soon as the count passes the limit (a declared ``Content-Length`` over the
limit is refused before anything is written).  Only a complete upload is
handed to the store, which makes it appear at once (a rename, or one
``PutObject``); a store that cannot be reached answers 503 with
``Retry-After``.  Limits: ``limits.max_image_bytes`` for
``image/*``, ``limits.max_file_bytes`` for everything else (encrypted
attachments are ``application/octet-stream``), and
``limits.max_avatar_bytes`` when a file is used as an avatar (checked when
the avatar is set, together with JPEG/PNG content sniffing).

Deletion.  The server cannot read encrypted events, so references from
events to media are *declared* by the client:
``POST /_matrix/client/unstable/im.parley/media/attach
{room_id, event_id, media_ids}`` records rows in ``media_refs`` (only the
uploader may attach its media, only to its own event, in a room it is in).  When the rooms service reports a redaction
(``on_event_redacted(room_id, event_id, original_content)``), the media
referenced by that event -- declared, or found as ``mxc://`` URIs of ours in
an unencrypted original content such as ``m.image`` or ``m.room.avatar`` and
uploaded by the event's sender -- is deleted if no other event references it
(references are only known when declared: an unencrypted event that merely
quotes the same URI without declaring it does not keep the media alive).  When a room is purged
(``on_room_purged(room_id)``), media referenced only from that room is
deleted.  Media in use as somebody's profile avatar is never deleted this
way.  Created-but-never-uploaded media ids expire after
``PENDING_TTL_MS``; the housekeeper removes them and temporary files older
than an hour (left by a crash).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import re
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.errors import Codes, MatrixError, bad_param, forbidden, not_found
from common.identifiers import is_valid_event_id, is_valid_server_name, parse_room_id
from homeserver.config import Config
from homeserver.services.clock import Clock
from homeserver.services.media_limits import check_quota, disk_errors, store_errors
from homeserver.services.ratelimit import Limit, RateLimiter
from homeserver.services.thumbnails import ImageRejected, inspect_image, make_thumbnail
from homeserver.storage.media import COMPLETE, MediaRepository, MediaRow
from homeserver.storage.media_store import MediaStore

logger = logging.getLogger(__name__)

MEDIA_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}\Z")
# Another server's media id (spec, "Matrix Content (mxc://) URIs"): the same alphabet.
REMOTE_MEDIA_ID = re.compile(r"^[A-Za-z0-9_-]{1,255}\Z")
CONTENT_TYPE = re.compile(r"^[a-z0-9!#$&^_.+-]{1,100}/[a-z0-9!#$&^_.+-]{1,100}\Z")
PENDING_TTL_MS = 24 * 3600 * 1000
TEMP_FILE_MAX_AGE_MS = 3600 * 1000
MAX_PENDING_PER_USER = 50
# After the limit is passed, at most this much more is read (and discarded)
# so the client sees a clean 413 instead of a reset connection.
DRAIN_BYTES = 1024 * 1024
INLINE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
THUMBNAIL_TYPES = frozenset({"image/jpeg", "image/png"})
MAX_ATTACH = 50

ProtectedMedia = Callable[[list[str]], Awaitable[set[str]]]


@dataclass(frozen=True)
class MediaFile:
    """A stored file ready to be served: ``path`` for a folder store, else read with ``open_range``."""

    media_id: str
    path: Path | None
    content_type: str
    size: int
    filename: str | None
    inline: bool


def new_media_id() -> str:
    """24 URL-safe random characters, never starting with "-" (an id on an admin's command
    line would read as an option)."""
    while True:
        media_id = secrets.token_urlsafe(18)
        if not media_id.startswith("-"):
            return media_id


def too_large(limit: int) -> MatrixError:
    return MatrixError(413, Codes.TOO_LARGE, f"Upload is larger than the limit of {limit} bytes")


def sanitise_filename(name: str | None) -> str | None:
    """A display filename without path parts, control characters or quotes."""
    if not name:
        return None
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = "".join(
        "_" if (ord(c) < 0x20 or c in '"\x7f;') else c for c in name
    ).strip().lstrip(".")
    return cleaned[:200] or None


def sanitise_content_type(value: str | None) -> str:
    if not value:
        return "application/octet-stream"
    main = value.split(";", 1)[0].strip().lower()
    return main if CONTENT_TYPE.match(main) else "application/octet-stream"


def find_mxc_uris(content: Any, server_name: str, depth: int = 0) -> set[str]:
    """Media ids of ours referenced anywhere in an (unencrypted) event content."""
    found: set[str] = set()
    if depth > 10:
        return found
    if isinstance(content, str):
        prefix = f"mxc://{server_name}/"
        if content.startswith(prefix):
            media_id = content[len(prefix):]
            if MEDIA_ID.match(media_id):
                found.add(media_id)
    elif isinstance(content, dict):
        for value in content.values():
            found |= find_mxc_uris(value, server_name, depth + 1)
    elif isinstance(content, list):
        for value in content[:1000]:
            found |= find_mxc_uris(value, server_name, depth + 1)
    return found


class MediaService:
    def __init__(
        self, config: Config, repo: MediaRepository, limiter: RateLimiter, clock: Clock,
        store: MediaStore, pending_ttl_ms: int = PENDING_TTL_MS,
    ) -> None:
        self.config = config
        self.server_name = config.server_name
        self.repo = repo
        self.limiter = limiter
        self.clock = clock
        self.pending_ttl_ms = pending_ttl_ms
        self.store = store
        self.tmp_dir = store.spool_dir
        self.upload_limit = Limit("media", config.rate_limits.media_per_minute)
        self._protected: list[ProtectedMedia] = []
        self._membership: Callable[[str], Awaitable[list[str]]] | None = None
        self._event_info: Callable[[str], Awaitable[tuple[str, str] | None]] | None = None
        # Called before a file is served (admin: quarantined media answers 404; last access is recorded).
        self.serve_checks: list[Callable[[str], Awaitable[None]]] = []

    def protect_with(self, check: ProtectedMedia) -> None:
        """Register a check naming media that must never be deleted (e.g. avatars)."""
        self._protected.append(check)

    def use_membership(self, joined_rooms: Callable[[str], Awaitable[list[str]]]) -> None:
        """Let ``attach`` check that the caller is in the room (set when rooms exist)."""
        self._membership = joined_rooms

    def use_event_info(self, info: Callable[[str], Awaitable[tuple[str, str] | None]]) -> None:
        """How to find an event's (room id, sender) (set when rooms exist)."""
        self._event_info = info

    # ------------------------------------------------------------- ids, paths
    def mxc(self, media_id: str) -> str:
        return f"mxc://{self.server_name}/{media_id}"

    def checked_id(self, server_name: str, media_id: str) -> str:
        """The media id if it names media of ours with a valid id; else 404."""
        if server_name != self.server_name or not MEDIA_ID.match(media_id):
            raise not_found("Media not found")
        return media_id

    def parse_mxc(self, uri: Any) -> str:
        """The media id of an ``mxc://<our server>/<id>`` URI, else M_INVALID_PARAM."""
        if not isinstance(uri, str) or not uri.startswith("mxc://") or len(uri) > 512:
            raise bad_param("Expected an mxc:// URI")
        server, _, media_id = uri[len("mxc://"):].partition("/")
        if server != self.server_name or not MEDIA_ID.match(media_id):
            raise bad_param("The mxc:// URI does not name media on this server")
        return media_id

    def limit_for(self, content_type: str) -> int:
        if content_type.startswith("image/"):
            return self.config.limits.max_image_bytes
        return self.config.limits.max_file_bytes

    def config_json(self) -> dict[str, Any]:
        return {"m.upload.size": self.config.limits.max_file_bytes}

    # ---------------------------------------------------------------- uploads
    async def create(self, user_id: str) -> dict[str, Any]:
        """POST /_matrix/media/v1/create: reserve a media id for a later upload."""
        await self.limiter.check(self.upload_limit, user_id)
        now = self.clock.now_ms()
        if await self.repo.count_pending(user_id, now) >= MAX_PENDING_PER_USER:
            raise MatrixError(429, Codes.LIMIT_EXCEEDED, "Too many unfinished uploads",
                              extra={"retry_after_ms": 60_000})
        media_id = new_media_id()
        expires = now + self.pending_ttl_ms
        await self.repo.create_pending(media_id, user_id, now, expires)
        return {"content_uri": self.mxc(media_id), "unused_expires_at": expires}

    async def upload(
        self,
        user_id: str,
        body: AsyncIterator[bytes],
        content_type: str | None,
        filename: str | None,
        declared_length: int | None,
        target: tuple[str, str] | None = None,
    ) -> str:
        """Stream ``body`` to disk; return the content URI.

        ``target`` is ``(server_name, media_id)`` for the upload half of
        create-then-upload; None allocates a fresh id.
        """
        ctype = sanitise_content_type(content_type)
        name = sanitise_filename(filename)
        media_id: str
        if target is not None:
            media_id = self.checked_id(*target)
            row = await self.repo.get(media_id)
            if row is None:
                raise not_found("Media not found")
            if row.uploader != user_id:
                raise forbidden("This media id was created by another user")
            if row.state == COMPLETE:
                raise MatrixError(409, Codes.CANNOT_OVERWRITE_MEDIA, "Media has already been uploaded")
            if row.upload_expires_ts is not None and row.upload_expires_ts < self.clock.now_ms():
                raise not_found("Media not found")
        else:
            await self.limiter.check(self.upload_limit, user_id)
            media_id = new_media_id()
        limit = self.limit_for(ctype)
        quota = self.config.limits.max_media_bytes_per_user
        used = await self.repo.bytes_used(user_id) if quota > 0 else 0
        check_quota(used, declared_length or 0, quota)
        with disk_errors():
            tmp, size, digest = await self._receive(body, limit, declared_length)
        try:
            check_quota(used, size, quota)
            now = self.clock.now_ms()
            if target is not None:
                if not await self.repo.complete_pending(media_id, user_id, ctype, size, digest, name, now):
                    raise MatrixError(409, Codes.CANNOT_OVERWRITE_MEDIA, "Media has already been uploaded")
                await self._put(media_id, tmp, size, ctype)
            else:
                # The bytes first: a row never names media the store does not have.
                await self._put(media_id, tmp, size, ctype)
                try:
                    await self.repo.create_complete(media_id, user_id, ctype, size, digest, name, now)
                except BaseException:
                    with contextlib.suppress(Exception):
                        await self.store.delete([media_id])
                    raise
        finally:
            tmp.unlink(missing_ok=True)
        return self.mxc(media_id)

    async def _put(self, media_id: str, tmp: Path, size: int, content_type: str) -> None:
        with disk_errors(), store_errors():
            await self.store.put(media_id, tmp, size, content_type)

    async def _receive(
        self, body: AsyncIterator[bytes], limit: int, declared: int | None
    ) -> tuple[Path, int, str]:
        """Write the body to a temp file; (path, size, sha256 hex)."""
        if declared is not None and declared > limit:
            if declared <= limit + DRAIN_BYTES:
                await self._drain(body, DRAIN_BYTES + limit)
            raise too_large(limit)
        self.tmp_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = self.tmp_dir / f"{secrets.token_hex(16)}.part"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        size = 0
        sha = hashlib.sha256()
        try:
            with os.fdopen(fd, "wb") as fh:
                async for chunk in body:
                    if not chunk:
                        continue
                    size += len(chunk)
                    if size > limit:
                        fh.close()
                        tmp.unlink(missing_ok=True)
                        await self._drain(body, DRAIN_BYTES)
                        raise too_large(limit)
                    sha.update(chunk)
                    fh.write(chunk)
        except BaseException:
            # Over the limit, client gone, or any failure: no partial file stays.
            tmp.unlink(missing_ok=True)
            raise
        if declared is not None and size != declared:
            tmp.unlink(missing_ok=True)
            raise bad_param("The body is shorter than its Content-Length")
        return tmp, size, sha.hexdigest()

    @staticmethod
    async def _drain(body: AsyncIterator[bytes], budget: int) -> None:
        try:
            async for chunk in body:
                budget -= len(chunk)
                if budget < 0:
                    return
        except Exception:  # the client gave up; the 413 stands
            return

    # -------------------------------------------------------------- downloads
    async def _complete_row(self, server_name: str, media_id: str) -> MediaRow:
        media_id = self.checked_id(server_name, media_id)
        row = await self.repo.get(media_id)
        if row is None:
            raise not_found("Media not found")
        if row.state != COMPLETE:
            raise MatrixError(504, Codes.NOT_YET_UPLOADED, "The media has not been uploaded yet")
        for check in self.serve_checks:
            await check(media_id)
        return row

    async def get_file(self, server_name: str, media_id: str, filename: str | None = None) -> MediaFile:
        row = await self._complete_row(server_name, media_id)
        with store_errors():
            try:
                path = await self.store.local_path(row.media_id)
            except FileNotFoundError:
                raise not_found("Media not found") from None
            if path is None and not await self.store.exists(row.media_id):
                raise not_found("Media not found")
        name = sanitise_filename(filename) if filename else row.filename
        return MediaFile(row.media_id, path, row.content_type, row.size, name,
                         row.content_type in INLINE_TYPES)

    async def open_range(self, media: MediaFile, first: int, last: int) -> AsyncIterator[bytes]:
        """Bytes ``first``..``last`` of a file from a remote store (404 if it went missing)."""
        with store_errors():
            try:
                return await self.store.open_range(media.media_id, first, last)
            except FileNotFoundError:
                raise not_found("Media not found") from None

    async def thumbnail(
        self, server_name: str, media_id: str, width: int, height: int, method: str
    ) -> tuple[bytes, str]:
        if method not in ("crop", "scale"):
            raise bad_param("method must be crop or scale")
        if not (1 <= width <= 10_000 and 1 <= height <= 10_000):
            raise bad_param("width and height must be between 1 and 10000")
        row = await self._complete_row(server_name, media_id)
        if row.content_type not in THUMBNAIL_TYPES or row.size > self.config.limits.max_image_bytes:
            raise bad_param("Thumbnails are only made for JPEG and PNG images")
        try:
            with store_errors():
                async with self.store.local_copy(row.media_id) as path:
                    return await asyncio.to_thread(make_thumbnail, path, width, height, method)
        except ImageRejected:
            raise bad_param("The media is not an image that can be thumbnailed") from None
        except FileNotFoundError:
            raise not_found("Media not found") from None

    # ----------------------------------------------------------------- avatars
    async def check_avatar(self, user_id: str, uri: Any) -> None:
        """An avatar is any syntactically valid ``mxc://`` URI (spec: ``mx-mxc-uri``).

        Another server's media (clients set those, e.g. a bridged or copied
        avatar) is checked for syntax only: this server cannot see it.  Our own
        media must be a JPEG/PNG uploaded by ``user_id`` within the avatar limit:
        an avatar is kept from deletion, so naming someone else's upload would
        take away its uploader's power to delete it."""
        if isinstance(uri, str) and uri.startswith("mxc://") and len(uri) <= 512:
            server, _, remote_id = uri[len("mxc://"):].partition("/")
            if server != self.server_name:
                if not is_valid_server_name(server) or not REMOTE_MEDIA_ID.match(remote_id):
                    raise bad_param("avatar_url must be an mxc://<server-name>/<media-id> URI")
                return
        media_id = self.parse_mxc(uri)
        row = await self.repo.get(media_id)
        if row is None or row.state != COMPLETE:
            raise not_found("Avatar media not found")
        if row.uploader != user_id:
            raise forbidden("An avatar must be media you uploaded")
        limit = self.config.limits.max_avatar_bytes
        if row.size > limit:
            raise MatrixError(413, Codes.TOO_LARGE, f"Avatars are limited to {limit} bytes")
        try:
            with store_errors():
                async with self.store.local_copy(media_id) as path:
                    await asyncio.to_thread(inspect_image, path)
        except (ImageRejected, FileNotFoundError):
            raise bad_param("Avatars must be JPEG or PNG images") from None

    # -------------------------------------------------------------- references
    async def attach(self, user_id: str, room_id: Any, event_id: Any, media: Any) -> None:
        """Declare that an event references media (encrypted content hides it)."""
        if not isinstance(room_id, str):
            raise bad_param("room_id is required")
        parse_room_id(room_id)
        if not isinstance(event_id, str) or not is_valid_event_id(event_id):
            raise bad_param("event_id must be an event id")
        if not isinstance(media, list) or not media or len(media) > MAX_ATTACH:
            raise bad_param(f"media_ids must be a list of 1 to {MAX_ATTACH} ids or mxc URIs")
        ids: list[str] = []
        for item in media:
            if isinstance(item, str) and item.startswith("mxc://"):
                ids.append(self.parse_mxc(item))
            elif isinstance(item, str) and MEDIA_ID.match(item):
                ids.append(item)
            else:
                raise bad_param("media_ids must be media ids or mxc URIs")
        if self._membership is not None and room_id not in await self._membership(user_id):
            raise forbidden("You are not in that room")
        if self._event_info is not None and await self._event_info(event_id) != (room_id, user_id):
            raise not_found("No event of yours with that id in that room")
        for media_id in ids:
            row = await self.repo.get(media_id)
            if row is None:
                raise not_found("Media not found")
            if row.uploader != user_id:
                raise forbidden("Only the uploader can attach media to an event")
        await self.repo.add_refs(room_id, event_id, sorted(set(ids)), self.clock.now_ms())

    async def delete_own(self, user_id: str, uri: Any) -> None:
        """The uploader deletes an upload no event refers to (e.g. a pairing's history archive)."""
        media_id = self.parse_mxc(uri)
        row = await self.repo.get(media_id)
        if row is None:
            raise not_found("Media not found")
        if row.uploader != user_id:
            raise forbidden("Only the uploader can delete media")
        if not await self.delete_unreferenced([media_id]):
            raise forbidden("That media is attached to an event")

    async def on_event_redacted(
        self, room_id: str, event_id: str, original_content: dict[str, Any] | None
    ) -> None:
        candidates = set(await self.repo.refs_of_event(room_id, event_id))
        found = find_mxc_uris(original_content or {}, self.server_name) - candidates
        if found and self._event_info is not None:
            # Only the sender's own uploads: quoting someone else's mxc:// URI in
            # a message and redacting it must not delete their media.
            info = await self._event_info(event_id)
            sender = info[1] if info is not None else None
            for media_id in sorted(found):
                row = await self.repo.get(media_id)
                if row is not None and row.uploader == sender:
                    candidates.add(media_id)
        await self.repo.delete_event_refs(room_id, event_id)
        await self.delete_unreferenced(candidates)

    async def on_room_purged(self, room_id: str) -> None:
        candidates = set(await self.repo.refs_of_room(room_id))
        await self.repo.delete_room_refs(room_id)
        await self.delete_unreferenced(candidates)

    async def delete_unreferenced(self, candidates: Iterable[str]) -> list[str]:
        ids = sorted(set(candidates))
        if not ids:
            return []
        keep = await self.repo.still_referenced(ids)
        uris = {self.mxc(i): i for i in ids}
        for check in self._protected:
            keep |= {uris[u] for u in await check(list(uris)) if u in uris}
        doomed = [i for i in ids if i not in keep]
        await self.delete_media(doomed)
        return doomed

    async def delete_media(self, media_ids: list[str]) -> None:
        """Remove rows first, then files (a row never points at a missing file for long)."""
        if not media_ids:
            return
        await self.repo.delete(media_ids)
        with store_errors():
            await self.store.delete([m for m in media_ids if MEDIA_ID.match(m)])
        logger.info("deleted %d media file(s)", len(media_ids))

    # ------------------------------------------------------------ housekeeping
    async def cleanup(self) -> int:
        """Delete expired never-uploaded media ids and stale temporary files."""
        now = self.clock.now_ms()
        removed = 0
        for media_id in await self.repo.expired_pending(now):
            if await self.repo.delete_pending(media_id, now):
                removed += 1
                with contextlib.suppress(FileNotFoundError):
                    await self.store.delete([media_id])
        if self.tmp_dir.is_dir():
            for entry in os.scandir(self.tmp_dir):
                try:
                    if entry.is_file() and now - entry.stat().st_mtime * 1000 > TEMP_FILE_MAX_AGE_MS:
                        os.unlink(entry.path)
                        removed += 1
                except FileNotFoundError:
                    continue
        return removed
