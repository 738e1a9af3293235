"""Mutants shown equivalent (no behaviour can tell them from the original), excluded with the reason.

Keyed by (file, enclosing definition, cosmic-ray operator, the mutated line's
text stripped), so a key survives edits elsewhere in the file.  Each entry says why no test can
kill it; anything not listed here that survives needs a test.
"""

from __future__ import annotations

_NOTIFIER = "homeserver/notifier.py"

EQUIVALENT: dict[tuple[str, str, str, str], str] = {
    (_NOTIFIER, "_unwatch", "core/ReplaceComparisonOperator_LtE_Eq", "if users[waiter.user_id] <= 0:"):
        "a room's count per user only moves by watch's +1 and unwatch's -1 over the same rooms: it reaches 0,"
        " never less, so <= 0 and == 0 decide alike",
    (_NOTIFIER, "_unwatch", "core/ReplaceContinueWithBreak", "continue"):
        "unreachable: a waiter's rooms are in the index while it watches them (its own +1 keeps the entry),"
        " so the None branch never runs",
}
