"""What room creation and state changes need from the room directory (aliases,
publication), as a protocol so ``rooms.py`` does not import the directory."""

from __future__ import annotations

from typing import Any, Protocol


class DirectoryHooks(Protocol):
    async def alias_for_new_room(self, name: Any) -> str: ...

    async def add_for_new_room(self, alias: str, room_id: str, creator: str) -> None: ...

    async def room_id_for(self, alias: str) -> str: ...

    async def publish(self, room_id: str, public: bool) -> None: ...

    async def visibility(self, room_id: str) -> dict[str, Any]: ...

    async def check_canonical_alias(self, room_id: str, content: dict[str, Any]) -> None: ...
