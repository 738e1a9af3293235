"""``ChatClient``: everything a chat UI needs, on top of :class:`ClientEngine`.

Rooms and people (invitations, direct chats by e-mail, groups, profiles,
presence, typing, receipts, favourites, deletion, search) are thin calls on
the Matrix API; messages and files go through the engine's encryption.
Create one with :mod:`client_tk.core.account` (register, log in, pair).
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

from client_tk.core.account_keyring import AccountKeyring
from client_tk.core.editing import MessageRelations
from client_tk.core.events import Message, TransferProgress
from client_tk.core.file_crypto import decrypt_file, encrypt_file
from client_tk.core.sync import RoomState, RoomView
from client_tk.core.transport import CLIENT_V3, MEDIA_V3, UNSTABLE, TransportFailure, q
from common.crypto import AttachmentInfo, CryptoError
from common.errors import MatrixError
from common.identifiers import is_valid_event_id, normalise_email, parse_room_id, parse_user_id

JsonDict = dict[str, Any]
Progress = Callable[[int, int], None]
MAX_FILE = 50 * 1024 * 1024
MAX_IMAGE = 5 * 1024 * 1024
MAX_NAME = 100
MUTED_TAG = "im.parley.muted"
ACCEPTED_TAG = "im.parley.accepted"  # a stranger's direct chat that is no longer a message request


def _check_room(room_id: str) -> str:
    try:
        parse_room_id(room_id)
    except MatrixError:
        raise MatrixError(400, "M_INVALID_PARAM", f"not a room id: {room_id!r}") from None
    return room_id


def _check_user(user_id: str) -> str:
    try:
        parse_user_id(user_id)
    except MatrixError:
        raise MatrixError(400, "M_INVALID_PARAM", f"not a user id: {user_id!r}") from None
    return user_id


class ChatClient(MessageRelations):
    account: AccountKeyring | None = None  # set by client_tk.core.account (format-2 keys)
    # ------------------------------------------------------------- rooms
    def room_list(self) -> list[RoomView]:
        return sorted((r for r in self.rooms.values() if r.membership == "join"),
                      key=lambda r: (not r.favourite, r.room_id))

    def invitations(self) -> list[RoomView]:
        return [r for r in self.rooms.values() if r.membership == "invite"]

    async def create_group(self, name: str, invite: list[str] = ()) -> str:  # type: ignore[assignment]
        if not name or len(name) > MAX_NAME:
            raise MatrixError(400, "M_INVALID_PARAM", f"a group name has 1 to {MAX_NAME} characters")
        body = {"preset": "private_chat", "name": name, "invite": [_check_user(u) for u in invite]}
        result = await self.http.post(CLIENT_V3 + "/createRoom", body)
        room_id = str(result["room_id"])
        await self._await_room(room_id)
        return room_id

    async def create_dm(self, user_id: str) -> str:
        body = {"preset": "trusted_private_chat", "is_direct": True, "invite": [_check_user(user_id)],
                "creation_content": {"im.parley.is_direct": True}}
        result = await self.http.post(CLIENT_V3 + "/createRoom", body)
        room_id = str(result["room_id"])
        await self._await_room(room_id)
        return room_id

    async def lookup_email(self, email: str) -> str:
        result = await self.http.post(UNSTABLE + "/lookup/email", {"email": normalise_email(email)})
        return str(result["user_id"])

    def find_dm(self, user_id: str) -> str | None:
        for room in self.rooms.values():
            if room.is_direct and room.membership == "join" and user_id in room.members \
                    and room.members.get(user_id) in ("join", "invite"):
                return room.room_id
        return None

    async def dm_by_email(self, email: str) -> str:
        """Find or create the direct chat with whoever owns ``email``."""
        user_id = await self.lookup_email(email)
        return self.find_dm(user_id) or await self.create_dm(user_id)

    async def _await_room(self, room_id: str) -> None:
        """Until /sync has shown us the room (so we know its members)."""
        for _ in range(50):
            room = self.rooms.get(room_id)
            if room is not None and room.membership == "join":
                return
            if self._task is not None and not self._task.done():
                await self.wait_synced()
            else:
                await self.sync_once(0)

    async def invite(self, room_id: str, user_id: str) -> None:
        await self.http.post(f"{CLIENT_V3}/rooms/{q(_check_room(room_id))}/invite",
                             {"user_id": _check_user(user_id)})

    async def accept(self, room_id: str) -> None:
        await self.http.post(f"{CLIENT_V3}/rooms/{q(_check_room(room_id))}/join", {})
        await self._await_room(room_id)

    async def decline(self, room_id: str) -> None:
        await self.http.post(f"{CLIENT_V3}/rooms/{q(_check_room(room_id))}/leave", {})
        await self._left(room_id)

    async def leave(self, room_id: str) -> None:
        await self.http.post(f"{CLIENT_V3}/rooms/{q(_check_room(room_id))}/leave", {})
        await self._left(room_id)

    async def _left(self, room_id: str) -> None:
        """The server took our leave: show it now (and keep it across a restart)."""
        def change(room: RoomState) -> None:
            room.membership = "leave"
            room.members.pop(self.user_id, None)
            self.crypto.discard_outbound(room_id)
        await self.update_room(room_id, change)

    async def kick(self, room_id: str, user_id: str, reason: str | None = None) -> None:
        body: JsonDict = {"user_id": _check_user(user_id)}
        if reason:
            body["reason"] = reason
        await self.http.post(f"{CLIENT_V3}/rooms/{q(_check_room(room_id))}/kick", body)

    async def forget(self, room_id: str) -> None:
        await self.http.post(f"{CLIENT_V3}/rooms/{q(_check_room(room_id))}/forget", {})

    async def destroy_group(self, room_id: str) -> None:
        await self.http.post(f"{UNSTABLE}/rooms/{q(_check_room(room_id))}/destroy", {})
        await self._left(room_id)

    async def rename(self, room_id: str, name: str) -> None:
        if not name or len(name) > MAX_NAME:
            raise MatrixError(400, "M_INVALID_PARAM", f"a group name has 1 to {MAX_NAME} characters")
        await self._put_group_state(room_id, "m.room.name", {"name": name}, "rename the group")

    async def set_group_avatar(self, room_id: str, data: bytes, content_type: str) -> str:
        _check_room(room_id)
        uri = await self.upload_media(data, content_type)
        await self._put_group_state(room_id, "m.room.avatar", {"url": uri}, "change the group's picture")
        return uri

    async def _put_group_state(self, room_id: str, kind: str, content: JsonDict, action: str) -> None:
        try:
            await self.http.put(f"{CLIENT_V3}/rooms/{q(_check_room(room_id))}/state/{kind}/", content)
        except MatrixError as exc:
            if exc.status == 403 and "permission" in exc.message:  # "You don't have permission to send ..."
                raise MatrixError(403, "M_FORBIDDEN", f"Only the group's creator can {action}") from exc
            raise

    async def set_favourite(self, room_id: str, favourite: bool) -> None:
        path = f"{CLIENT_V3}/user/{q(self.user_id)}/rooms/{q(_check_room(room_id))}/tags/m.favourite"
        if favourite:
            await self.http.put(path, {"order": 0.5})
        else:
            await self.http.request("DELETE", path)

        def change(room: RoomState) -> None:  # the tag also comes back with the next sync
            tags = set(room.tags) - {"m.favourite", "favourite"}
            room.tags = sorted(tags | ({"m.favourite"} if favourite else set()))
        await self.update_room(room_id, change)

    async def set_muted(self, room_id: str, muted: bool) -> None:
        """Mute a conversation (no alerts, no badge) on every device: the room tag ``im.parley.muted``."""
        await self._set_tag(room_id, MUTED_TAG, muted)

    async def accept_request(self, room_id: str) -> None:
        """A direct chat a stranger started is accepted (no longer a message request), on every device."""
        await self._set_tag(room_id, ACCEPTED_TAG, True)

    async def _set_tag(self, room_id: str, tag: str, on: bool) -> None:
        path = f"{CLIENT_V3}/user/{q(self.user_id)}/rooms/{q(_check_room(room_id))}/tags/{tag}"
        if on:
            await self.http.put(path, {})
        else:
            await self.http.request("DELETE", path)

        def change(room: RoomState) -> None:  # the tag also comes back with the next sync
            room.tags = sorted((set(room.tags) - {tag}) | ({tag} if on else set()))
        await self.update_room(room_id, change)

    async def ignore_user(self, user_id: str) -> None:
        """Block someone: add them to ``m.ignored_user_list`` (the server drops their events and invites)."""
        path = f"{CLIENT_V3}/user/{q(self.user_id)}/account_data/m.ignored_user_list"
        try:
            current = await self.http.get(path)
        except MatrixError as exc:
            if exc.status != 404:
                raise
            current = {}
        listed = current.get("ignored_users")
        ignored: JsonDict = dict(listed) if isinstance(listed, dict) else {}
        ignored[_check_user(user_id)] = {}
        await self.http.put(path, {"ignored_users": ignored})

    # ----------------------------------------------------------- messages
    async def send_text(self, room_id: str, text: str, reply_to: str | None = None) -> str:
        payload: JsonDict = {"type": "m.text", "body": text}
        if reply_to is not None:
            if not is_valid_event_id(reply_to):
                raise MatrixError(400, "M_INVALID_PARAM", "reply_to must be an event id")
            payload["reply_to"] = reply_to
        return await self.send_payload(_check_room(room_id), payload)

    def messages(self, room_id: str, limit: int | None = None) -> list[Message]:
        return [Message.from_dict(m) for m in self.store.room_messages(room_id, limit)]

    def search(self, room_id: str | None, text: str) -> list[Message]:
        """Case-insensitive search over the local (decrypted) cache."""
        needle = text.casefold()
        rooms = [room_id] if room_id else list(self.rooms)
        return [m for r in rooms for m in self.messages(r)
                if not m.redacted and needle in m.body.casefold()]

    async def delete_message(self, room_id: str, event_id: str) -> None:
        if not is_valid_event_id(event_id):
            raise MatrixError(400, "M_INVALID_PARAM", "not an event id")
        cached = self.store.get_message(event_id)
        if cached is not None and cached.get("sender") != self.user_id:
            # In a direct chat both people are admins and the server would allow it.
            raise MatrixError(403, "M_FORBIDDEN", "You can only delete your own messages")
        await self.http.put(f"{CLIENT_V3}/rooms/{q(_check_room(room_id))}/redact/{q(event_id)}/"
                            f"{secrets.token_hex(8)}", {})

    async def mark_read(self, room_id: str, event_id: str) -> None:
        await self.http.post(f"{CLIENT_V3}/rooms/{q(_check_room(room_id))}/receipt/m.read/{q(event_id)}", {})

    async def set_typing(self, room_id: str, typing: bool, timeout_ms: int = 20_000) -> None:
        body: JsonDict = {"typing": typing}
        if typing:
            body["timeout"] = timeout_ms
        await self.http.put(f"{CLIENT_V3}/rooms/{q(_check_room(room_id))}/typing/{q(self.user_id)}", body)

    async def load_history(self, room_id: str, limit: int = 500) -> int:
        """Page back through ``/messages`` and decrypt what is not cached yet."""
        token: str | None = None
        found: list[JsonDict] = []
        while len(found) < limit:
            params: JsonDict = {"dir": "b", "limit": 100}
            if token:
                params["from"] = token
            page = await self.http.get(f"{CLIENT_V3}/rooms/{q(_check_room(room_id))}/messages", params=params)
            chunk = [e for e in page.get("chunk", []) if isinstance(e, dict)]
            found += chunk
            end = page.get("end")
            if not chunk or not isinstance(end, str):
                break
            token = end
        return await self.decrypt_events(room_id, list(reversed(found)))

    # ------------------------------------------------------------ people
    async def get_profile(self, user_id: str | None = None) -> JsonDict:
        return await self.http.get(f"{CLIENT_V3}/profile/{q(_check_user(user_id or self.user_id))}")

    async def set_profile_field(self, key: str, value: Any) -> None:
        await self.http.put(f"{CLIENT_V3}/profile/{q(self.user_id)}/{q(key)}", {key: value})

    async def profile_visibility(self) -> dict[str, str]:
        """Who sees each extra field: ``everyone``, ``shared_room`` or ``nobody``."""
        body = await self.http.get(UNSTABLE + "/profile/visibility")
        return {k: str(v) for k, v in body.items() if isinstance(v, str)}

    async def set_profile_visibility(self, visibility: dict[str, str]) -> dict[str, str]:
        body = await self.http.put(UNSTABLE + "/profile/visibility", dict(visibility))
        return {k: str(v) for k, v in body.items() if isinstance(v, str)}

    async def set_avatar(self, data: bytes, content_type: str) -> str:
        uri = await self.upload_media(data, content_type)
        await self.set_profile_field("avatar_url", uri)
        return uri

    async def set_presence(self, presence: str, status_msg: str | None = None) -> None:
        body: JsonDict = {"presence": presence}
        if status_msg is not None:
            body["status_msg"] = status_msg
        await self.http.put(f"{CLIENT_V3}/presence/{q(self.user_id)}/status", body)
        self.presence = presence  # or the next /sync would make us "online" again

    async def get_presence(self, user_id: str) -> JsonDict:
        return await self.http.get(f"{CLIENT_V3}/presence/{q(_check_user(user_id))}/status")

    # ----------------------------------------------------------- devices
    async def list_devices(self) -> list[JsonDict]:
        body = await self.http.get(CLIENT_V3 + "/devices")
        return [d for d in body.get("devices", []) if isinstance(d, dict)]

    async def delete_device(self, device_id: str, password: str) -> None:
        path = f"{CLIENT_V3}/devices/{q(device_id)}"
        try:
            await self.http.request("DELETE", path, {}, idempotent=False)
        except MatrixError as exc:
            if exc.status != 401 or "session" not in exc.extra:
                raise
            auth = {"type": "m.login.password", "session": exc.extra["session"], "password": password,
                    "identifier": {"type": "m.id.user", "user": self.user_id}}
            await self.http.request("DELETE", path, {"auth": auth}, idempotent=False)
        if device_id != self.device_id:  # what the removed device could read or do stops here
            await self.backup.rotate()
            if self.account is not None:
                async with self.lock:  # the login key it held no longer logs in
                    await self.account.rotate_login(self.http, self.user_id, password)

    async def logout(self) -> None:
        await self.http.post(CLIENT_V3 + "/logout", {})
        async with self.lock:
            self.store.delete("secrets", "access_token")
            await self.store.commit()
        await self.close()

    # ------------------------------------------------------ files, media
    async def upload_media(self, data: bytes, content_type: str, progress: Progress | None = None) -> str:
        result = await self.http.upload(MEDIA_V3 + "/upload", data, content_type, progress=progress)
        return str(result["content_uri"])

    async def send_file(self, room_id: str, path: str | Path, *, image: bool = False,
                        reply_to: str | None = None, progress: Progress | None = None) -> str:
        """Encrypt a file with a fresh key, upload it, send the key inside a message."""
        path = Path(path)
        size = path.stat().st_size
        if size > (MAX_IMAGE if image else MAX_FILE):
            raise MatrixError(413, "M_TOO_LARGE", "file too large")
        transfer = secrets.token_hex(6)
        ciphertext, info = await asyncio.to_thread(encrypt_file, path)

        def report(done: int, total: int) -> None:
            self.bus.emit(TransferProgress(transfer, "upload", done, total))
            if progress is not None:
                progress(done, total)

        payload: JsonDict = {"type": "m.image" if image else "m.file", "body": path.name,
                             "file": {"info": info.to_dict(), "name": path.name, "size": size}}
        if reply_to is not None:
            payload["reply_to"] = reply_to
        _check_room(room_id)
        try:
            uri = await self.upload_media(ciphertext, "application/octet-stream", report)
        except TransportFailure as exc:  # offline: it waits in the outbox and goes out on reconnect
            await self.outbox.keep_file_offline(room_id, payload, ciphertext, exc)
            raise
        payload["file"] = {"url": uri, **payload["file"]}
        return await self.send_payload(room_id, payload)

    async def _after_send(self, room_id: str, event_id: str, payload: JsonDict) -> None:
        file = payload.get("file")
        if isinstance(file, dict) and isinstance(file.get("url"), str):
            try:
                await self.http.post(UNSTABLE + "/media/attach", {
                    "room_id": room_id, "event_id": event_id, "media_ids": [file["url"]]})
            except MatrixError:
                pass  # only bookkeeping for deleting a destroyed group's files

    async def download_file(self, message: Message, dest: str | Path,
                            progress: Progress | None = None) -> Path:
        """Download (resuming a partial ``.part``), verify and decrypt to ``dest``."""
        if message.file is None:
            raise MatrixError(400, "M_INVALID_PARAM", "that message has no file")
        url = str(message.file.get("url", ""))
        if not url.startswith("mxc://") or url.count("/") != 3:
            raise MatrixError(400, "M_INVALID_PARAM", "bad media URL")
        server, media_id = url[len("mxc://"):].split("/", 1)
        info = AttachmentInfo.from_dict(message.file.get("info"))
        dest = Path(dest)
        part = dest.with_name(dest.name + ".part")
        offset = part.stat().st_size if part.exists() else 0
        transfer = secrets.token_hex(6)

        def report(done: int, total: int) -> None:
            self.bus.emit(TransferProgress(transfer, "download", done, total))
            if progress is not None:
                progress(done, total)

        fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "ab") as sink:
            if offset < info.size or not info.size:
                await self.http.download(f"/_matrix/client/v1/media/download/{q(server)}/{q(media_id)}",
                                         sink.write, offset=offset, progress=report)
            sink.flush()
            os.fsync(sink.fileno())
        tmp = dest.with_name(f".{dest.name}.tmp")
        try:
            await asyncio.to_thread(decrypt_file, part, tmp, info)
        except CryptoError:
            tmp.unlink(missing_ok=True)
            part.unlink(missing_ok=True)  # corrupt: start over next time
            raise
        os.replace(tmp, dest)
        part.unlink(missing_ok=True)
        return dest
