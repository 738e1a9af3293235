"""The worker's message commands: send, edit, react, retry, delete, download, read, search.

Runs on the worker loop like the rest of :class:`client_tk.worker.Worker`;
every handler is one or two calls on the core.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from pathlib import Path

from client_tk import bridge as b
from client_tk.core.devices import SafetyNumberChangedError
from client_tk.core.events import Message
from client_tk.core.transport import TransportFailure
from client_tk.widgets.images import ImageRejected, sanitize_filename, thumbnail_file
from client_tk.worker_parts import WorkerParts, unique_path
from common.errors import MatrixError

logger = logging.getLogger(__name__)
SEARCH_HITS = 200  # newest matches shown for a search across conversations


class MessageHandlers(WorkerParts):
    # ------------------------------------------------------------ messages
    async def do_SendText(self, cmd: b.SendText) -> None:
        text = cmd.text.strip()
        if text:
            await self._sending(cmd.room_id, self.c.send_text(cmd.room_id, text, cmd.reply_to))

    async def _sending(self, room_id: str, send: Awaitable[str | None]) -> None:
        """Run a send; once it is in the outbox, its failure shows on the message, not as an error."""
        before = {m.local_id for m in self.c.outgoing(room_id)}
        try:
            await send
        except SafetyNumberChangedError:
            for change in self.c.safety_number_changes():  # the dialog asks the user
                self.bridge.post(change)
            raise
        except (MatrixError, TransportFailure):
            if not {m.local_id for m in self.c.outgoing(room_id)} - before:
                raise  # refused before it was queued (not in the room, too large, ...)

    async def do_SendFile(self, cmd: b.SendFile) -> None:
        path = Path(cmd.path)
        if cmd.image:
            await asyncio.to_thread(thumbnail_file, path)  # refuse what we could not show
        await self._sending(cmd.room_id, self.c.send_file(cmd.room_id, path, image=cmd.image,
                                                          reply_to=cmd.reply_to))

    async def do_EditMessage(self, cmd: b.EditMessage) -> None:
        await self._sending(cmd.room_id, self.c.edit_message(cmd.room_id, cmd.event_id, cmd.text))

    async def do_ToggleReaction(self, cmd: b.ToggleReaction) -> None:
        if not await self.c.unreact(cmd.room_id, cmd.event_id, cmd.key):
            await self._sending(cmd.room_id, self.c.react(cmd.room_id, cmd.event_id, cmd.key))

    async def do_RetrySend(self, cmd: b.RetrySend) -> None:
        try:
            await self.c.retry_send(cmd.local_id)
        except TransportFailure:
            pass  # still pending: the message says so, and the outbox tries again

    async def do_DiscardSend(self, cmd: b.DiscardSend) -> None:
        await self.c.delete_send(cmd.local_id)

    async def do_DeleteMessage(self, cmd: b.DeleteMessage) -> None:
        await self.c.delete_message(cmd.room_id, cmd.event_id)

    def _message(self, event_id: str) -> Message:
        cached = self.c.store.get_message(event_id)
        if cached is None:
            raise MatrixError(404, "M_NOT_FOUND", "that message is not in the local cache")
        return Message.from_dict(cached)

    async def do_DownloadFile(self, cmd: b.DownloadFile) -> None:
        message = self._message(cmd.event_id)
        name = sanitize_filename(str((message.file or {}).get("name") or message.body))
        dest = unique_path(Path(cmd.folder) / name)

        def progress(done: int, total: int) -> None:
            self.bridge.post(b.DownloadProgress(cmd.event_id, done, total))

        await self.c.download_file(message, dest, progress)
        self.bridge.post(b.DownloadFinished(cmd.event_id, str(dest)))

    async def _thumbnail(self, message: Message) -> None:
        dest = self.cache / (sanitize_filename(message.event_id) + ".img")
        try:
            if not dest.exists():
                size = int((message.file or {}).get("size") or 0)
                if size > 10 * 1024 * 1024:
                    raise ImageRejected("image too large to preview")
                await self.c.download_file(message, dest)
            thumb = await asyncio.to_thread(thumbnail_file, dest)
        except (ImageRejected, MatrixError, OSError, Exception) as exc:  # preview only
            logger.info("no preview for %s: %s", message.event_id, exc)
            return
        self.bridge.post(b.ImageReady(message.event_id, thumb))

    async def do_MarkRead(self, cmd: b.MarkRead) -> None:
        marked = self.c.store.get_message(cmd.event_id)
        self.read_at[cmd.room_id] = max(self.latest.get(cmd.room_id, (0, "", None))[0],
                                        int(marked["ts"]) if marked else 0)
        self._schedule_snapshot()
        await self.c.mark_read(cmd.room_id, cmd.event_id)

    async def do_SetTyping(self, cmd: b.SetTyping) -> None:
        await self.c.set_typing(cmd.room_id, cmd.typing)

    async def do_Search(self, cmd: b.Search) -> None:
        if not cmd.text.strip():
            found: list[Message] = []
        elif cmd.room_id:
            found = self.c.search(cmd.room_id, cmd.text)
        else:  # every conversation: the whole local store is read, off the loop
            found = await asyncio.to_thread(self.c.search, None, cmd.text)
            found = sorted(found, key=lambda m: -m.ts)[:SEARCH_HITS]
        hits = tuple(found) if not cmd.room_id else ()
        self.bridge.post(b.SearchResults(cmd.room_id, cmd.text, tuple(m.event_id for m in found), hits))

    async def do_ResetSession(self, cmd: b.ResetSession) -> None:
        await self.c.reset_session(cmd.user_id, cmd.device_id)
        self.bridge.post(b.Notice("Secure session reset; new messages will use a fresh session"))
