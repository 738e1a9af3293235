"""Push rule evaluation (client-server API, "Push Rules", "Conditions"), sans I/O:
a user's rule set and one event in, the actions of the first matching rule out.

The server sees only the outside of an end-to-end encrypted event (its type,
sender and room), so such an event matches the rules written for
``m.room.encrypted`` and nothing that looks into its content.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from homeserver.services.push_rule_defaults import KINDS

JsonDict = dict[str, Any]


@dataclass(frozen=True)
class PushContext:
    user_id: str
    display_name: str | None
    member_count: int
    # Power level of the sender, and the level "notifications" keys (e.g. "room") need.
    sender_power: int
    notification_levels: dict[str, int]


@dataclass(frozen=True)
class Outcome:
    notify: bool
    highlight: bool
    actions: list[Any]


@lru_cache(maxsize=1024)
def _glob(pattern: str, whole: bool) -> re.Pattern[str]:
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    if whole:
        return re.compile(f"^{body}$", re.IGNORECASE | re.DOTALL)
    # content.body: a match on word boundaries (spec).
    return re.compile(rf"(^|\W){body}($|\W)", re.IGNORECASE | re.DOTALL)


@lru_cache(maxsize=1024)
def _path(key: str) -> tuple[str, ...]:
    """Split a dotted key, ``\\.`` escaping a literal dot (spec, "dotted paths")."""
    parts, current, escaped = [], "", False
    for c in key:
        if escaped:
            current += c
            escaped = False
        elif c == "\\":
            escaped = True
        elif c == ".":
            parts.append(current)
            current = ""
        else:
            current += c
    parts.append(current)
    return tuple(parts)


def _lookup(event: JsonDict, key: str) -> tuple[bool, Any]:
    return _walk(event, _path(key))


def _walk(event: JsonDict, path: tuple[str, ...]) -> tuple[bool, Any]:
    value: Any = event
    for part in path:
        if not isinstance(value, dict) or part not in value:
            return False, None
        value = value[part]
    return True, value


@lru_cache(maxsize=256)
def _count_test(text: str) -> tuple[str, int] | None:
    match = re.fullmatch(r"(==|<=|>=|<|>)?([0-9]+)", text)
    return None if match is None else (match.group(1) or "==", int(match.group(2)))


def _member_count(condition: JsonDict, count: int) -> bool:
    test = _count_test(str(condition.get("is", "")))
    if test is None:
        return False
    return _compare(test, count)


def _compare(test: tuple[str, int], count: int) -> bool:
    op, number = test
    return {"==": count == number, "<": count < number, ">": count > number,
            "<=": count <= number, ">=": count >= number}[op]


def condition_matches(condition: JsonDict, event: JsonDict, ctx: PushContext) -> bool:
    kind = condition.get("kind")
    if kind == "event_match":
        found, value = _lookup(event, str(condition.get("key", "")))
        if not found or not isinstance(value, str):
            return False
        pattern = str(condition.get("pattern", ""))
        return bool(_glob(pattern, condition.get("key") != "content.body").search(value))
    if kind == "event_property_is":
        found, value = _lookup(event, str(condition.get("key", "")))
        return found and type(value) is type(condition.get("value")) and value == condition.get("value")
    if kind == "event_property_contains":
        found, value = _lookup(event, str(condition.get("key", "")))
        return found and isinstance(value, list) and condition.get("value") in value
    if kind == "contains_display_name":
        found, body = _lookup(event, "content.body")
        if not found or not isinstance(body, str) or not ctx.display_name:
            return False
        return bool(_glob(ctx.display_name.replace("*", "\\*"), False).search(body))
    if kind == "room_member_count":
        return _member_count(condition, ctx.member_count)
    if kind == "sender_notification_permission":
        needed = ctx.notification_levels.get(str(condition.get("key", "")), 50)
        return ctx.sender_power >= needed
    return False  # unknown conditions never match (spec)


def _conditions(kind: str, rule: JsonDict) -> list[JsonDict]:
    if kind == "content":
        return [{"kind": "event_match", "key": "content.body", "pattern": str(rule.get("pattern", ""))}]
    if kind == "room":
        return [{"kind": "event_match", "key": "room_id", "pattern": str(rule["rule_id"])}]
    if kind == "sender":
        return [{"kind": "event_match", "key": "sender", "pattern": str(rule["rule_id"])}]
    conditions = rule.get("conditions", [])
    return conditions if isinstance(conditions, list) else []


Predicate = Callable[[JsonDict, PushContext], bool]


def _compiled_condition(condition: JsonDict) -> Predicate:
    """``condition_matches`` for this condition, with its key, pattern and test parsed once."""
    kind = condition.get("kind")
    if kind == "event_match":
        path = _path(str(condition.get("key", "")))
        regex = _glob(str(condition.get("pattern", "")), condition.get("key") != "content.body")

        def event_match(event: JsonDict, ctx: PushContext) -> bool:
            found, value = _walk(event, path)
            return found and isinstance(value, str) and regex.search(value) is not None
        return event_match
    if kind == "room_member_count":
        test = _count_test(str(condition.get("is", "")))
        return lambda event, ctx: test is not None and _compare(test, ctx.member_count)
    return lambda event, ctx: condition_matches(condition, event, ctx)


@dataclass(frozen=True)
class CompiledRules:
    """A rule set in evaluation order, enabled rules only, conditions compiled: for
    evaluating many events against one set (see :func:`compile_rules`)."""

    rules: tuple[tuple[tuple[Predicate, ...], Outcome], ...]


def compile_rules(rules: dict[str, list[JsonDict]]) -> CompiledRules:
    out = []
    for kind in KINDS:
        for rule in rules.get(kind, []):
            if not rule.get("enabled", True):
                continue
            actions = list(rule.get("actions", []))
            notify = "notify" in actions
            highlight = notify and any(
                isinstance(a, dict) and a.get("set_tweak") == "highlight" and a.get("value", True) is not False
                for a in actions
            )
            predicates = tuple(_compiled_condition(c) for c in _conditions(kind, rule))
            out.append((predicates, Outcome(notify, highlight, actions)))
    return CompiledRules(tuple(out))


def evaluate_compiled(rules: CompiledRules, event: JsonDict, ctx: PushContext) -> Outcome:
    """The outcome of the first enabled matching rule (nothing if none matches)."""
    if event.get("sender") == ctx.user_id:
        return Outcome(False, False, [])
    for predicates, outcome in rules.rules:
        if all(p(event, ctx) for p in predicates):
            return Outcome(outcome.notify, outcome.highlight, list(outcome.actions))
    return Outcome(False, False, [])


def evaluate(rules: dict[str, list[JsonDict]], event: JsonDict, ctx: PushContext) -> Outcome:
    """The outcome of the first enabled matching rule (nothing if none matches)."""
    return evaluate_compiled(compile_rules(rules), event, ctx)
