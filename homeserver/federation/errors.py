"""Typed errors of outgoing federation requests.

``FederationError`` is the base; callers that only care whether the
destination answered catch :class:`DestinationUnreachable` (retry later)
versus :class:`RemoteError` (it answered, with a Matrix error).
"""

from __future__ import annotations

from typing import Any

from common.errors import Codes, MatrixError


class FederationError(Exception):
    """An outgoing request to ``destination`` failed."""

    def __init__(self, destination: str, message: str) -> None:
        super().__init__(f"{destination}: {message}")
        self.destination = destination
        self.message = message

    def to_matrix_error(self) -> MatrixError:
        """How a client request that needed the remote answer reports the failure (502)."""
        return MatrixError(502, Codes.UNKNOWN, f"Federation request to {self.destination[:255]} failed: "
                           f"{self.message[:300]}")


class DestinationNotAllowed(FederationError):
    """The configuration (allow/deny list) forbids talking to this server."""

    def to_matrix_error(self) -> MatrixError:
        return MatrixError(403, Codes.FORBIDDEN, f"Federation with {self.destination[:255]} is not allowed")


class DestinationUnreachable(FederationError):
    """No answer: discovery failed, the connection or TLS failed, or it timed out."""


class InvalidResponse(FederationError):
    """The destination answered with something that is not a JSON object."""


class RemoteError(FederationError):
    """The destination answered with an error status (usually a Matrix error body)."""

    def __init__(self, destination: str, status: int, body: Any) -> None:
        errcode = body.get("errcode") if isinstance(body, dict) else None
        error = body.get("error") if isinstance(body, dict) else None
        self.status = status
        self.errcode = errcode if isinstance(errcode, str) else Codes.UNKNOWN
        self.error = error if isinstance(error, str) else ""
        self.body = body if isinstance(body, dict) else {}
        super().__init__(destination, f"HTTP {status} {self.errcode} {self.error[:200]}".rstrip())

    def to_matrix_error(self) -> MatrixError:
        status = self.status if self.status in (400, 403, 404) else 502
        return MatrixError(status, self.errcode, f"{self.destination[:255]} answered: {self.error[:300]}")
