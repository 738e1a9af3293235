"""Repositories for users, devices and access tokens."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tortoise.exceptions import IntegrityError

from homeserver.storage.admin_users import FLAGS
from homeserver.storage.database import Database
from homeserver.storage.models.accounts import AccessToken, Device, User
from homeserver.storage.streams import AUTH_COUNTER, bump_counter


class AlreadyExists(Exception):
    """A unique key (user id, e-mail, device) is already taken."""


@dataclass(frozen=True)
class TokenOwner:
    user_id: str
    device_id: str
    token_id: int
    is_guest: bool = False


@dataclass(frozen=True)
class SeenDevice:
    """When the token's device was last seen (None: the device row is gone)."""

    last_seen_ts: int | None
    last_seen_ip: str | None


@dataclass(frozen=True)
class TokenLookup:
    """A token's owner, device and account, as one request reads them."""

    owner: TokenOwner
    seen: SeenDevice | None  # None: the device row is gone
    flags: dict[str, bool] | None  # the account's flags (None: no such account row)
    override: tuple[int, int] | None  # the account's rate-limit override, if any


class UserRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, user_id: str) -> User | None:
        return await User.get_or_none(user_id=user_id)

    async def by_email(self, email: str) -> User | None:
        return await User.get_or_none(email=email)

    async def create(
        self,
        user_id: str,
        localpart: str,
        email: str | None,
        password_hash: str | None,
        login_key: str | None,
        now_ms: int,
        is_placeholder: bool = False,
    ) -> User:
        try:
            return await User.create(
                user_id=user_id,
                localpart=localpart,
                email=email,
                password_hash=password_hash,
                login_key=login_key,
                is_placeholder=is_placeholder,
                created_ts=now_ms,
            )
        except IntegrityError as exc:
            raise AlreadyExists(str(exc)) from exc

    async def take_over_placeholder(
        self, placeholder_id: str, user_id: str, localpart: str, email: str,
        password_hash: str | None, login_key: str | None, now_ms: int,
    ) -> User:
        """The person behind a placeholder registers as ``user_id``, in one transaction: the
        address moves to the new account, the placeholder's id becomes an alias of it, and who
        could query the placeholder's keys (an e-mail lookup) may query the account's.  The
        placeholder row stays, so its id is never handed to anyone else."""
        try:
            async with self.db.transaction() as conn:
                moved = await self.db.execute(
                    "UPDATE users SET email = NULL WHERE user_id = ? AND is_placeholder = 1 AND email = ?",
                    [placeholder_id, email], conn)
                if moved != 1:
                    raise AlreadyExists("the placeholder was taken over meanwhile")
                await self.db.execute(
                    "INSERT INTO users (user_id, localpart, email, password_hash, login_key, is_placeholder, "
                    "deactivated, created_ts) VALUES (?, ?, ?, ?, ?, 0, 0, ?)",
                    [user_id, localpart, email, password_hash, login_key, now_ms], conn)
                await self.db.execute("INSERT INTO user_aliases (alias_id, user_id, created_ts) VALUES (?, ?, ?)",
                                      [placeholder_id, user_id, now_ms], conn)
                grants = await self.db.fetch("SELECT requester_id FROM key_query_grants WHERE target_id = ?",
                                             [placeholder_id], conn)
                for row in grants:
                    await self.db.execute(
                        self.db.insert_ignore_sql("key_query_grants", ["requester_id", "target_id", "created_ts"]),
                        [row["requester_id"], user_id, now_ms], conn)
        except IntegrityError as exc:
            raise AlreadyExists(str(exc)) from exc
        user = await self.get(user_id)
        assert user is not None
        return user

    async def alias_target(self, user_id: str) -> str | None:
        """The account an alias id (an e-mail lookup id, see above) stands for, if it is one."""
        row = await self.db.fetch_one("SELECT user_id FROM user_aliases WHERE alias_id = ?", [user_id])
        return None if row is None else str(row["user_id"])

    async def set_login_key(self, user_id: str, login_key: str | None) -> None:
        await User.filter(user_id=user_id).update(login_key=login_key)

    async def set_password_hash(self, user_id: str, password_hash: str) -> None:
        await User.filter(user_id=user_id).update(password_hash=password_hash)

    async def set_email(self, user_id: str, email: str | None) -> None:
        await User.filter(user_id=user_id).update(email=email)

    async def deactivate(self, user_id: str) -> None:
        """For good: no password, no login key, marked deactivated."""
        await User.filter(user_id=user_id).update(deactivated=True, password_hash=None, login_key=None)


class DeviceRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, user_id: str, device_id: str) -> Device | None:
        return await Device.get_or_none(user_id=user_id, device_id=device_id)

    async def list_for_user(self, user_id: str) -> list[Device]:
        return await Device.filter(user_id=user_id).order_by("created_ts", "id")

    async def ensure(
        self, user_id: str, device_id: str, display_name: str | None, ip: str | None, now_ms: int
    ) -> tuple[Device, bool]:
        """Return the device, creating it if needed; the flag says whether it is new."""
        existing = await self.get(user_id, device_id)
        if existing is not None:
            return existing, False
        try:
            device = await Device.create(
                user_id=user_id,
                device_id=device_id,
                display_name=display_name,
                last_seen_ip=ip,
                last_seen_ts=now_ms,
                created_ts=now_ms,
            )
            return device, True
        except IntegrityError:
            # A concurrent login created it first.
            raced = await self.get(user_id, device_id)
            if raced is None:
                raise
            return raced, False

    async def rename(self, user_id: str, device_id: str, display_name: str) -> bool:
        updated = await Device.filter(user_id=user_id, device_id=device_id).update(
            display_name=display_name
        )
        return bool(updated)

    async def touch(self, user_id: str, device_id: str, ip: str | None, now_ms: int) -> None:
        await self.db.execute(
            "UPDATE devices SET last_seen_ip = ?, last_seen_ts = ? WHERE user_id = ? AND device_id = ?",
            (ip, now_ms, user_id, device_id),
        )

    async def delete(self, user_id: str, device_ids: list[str]) -> list[str]:
        """Delete devices and their tokens; return the ids that existed."""
        async with self.db.transaction() as conn:
            existing = await Device.filter(
                user_id=user_id, device_id__in=device_ids
            ).using_db(conn).values_list("device_id", flat=True)
            await Device.filter(user_id=user_id, device_id__in=device_ids).using_db(conn).delete()
            await AccessToken.filter(user_id=user_id, device_id__in=device_ids).using_db(
                conn
            ).delete()
            await bump_counter(self.db, AUTH_COUNTER, conn)
        return [str(d) for d in existing]


class TokenRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(self, token_hash: str, user_id: str, device_id: str, now_ms: int,
                     is_guest: bool = False) -> None:
        await AccessToken.create(
            token_hash=token_hash, user_id=user_id, device_id=device_id, created_ts=now_ms,
            is_guest=is_guest,
        )

    async def lookup(self, token_hash: str) -> TokenOwner | None:
        token = await AccessToken.get_or_none(token_hash=token_hash)
        if token is None:
            return None
        return TokenOwner(token.user_id, token.device_id, token.id, bool(token.is_guest))

    async def lookup_for_request(self, token_hash: str) -> TokenLookup | None:
        """What every authenticated request needs, in one statement: the token's owner,
        its device's last-seen fields, the account's flags and rate-limit override."""
        row = await self.db.fetch_one(
            "SELECT t.id, t.user_id, t.device_id, t.is_guest, d.id AS device_row, d.last_seen_ts, d.last_seen_ip, "
            f"u.user_id AS account, {', '.join('u.' + f for f in FLAGS)}, o.messages_per_second, o.burst_count "
            "FROM access_tokens t LEFT JOIN devices d ON d.user_id = t.user_id AND d.device_id = t.device_id "
            "LEFT JOIN users u ON u.user_id = t.user_id "
            "LEFT JOIN ratelimit_overrides o ON o.user_id = t.user_id "
            "WHERE t.token_hash = ?",
            (token_hash,),
        )
        if row is None:
            return None
        owner = TokenOwner(str(row["user_id"]), str(row["device_id"]), int(row["id"]), bool(row["is_guest"]))
        seen = None
        if row["device_row"] is not None:
            ts = row["last_seen_ts"]
            seen = SeenDevice(None if ts is None else int(ts), row["last_seen_ip"])
        flags = None if row["account"] is None else {f: bool(row[f]) for f in FLAGS}
        override = None
        if row["messages_per_second"] is not None:
            override = (int(row["messages_per_second"]), int(row["burst_count"]))
        return TokenLookup(owner, seen, flags, override)

    async def _delete(self, where: str, params: Sequence[Any]) -> None:
        """Delete tokens and move the auth counter in one transaction (instances that
        remember tokens check the counter before trusting them: ``services/auth.py``)."""
        async with self.db.transaction() as conn:
            await self.db.execute(f"DELETE FROM access_tokens WHERE {where}", params, conn=conn)
            await bump_counter(self.db, AUTH_COUNTER, conn)

    async def delete_by_hash(self, token_hash: str) -> None:
        await self._delete("token_hash = ?", (token_hash,))

    async def delete_for_user(self, user_id: str) -> None:
        await self._delete("user_id = ?", (user_id,))

    async def delete_for_device(self, user_id: str, device_id: str) -> None:
        await self._delete("user_id = ? AND device_id = ?", (user_id, device_id))

    async def guests_among(self, user_ids: list[str]) -> set[str]:
        """The users of ``user_ids`` signed in with a guest token."""
        if not user_ids:
            return set()
        rows = await AccessToken.filter(user_id__in=user_ids, is_guest=True).distinct().values_list(
            "user_id", flat=True)
        return {str(r) for r in rows}
