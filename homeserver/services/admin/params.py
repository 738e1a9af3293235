"""Query parameters of the admin API (shared by the media, room and user services)."""

from __future__ import annotations

from collections.abc import Mapping

from common.errors import bad_param


def int_param(params: Mapping[str, str], name: str, default: int) -> int:
    """``params[name]`` as an integer, ``default`` when absent; M_INVALID_PARAM otherwise."""
    raw = params.get(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise bad_param(f"{name} must be an integer") from None
