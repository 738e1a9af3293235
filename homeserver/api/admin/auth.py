"""Who may use the admin API: authenticated accounts with the admin flag."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from homeserver.api.http import require_auth, services
from homeserver.services.auth import Requester


async def require_admin(request: Request) -> Requester:
    """The requester, if a server admin; else 403 ``M_FORBIDDEN``."""
    requester = await require_auth(request)
    await admin(request).users.require_admin(requester.user_id)
    return requester


def admin(request: Request) -> Any:
    """The :class:`homeserver.services.admin.AdminServices` of this homeserver."""
    return services(request).admin


def param(request: Request, name: str) -> str:
    return str(request.path_params[name])
