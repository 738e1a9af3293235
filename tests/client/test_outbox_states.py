"""The outbox state machine on its own (sans-I/O): plain data in, states out."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from client_tk.core.outbox import FAILED, PENDING, Outbox, is_permanent
from client_tk.core.store import LocalStore
from client_tk.core.transport import TransportFailure
from common.errors import MatrixError


@pytest.fixture
def box(tmp_path: Path) -> Outbox:
    store = LocalStore(tmp_path / "acct")
    store.unlock(os.urandom(32))
    now = [1_000_000]
    return Outbox(store, lambda: now[0])


def test_refusals_are_permanent_and_silence_is_not() -> None:
    assert is_permanent(MatrixError(403, "M_FORBIDDEN", "no"))
    assert is_permanent(MatrixError(400, "M_BAD_JSON", "no"))
    assert not is_permanent(MatrixError(429, "M_LIMIT_EXCEEDED", "slow down"))
    assert not is_permanent(MatrixError(502, "M_UNKNOWN", "gateway"))
    assert not is_permanent(MatrixError(401, "M_UNKNOWN_TOKEN", "logged out"))
    assert not is_permanent(TransportFailure("reset"))


def test_entries_are_independent_and_ordered(box: Outbox) -> None:
    keys = box.add_to_device("m.room.encrypted", "t0", {"@b:x": {"D": {}}})
    first = box.add_event("!a:x", "t1", {}, {"type": "m.text", "body": "one"}, 1, [keys])
    second = box.add_event("!b:x", "t2", {}, {"type": "m.text", "body": "two"}, 2, [])
    assert box.due() == [keys, second]  # "one" waits for its sender key, "two" does not
    box.sent(keys)
    assert box.due() == [first, second]

    assert box.attempt_failed(first, MatrixError(403, "M_FORBIDDEN", "not allowed")) is True
    assert box.due() == [second]  # a failed entry never blocks the next one
    [shown] = box.outgoing("!a:x")
    assert (shown.state, shown.error, shown.attempts) == (FAILED, "M_FORBIDDEN: not allowed", 1)

    assert box.attempt_failed(second, TransportFailure("no answer")) is False
    entry = box.get(second)
    assert entry is not None and entry["state"] == PENDING and entry["next_try"] > box.clock()
    assert box.due() == []  # backing off
    assert box.due(now=entry["next_try"]) == [second]

    assert box.retry(first)["state"] == PENDING
    assert box.due() == [first]
    box.delete(first)
    assert box.outgoing("!a:x") == []
    with pytest.raises(MatrixError) as gone:
        box.retry(first)
    assert gone.value.status == 404


def test_backoff_grows_per_entry(box: Outbox) -> None:
    name = box.add_event("!a:x", "t1", {}, {"body": "x"}, 1, [])
    waits = []
    for _ in range(4):
        box.attempt_failed(name, TransportFailure("no answer"))
        entry = box.get(name)
        assert entry is not None
        waits.append(entry["next_try"] - box.clock())
    assert waits == sorted(waits) and waits[-1] > waits[0]
