"""Jittered exponential backoff (tenacity's strategy) for loops that are not one call.

The transport retries single requests with :class:`tenacity.AsyncRetrying`;
the sync loop and the outbox retry across many calls and restarts, so they
ask for the delay of their ``attempt``-th retry here.  The jitter keeps
clients from reconnecting in lockstep after a server restart.
"""

from __future__ import annotations

from tenacity import RetryCallState, wait_exponential_jitter


def delay(attempt: int, initial: float = 1.0, maximum: float = 30.0, jitter: float = 1.0) -> float:
    """Seconds to wait before retry number ``attempt`` (1-based)."""
    state = RetryCallState(retry_object=None, fn=None, args=(), kwargs={})  # type: ignore[arg-type]
    state.attempt_number = max(1, attempt)
    return float(wait_exponential_jitter(multiplier=initial, max=maximum, jitter=jitter)(state))
