"""Type aliases shared across Parley."""

from __future__ import annotations

from typing import Any, NewType

JsonDict = dict[str, Any]

UserId = NewType("UserId", str)
RoomId = NewType("RoomId", str)
EventId = NewType("EventId", str)
DeviceId = NewType("DeviceId", str)
