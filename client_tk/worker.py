"""The worker side of the bridge: runs :mod:`client_tk.bridge` commands against the core.

Everything here runs on the worker thread's asyncio loop.  It is a thin
adapter: :meth:`Worker.handlers` is the explicit table from command type to
handler; each handler is one or two calls on :class:`ChatClient` (or on the
account functions), and the answers are frozen UI events posted to the
bridge.  It only *reads* the core's committed snapshots (``rooms``,
``outgoing()``): every change goes through a core method.  Heavy work
(image decoding) goes to ``asyncio.to_thread``.
"""

from __future__ import annotations

import asyncio
import logging
import re
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from client_tk import bridge as b
from client_tk.core import account
from client_tk.core.client import ACCEPTED_TAG, MUTED_TAG, ChatClient
from client_tk.core.events import (
    ClientEvent,
    EventBus,
    InvitationReceived,
    MessageChanged,
    MessageDeleted,
    MessageReceived,
    OutboxChanged,
    ReceiptUpdated,
    RoomUpdated,
    UnreadCountChanged,
)
from client_tk.core.sync import RoomView
from client_tk.widgets.images import (
    MAX_AVATAR_BYTES,
    ImageRejected,
    avatar_rgba,
)
from client_tk.worker_messages import MessageHandlers
from client_tk.worker_parts import preview_of, read_image
from client_tk.worker_people import PeopleHandlers
from common.errors import MatrixError
from common.identifiers import parse_user_id

logger = logging.getLogger(__name__)
HISTORY_LIMIT = 5000
Handler = Callable[[Any], Awaitable[None]]
MXC = re.compile(r"mxc://([A-Za-z0-9.\-:\[\]]{1,255})/([A-Za-z0-9_\-]{1,255})")


class Worker(MessageHandlers, PeopleHandlers):
    def __init__(self, bridge: b.Bridge, root: Path, **options: Any) -> None:
        self.bridge = bridge
        self.root = root
        self.options = options
        self.client: ChatClient | None = None
        self.names: dict[str, str] = {}
        self.avatars: dict[str, str] = {}  # user id -> mxc:// URI of their profile picture
        self.cache = Path(tempfile.mkdtemp(prefix="parley-media-"))
        self._code: asyncio.Future[str] | None = None
        self._sas: asyncio.Future[bool] | None = None
        self._snapshot_pending = False
        self.latest: dict[str, tuple[int, str, str | None]] = {}  # room -> (ts, preview, sender)
        self.receipts: dict[str, dict[str, str]] = {}  # room -> user -> the event they have read up to
        self.dm_emails: dict[str, str] = {}  # direct chats started by e-mail -> the address
        self.named: set[str] = set()  # users whose profile has a display name
        self.read_at: dict[str, int] = {}  # room -> ts of the message we marked read (badge 0 until newer)
        self._resolving: set[str] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._handlers = self.handlers()
        bridge.handler = self.handle

    def handlers(self) -> dict[type[b.Command], Handler]:
        """Every command the worker runs, and what runs it."""
        return {
            b.Register: self.do_Register, b.SubmitEmailCode: self.do_SubmitEmailCode,
            b.Login: self.do_Login, b.PairThisDevice: self.do_PairThisDevice, b.Logout: self.do_Logout,
            b.OpenRoom: self.do_OpenRoom, b.AcceptInvite: self.do_AcceptInvite,
            b.DeclineInvite: self.do_DeclineInvite, b.NewDirectChat: self.do_NewDirectChat,
            b.NewGroup: self.do_NewGroup, b.InviteMember: self.do_InviteMember,
            b.RemoveMember: self.do_RemoveMember, b.RenameGroup: self.do_RenameGroup,
            b.SetGroupAvatar: self.do_SetGroupAvatar, b.LeaveRoom: self.do_LeaveRoom,
            b.DestroyGroup: self.do_DestroyGroup, b.SetFavourite: self.do_SetFavourite,
            b.SetMuted: self.do_SetMuted, b.BlockUser: self.do_BlockUser,
            b.AcceptRequest: self.do_AcceptRequest,
            b.SendText: self.do_SendText, b.SendFile: self.do_SendFile,
            b.GetBackup: self.do_GetBackup, b.SetBackup: self.do_SetBackup,
            b.EditMessage: self.do_EditMessage, b.ToggleReaction: self.do_ToggleReaction,
            b.RetrySend: self.do_RetrySend, b.DiscardSend: self.do_DiscardSend,
            b.DeleteMessage: self.do_DeleteMessage, b.DownloadFile: self.do_DownloadFile,
            b.MarkRead: self.do_MarkRead, b.SetTyping: self.do_SetTyping, b.Search: self.do_Search,
            b.ResetSession: self.do_ResetSession, b.GetProfile: self.do_GetProfile,
            b.SaveProfile: self.do_SaveProfile, b.SetAvatar: self.do_SetAvatar,
            b.FetchAvatar: self.do_FetchAvatar, b.RefreshProfiles: self.do_RefreshProfiles,
            b.ListDevices: self.do_ListDevices, b.RemoveDevice: self.do_RemoveDevice,
            b.ApprovePairing: self.do_ApprovePairing, b.GetSafetyNumber: self.do_GetSafetyNumber,
            b.ConfirmPairingSas: self.do_ConfirmPairingSas, b.AcceptSafetyNumber: self.do_AcceptSafetyNumber,
        }

    # ------------------------------------------------------------ plumbing
    def _opts(self, server: str) -> account.ClientOptions:
        bus = EventBus()
        bus.subscribe(self._on_core_event)
        return account.ClientOptions(base_url=server.rstrip("/"), root=self.root, bus=bus, **self.options)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _on_core_event(self, event: ClientEvent) -> None:
        self.bridge.post(event)
        if isinstance(event, (RoomUpdated, UnreadCountChanged, InvitationReceived)):
            self._schedule_snapshot()
        if isinstance(event, MessageDeleted) and event.room_id in self.latest:
            del self.latest[event.room_id]  # read again from the store (the newest may be gone)
            self._schedule_snapshot()
        if isinstance(event, MessageChanged) and \
                self.latest.get(event.message.room_id, (0, "", None))[0] == event.message.ts:
            self.latest[event.message.room_id] = (event.message.ts, preview_of(event.message), event.message.sender)
            self._schedule_snapshot()  # an edit of the newest message changes the preview
        if isinstance(event, ReceiptUpdated):
            self.receipts.setdefault(event.room_id, {})[event.user_id] = event.event_id
        if isinstance(event, MessageReceived):
            message = event.message
            if message.ts >= self.latest.get(message.room_id, (0, "", None))[0]:
                self.latest[message.room_id] = (message.ts, preview_of(message), message.sender)
                self._schedule_snapshot()
            self._resolve([event.message.sender])
            if event.message.kind == "image" and event.message.file and not event.message.redacted:
                self._spawn(self._thumbnail(event.message))

    def _schedule_snapshot(self) -> None:
        if not self._snapshot_pending:
            self._snapshot_pending = True
            asyncio.get_running_loop().call_later(0.05, self._snapshot)

    @property
    def c(self) -> ChatClient:
        if self.client is None:
            raise MatrixError(401, "M_FORBIDDEN", "not logged in")
        return self.client

    async def handle(self, command: b.Command) -> None:
        handler = self._handlers.get(type(command))
        if handler is None:
            raise NotImplementedError(type(command).__name__)
        await handler(command)

    async def shutdown(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self.client is not None:
            await self.client.close()
            self.client = None

    # ------------------------------------------------------------ accounts
    async def _logged_in(self, client: ChatClient) -> None:
        self.client = client
        self.latest.clear()
        self.receipts.clear()
        self.read_at.clear()
        self.bridge.post(b.LoggedIn(client.user_id, client.device_id))
        client.start()
        self._snapshot()
        self._resolve([client.user_id])

    async def do_Register(self, cmd: b.Register) -> None:
        asked = 0

        async def code_provider(email: str) -> str:
            nonlocal asked
            self._code = asyncio.get_running_loop().create_future()
            self.bridge.post(b.EmailCodeRequested(email, again=asked > 0))
            asked += 1
            return await self._code

        client = await account.register(self._opts(cmd.server), cmd.username, cmd.password,
                                        email=cmd.email or None,
                                        code_provider=code_provider if cmd.email else None)
        await self._logged_in(client)

    async def do_SubmitEmailCode(self, cmd: b.SubmitEmailCode) -> None:
        if self._code is not None and not self._code.done():
            self._code.set_result(cmd.code.strip())

    async def do_Login(self, cmd: b.Login) -> None:
        user_id = cmd.user_id.strip()
        if ":" not in user_id:  # the short name: the account of that name on this computer
            found = await asyncio.to_thread(account.find_local_user, self.root, user_id)
            if found is None:
                raise MatrixError(404, "M_NOT_FOUND", f"no local account named {user_id}")
            user_id = found
        parse_user_id(user_id)
        client = await account.login(self._opts(cmd.server), user_id, cmd.password)
        await self._logged_in(client)

    async def do_PairThisDevice(self, cmd: b.PairThisDevice) -> None:
        opts = self._opts(cmd.server)
        request = await account.start_pairing(opts, cmd.user_id or None)
        self.bridge.post(b.PairingCodeShown(request.code))
        client = await account.finish_pairing(opts, request, cmd.password, confirm=self._confirm_sas)
        await self._logged_in(client)

    async def do_Logout(self, cmd: b.Logout) -> None:
        await self.c.logout()
        self.client = None
        self.bridge.post(b.LoggedOut())

    # --------------------------------------------------------------- rooms
    def _room_info(self, room: RoomView) -> b.RoomInfo:
        me = self.c.user_id
        joined = tuple(room.joined)
        invited = tuple(room.invited)
        peer = None
        if room.is_direct:
            others = [u for u in (*joined, *invited) if u != me] or \
                     [u for u in room.members if u != me]
            peer = others[0] if others else None
        title = room.name or (self.names.get(peer, peer) if peer else None) or room.room_id
        if not room.name and room.room_id in self.dm_emails and peer not in self.named:
            title = self.dm_emails[room.room_id]  # not a random id: the address the user typed
        favourite = room.favourite
        avatar = room.avatar_url if isinstance(room.avatar_url, str) and MXC.fullmatch(room.avatar_url) else None
        ts, preview, sender = self._latest(room.room_id)
        unread = room.unread
        marked = self.read_at.get(room.room_id)
        if marked is not None:  # read here: the server's count catches up with its next sync
            if ts > marked and sender != me:
                del self.read_at[room.room_id]
            else:
                unread = 0
        muted = MUTED_TAG in room.tags
        stranger = room.is_direct and self._from_stranger(room, peer)
        return b.RoomInfo(room.room_id, title, room.is_direct, joined, invited, room.creator,
                          0 if muted else unread, favourite, room.inviter, peer, avatar, ts, preview, sender,
                          muted, stranger)

    def _from_stranger(self, room: RoomView, peer: str | None) -> bool:
        """A direct chat someone else started, whom we share no other conversation with, that we
        have not accepted (tag) nor written in: a message request."""
        me = self.c.user_id
        starter = room.inviter if room.membership == "invite" else room.creator
        if not peer or starter in (None, me) or ACCEPTED_TAG in room.tags:
            return False
        if room.membership == "join" and self._latest(room.room_id)[2] == me:
            return False
        return not any(peer in r.joined for r in self.c.room_list() if r.room_id != room.room_id)

    def _latest(self, room_id: str) -> tuple[int, str, str | None]:
        """The room's newest cached message (read from the store once, then kept up to date)."""
        known = self.latest.get(room_id)
        if known is None:
            newest = self.c.messages(room_id, 1)
            known = (newest[-1].ts, preview_of(newest[-1]), newest[-1].sender) if newest else (0, "", None)
            self.latest[room_id] = known
        return known

    def _snapshot(self) -> None:
        self._snapshot_pending = False
        if self.client is None:
            return
        rooms = tuple(self._room_info(r) for r in self.c.room_list())
        invites = tuple(self._room_info(r) for r in self.c.invitations())
        users = {u for r in rooms for u in (*r.members, *r.invited)} | \
                {r.inviter for r in invites if r.inviter}
        self._resolve(sorted(users))
        self.bridge.post(b.RoomsSnapshot(rooms, invites, tuple(sorted(self.names.items())),
                                         tuple(sorted(self.avatars.items()))))

    def _resolve(self, users: list[str]) -> None:
        """Fetch display names we don't know yet (once per user), then re-snapshot."""
        todo = [u for u in users if u not in self.names and u not in self._resolving]
        if todo and self.client is not None:
            self._resolving.update(todo)
            self._spawn(self._fetch_names(todo))

    async def _fetch_names(self, users: list[str]) -> None:
        for user in users:
            try:
                profile = await self.c.get_profile(user)
                self._remember_profile(user, profile)
            except (MatrixError, OSError, Exception):  # a missing name is cosmetic
                self.names.setdefault(user, user.split(":")[0][1:])
            finally:
                self._resolving.discard(user)
        self._schedule_snapshot()

    def _remember_profile(self, user: str, profile: dict[str, Any]) -> None:
        name = profile.get("displayname")
        self.names[user] = name if isinstance(name, str) and name else user.split(":")[0][1:]
        if isinstance(name, str) and name and name != user.split(":")[0][1:]:
            self.named.add(user)  # a chosen name, not the id's local part (a placeholder's)
        avatar = profile.get("avatar_url")
        if isinstance(avatar, str) and MXC.fullmatch(avatar):
            self.avatars[user] = avatar
        else:
            self.avatars.pop(user, None)

    async def do_RefreshProfiles(self, cmd: b.RefreshProfiles) -> None:
        todo = [u for u in dict.fromkeys(cmd.user_ids) if u not in self._resolving]
        self._resolving.update(todo)
        await self._fetch_names(todo)

    async def do_FetchAvatar(self, cmd: b.FetchAvatar) -> None:
        """Authenticated media download into memory (capped), decoded off the loop."""
        try:
            match = MXC.fullmatch(cmd.mxc)
            if match is None:
                raise ImageRejected("not an mxc:// URI")
            data = bytearray()

            def sink(piece: bytes) -> None:
                data.extend(piece)
                if len(data) > MAX_AVATAR_BYTES:
                    raise ImageRejected("picture too large")

            server, media_id = match.groups()
            await self.c.http.download(f"/_matrix/client/v1/media/download/{quote(server, safe='')}/"
                                       f"{quote(media_id, safe='')}", sink)
            thumb = await asyncio.to_thread(avatar_rgba, bytes(data))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a missing picture is cosmetic: the letter stays
            logger.info("no avatar from %s: %s", cmd.mxc, exc)
            self.bridge.post(b.AvatarFailed(cmd.mxc, str(exc)))
            return
        self.bridge.post(b.AvatarReady(cmd.mxc, thumb))

    async def do_OpenRoom(self, cmd: b.OpenRoom) -> None:
        await self._send_history(cmd.room_id)
        if await self.c.load_history(cmd.room_id, limit=HISTORY_LIMIT):
            await self._send_history(cmd.room_id)

    async def _send_history(self, room_id: str) -> None:
        messages = tuple(self.c.messages(room_id, HISTORY_LIMIT))
        failed = tuple(self.c.undecryptable(room_id))
        receipts = tuple(sorted(self.receipts.get(room_id, {}).items()))
        self.bridge.post(b.HistoryLoaded(room_id, messages, failed, receipts))
        self.bridge.post(OutboxChanged(room_id, tuple(self.c.outgoing(room_id))))
        self._resolve(sorted({m.sender for m in messages}))
        for message in messages:
            if message.kind == "image" and message.file and not message.redacted:
                self._spawn(self._thumbnail(message))

    async def do_AcceptInvite(self, cmd: b.AcceptInvite) -> None:
        await self.c.accept(cmd.room_id)
        self._snapshot()
        self.bridge.post(b.RoomOpened(cmd.room_id))

    async def do_DeclineInvite(self, cmd: b.DeclineInvite) -> None:
        await self.c.decline(cmd.room_id)
        self._snapshot()

    async def do_NewDirectChat(self, cmd: b.NewDirectChat) -> None:
        email = cmd.email.strip()
        room_id = await self.c.dm_by_email(email)
        self.dm_emails[room_id] = email  # the chat is titled by the address until they have a name
        self._snapshot()
        self.bridge.post(b.RoomOpened(room_id))
        self.bridge.post(b.Notice(f"Chat with {email} started. If nobody uses Parley with that address yet, "
                                  "they will read your messages when they join with it."))

    async def do_NewGroup(self, cmd: b.NewGroup) -> None:
        users = [await self._who(e) for e in cmd.invite_emails if e.strip()]
        room_id = await self.c.create_group(cmd.name.strip(), users)
        self._snapshot()
        self.bridge.post(b.RoomOpened(room_id))

    async def _who(self, text: str) -> str:
        text = text.strip()
        if text.startswith("@"):
            parse_user_id(text)
            return text
        return await self.c.lookup_email(text)

    async def do_InviteMember(self, cmd: b.InviteMember) -> None:
        await self.c.invite(cmd.room_id, await self._who(cmd.who))
        self.bridge.post(b.Notice(f"Invited {cmd.who}"))

    async def do_RemoveMember(self, cmd: b.RemoveMember) -> None:
        await self.c.kick(cmd.room_id, cmd.user_id)
        self.bridge.post(b.Notice(f"Removed {self.names.get(cmd.user_id, cmd.user_id)}"))

    async def do_RenameGroup(self, cmd: b.RenameGroup) -> None:
        await self.c.rename(cmd.room_id, cmd.name.strip())

    async def do_SetGroupAvatar(self, cmd: b.SetGroupAvatar) -> None:
        data, kind = await asyncio.to_thread(read_image, Path(cmd.path))
        await self.c.set_group_avatar(cmd.room_id, data, kind)
        self.bridge.post(b.Notice("Group picture changed"))

    async def do_LeaveRoom(self, cmd: b.LeaveRoom) -> None:
        await self.c.leave(cmd.room_id)
        self._snapshot()

    async def do_DestroyGroup(self, cmd: b.DestroyGroup) -> None:
        await self.c.destroy_group(cmd.room_id)
        self._snapshot()

    async def do_SetMuted(self, cmd: b.SetMuted) -> None:
        await self.c.set_muted(cmd.room_id, cmd.muted)
        self._snapshot()

    async def do_AcceptRequest(self, cmd: b.AcceptRequest) -> None:
        room = self.c.rooms.get(cmd.room_id)
        if room is not None and room.membership == "invite":
            await self.c.accept(cmd.room_id)
        await self.c.accept_request(cmd.room_id)
        self._snapshot()
        self.bridge.post(b.RoomOpened(cmd.room_id))

    async def do_BlockUser(self, cmd: b.BlockUser) -> None:
        parse_user_id(cmd.user_id)
        await self.c.ignore_user(cmd.user_id)
        room = self.c.rooms.get(cmd.room_id) if cmd.room_id else None
        if room is not None and room.membership == "invite":
            await self.c.decline(room.room_id)
        elif room is not None and room.membership == "join":
            await self.c.leave(room.room_id)
        self._snapshot()
        self.bridge.post(b.Notice(f"Blocked {self.names.get(cmd.user_id, cmd.user_id)}"))

    async def do_SetFavourite(self, cmd: b.SetFavourite) -> None:
        await self.c.set_favourite(cmd.room_id, cmd.favourite)
        self._snapshot()

