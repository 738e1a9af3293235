"""Commands of ``python -m homeserver.admin``.

Each command opens the configured database (bringing its schema up to date),
builds the homeserver's services exactly as the server does, runs one
service call and prints the result as JSON.  Actions are written to the
admin audit log as ``cli:<operating-system user>``.  With ``redis_url`` set,
wake-ups reach running instances over Redis (without it they notice through
database polling).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from common.errors import MatrixError
from common.identifiers import make_user_id
from homeserver.admin import backup
from homeserver.app import Services, build_services, load_signing_key, prepare_data_dir
from homeserver.config import Config, ConfigError, load_config
from homeserver.services.clock import Clock
from homeserver.signing_key import SigningKey
from homeserver.storage.database import Database

Command = Callable[[Services, argparse.Namespace], Awaitable[Any]]


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:
        return "cli"


def _user_id(config: Config, value: str) -> str:
    return value if value.startswith("@") else make_user_id(value.lower(), config.server_name)


def _password(args: argparse.Namespace) -> str | None:
    if getattr(args, "password_file", None):
        return Path(args.password_file).read_text().rstrip("\n")
    return getattr(args, "password", None)


async def create_user(s: Services, args: argparse.Namespace) -> Any:
    user_id = args.user_id
    body: dict[str, Any] = {"admin": args.admin}
    password = _password(args)
    if password is not None:
        body["password"] = password
    if args.email:
        body["threepids"] = [{"medium": "email", "address": args.email}]
    if args.displayname:
        body["displayname"] = args.displayname
    if await s.admin.users.repo.get(user_id) is not None:
        raise MatrixError(400, "M_USER_IN_USE", f"{user_id} already exists")
    user, _ = await s.admin.users.put_user(_actor(), user_id, body)
    return user


async def set_admin(s: Services, args: argparse.Namespace) -> Any:
    await s.admin.users.existing(args.user_id)
    await s.admin.users.repo.set_flag(args.user_id, "admin", not args.revoke)
    await s.admin.users.repo.audit(_actor(), "set_admin", args.user_id, {"value": not args.revoke},
                                   s.clock.now_ms())
    return await s.admin.users.get_user(args.user_id)


async def reset_password(s: Services, args: argparse.Namespace) -> Any:
    await s.admin.users.reset_password(_actor(), args.user_id, {
        "new_password": _password(args), "logout_devices": not args.keep_devices})
    return {"user_id": args.user_id, "password_reset": True}


async def deactivate(s: Services, args: argparse.Namespace) -> Any:
    await s.admin.users.deactivate(_actor(), args.user_id, erase=args.erase)
    return {"user_id": args.user_id, "deactivated": True, "erased": args.erase}


async def list_users(s: Services, args: argparse.Namespace) -> Any:
    params = {"limit": str(args.limit), "deactivated": "true" if args.deactivated else "false"}
    if args.name:
        params["name"] = args.name
    return await s.admin.users.list_users(params)


async def new_token(s: Services, args: argparse.Namespace) -> Any:
    body: dict[str, Any] = {}
    if args.token:
        body["token"] = args.token
    if args.uses is not None:
        body["uses_allowed"] = args.uses
    if args.expires_in_days is not None:
        body["expiry_time"] = s.clock.now_ms() + int(args.expires_in_days * 86_400_000)
    return await s.admin.tokens.create(body)


async def list_tokens(s: Services, args: argparse.Namespace) -> Any:
    return await s.admin.tokens.list(None)


async def delete_room(s: Services, args: argparse.Namespace) -> Any:
    return await s.admin.rooms.delete(_actor(), args.room_id, {"block": args.block, "purge": True})


async def quarantine(s: Services, args: argparse.Namespace) -> Any:
    await s.admin.media.quarantine(_actor(), s.media.server_name, args.media_id)
    return {"quarantined": args.media_id}


async def purge_media(s: Services, args: argparse.Namespace) -> Any:
    before = int(time.time() * 1000 - args.older_than_days * 86_400_000)
    return await s.admin.media.delete_older(_actor(), {"before_ts": str(before)})


async def audit_log(s: Services, args: argparse.Namespace) -> Any:
    return await s.admin.users.repo.audit_entries(args.target, args.limit)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m homeserver.admin",
                                     description="Parley homeserver administration")
    parser.add_argument("--config", "-c", type=Path, help="TOML configuration file (as for the server)")
    sub = parser.add_subparsers(dest="command", required=True)

    def command(name: str, handler: Command | None, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(handler=handler)
        return p

    def with_password(p: argparse.ArgumentParser, required: bool) -> None:
        group = p.add_mutually_exclusive_group(required=required)
        group.add_argument("--password")
        group.add_argument("--password-file")

    p = command("create-user", create_user, "create an account")
    p.add_argument("user", help="localpart or full user id")
    with_password(p, required=True)
    p.add_argument("--admin", action="store_true", help="make it a server admin")
    p.add_argument("--email")
    p.add_argument("--displayname")
    p = command("set-admin", set_admin, "grant (or --revoke) server admin")
    p.add_argument("user")
    p.add_argument("--revoke", action="store_true")
    p = command("reset-password", reset_password, "set a new password (logs out every device)")
    p.add_argument("user")
    with_password(p, required=True)
    p.add_argument("--keep-devices", action="store_true")
    p = command("deactivate", deactivate, "deactivate an account (leave rooms, delete devices)")
    p.add_argument("user")
    p.add_argument("--erase", action="store_true", help="also delete the profile")
    p = command("list-users", list_users, "list accounts")
    p.add_argument("--name")
    p.add_argument("--deactivated", action="store_true")
    p.add_argument("--limit", type=int, default=100)
    p = command("new-registration-token", new_token, "create a registration token")
    p.add_argument("--token")
    p.add_argument("--uses", type=int)
    p.add_argument("--expires-in-days", type=float)
    command("list-registration-tokens", list_tokens, "list registration tokens")
    p = command("delete-room", delete_room, "make every local member leave and purge a room")
    p.add_argument("room_id")
    p.add_argument("--block", action="store_true", help="also refuse future joins")
    p = command("quarantine-media", quarantine, "stop serving a local media file")
    p.add_argument("media_id")
    p = command("purge-media", purge_media, "delete local media uploaded more than N days ago")
    p.add_argument("--older-than-days", type=float, required=True)
    p = command("audit-log", audit_log, "show the admin audit log")
    p.add_argument("--target")
    p.add_argument("--limit", type=int, default=100)
    backup.add_commands(sub)
    return parser


async def _with_services(config: Config, handler: Command, args: argparse.Namespace) -> Any:
    prepare_data_dir(config)
    database = Database(config.database_url, config.database.pool_min, config.database.pool_max)
    redis = None
    if config.redis_url:
        import redis.asyncio as redis_asyncio

        redis = redis_asyncio.from_url(config.redis_url)
    signing_key = SigningKey()  # the deployment's key lives in the database
    clock = Clock()
    services, _ = build_services(config, database, signing_key, clock, redis, None)
    await database.open()
    try:
        with database.activated():
            await load_signing_key(config, database, signing_key, clock)
            return await handler(services, args)
    finally:
        if redis is not None:
            await redis.aclose()
        await database.close()


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    if hasattr(args, "user"):
        args.user_id = _user_id(config, args.user)
    try:
        if args.handler is None:
            result = backup.run(config, args)
        else:
            result = asyncio.run(_with_services(config, args.handler, args))
    except MatrixError as exc:
        print(f"error: {exc.errcode}: {exc.message}", file=sys.stderr)
        return 1
    except backup.BackupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2, sort_keys=True, default=str))
    return 0
