"""Keeping secrets out of the logs.

Parley's own log lines never carry passwords, tokens, codes or key
material (``tests/homeserver/test_no_secrets_in_logs.py`` checks this).  The
database drivers are another matter: Tortoise's ``tortoise.db_client`` and
``aiosqlite`` print every query *with its bound parameters* at DEBUG, which would
put client secrets, login nonces, pairing payloads and backup data into the
log as soon as an operator sets ``log_level = "debug"``.  Those loggers are
held at INFO whatever the root level is.
"""

from __future__ import annotations

import logging

QUERY_LOGGERS = ("tortoise.db_client", "tortoise", "aiosqlite", "aiomysql", "pymysql", "asyncmy")


def keep_query_parameters_out_of_logs() -> None:
    for name in QUERY_LOGGERS:
        logger = logging.getLogger(name)
        if logger.getEffectiveLevel() < logging.INFO:
            logger.setLevel(logging.INFO)
