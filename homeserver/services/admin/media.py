"""Server administration of media: list per user, quarantine, delete by id or age.

Quarantined media stays on disk but is answered with 404 ``M_NOT_FOUND``
to every download and thumbnail request until it is released.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from common.errors import bad_param, not_found
from homeserver.services.admin.params import int_param
from homeserver.services.clock import Clock
from homeserver.services.media import MediaService
from homeserver.services.profiles import ProfileService
from homeserver.storage.admin_media import AdminMediaRepository
from homeserver.storage.admin_users import AdminUserRepository
from homeserver.storage.moderation import ModerationRepository

Json = dict[str, Any]
# Downloads update a file's last access at most this often.
ACCESS_GRANULARITY_MS = 3_600_000


class AdminMediaService:
    def __init__(self, media: MediaService, repo: AdminMediaRepository, moderation: ModerationRepository,
                 admin_users: AdminUserRepository, profiles: ProfileService, clock: Clock) -> None:
        self.profiles = profiles
        self.media = media
        self.repo = repo
        self.moderation = moderation
        self.admin_users = admin_users
        self.clock = clock

    async def check_servable(self, media_id: str) -> None:
        if await self.moderation.quarantined_by([media_id]):
            raise not_found("Media not found")

    async def record_access(self, media_id: str) -> None:
        await self.repo.touch(media_id, self.clock.now_ms(), ACCESS_GRANULARITY_MS)

    async def _delete_keeping_avatars(self, candidates: list[str]) -> list[str]:
        if candidates:
            avatars = await self.profiles.avatars_in_use([self.media.mxc(m) for m in candidates])
            candidates = [m for m in candidates if self.media.mxc(m) not in avatars]
        await self.media.delete_media(candidates)
        await self.repo.forget_access(candidates)
        return candidates

    async def apply_retention(self, local_days: int) -> list[str]:
        """Housekeeping: delete local media not downloaded for ``local_days`` (avatars kept)."""
        if local_days <= 0:
            return []
        cutoff = self.clock.now_ms() - local_days * 86_400_000
        return await self._delete_keeping_avatars(await self.repo.not_accessed_since(cutoff))

    async def _local(self, server_name: str, media_id: str) -> str:
        media_id = self.media.checked_id(server_name, media_id)
        if await self.media.repo.get(media_id) is None:
            raise not_found("Media not found")
        return media_id

    async def list_for_user(self, user_id: str, params: Mapping[str, str]) -> Json:
        offset, limit = int_param(params, "from", 0), int_param(params, "limit", 100)
        if offset < 0 or limit < 1:
            raise bad_param("from must be >= 0 and limit >= 1")
        rows, total = await self.repo.of_user(user_id, offset, limit, params.get("dir", "f") == "b")
        ids = [str(r["media_id"]) for r in rows]
        marks = await self.moderation.quarantined_by(ids)
        accessed = await self.repo.last_access(ids)
        media = [{
            "media_id": r["media_id"], "media_type": r["content_type"], "media_length": int(r["size"]),
            "upload_name": r["filename"], "created_ts": int(r["created_ts"]), "last_access_ts": accessed.get(str(r["media_id"])),
            "quarantined_by": marks.get(str(r["media_id"])), "safe_from_quarantine": False,
        } for r in rows]
        body: Json = {"media": media, "total": total}
        if offset + len(rows) < total:
            body["next_token"] = offset + len(rows)
        return body

    async def quarantine(self, admin: str, server_name: str, media_id: str) -> None:
        media_id = await self._local(server_name, media_id)
        await self.moderation.quarantine([media_id], admin, self.clock.now_ms())
        await self.admin_users.audit(admin, "quarantine_media", media_id, {}, self.clock.now_ms())

    async def unquarantine(self, admin: str, server_name: str, media_id: str) -> None:
        media_id = await self._local(server_name, media_id)
        await self.moderation.unquarantine(media_id)
        await self.admin_users.audit(admin, "unquarantine_media", media_id, {}, self.clock.now_ms())

    async def quarantine_user(self, admin: str, user_id: str) -> Json:
        ids = await self.repo.ids_of_user(user_id)
        await self.moderation.quarantine(ids, admin, self.clock.now_ms())
        await self.admin_users.audit(admin, "quarantine_user_media", user_id, {"count": len(ids)},
                                     self.clock.now_ms())
        return {"num_quarantined": len(ids)}

    async def delete_of_user(self, admin: str, user_id: str) -> Json:
        ids = await self.repo.ids_of_user(user_id)
        await self.media.delete_media(ids)
        await self.repo.forget_access(ids)
        await self.admin_users.audit(admin, "delete_user_media", user_id, {"count": len(ids)}, self.clock.now_ms())
        return {"deleted_media": ids, "total": len(ids)}

    async def delete(self, admin: str, server_name: str, media_id: str) -> Json:
        media_id = await self._local(server_name, media_id)
        await self.media.delete_media([media_id])
        await self.admin_users.audit(admin, "delete_media", media_id, {}, self.clock.now_ms())
        return {"deleted_media": [media_id], "total": 1}

    async def statistics(self, params: Mapping[str, str]) -> Json:
        return await media_statistics(self.repo, params)

    async def delete_older(self, admin: str, params: Mapping[str, str]) -> Json:
        if "before_ts" not in params:
            raise bad_param("before_ts is required")
        before = int_param(params, "before_ts", 0)
        size_gt = int_param(params, "size_gt", 0)
        if before < 0 or size_gt < 0:
            raise bad_param("before_ts and size_gt must be non-negative")
        candidates = await self.repo.created_before(before, size_gt)
        if params.get("keep_profiles", "true") == "true":
            deleted = await self._delete_keeping_avatars(candidates)
        else:
            await self.media.delete_media(candidates)
            await self.repo.forget_access(candidates)
            deleted = candidates
        await self.admin_users.audit(admin, "delete_media_before", str(before), {"count": len(deleted)},
                                     self.clock.now_ms())
        return {"deleted_media": deleted, "total": len(deleted)}




_STAT_ORDERS = ("user_id", "displayname", "media_length", "media_count")


async def media_statistics(repo: AdminMediaRepository, params: Mapping[str, str]) -> Json:
    """GET /_synapse/admin/v1/statistics/users/media"""
    offset, limit = int_param(params, "from", 0), int_param(params, "limit", 100)
    if offset < 0 or limit < 1:
        raise bad_param("from must be >= 0 and limit >= 1")
    order_by = params.get("order_by", "user_id")
    if order_by not in _STAT_ORDERS:
        raise bad_param(f"order_by must be one of {', '.join(_STAT_ORDERS)}")
    direction = params.get("dir", "f")
    if direction not in ("f", "b"):
        raise bad_param("dir must be 'f' or 'b'")
    from_ts = int_param(params, "from_ts", 0) if "from_ts" in params else None
    until_ts = int_param(params, "until_ts", 0) if "until_ts" in params else None
    rows = await repo.statistics(order_by, direction == "b", params.get("search_term"), from_ts, until_ts)
    users = [{"user_id": r["user_id"], "displayname": r["displayname"], "media_count": int(r["media_count"]),
              "media_length": int(r["media_length"] or 0)} for r in rows]
    page = users[offset:offset + limit]
    body: Json = {"users": page, "total": len(users)}
    if offset + len(page) < len(users):
        body["next_token"] = offset + len(page)
    return body
