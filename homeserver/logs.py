"""Logging: request ids and (optionally) one JSON object per line.

Every HTTP request gets a request id (the client's ``X-Request-ID`` when it
is a short printable token, else a fresh random one), answered in the
``X-Request-ID`` response header and attached to every log record written
while the request is served.  With ``[admin] json_logs = true`` log lines
are JSON objects: ``ts``, ``level``, ``logger``, ``message``, ``request_id``
and ``exc`` when there is a traceback.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import secrets
import time

# A context variable, not shared state: each request (task) sees its own value.
current_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "parley_request_id", default=None
)

_CLIENT_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


def request_id_for(header: str | None) -> str:
    if header and _CLIENT_ID.match(header):
        return header
    return secrets.token_hex(8)


class RequestIdFilter(logging.Filter):
    """Adds ``record.request_id`` (``-`` outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = current_request_id.get() or "-"
        return True


class JsonFormatter(logging.Formatter):
    def __init__(self, instance: str = "") -> None:
        super().__init__()
        self.instance = instance

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": current_request_id.get(),
        }
        if self.instance:
            entry["instance"] = self.instance
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(level: str, json_logs: bool, instance: str = "") -> None:
    """One handler on the root logger; the instance name tells apart the logs of one deployment."""
    handler = logging.StreamHandler()
    handler.addFilter(RequestIdFilter())
    if json_logs:
        handler.setFormatter(JsonFormatter(instance))
    else:
        handler.setFormatter(logging.Formatter(
            f"%(asctime)s {instance} %(levelname)s %(name)s [%(request_id)s]: %(message)s"
            if instance else "%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
