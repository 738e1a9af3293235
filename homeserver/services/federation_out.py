"""What services hand to federation: EDUs for other servers (the sink is the federation sender).

Services that produce ephemeral data other servers must see (typing,
receipts, presence, to-device, device lists) hold an optional ``EduSink``
set by the composition root; ``None`` (no federation) sends nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

JsonDict = dict[str, Any]


class EduSink(Protocol):
    async def queue_edu(self, destinations: set[str], edu_type: str, content: JsonDict) -> None: ...


def server_of(user_id: str) -> str:
    return user_id.split(":", 1)[1] if ":" in user_id else ""


def remote_servers(user_ids: Iterable[str], local: str) -> set[str]:
    """The other servers among ``user_ids``' servers."""
    return {s for s in (server_of(u) for u in user_ids) if s and s != local}
