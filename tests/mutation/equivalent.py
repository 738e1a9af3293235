"""Mutants shown equivalent (no behaviour can tell them from the original), excluded with the reason.

Keyed by (file, enclosing definition, cosmic-ray operator, the mutated line's
text stripped), so a key survives edits elsewhere in the file; where only some
mutants of one operator on a line are equivalent, the last part is
``"<line> => <mutated line>"``.  Each entry says why no test can
kill it; anything not listed here that survives needs a test.
"""

from __future__ import annotations

_NOTIFIER = "homeserver/notifier.py"
_TO_DEVICE = "homeserver/services/to_device.py"
_ONE_POSITION = ("unreachable: one request queues at most two messages per device (its id and '*') at one"
                 " stream position, so MAX_PER_SYNC + 1 rows never share a position; the branch only guards"
                 " progress should that change")

_SYNC = "homeserver/services/sync.py"
_TIMEOUT_PARSED = ("unreachable through HTTP: both callers (GET /sync, GET /events) parse timeout with int_param,"
                   " which answers a negative one with 400 M_INVALID_PARAM first (test_sync checks it); the"
                   " service's own check only guards other callers")

_KEYS = "homeserver/services/keys.py"

_SYNC_API = "homeserver/services/sync_api.py"
_EMPTY_RANGE = ("with until <= after both queries cover an empty range and return nothing, so returning early"
                " or not gives the same sets (and 'is' holds for equal positions or not at all)")
_MEMBER_ONLY = "member_changes returns m.room.member events only (its query selects that type)"

EQUIVALENT: dict[tuple[str, str, str, str], str] = {
    **{("common/crypto/primitives.py", name, "core/ReplaceComparisonOperator_NotEq_IsNot",
        "if len(key) != KEY_LEN or len(nonce) != NONCE_LEN:"):
       "CPython keeps one object per small int (-5..256): a length is KEY_LEN or NONCE_LEN exactly when equal"
       for name in ("aes_gcm_encrypt", "aes_gcm_decrypt")},
    **{("common/crypto/primitives.py", name, "core/ReplaceComparisonOperator_NotEq_IsNot",
        "if len(seed) != KEY_LEN:"):
       "CPython keeps one object per small int (-5..256): a length is KEY_LEN exactly when equal"
       for name in ("load_ed25519_private", "ed25519_seed_to_x25519")},
    (_SYNC_API, "get", "core/ReplaceComparisonOperator_Lt_LtE",
     "return self.positions[index] if index < len(self.positions) else 0"):
        "every SyncToken holds one position per stream (decode pads a short token, from_mapping and build fill"
        " all), so the index is always in range and the comparison never decides",
    **{(_KEYS, "_membership_changes", f"core/ReplaceComparisonOperator_LtE_{op}",
        "if self.history is None or self.membership is None or until <= after:"): _EMPTY_RANGE
       for op in ("Eq", "Lt", "Is")},
    **{(_KEYS, "_membership_changes", f"core/ReplaceComparisonOperator_NotEq_{op}",
        'if event.type != "m.room.member" or not event.state_key:'): _MEMBER_ONLY for op in ("Lt", "Gt")},
    (_KEYS, "_public_key", "core/NumberReplacer",
     'raw = base64.b64decode(b64 + "=" * (-len(b64) % 4)) => raw = base64.b64decode(b64 + "=" * (-len(b64) % 5))'):
        "every caller passes a key _b64_32 checked first (32 bytes: 43 characters, or 44 with its '='); % 5"
        " adds one '=' more than needed, which b64decode (not validating) ignores",
    (_SYNC, "_plan_rooms", "core/ReplaceAndWithOr",
     'if plan.event is None and plan.membership in ("invite", "knock"):'):
        "only invites and knocks read plan.event: fetching the membership events of the other rooms too"
        " costs a query and changes no output",
    (_SYNC, "_plan_rooms", "core/ReplaceComparisonOperator_Eq_GtE", 'e.membership == "join"'):
        "counting a leave or knock of a room the user is joined to at upto changes nothing: after it the"
        " batch must hold a join from a non-join membership (the way back), which already counts",
    (_KEYS, "_membership_changes", "core/ReplaceOrWithAnd",
     "if self.history is None or self.membership is None or until <= after:"):
        "app.py always sets history and membership; with until <= after both queries cover an empty range"
        " and return nothing, so the early return only saves them",
    (_SYNC, "_plan_rooms", "core/NumberReplacer",
     'since_events = since.get("events") if since is not None else 0'):
        "the default is for an initial sync, and since_events is read only where since is not None",
    ("homeserver/services/event_auth_members.py", "check_membership", "core/ReplaceComparisonOperator_Eq_LtE",
     'if target_membership == "ban" and sender_level < level_for(state, "ban"):'):
        "a membership in a room's state passed check_membership (join, invite, leave, ban or knock; anything"
        " else reads as leave), and of those only 'ban' sorts at or below 'ban'",
    (_SYNC, "_RoomPlan", "core/NumberReplacer", "upto: int = 0"):
        "both places that build a _RoomPlan (_membership_at) pass its upto: the default is never used",
    (_SYNC, "resolve_filter", "core/ReplaceComparisonOperator_Eq_LtE", 'if param is None or param == "":'):
        "no string sorts before the empty one: param <= '' holds exactly when param == ''",
    (_SYNC, "sync", "core/NumberReplacer",
     'raise MatrixError(400, Codes.INVALID_PARAM, "timeout must not be negative")'): _TIMEOUT_PARSED,
    (_NOTIFIER, "_unwatch", "core/ReplaceComparisonOperator_LtE_Eq", "if users[waiter.user_id] <= 0:"):
        "a room's count per user only moves by watch's +1 and unwatch's -1 over the same rooms: it reaches 0,"
        " never less, so <= 0 and == 0 decide alike",
    (_NOTIFIER, "_unwatch", "core/ReplaceContinueWithBreak", "continue"):
        "unreachable: a waiter's rooms are in the index while it watches them (its own +1 keeps the entry),"
        " so the None branch never runs",
    (_TO_DEVICE, "", "core/NumberReplacer", "MAX_PER_SYNC = 100"):
        "a page size no client can rely on (the spec has none): any positive value delivers every message once"
        " and in order, which test_sync_delivery checks by paging with the constant",
    (_TO_DEVICE, "collect", "core/ReplaceComparisonOperator_Eq_GtE", "if rows[0].stream_pos == cut:"):
        "rows ascend and the cut is a later row: rows[0] >= cut only when they are equal",
    (_TO_DEVICE, "collect", "core/ReplaceComparisonOperator_Eq_Gt", "if rows[0].stream_pos == cut:"):
        "rows ascend and the cut is a later row: rows[0] > cut never holds, nor (see below) does rows[0] == cut",
    (_TO_DEVICE, "collect", "core/NumberReplacer", "after = since or 0 => after = since or -1"):
        "stream positions start at 1: positions > -1 and > 0 are the same rows",
    (_TO_DEVICE, "collect", "core/ReplaceComparisonOperator_Eq_Is", "if rows[0].stream_pos == cut:"):
        "equal positions never happen here (see the branch below) and unequal ints are never one object",
    (_TO_DEVICE, "collect", "core/ReplaceComparisonOperator_Lt_NotEq",
     "rows = [r for r in rows if r.stream_pos < cut]"):
        "rows ascend and the cut is the last row fetched: no row is past it, so < cut and != cut keep the same",
    (_TO_DEVICE, "collect", "core/NumberReplacer",
     "rows = await self.repo.pending(user_id, device_id, after, upto, MAX_PER_SYNC + 1) => "
     "rows = await self.repo.pending(user_id, device_id, after, upto, MAX_PER_SYNC + 2)"):
        "the cut is rows[MAX_PER_SYNC] whether one or two rows more are fetched; the extra row is cut off",
    (_TO_DEVICE, "send", "core/ReplaceComparisonOperator_Eq_Is", 'if device_id == "*":'):
        "CPython keeps one object per 1-character string, so a decoded '*' is the literal '*'",
    (_TO_DEVICE, "_check_quota", "core/NumberReplacer", "total, from_sender = counts.get(device_id, (0, 0))"):
        "the default is for a device with nothing queued, which one request gives at most two messages (its id"
        " and '*'): off by one it still cannot reach the limits of 100 and 1000",
    (_TO_DEVICE, "collect", "core/NumberReplacer",
     "if rows[0].stream_pos == cut: => if rows[ 1].stream_pos == cut:"): _ONE_POSITION,
    (_TO_DEVICE, "_check_quota", "core/ReplaceComparisonOperator_NotEq_IsNot", "if target_user != user_id:"):
        "both ids are the same string objects (the request's own keys, collected into one set)",
    **{(_TO_DEVICE, "collect", f"core/ReplaceComparisonOperator_Eq_{op}",
        "rows = [r for r in rows if r.stream_pos == cut]"): _ONE_POSITION
       for op in ("NotEq", "Lt", "LtE", "Gt", "GtE", "Is", "IsNot")},
}
