"""User-interactive authentication (Matrix client-server spec, "User-Interactive
Authentication API").

A flow is a list of stage types; the client completes stages one request at
a time, carrying the ``session`` id.  Sessions live in the database, bound to
a purpose (and user), so a session started for one action cannot authorise
another.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from common.errors import Codes, MatrixError
from homeserver.services.clock import Clock
from homeserver.storage.auth_state import AuthStateRepository

SESSION_TTL_MS = 30 * 60 * 1000

StageChecker = Callable[[Mapping[str, Any], "UiaSession"], Awaitable[Any]]


@dataclass
class UiaSession:
    session_id: str
    purpose: str
    user_id: str | None
    completed: list[str]
    params: dict[str, Any]
    # Values the stages produced (e.g. the validated e-mail address).
    results: dict[str, Any] = field(default_factory=dict)
    # True when the client resubmitted a session whose flow was already complete:
    # the spec has the server answer with the result of the API call again.
    replayed: bool = False

    @property
    def request(self) -> Any:
        """The operation the session was started for (see ``authenticate``)."""
        return self.params.get("request")


class AuthAborted(MatrixError):
    """A stage failure that ends the request instead of asking for another try
    (for example a password of a different user than the one authenticating)."""


class InteractiveAuthRequired(MatrixError):
    """The 401 answer that tells the client which stages remain."""

    def __init__(self, body: dict[str, Any], failure: MatrixError | None = None) -> None:
        super().__init__(
            401,
            failure.errcode if failure else Codes.UNAUTHORIZED,
            failure.message if failure else "Additional authentication is required",
        )
        self.body = body
        self.failure = failure

    def to_json(self) -> dict[str, Any]:
        body = dict(self.body)
        if self.failure is not None:
            body["errcode"] = self.failure.errcode
            body["error"] = self.failure.message
        return body


class InteractiveAuth:
    def __init__(self, repo: AuthStateRepository, clock: Clock) -> None:
        self.repo = repo
        self.clock = clock

    async def authenticate(
        self,
        auth: Any,
        purpose: str,
        user_id: str | None,
        flows: list[list[str]],
        checkers: Mapping[str, StageChecker],
        params: dict[str, Any] | None = None,
        request: Any = None,
        bind: bool = True,
    ) -> UiaSession:
        """Process ``auth`` from the request body; return the session once a
        flow is complete, or raise :class:`InteractiveAuthRequired`.

        ``request`` describes the operation (JSON-able); the session remembers
        the one it was started for.  With ``bind`` a later request of the same
        session for a different operation is refused with 403 (a session begun
        to delete device A cannot delete device B); without it the caller reads
        the remembered parameters from ``session.request``.  Resubmitting a
        completed session returns it again with ``replayed`` set.
        """
        now = self.clock.now_ms()
        session = await self.peek(auth, purpose, user_id)
        if session is not None and bind and session.request != request:
            raise MatrixError(
                403, Codes.FORBIDDEN, "Requested operation has changed during the UI authentication session"
            )
        if session is not None and session.params.get("done"):
            session.replayed = True
            session.results = dict(session.params.get("results", {}))
            return session
        if session is None:
            session_id = secrets.token_urlsafe(24)
            initial = {**(params or {}), "request": request}
            await self.repo.create_uia(session_id, purpose, user_id, initial, now, now + SESSION_TTL_MS)
            session = UiaSession(session_id, purpose, user_id, [], initial)

        failure: MatrixError | None = None
        stage = auth.get("type") if isinstance(auth, dict) else None
        if stage is not None:
            allowed = {s for flow in flows for s in flow}
            checker = checkers.get(stage) if isinstance(stage, str) else None
            if stage not in allowed or checker is None or not isinstance(auth, dict):
                failure = MatrixError(400, Codes.UNRECOGNIZED, f"Unsupported auth stage {stage!r}")
            else:
                try:
                    result = await checker(auth, session)
                except (InteractiveAuthRequired, AuthAborted):
                    raise
                except MatrixError as exc:
                    failure = exc
                else:
                    if stage not in session.completed:
                        session.completed.append(stage)
                        await self.repo.mark_stage_done(session.session_id, session.completed)
                    session.results[stage] = result
        for flow in flows:
            if all(s in session.completed for s in flow):
                # Stage results that must survive between requests are stored in params.
                session.results = {**session.params.get("results", {}), **session.results}
                session.params["done"] = True
                await self.repo.set_uia_params(session.session_id, session.params)
                return session
        if failure is not None and failure.status == 429:
            raise failure
        raise InteractiveAuthRequired(
            {
                "flows": [{"stages": flow} for flow in flows],
                "params": session.params.get("public", {}),
                "session": session.session_id,
                "completed": list(session.completed),
            },
            failure,
        )

    async def peek(self, auth: Any, purpose: str, user_id: str | None) -> UiaSession | None:
        """The live session named in ``auth`` (None when ``auth`` names none)."""
        if auth is not None and not isinstance(auth, dict):
            raise MatrixError(400, Codes.BAD_JSON, "auth must be an object")
        session_id = auth.get("session") if isinstance(auth, dict) else None
        if session_id is None:
            return None
        if not isinstance(session_id, str) or len(session_id) > 64:
            raise MatrixError(400, Codes.INVALID_PARAM, "Invalid auth session")
        row = await self.repo.get_uia(session_id, self.clock.now_ms())
        if row is None or row.purpose != purpose or row.user_id != user_id:
            raise MatrixError(400, Codes.UNKNOWN, "Unknown or expired auth session")
        return UiaSession(row.session_id, row.purpose, row.user_id, row.completed, row.params)

    async def remember(self, session: UiaSession, key: str, value: Any) -> None:
        """Keep a stage result across requests (e.g. the validated e-mail)."""
        results = dict(session.params.get("results", {}))
        results[key] = value
        session.params["results"] = results
        await self.repo.set_uia_params(session.session_id, session.params)
