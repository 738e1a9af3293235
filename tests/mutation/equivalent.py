"""Mutants shown equivalent (no behaviour can tell them from the original), excluded with the reason.

Keyed by (file, enclosing definition, cosmic-ray operator, the mutated line's
text stripped), so a key survives edits elsewhere in the file.  Each entry says why no test can
kill it; anything not listed here that survives needs a test.
"""

from __future__ import annotations

_NOTIFIER = "homeserver/notifier.py"
_TO_DEVICE = "homeserver/services/to_device.py"
_ONE_POSITION = ("unreachable: one request queues at most two messages per device (its id and '*') at one"
                 " stream position, so MAX_PER_SYNC + 1 rows never share a position; the branch only guards"
                 " progress should that change")

EQUIVALENT: dict[tuple[str, str, str, str], str] = {
    (_NOTIFIER, "_unwatch", "core/ReplaceComparisonOperator_LtE_Eq", "if users[waiter.user_id] <= 0:"):
        "a room's count per user only moves by watch's +1 and unwatch's -1 over the same rooms: it reaches 0,"
        " never less, so <= 0 and == 0 decide alike",
    (_NOTIFIER, "_unwatch", "core/ReplaceContinueWithBreak", "continue"):
        "unreachable: a waiter's rooms are in the index while it watches them (its own +1 keeps the entry),"
        " so the None branch never runs",
    (_TO_DEVICE, "", "core/NumberReplacer", "MAX_PER_SYNC = 100"):
        "a page size no client can rely on (the spec has none): any positive value delivers every message once"
        " and in order, which test_sync_delivery checks by paging with the constant",
    **{(_TO_DEVICE, "collect", f"core/ReplaceComparisonOperator_Eq_{op}",
        "rows = [r for r in rows if r.stream_pos == cut]"): _ONE_POSITION
       for op in ("NotEq", "Lt", "LtE", "Gt", "GtE", "Is", "IsNot")},
}
