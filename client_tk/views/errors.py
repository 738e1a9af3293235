"""What a failed command means, in a sentence a person understands.

:func:`human` turns a :class:`~client_tk.bridge.CommandFailed` into the text
a view shows: first a sentence for this command and error (``Login`` with
``M_FORBIDDEN`` is a wrong password), then one for the error alone, then the
server's own message (never a bare errcode).  ``None`` means "say nothing":
background chores (the typing notice, read receipts) fail quietly, their
next attempt fixes them.
"""

from __future__ import annotations

from client_tk import bridge as b

QUIET = frozenset({"SetTyping", "MarkRead", "RefreshProfiles", "FetchAvatar", "GetProfile"})
# offline, these wait in the outbox (its panel says so): no second message about it
OUTBOX = frozenset({"SendText", "SendFile", "RetrySend"})
# offline, these show what this device has stored (the conversation opened from the local
# store; older history is fetched on the next opening) and the connection label says
# "Reconnecting": a toast would only repeat it
OFFLINE_SHOWN = OUTBOX | {"OpenRoom"}

OFFLINE = "Parley cannot reach the server right now. Check your connection; it keeps trying."

BY_COMMAND: dict[tuple[str, str], str] = {
    ("Login", "M_FORBIDDEN"): "Wrong user name or password.",
    ("Login", b.WRONG_PASSWORD): "Wrong password. Check it and try again.",
    ("Login", b.NO_LOCAL_ACCOUNT): "This computer has no Parley account by that name. Register, or use "
                                   "“Pair this device” to add this computer to your account.",
    ("Login", "M_NOT_FOUND"): "No account by that name on this computer. Type your full id "
                              "(@name:server) or use “Pair this device”.",
    ("PairThisDevice", "M_FORBIDDEN"): "Wrong user name or password.",
    ("PairThisDevice", "M_NOT_FOUND"): "The pairing request expired. Ask for a new code.",
    ("Register", "M_FORBIDDEN"): "Registration is closed on this server.",
    ("NewDirectChat", "M_NOT_FOUND"): "Nobody with that e-mail address uses Parley yet. Check the "
                                      "spelling, or invite them to join.",
    ("NewGroup", "M_NOT_FOUND"): "Nobody with one of those e-mail addresses uses Parley yet.",
    ("InviteMember", "M_NOT_FOUND"): "Nobody with that e-mail address uses Parley yet.",
    ("RemoveDevice", "M_FORBIDDEN"): "Wrong password: the device was not removed.",
    ("RemoveDevice", b.WRONG_PASSWORD): "Wrong password: the device was not removed.",
    ("SendFile", b.FILE_NOT_FOUND): "That file is no longer there.",
    ("SetAvatar", b.FILE_NOT_FOUND): "That picture is no longer there.",
}

BY_CODE: dict[str, str] = {
    b.OFFLINE: OFFLINE,
    b.WRONG_PASSWORD: "Wrong password.",
    b.FILE_NOT_FOUND: "That file is no longer there.",
    b.IMAGE_REJECTED: "That picture cannot be used: pick a PNG, JPEG, GIF or WebP image of a sensible size.",
    "M_FORBIDDEN": "You are not allowed to do that here.",
    "M_UNKNOWN_TOKEN": "This device was logged out (perhaps removed from another device). Log in again.",
    "M_MISSING_TOKEN": "You are not logged in.",
    "M_USER_LOCKED": "This account is locked. Contact the server's administrator.",
    "M_USER_DEACTIVATED": "This account has been deactivated.",
    "M_LIMIT_EXCEEDED": "Too many attempts in a short time. Wait a moment and try again.",
    "M_NOT_FOUND": "That could not be found (it may have been deleted).",
    "M_USER_IN_USE": "That user name is taken. Choose another one.",
    "M_INVALID_USERNAME": "User names may contain only lower-case letters, digits and . _ = - /",
    "M_WEAK_PASSWORD": "That password is too weak. Use a longer one, ideally a few words.",
    "M_THREEPID_IN_USE": "That e-mail address already belongs to an account. Log in instead.",
    "M_THREEPID_NOT_FOUND": "Nobody with that e-mail address uses Parley yet.",
    "M_THREEPID_AUTH_FAILED": "That code is not right or has expired. Check the e-mail and type it again.",
    "M_THREEPID_DENIED": "This server does not accept that e-mail address.",
    "M_TOO_LARGE": "That is too large to send.",
    "M_BAD_JSON": "The server did not understand the request (a bug in Parley: please report it).",
    "M_NOT_JSON": "The server did not understand the request (a bug in Parley: please report it).",
    "M_RESOURCE_LIMIT_EXCEEDED": "The server is full right now. Try again later.",
    "M_UNSUPPORTED_ROOM_VERSION": "This server cannot open that conversation.",
    "M_CANNOT_LEAVE_SERVER_NOTICE_ROOM": "You cannot leave the server's notice room.",
}


def human(event: b.CommandFailed) -> str | None:
    """The sentence to show for a failed command, or None for a quiet background failure."""
    if event.command in QUIET or event.command in OFFLINE_SHOWN and event.errcode == b.OFFLINE:
        return None
    sentence = BY_COMMAND.get((event.command, event.errcode)) or BY_CODE.get(event.errcode)
    if sentence:
        return sentence
    message = event.message.strip()
    if not message:
        return "That did not work. Try again."
    return message[0].upper() + message[1:] + ("" if message.endswith((".", "!", "?")) else ".")


def outbox_reason(error: str | None) -> str:
    """The outbox's stored reason (``M_FORBIDDEN: text`` or a transport message) as a sentence."""
    if not error:
        return "not sent"
    code, _, detail = error.partition(": ")
    if code.startswith("M_"):
        return BY_CODE.get(code) or (detail or "the server refused it")
    return "the server cannot be reached"
