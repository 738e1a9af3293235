"""Typed errors of outgoing federation requests.

Every one is a :class:`common.errors.MatrixError` (status and errcode of how
*our* API reports it, so a client request that needed the remote answer fails
with a clear error), and says which destination failed and why:

* :class:`DestinationNotAllowed` (403 ``M_FORBIDDEN``): the allow/deny lists;
* :class:`DestinationUnreachable` (502): discovery, connection, TLS or timeout;
* :class:`InvalidResponse` (502): the answer is not a JSON object;
* :class:`RemoteError`: it answered an error; ``remote_status``,
  ``errcode``, ``error`` and ``body`` are the remote's (our status: the remote's
  400/403/404, else 502).

Callers that retry later catch :class:`DestinationUnreachable`.
"""

from __future__ import annotations

from typing import Any

from common.errors import Codes, MatrixError


class FederationError(MatrixError):
    """An outgoing request to ``destination`` failed."""

    def __init__(self, destination: str, message: str, status: int = 502, errcode: str = Codes.UNKNOWN) -> None:
        super().__init__(status, errcode, f"{destination[:255]}: {message[:500]}")
        self.destination = destination
        self.reason = message


class DestinationNotAllowed(FederationError):
    def __init__(self, destination: str, message: str) -> None:
        super().__init__(destination, message, 403, Codes.FORBIDDEN)


class DestinationUnreachable(FederationError):
    """No answer: discovery failed, the connection or TLS failed, or it timed out."""


class InvalidResponse(FederationError):
    """The destination answered with something that is not a JSON object."""


class RemoteError(FederationError):
    """The destination answered with an error status (usually a Matrix error body)."""

    def __init__(self, destination: str, status: int, body: Any) -> None:
        errcode = body.get("errcode") if isinstance(body, dict) else None
        error = body.get("error") if isinstance(body, dict) else None
        self.remote_status = status
        self.body = body if isinstance(body, dict) else {}
        remote_errcode = errcode if isinstance(errcode, str) else Codes.UNKNOWN
        self.error = error if isinstance(error, str) else ""
        super().__init__(destination, f"HTTP {status} {remote_errcode} {self.error[:300]}".rstrip(),
                         status if status in (400, 403, 404) else 502, remote_errcode)
