"""Parley on the command line: ``python -m client_tk.cli [global options] COMMAND ...``.

Every command works non-interactively (for scripts); ``shell`` reads
commands line by line from stdin (interactive use, or a script piping
commands).  The password comes from ``--password``, ``$PARLEY_PASSWORD`` or
a prompt.  Output is human text, or one JSON object per line with ``--json``.

Examples::

    python -m client_tk.cli --server https://hs.example register alice
    python -m client_tk.cli --user @alice:hs.example dm bob@example.org
    python -m client_tk.cli --user @alice:hs.example send '!room:hs' 'hello'
    python -m client_tk.cli --user @alice:hs.example listen --json
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import shlex
import sys
from pathlib import Path
from typing import Any

from client_tk.core.account import (
    ClientOptions,
    approve_pairing,
    finish_pairing,
    login,
    register,
    start_pairing,
)
from client_tk.core.client import ChatClient
from client_tk.core.events import (
    ClientEvent,
    ConnectionStateChanged,
    Message,
    MessageReceived,
    OutboxChanged,
    OutgoingMessage,
)
from client_tk.core.transport import TransportFailure
from common.crypto import KdfParams
from common.errors import MatrixError


def _out(args: argparse.Namespace, text: str, data: dict[str, Any]) -> None:
    if args.json:
        print(json.dumps(data, sort_keys=True), flush=True)
    else:
        print(text, flush=True)


def _message_line(m: Message) -> str:
    reply = f" (reply to {m.reply_to})" if m.reply_to else ""
    extra = f" [{m.kind}: {m.body}]" if m.kind != "text" else m.body
    lost = f" [not delivered to {', '.join(m.unreachable)}]" if m.unreachable else ""
    return f"{m.room_id} {m.event_id} {m.sender}: {extra}{reply}{lost}"


def _outgoing_line(m: OutgoingMessage) -> str:
    why = f" ({m.error})" if m.error else ""
    return f"{m.room_id} {m.local_id} {m.state}{why}: {m.body}"


def _outgoing_json(m: OutgoingMessage) -> dict[str, Any]:
    return {"local_id": m.local_id, "room_id": m.room_id, "state": m.state, "error": m.error,
            "body": m.body, "kind": m.kind, "ts": m.ts, "attempts": m.attempts}


def _password(args: argparse.Namespace) -> str:
    if args.password:
        return str(args.password)
    if os.environ.get("PARLEY_PASSWORD"):
        return os.environ["PARLEY_PASSWORD"]
    return getpass.getpass("Password: ")


def _options(args: argparse.Namespace) -> ClientOptions:
    opts = ClientOptions(base_url=args.server, root=Path(args.home).expanduser(), insecure=args.insecure,
                         sync_timeout_ms=args.sync_timeout * 1000)
    if args.dev_kdf_iterations:
        opts.kdf, opts.allow_weak_kdf = KdfParams.pbkdf2(args.dev_kdf_iterations), True
    return opts


async def _open(args: argparse.Namespace) -> ChatClient:
    if not args.user:
        raise SystemExit("--user (or $PARLEY_USER) is required")
    client = await login(_options(args), args.user, _password(args), method=args.login_method)
    if args.command in ("listen", "shell"):  # print what the first sync brings as well
        client.bus.subscribe(lambda e: _print_event(args, e))
    await client.sync_once(0)
    return client


def _print_event(args: argparse.Namespace, event: ClientEvent) -> None:
    if isinstance(event, MessageReceived):
        _out(args, _message_line(event.message), {"event": "message", **event.message.to_dict()})
    elif isinstance(event, OutboxChanged):
        for m in event.entries:
            _out(args, "* outbox " + _outgoing_line(m), {"event": "outbox", **_outgoing_json(m)})
        if not event.entries:
            _out(args, f"* outbox {event.room_id} empty", {"event": "outbox", "room_id": event.room_id})
    elif isinstance(event, ConnectionStateChanged):
        _out(args, f"* connection {event.state.value}", {"event": "connection", "state": event.state.value})
    else:
        name = type(event).__name__
        fields = {k: v for k, v in vars(event).items() if isinstance(v, (str, int, bool, list, tuple, type(None)))}
        _out(args, f"* {name} {fields}", {"event": name, **fields})


async def run_command(client: ChatClient | None, args: argparse.Namespace) -> None:
    cmd = args.command
    if cmd == "register":
        email_code = None
        if args.email:
            async def email_code(_: str) -> str:
                return (await asyncio.to_thread(input, "E-mail code: ")).strip()
        new = await register(_options(args), args.username, _password(args), email=args.email,
                             code_provider=email_code)
        _out(args, f"registered {new.user_id} device {new.device_id}",
             {"user_id": new.user_id, "device_id": new.device_id})
        await new.close()
        return
    if cmd == "pair-new":
        opts = _options(args)
        request = await start_pairing(opts, args.user)
        _out(args, f"pairing code: {request.code}", {"code": request.code})
        new = await finish_pairing(opts, request, _password(args), confirm=_confirm_sas)
        _out(args, f"paired {new.user_id} device {new.device_id}",
             {"user_id": new.user_id, "device_id": new.device_id})
        await new.close()
        return
    assert client is not None
    if cmd == "whoami":
        _out(args, f"{client.user_id} {client.device_id}", {"user_id": client.user_id, "device_id": client.device_id})
    elif cmd == "rooms":
        for room in client.room_list():
            kind = "dm" if room.is_direct else "group"
            _out(args, f"{room.room_id} {kind} {room.name or ''} members={','.join(room.joined)} unread={room.unread}",
                 {"room_id": room.room_id, "direct": room.is_direct, "name": room.name,
                  "members": room.joined, "unread": room.unread, "tags": room.tags})
    elif cmd == "invitations":
        for room in client.invitations():
            _out(args, f"{room.room_id} from {room.inviter} {room.name or ''}",
                 {"room_id": room.room_id, "inviter": room.inviter, "name": room.name})
    elif cmd == "accept":
        await client.accept(args.room)
        _out(args, f"joined {args.room}", {"room_id": args.room})
    elif cmd == "decline":
        await client.decline(args.room)
    elif cmd == "dm":
        target = args.target
        room_id = await (client.dm_by_email(target) if "@" in target and not target.startswith("@")
                         else _dm_user(client, target))
        _out(args, room_id, {"room_id": room_id})
    elif cmd == "group":
        room_id = await client.create_group(args.name, args.invite or [])
        _out(args, room_id, {"room_id": room_id})
    elif cmd == "invite":
        await client.invite(args.room, args.user_id)
    elif cmd == "kick":
        await client.kick(args.room, args.user_id)
    elif cmd == "leave":
        await client.leave(args.room)
    elif cmd == "rename":
        await client.rename(args.room, args.name)
    elif cmd == "send":
        event_id = await client.send_text(args.room, args.text, reply_to=args.reply_to)
        _out(args, event_id, {"event_id": event_id})
    elif cmd == "outbox":
        for waiting in client.outgoing(args.room):
            _out(args, _outgoing_line(waiting), _outgoing_json(waiting))
    elif cmd == "retry":
        event_id = await client.retry_send(args.local_id)
        _out(args, event_id, {"event_id": event_id})
    elif cmd == "discard":
        await client.delete_send(args.local_id)
    elif cmd == "send-file":
        event_id = await client.send_file(args.room, args.path, image=args.image)
        _out(args, event_id, {"event_id": event_id})
    elif cmd == "download":
        cached = client.store.get_message(args.event_id)
        if cached is None:
            raise SystemExit("no such message in the local cache")
        path = await client.download_file(Message.from_dict(cached), args.dest)
        _out(args, str(path), {"path": str(path)})
    elif cmd == "delete":
        await client.delete_message(args.room, args.event_id)
    elif cmd == "read":
        if args.history:
            await client.load_history(args.room)
        for m in client.messages(args.room, args.limit):
            _out(args, _message_line(m), m.to_dict())
    elif cmd == "search":
        for m in client.search(args.room, args.text):
            _out(args, _message_line(m), m.to_dict())
    elif cmd == "favourite":
        await client.set_favourite(args.room, not args.off)
    elif cmd == "devices":
        for d in await client.list_devices():
            mark = "*" if d.get("device_id") == client.device_id else " "
            _out(args, f"{mark} {d.get('device_id')} {d.get('display_name') or ''}", d)
    elif cmd == "pair-approve":
        name = await approve_pairing(client, args.code, confirm=_confirm_sas)
        _out(args, f"sent keys to {name or 'the new device'}", {"device_display_name": name})
    elif cmd == "reset-session":
        await client.reset_session(args.user_id, args.device_id)
    elif cmd == "safety-changes":
        for change in client.safety_number_changes():
            _out(args, change.notice, {"user_id": change.user_id, "new_key": change.new_key,
                                       "notice": change.notice})
    elif cmd == "accept-safety-number":
        await client.learn_devices([args.user_id])
        shown = [c for c in client.safety_number_changes() if c.user_id == args.user_id]
        if not shown:
            raise ValueError(f"the safety number of {args.user_id} did not change")
        if args.key != shown[0].new_key:
            raise ValueError(f"{shown[0].notice} (pass its key {shown[0].new_key} to accept it)")
        await client.accept_safety_number(args.user_id, args.key)
        _out(args, f"accepted the new safety number of {args.user_id}", {"user_id": args.user_id})
    elif cmd == "profile":
        _out(args, json.dumps(await client.get_profile(args.user_id)), await client.get_profile(args.user_id))
    elif cmd == "set-name":
        await client.set_profile_field("displayname", args.name)
    elif cmd == "presence":
        await client.set_presence(args.state)
    elif cmd == "listen":
        client.start()
        await asyncio.Event().wait()  # until killed
    elif cmd == "shell":
        await _shell(client, args)
    else:  # pragma: no cover - argparse rejects unknown commands
        raise SystemExit(f"unknown command {cmd}")


async def _dm_user(client: ChatClient, user_id: str) -> str:
    return client.find_dm(user_id) or await client.create_dm(user_id)


async def _shell(client: ChatClient, args: argparse.Namespace) -> None:
    """Commands from stdin, one per line (same syntax as the command line); events print as they come."""
    parser = build_parser()
    client.start()
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line or line.strip() in ("quit", "exit"):
            break
        if not line.strip():
            continue
        try:
            sub = parser.parse_args(["--server", args.server, "--home", args.home, *shlex.split(line)])
            sub.json = args.json
            if sub.command in ("shell", "listen", "register", "pair-new"):
                raise SystemExit("not available inside the shell")
            await run_command(client, sub)
        except SystemExit as exc:
            _out(args, f"! {exc}", {"error": str(exc)})
        except (MatrixError, TransportFailure, ValueError) as exc:
            _out(args, f"! {exc}", {"error": str(exc)})


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m client_tk.cli", description="Parley command-line client")
    p.add_argument("--server", default=os.environ.get("PARLEY_SERVER", "http://127.0.0.1:8008"))
    p.add_argument("--home", default=os.environ.get("PARLEY_HOME", "~/.parley"), help="local store root")
    p.add_argument("--user", default=os.environ.get("PARLEY_USER"), help="full user id, e.g. @alice:example.org")
    p.add_argument("--password")
    p.add_argument("--login-method", choices=("key", "password"), default="key")
    p.add_argument("--json", action="store_true", help="one JSON object per output line")
    p.add_argument("--insecure", action="store_true", help="dev only: do not verify TLS certificates")
    p.add_argument("--sync-timeout", type=int, default=30, help="long-poll seconds")
    p.add_argument("--dev-kdf-iterations", type=int, default=0, help=argparse.SUPPRESS)
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("register", help="create an account and this device")
    r.add_argument("username")
    r.add_argument("--email", help="register with an e-mail code (read from stdin)")
    sub.add_parser("pair-new", help="pair this machine as a new device (prints a code)")
    sub.add_parser("whoami")
    sub.add_parser("rooms")
    sub.add_parser("invitations")
    for name in ("accept", "decline", "leave"):
        sub.add_parser(name).add_argument("room")
    sub.add_parser("dm", help="find or create a direct chat").add_argument("target", help="user id or e-mail")
    g = sub.add_parser("group")
    g.add_argument("name")
    g.add_argument("--invite", nargs="*")
    for name in ("invite", "kick"):
        x = sub.add_parser(name)
        x.add_argument("room")
        x.add_argument("user_id")
    x = sub.add_parser("rename")
    x.add_argument("room")
    x.add_argument("name")
    s = sub.add_parser("send")
    s.add_argument("room")
    s.add_argument("text")
    s.add_argument("--reply-to")
    sub.add_parser("outbox", help="messages not sent yet (pending or failed)").add_argument("room", nargs="?")
    sub.add_parser("retry", help="send a failed message again").add_argument("local_id")
    sub.add_parser("discard", help="give up on a message that was not sent").add_argument("local_id")
    f = sub.add_parser("send-file")
    f.add_argument("room")
    f.add_argument("path")
    f.add_argument("--image", action="store_true")
    d = sub.add_parser("download")
    d.add_argument("event_id")
    d.add_argument("dest")
    x = sub.add_parser("delete")
    x.add_argument("room")
    x.add_argument("event_id")
    rd = sub.add_parser("read")
    rd.add_argument("room")
    rd.add_argument("--limit", type=int)
    rd.add_argument("--history", action="store_true", help="page back through the server first")
    se = sub.add_parser("search")
    se.add_argument("text")
    se.add_argument("--room")
    fv = sub.add_parser("favourite")
    fv.add_argument("room")
    fv.add_argument("--off", action="store_true")
    sub.add_parser("devices")
    sub.add_parser("pair-approve").add_argument("code")
    rs = sub.add_parser("reset-session")
    rs.add_argument("user_id")
    rs.add_argument("device_id")
    sub.add_parser("safety-changes", help="contacts whose safety number changed (sending held)")
    asn = sub.add_parser("accept-safety-number", help="accept the new key shown by safety-changes")
    asn.add_argument("user_id")
    asn.add_argument("key")
    sub.add_parser("profile").add_argument("user_id", nargs="?")
    sub.add_parser("set-name").add_argument("name")
    sub.add_parser("presence").add_argument("state", choices=("online", "unavailable", "offline"))
    sub.add_parser("listen", help="print events as they arrive, until interrupted")
    sub.add_parser("shell", help="read commands from stdin")
    return p


async def _confirm_sas(code: str) -> bool:
    """Both devices show this code; pairing goes on only if the user says they match."""
    answer = await asyncio.to_thread(input, f"Security code: {code}\n"
                                            "Does the other device show the same code? [y/N] ")
    return answer.strip().lower() in ("y", "yes")


async def amain(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    client: ChatClient | None = None
    try:
        if args.command not in ("register", "pair-new"):
            client = await _open(args)
        await run_command(client, args)
        return 0
    except (MatrixError, TransportFailure, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        if client is not None:
            await client.close()


def main(argv: list[str] | None = None) -> int:
    try:
        return asyncio.run(amain(argv))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
