"""Edits (``m.replace``) and reactions (``m.annotation``) folded into cached messages (sans-I/O).

Matrix relations on encrypted events: ``m.relates_to`` travels in the
*cleartext* content of the ``m.room.encrypted`` event (the server aggregates
by it); for an edit, ``m.new_content`` is inside the encrypted payload, next
to a fallback ``body`` (``"* new text"``) for clients without edits.

Every relation event we read is kept (local store, namespace ``relations``)
with an index per target (``related``), so the target's cached message can
always be recomputed from its original and the relations still standing:
the newest edit by the original sender wins (a redacted edit falls back to
the previous one, or the original); reactions are aggregated per key, one
per sender.  A relation that arrives before its target is applied when the
target is cached.  Nothing here does I/O; callers stage into the store and
commit as usual.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from client_tk.core.events import ClientEvent, Message, MessageChanged
from client_tk.core.store import LocalStore

JsonDict = dict[str, Any]
REPLACE, ANNOTATION = "m.replace", "m.annotation"
REACTION_TYPE = "m.reaction"  # the payload "type" of a reaction
MAX_KEY = 64  # characters of a reaction key (an emoji, or a short word)
RELATIONS, RELATED = "relations", "related"


def relation_of(content: Any) -> JsonDict | None:
    """The ``m.relates_to`` of a (cleartext) content if it is an edit or a reaction we understand."""
    rel = content.get("m.relates_to") if isinstance(content, dict) else None
    if not isinstance(rel, dict) or not isinstance(rel.get("event_id"), str):
        return None
    if rel.get("rel_type") == REPLACE:
        return {"rel_type": REPLACE, "event_id": rel["event_id"]}
    key = rel.get("key")
    if rel.get("rel_type") == ANNOTATION and isinstance(key, str) and 0 < len(key) <= MAX_KEY:
        return {"rel_type": ANNOTATION, "event_id": rel["event_id"], "key": key}
    return None


def edit_payload(target: str, text: str) -> JsonDict:
    """The payload of an edit of a text message (before encryption)."""
    return {"type": "m.text", "body": "* " + text,
            "m.new_content": {"type": "m.text", "body": text},
            "m.relates_to": {"rel_type": REPLACE, "event_id": target}}


def reaction_payload(target: str, key: str) -> JsonDict:
    return {"type": REACTION_TYPE, "body": key,
            "m.relates_to": {"rel_type": ANNOTATION, "event_id": target, "key": key}}


def is_relation_payload(payload: Any) -> bool:
    return relation_of(payload) is not None


def record(store: LocalStore, room_id: str, event_id: str, sender: str, ts: int,
           relation: JsonDict, payload: JsonDict) -> list[ClientEvent]:
    """Keep a decrypted relation event; returns the change of its target if that is cached."""
    if store.get(RELATIONS, event_id) is not None:
        return []
    entry: JsonDict = {"room_id": room_id, "sender": sender, "ts": ts, **relation}
    if relation["rel_type"] == REPLACE:
        new = payload.get("m.new_content")
        if not isinstance(new, dict) or not isinstance(new.get("body"), str) or new.get("type") != "m.text":
            return []  # not a valid replacement: ignored, like any client would
        entry["body"] = new["body"]
    store.put(RELATIONS, event_id, entry)
    target = relation["event_id"]
    index = store.get(RELATED, target) or {"ids": []}
    store.put(RELATED, target, {"ids": sorted({*index["ids"], event_id})})
    return refresh(store, target)


def forget(store: LocalStore, event_id: str) -> list[ClientEvent]:
    """A relation event was redacted: its target goes back to what stands without it."""
    entry = store.get(RELATIONS, event_id)
    if entry is None:
        return []
    store.delete(RELATIONS, event_id)
    target = str(entry["event_id"])
    index = store.get(RELATED, target) or {"ids": []}
    store.put(RELATED, target, {"ids": [i for i in index["ids"] if i != event_id]})
    return refresh(store, target)


def refresh(store: LocalStore, target: str) -> list[ClientEvent]:
    """Recompute the cached message ``target`` from its original and its relations."""
    cached = store.get_message(target)
    if cached is None:
        return []
    message = Message.from_dict(cached)
    updated = fold(message, cached.get("original_body"), related(store, target))
    if updated == message:
        return []
    value = {**updated.to_dict(), "original_body": cached.get("original_body", message.body)}
    store.put_message(updated.room_id, target, updated.ts, value)
    return [MessageChanged(updated)]


def related(store: LocalStore, target: str) -> list[tuple[str, JsonDict]]:
    index = store.get(RELATED, target) or {"ids": []}
    out = []
    for event_id in index["ids"]:
        entry = store.get(RELATIONS, str(event_id))
        if entry is not None:
            out.append((str(event_id), entry))
    return out


def fold(message: Message, original_body: Any, relations: list[tuple[str, JsonDict]]) -> Message:
    """The message as shown: its newest valid edit, and its reactions (sorted by first use)."""
    if message.redacted:
        return dataclasses.replace(message, reactions=(), edited=False)
    body = original_body if isinstance(original_body, str) else message.body
    edits = sorted(((int(e["ts"]), eid, e) for eid, e in relations
                    if e["rel_type"] == REPLACE and e["sender"] == message.sender
                    and e["room_id"] == message.room_id and message.kind == "text"),
                   key=lambda t: (t[0], t[1]))
    edited = bool(edits)
    if edits:
        body = str(edits[-1][2]["body"])
    first: dict[str, int] = {}
    senders: dict[str, set[str]] = {}
    for _eid, e in sorted(relations, key=lambda t: (int(t[1]["ts"]), t[0])):
        if e["rel_type"] == ANNOTATION and e["room_id"] == message.room_id:
            first.setdefault(str(e["key"]), int(e["ts"]))
            senders.setdefault(str(e["key"]), set()).add(str(e["sender"]))
    reactions = tuple((key, tuple(sorted(senders[key]))) for key in sorted(first, key=lambda k: (first[k], k)))
    return dataclasses.replace(message, body=body, edited=edited, reactions=reactions)


def own_reactions(store: LocalStore, target: str, sender: str, key: str) -> list[str]:
    """The event ids of ``sender``'s reactions ``key`` on ``target`` (to redact them)."""
    return [event_id for event_id, entry in related(store, target)
            if entry["rel_type"] == ANNOTATION and entry["sender"] == sender and entry["key"] == key]


def cache_message(store: LocalStore, message: Message) -> Message:
    """Cache a newly read message with whatever relations arrived before it."""
    value = {**message.to_dict(), "original_body": message.body}
    store.put_message(message.room_id, message.event_id, message.ts, value)
    shown = fold(message, message.body, related(store, message.event_id))
    if shown != message:
        store.put_message(message.room_id, message.event_id, message.ts,
                          {**shown.to_dict(), "original_body": message.body})
    return shown
