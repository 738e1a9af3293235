"""Media quotas and disk trouble as Matrix errors (used by :mod:`homeserver.services.media`)."""

from __future__ import annotations

import contextlib
import errno
import logging
from collections.abc import Iterator

from common.errors import Codes, MatrixError
from homeserver.storage.media_store import MediaStoreUnavailable

logger = logging.getLogger(__name__)

DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


def quota_exceeded(quota: int) -> MatrixError:
    return MatrixError(
        403, Codes.RESOURCE_LIMIT_EXCEEDED,
        f"Your uploads would exceed your media quota of {quota} bytes; delete some media first",
        extra={"limit_type": "im.parley.media_quota"},
    )


def disk_full() -> MatrixError:
    return MatrixError(
        503, Codes.RESOURCE_LIMIT_EXCEEDED, "The media store is full; try again later",
        extra={"limit_type": "im.parley.media_storage", "retry_after_ms": 60_000},
        headers={"Retry-After": "60"},
    )


def check_quota(used: int, adding: int, quota: int) -> None:
    """Raise when ``used + adding`` passes a positive ``quota`` (0 means no quota)."""
    if quota > 0 and used + adding > quota:
        raise quota_exceeded(quota)


@contextlib.contextmanager
def disk_errors() -> Iterator[None]:
    """A full disk (or quota of the file system) answers 503 M_RESOURCE_LIMIT_EXCEEDED, not 500."""
    try:
        yield
    except OSError as exc:
        if exc.errno in DISK_FULL_ERRNOS:
            logger.error("media store: %s", exc.strerror)
            raise disk_full() from None
        raise


@contextlib.contextmanager
def store_errors() -> Iterator[None]:
    """An unreachable (or refusing) media store answers 503 with Retry-After, not 500."""
    try:
        yield
    except MediaStoreUnavailable as exc:
        logger.error("media store unavailable: %s", exc)
        raise MatrixError(
            503, Codes.UNKNOWN, "The media store is unavailable; try again later",
            extra={"retry_after_ms": 10_000}, headers={"Retry-After": "10"},
        ) from None
