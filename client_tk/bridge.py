"""The asyncio ↔ Tk bridge.

The client core runs on an asyncio loop in one worker thread.  Views call
:meth:`Bridge.send` with a typed, frozen *command* (below); the worker runs it
against the core (:class:`client_tk.worker.Worker`) and answers with typed, frozen *UI events* plus every core
:class:`~client_tk.core.events.ClientEvent`, all over one ``queue.Queue``.
The Tk loop drains that queue with ``after()`` in bounded batches
(:data:`BATCH` events per tick, every :data:`TICK_MS` ms), so the window keeps
answering however much arrives.  Only the Tk thread touches widgets; only the
worker thread touches the core.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from client_tk.core.events import ClientEvent, Message
from client_tk.widgets.images import Thumbnail

logger = logging.getLogger(__name__)
BATCH = 50
TICK_MS = 20
DRAIN_BUDGET_S = 0.012  # Tk time per tick for queued events


@dataclass(frozen=True)
class Command:
    """Base of everything a view asks the worker to do."""


# ---------------------------------------------------------------- accounts
@dataclass(frozen=True)
class Register(Command):
    server: str
    username: str
    password: str
    email: str | None = None


@dataclass(frozen=True)
class SubmitEmailCode(Command):
    code: str


@dataclass(frozen=True)
class Login(Command):
    server: str
    user_id: str
    password: str


@dataclass(frozen=True)
class PairThisDevice(Command):
    """New device: show a code, wait until a logged-in device approves it."""
    server: str
    user_id: str
    password: str


@dataclass(frozen=True)
class Logout(Command):
    pass


# ------------------------------------------------------------------- rooms
@dataclass(frozen=True)
class OpenRoom(Command):
    room_id: str


@dataclass(frozen=True)
class AcceptInvite(Command):
    room_id: str


@dataclass(frozen=True)
class DeclineInvite(Command):
    room_id: str


@dataclass(frozen=True)
class NewDirectChat(Command):
    email: str


@dataclass(frozen=True)
class NewGroup(Command):
    name: str
    invite_emails: tuple[str, ...] = ()


@dataclass(frozen=True)
class InviteMember(Command):
    room_id: str
    who: str  # an e-mail address or a user id


@dataclass(frozen=True)
class RemoveMember(Command):
    room_id: str
    user_id: str


@dataclass(frozen=True)
class RenameGroup(Command):
    room_id: str
    name: str


@dataclass(frozen=True)
class SetGroupAvatar(Command):
    room_id: str
    path: str


@dataclass(frozen=True)
class LeaveRoom(Command):
    room_id: str


@dataclass(frozen=True)
class DestroyGroup(Command):
    room_id: str


@dataclass(frozen=True)
class SetFavourite(Command):
    room_id: str
    favourite: bool


@dataclass(frozen=True)
class SetMuted(Command):
    room_id: str
    muted: bool


@dataclass(frozen=True)
class AcceptRequest(Command):
    """A stranger's direct chat (a message request) is welcome."""
    room_id: str


@dataclass(frozen=True)
class BlockUser(Command):
    """Ignore ``user_id`` (m.ignored_user_list) and leave or decline ``room_id`` (their chat)."""
    user_id: str
    room_id: str | None = None


# ---------------------------------------------------------------- messages
@dataclass(frozen=True)
class SendText(Command):
    room_id: str
    text: str
    reply_to: str | None = None


@dataclass(frozen=True)
class SendFile(Command):
    room_id: str
    path: str
    image: bool = False
    reply_to: str | None = None


@dataclass(frozen=True)
class DeleteMessage(Command):
    room_id: str
    event_id: str


@dataclass(frozen=True)
class EditMessage(Command):
    """Replace the text of one of our messages (m.replace)."""
    room_id: str
    event_id: str
    text: str


@dataclass(frozen=True)
class ToggleReaction(Command):
    """Add our reaction ``key`` to a message, or take it back if we had reacted so (m.annotation)."""
    room_id: str
    event_id: str
    key: str


@dataclass(frozen=True)
class RetrySend(Command):
    """Send a message that failed (an outbox entry's ``local_id``) again."""

    local_id: str


@dataclass(frozen=True)
class DiscardSend(Command):
    """Give up on a message that was not sent."""

    local_id: str


@dataclass(frozen=True)
class DownloadFile(Command):
    room_id: str
    event_id: str
    folder: str


@dataclass(frozen=True)
class MarkRead(Command):
    room_id: str
    event_id: str


@dataclass(frozen=True)
class SetTyping(Command):
    room_id: str
    typing: bool


@dataclass(frozen=True)
class Search(Command):
    room_id: str  # "" searches every conversation
    text: str


@dataclass(frozen=True)
class ResetSession(Command):
    user_id: str
    device_id: str


# ------------------------------------------------------ people and devices
@dataclass(frozen=True)
class GetProfile(Command):
    user_id: str | None = None


@dataclass(frozen=True)
class SaveProfile(Command):
    fields: tuple[tuple[str, str], ...]
    visibility: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class SetAvatar(Command):
    path: str


@dataclass(frozen=True)
class FetchAvatar(Command):
    """Download and decode a picture (mxc:// URI); answered by AvatarReady or AvatarFailed."""
    mxc: str


@dataclass(frozen=True)
class RefreshProfiles(Command):
    """Fetch display names and pictures again (they may have changed)."""
    user_ids: tuple[str, ...]


@dataclass(frozen=True)
class ListDevices(Command):
    pass


@dataclass(frozen=True)
class RemoveDevice(Command):
    device_id: str
    password: str


@dataclass(frozen=True)
class ApprovePairing(Command):
    code: str


@dataclass(frozen=True)
class ConfirmPairingSas(Command):
    """The user's answer to :class:`PairingSasShown`: do both screens show the same code?"""

    matches: bool


@dataclass(frozen=True)
class AcceptSafetyNumber(Command):
    user_id: str
    new_key: str


@dataclass(frozen=True)
class GetSafetyNumber(Command):
    user_id: str


@dataclass(frozen=True)
class GetBackup(Command):
    """Is the server-side key backup on?  Answered by :class:`BackupState`."""


@dataclass(frozen=True)
class SetBackup(Command):
    """Turn the key backup on (answered with the recovery key) or off (every version deleted)."""
    enabled: bool


# --------------------------------------------------------------- UI events
@dataclass(frozen=True)
class UiEvent(ClientEvent):
    """Base of the worker's own answers (core events pass through unchanged)."""


@dataclass(frozen=True)
class LoggedIn(UiEvent):
    user_id: str
    device_id: str


@dataclass(frozen=True)
class LoggedOut(UiEvent):
    pass


@dataclass(frozen=True)
class EmailCodeRequested(UiEvent):
    email: str
    again: bool = False  # the code typed before was not right


@dataclass(frozen=True)
class PairingCodeShown(UiEvent):
    code: str


@dataclass(frozen=True)
class PairingSasShown(UiEvent):
    """Both devices show this short code; answer with :class:`ConfirmPairingSas`."""

    code: str


@dataclass(frozen=True)
class RoomInfo:
    room_id: str
    title: str
    is_direct: bool
    members: tuple[str, ...]
    invited: tuple[str, ...]
    creator: str | None
    unread: int
    favourite: bool
    inviter: str | None = None
    peer: str | None = None  # the other person of a direct chat
    avatar_url: str | None = None  # the group's picture (m.room.avatar), an mxc:// URI
    last_ts: int = 0  # when the newest message arrived (ms), 0 for none
    preview: str = ""  # the newest message, as one line
    last_sender: str | None = None
    muted: bool = False
    stranger: bool = False  # a direct chat from someone we share no other conversation with: a request


@dataclass(frozen=True)
class RoomsSnapshot(UiEvent):
    rooms: tuple[RoomInfo, ...]
    invitations: tuple[RoomInfo, ...]
    names: tuple[tuple[str, str], ...] = ()  # user id -> display name
    avatars: tuple[tuple[str, str], ...] = ()  # user id -> profile picture (mxc:// URI)


@dataclass(frozen=True)
class HistoryLoaded(UiEvent):
    room_id: str
    messages: tuple[Message, ...]
    undecryptable: tuple[tuple[str, str, str], ...] = ()  # (event id, sender, device)
    receipts: tuple[tuple[str, str], ...] = ()  # (user, the event they have read up to)


@dataclass(frozen=True)
class ImageReady(UiEvent):
    event_id: str
    thumbnail: Thumbnail


@dataclass(frozen=True)
class AvatarReady(UiEvent):
    """A decoded square picture (``thumbnail`` is RGBA, at most AVATAR_PX wide)."""
    mxc: str
    thumbnail: Thumbnail


@dataclass(frozen=True)
class AvatarFailed(UiEvent):
    mxc: str
    reason: str


@dataclass(frozen=True)
class DownloadFinished(UiEvent):
    event_id: str
    path: str


@dataclass(frozen=True)
class DownloadProgress(UiEvent):
    event_id: str
    done: int
    total: int


@dataclass(frozen=True)
class SearchResults(UiEvent):
    room_id: str  # "" for a search across every conversation
    text: str
    event_ids: tuple[str, ...]
    hits: tuple[Message, ...] = ()  # the matching messages of a search across conversations


@dataclass(frozen=True)
class ProfileLoaded(UiEvent):
    user_id: str
    own: bool
    fields: tuple[tuple[str, str], ...]
    visibility: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class DevicesLoaded(UiEvent):
    current: str
    devices: tuple[tuple[str, str, int | None], ...]  # (id, display name, last seen ms)


@dataclass(frozen=True)
class SafetyNumberShown(UiEvent):
    user_id: str
    number: str


@dataclass(frozen=True)
class BackupState(UiEvent):
    enabled: bool
    recovery_key: str | None = None  # only right after turning it on: to be written down


@dataclass(frozen=True)
class RoomOpened(UiEvent):
    """A room the user just created or joined: the UI may select it."""
    room_id: str


@dataclass(frozen=True)
class Notice(UiEvent):
    text: str


# errcodes of failures that are not the server's answer (views/errors.py has their sentences)
OFFLINE = "PARLEY_OFFLINE"
WRONG_PASSWORD = "PARLEY_WRONG_PASSWORD"
NO_LOCAL_ACCOUNT = "PARLEY_NO_LOCAL_ACCOUNT"
FILE_NOT_FOUND = "PARLEY_FILE_NOT_FOUND"
IMAGE_REJECTED = "PARLEY_IMAGE_REJECTED"


@dataclass(frozen=True)
class CommandFailed(UiEvent):
    """A command that did not work: ``errcode`` is the Matrix errcode or one of the PARLEY_ codes above;
    ``message`` is the detail (the server's text); views show :func:`client_tk.views.errors.human`."""
    command: str
    message: str
    errcode: str = ""


# ------------------------------------------------------------------ bridge
Handler = Callable[[Command], Coroutine[Any, Any, None]]


@dataclass
class Bridge:
    """Owns the worker thread and its loop; ``send`` from Tk, ``drain`` on Tk's ``after``."""

    events: queue.Queue[ClientEvent] = field(default_factory=queue.Queue)
    loop: asyncio.AbstractEventLoop = field(default_factory=asyncio.new_event_loop)
    handler: Handler | None = None
    _thread: threading.Thread | None = None
    _pending: set[Future[None]] = field(default_factory=set)
    _stopping: bool = False

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="parley-worker", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def post(self, event: ClientEvent) -> None:
        """Any thread: queue an event for the Tk thread."""
        self.events.put(event)

    def send(self, command: Command) -> Future[None]:
        """Tk thread: run ``command`` on the worker; failures come back as :class:`CommandFailed`."""
        assert self.handler is not None, "no worker attached"
        if self._thread is None or self.loop.is_closed() or self._stopping:
            done: Future[None] = Future()  # the window is closing: nothing more goes out
            done.set_result(None)
            logger.info("%s dropped: the worker has stopped", type(command).__name__)
            return done
        future = asyncio.run_coroutine_threadsafe(self._guarded(command), self.loop)
        self._pending.add(future)
        future.add_done_callback(self._pending.discard)
        return future

    async def _guarded(self, command: Command) -> None:
        assert self.handler is not None
        try:
            await self.handler(command)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # every failure becomes a message in the UI
            logger.info("%s failed: %s", type(command).__name__, exc, exc_info=True)
            errcode, message = _describe(exc)
            self.post(CommandFailed(type(command).__name__, message, errcode))

    def call(self, coro: Coroutine[Any, Any, Any], timeout: float = 30.0) -> Any:
        """Any thread but the worker: run a coroutine on the worker loop and wait for it."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def drain(self, dispatch: Callable[[ClientEvent], None], limit: int = BATCH,
              budget_s: float = DRAIN_BUDGET_S) -> int:
        """Tk thread: hand at most ``limit`` queued events to ``dispatch``, for at most ``budget_s``
        (the rest waits for the next tick, so the window keeps answering)."""
        count = 0
        deadline = time.perf_counter() + budget_s
        while count < limit and (count == 0 or time.perf_counter() < deadline):
            try:
                event = self.events.get_nowait()
            except queue.Empty:
                break
            count += 1
            try:
                dispatch(event)
            except Exception:
                logger.exception("UI handler failed for %s", type(event).__name__)
        return count

    def stop(self, shutdown: Coroutine[Any, Any, Any] | None = None) -> None:
        self._stopping = True
        if self._thread is None:
            if shutdown is not None:
                shutdown.close()
            return
        if shutdown is not None:
            try:
                self.call(shutdown, timeout=10)
            except Exception:
                logger.warning("worker shutdown failed", exc_info=True)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        if not self._thread.is_alive():
            self.loop.close()
        self._thread = None


def _describe(exc: BaseException) -> tuple[str, str]:
    """(errcode, detail) of a failure."""
    from client_tk.core.transport import TransportFailure
    from client_tk.widgets.images import ImageRejected
    from common.crypto import WrongPassword
    from common.errors import MatrixError
    if isinstance(exc, MatrixError):
        return exc.errcode, exc.message or exc.errcode
    if isinstance(exc, TransportFailure):
        return OFFLINE, str(exc)
    if isinstance(exc, WrongPassword):
        return WRONG_PASSWORD, "wrong password"
    if isinstance(exc, ImageRejected):
        return IMAGE_REJECTED, str(exc)
    if isinstance(exc, FileNotFoundError):
        if str(exc).startswith("no local account") or "local account" in str(exc):
            return NO_LOCAL_ACCOUNT, str(exc)
        return FILE_NOT_FOUND, str(exc)
    return "", f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
