"""The worker's commands about people and devices: profiles, devices, pairing, safety numbers."""

from __future__ import annotations

import asyncio
from pathlib import Path

from client_tk import bridge as b
from client_tk.core import account
from client_tk.core.transport import UNSTABLE
from client_tk.worker_parts import WorkerParts, read_image
from common.crypto import IdentityPublicKey, safety_number
from common.errors import MatrixError
from common.identifiers import parse_user_id

PROFILE_FIELDS = ("displayname", "im.parley.phone", "im.parley.location", "im.parley.email")


class PeopleHandlers(WorkerParts):
    # --------------------------------------------------- people, devices
    async def do_GetProfile(self, cmd: b.GetProfile) -> None:
        user = cmd.user_id or self.c.user_id
        own = user == self.c.user_id
        profile = await self.c.get_profile(user)
        before = (self.names.get(user), self.avatars.get(user))
        self._remember_profile(user, profile)
        if before != (self.names.get(user), self.avatars.get(user)):
            self._schedule_snapshot()
        fields = tuple((k, str(v)) for k, v in profile.items() if isinstance(v, (str, int)))
        visibility: tuple[tuple[str, str], ...] = ()
        if own:
            vis = await self.c.http.get(UNSTABLE + "/profile/visibility")
            visibility = tuple((k, str(v)) for k, v in vis.items() if isinstance(v, str))
        self.bridge.post(b.ProfileLoaded(user, own, fields, visibility))

    async def do_SaveProfile(self, cmd: b.SaveProfile) -> None:
        for key, value in cmd.fields:
            if key in PROFILE_FIELDS:
                await self.c.set_profile_field(key, value.strip() or None)
        if cmd.visibility:
            await self.c.http.put(UNSTABLE + "/profile/visibility", dict(cmd.visibility))
        self.names.pop(self.c.user_id, None)
        self._resolve([self.c.user_id])
        self.bridge.post(b.Notice("Profile saved"))

    async def do_SetAvatar(self, cmd: b.SetAvatar) -> None:
        data, kind = await asyncio.to_thread(read_image, Path(cmd.path))
        await self.c.set_avatar(data, kind)
        self.names.pop(self.c.user_id, None)
        self._resolve([self.c.user_id])
        self.bridge.post(b.Notice("Profile picture changed"))

    async def do_ListDevices(self, cmd: b.ListDevices) -> None:
        devices = await self.c.list_devices()
        rows = tuple((str(d.get("device_id")), str(d.get("display_name") or ""),
                      d.get("last_seen_ts") if isinstance(d.get("last_seen_ts"), int) else None)
                     for d in devices)
        self.bridge.post(b.DevicesLoaded(self.c.device_id, rows))

    async def do_RemoveDevice(self, cmd: b.RemoveDevice) -> None:
        if cmd.device_id == self.c.device_id:
            raise MatrixError(400, "M_INVALID_PARAM", "use Log out to remove this device")
        await self.c.delete_device(cmd.device_id, cmd.password)
        await self.do_ListDevices(b.ListDevices())

    async def do_ApprovePairing(self, cmd: b.ApprovePairing) -> None:
        code = "".join(ch for ch in cmd.code if ch.isdigit())
        if len(code) != 8:
            raise MatrixError(400, "M_INVALID_PARAM", "the pairing code has 8 digits")
        name = await account.approve_pairing(self.c, code, confirm=self._confirm_sas)
        self.bridge.post(b.Notice(f"Device {name or ''} paired".replace("  ", " ")))

    async def _confirm_sas(self, code: str) -> bool:
        self._sas = asyncio.get_running_loop().create_future()
        self.bridge.post(b.PairingSasShown(code))
        return await self._sas

    async def do_ConfirmPairingSas(self, cmd: b.ConfirmPairingSas) -> None:
        if self._sas is not None and not self._sas.done():
            self._sas.set_result(cmd.matches)

    async def do_AcceptSafetyNumber(self, cmd: b.AcceptSafetyNumber) -> None:
        await self.c.accept_safety_number(cmd.user_id, cmd.new_key)
        self.bridge.post(b.Notice(f"New safety number of {cmd.user_id} accepted"))

    async def do_GetSafetyNumber(self, cmd: b.GetSafetyNumber) -> None:
        parse_user_id(cmd.user_id)
        await self.c.learn_devices([cmd.user_id], refresh=True)
        pinned = self.c.store.get("identities", cmd.user_id)
        if pinned is None:
            raise MatrixError(404, "M_NOT_FOUND", "no identity key known for that user yet")
        number = safety_number(self.c.user_id, self.c.keys.account_public, cmd.user_id,
                               IdentityPublicKey.from_b64(pinned["key"]))
        self.bridge.post(b.SafetyNumberShown(cmd.user_id, number.formatted()))

    async def do_GetBackup(self, cmd: b.GetBackup) -> None:
        self.bridge.post(b.BackupState(self.c.backup.enabled))

    async def do_SetBackup(self, cmd: b.SetBackup) -> None:
        if cmd.enabled and not self.c.backup.enabled:
            self.bridge.post(b.BackupState(True, await self.c.backup.enable()))
        elif not cmd.enabled and self.c.backup.enabled:
            await self.c.backup.disable()
            self.bridge.post(b.BackupState(False))
        else:
            self.bridge.post(b.BackupState(self.c.backup.enabled))
