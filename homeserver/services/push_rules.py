"""Push rules (client-server API, "Push Rules"): the spec's defaults, the user's own
rules, enabling and actions.

One source of truth: the user's ``m.push_rules`` global account data holds the
whole rule set as last written (so clients also see it in ``/sync``).  Reading
rebuilds it from the server's current defaults, keeping the user's own rules
and the user's changes to defaults (``enabled``, ``actions``).
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from typing import Any

from common.errors import Codes, MatrixError
from homeserver.services.account_data import AccountDataService
from homeserver.services.push_rule_defaults import (
    KINDS,
    content_rules,
    override_rules,
    underride_rules,
)

JsonDict = dict[str, Any]

PUSH_RULES_TYPE = "m.push_rules"
SCOPE = "global"
MAX_USER_RULES = 500
MAX_RULE_ID = 255
MAX_PATTERN = 1000
# Built rule sets kept by PushRuleService.shared_rules (a few KiB each).
BUILT_RULE_SETS = 2_000
SIMPLE_ACTIONS = frozenset({"notify", "dont_notify", "coalesce"})
CONDITION_KINDS = frozenset({
    "event_match", "event_property_is", "event_property_contains", "contains_display_name",
    "room_member_count", "sender_notification_permission",
})


def _bad(message: str, errcode: str = Codes.INVALID_PARAM) -> MatrixError:
    return MatrixError(400, errcode, message)


def _not_found() -> MatrixError:
    return MatrixError(404, Codes.NOT_FOUND, "Unknown push rule")


def check_scope_kind(scope: str, kind: str) -> None:
    if scope != SCOPE:
        raise _bad("Only the 'global' push rule scope exists")
    if kind not in KINDS:
        raise _bad(f"Push rule kind must be one of {', '.join(KINDS)}")


def check_actions(actions: Any) -> list[Any]:
    if not isinstance(actions, list):
        raise _bad("actions must be a list", Codes.BAD_JSON)
    for action in actions:
        if isinstance(action, str) and action in SIMPLE_ACTIONS:
            continue
        if isinstance(action, dict) and isinstance(action.get("set_tweak"), str):
            continue
        raise _bad(f"Unknown push rule action {str(action)[:64]!r}")
    return actions


def _check_conditions(conditions: Any) -> list[JsonDict]:
    if not isinstance(conditions, list) or not all(isinstance(c, dict) for c in conditions):
        raise _bad("conditions must be a list of objects", Codes.BAD_JSON)
    for condition in conditions:
        if not isinstance(condition.get("kind"), str):
            raise _bad("Every condition needs a kind", Codes.BAD_JSON)
        if condition["kind"] == "event_match" and not (
            isinstance(condition.get("key"), str) and isinstance(condition.get("pattern"), str)
        ):
            raise _bad("event_match conditions need a key and a pattern", Codes.BAD_JSON)
    return list(conditions)


def _new_rule(kind: str, rule_id: str, body: JsonDict) -> JsonDict:
    """Validate a client's rule body for ``kind``; the stored rule."""
    if rule_id.startswith("."):
        raise _bad("Rule ids starting with '.' are reserved for server-default rules")
    if not rule_id or len(rule_id) > MAX_RULE_ID:
        raise _bad(f"Rule ids are 1 to {MAX_RULE_ID} characters")
    rule: JsonDict = {
        "rule_id": rule_id, "default": False, "enabled": True,
        "actions": check_actions(body.get("actions")),
    }
    if kind == "content":
        pattern = body.get("pattern")
        if not isinstance(pattern, str) or not pattern or len(pattern) > MAX_PATTERN:
            raise _bad("Content rules need a pattern", Codes.MISSING_PARAM)
        rule["pattern"] = pattern
    elif kind in ("override", "underride"):
        if "conditions" not in body:
            raise _bad(f"{kind} rules need conditions", Codes.MISSING_PARAM)
        rule["conditions"] = _check_conditions(body["conditions"])
    # Room and sender rules: the id is the room or user id the implicit condition
    # matches; any string is kept (SyTest adds "#spam:example.com" as a room rule).
    return rule


class PushRuleService:
    def __init__(self, account_data: AccountDataService) -> None:
        self.account_data = account_data
        # Built rule sets by rules_key, for readers that do not change them (push counts).
        self._built: OrderedDict[bytes, dict[str, list[JsonDict]]] = OrderedDict()

    # ----------------------------------------------------------------- reading
    @staticmethod
    def build(user_id: str, stored: JsonDict | None) -> dict[str, list[JsonDict]]:
        """The user's full rule set, kind -> rules in evaluation order."""
        saved = (stored or {}).get(SCOPE) or {}
        own: dict[str, list[JsonDict]] = {}
        changes: dict[str, JsonDict] = {}
        for kind in KINDS:
            for rule in saved.get(kind) or []:
                if not isinstance(rule, dict) or not isinstance(rule.get("rule_id"), str):
                    continue
                if rule.get("default"):
                    changes[f"{kind}/{rule['rule_id']}"] = rule
                else:
                    own.setdefault(kind, []).append(rule)
        first, rest = override_rules(user_id)
        defaults = {
            "override": (first, rest), "content": ([], content_rules(user_id)),
            "room": ([], []), "sender": ([], []), "underride": ([], underride_rules()),
        }
        out: dict[str, list[JsonDict]] = {}
        for kind in KINDS:
            before, after = defaults[kind]
            rules = []
            for rule in [*before, *own.get(kind, []), *after]:
                rule = dict(rule)
                changed = changes.get(f"{kind}/{rule['rule_id']}") if rule["default"] else None
                if changed is not None:
                    rule["enabled"] = bool(changed.get("enabled", rule["enabled"]))
                    if isinstance(changed.get("actions"), list):
                        rule["actions"] = changed["actions"]
                rules.append(rule)
            out[kind] = rules
        return out

    async def _stored(self, user_id: str, at: int | None = None) -> JsonDict | None:
        return await self.account_data.global_content(user_id, PUSH_RULES_TYPE, at)

    async def rules(self, user_id: str) -> dict[str, list[JsonDict]]:
        return self.build(user_id, await self._stored(user_id))

    async def shared_rules(self, user_id: str, at: int | None = None) -> tuple[dict[str, list[JsonDict]], bytes]:
        """The user's rule set, not to be changed (it is shared), and a key that changes
        with it: a digest of the user id and the stored rules the set is built from."""
        stored = await self._stored(user_id, at)  # at: see AccountDataService.global_content
        key = hashlib.blake2b(
            json.dumps([user_id, stored], sort_keys=True, separators=(",", ":")).encode(), digest_size=16
        ).digest()
        rules = self._built.get(key)
        if rules is None:
            rules = self._built[key] = self.build(user_id, stored)
            if len(self._built) > BUILT_RULE_SETS:
                self._built.popitem(last=False)
        else:
            self._built.move_to_end(key)
        return rules, key

    async def ruleset(self, user_id: str) -> JsonDict:
        """GET /pushrules/"""
        return {SCOPE: await self.rules(user_id)}

    async def get_scope(self, user_id: str, scope: str) -> JsonDict:
        check_scope_kind(scope, "override")
        return await self.rules(user_id)

    async def get_kind(self, user_id: str, scope: str, kind: str) -> list[JsonDict]:
        check_scope_kind(scope, kind)
        return (await self.rules(user_id))[kind]

    async def get_rule(self, user_id: str, scope: str, kind: str, rule_id: str) -> JsonDict:
        for rule in await self.get_kind(user_id, scope, kind):
            if rule["rule_id"] == rule_id:
                return rule
        raise _not_found()

    # ----------------------------------------------------------------- writing
    async def _change(self, user_id: str, kind: str, edit: Any) -> None:
        """Apply ``edit(rules_of_kind)`` (which raises to refuse) and store the whole set."""

        def change(old: JsonDict | None) -> JsonDict | None:
            rules = self.build(user_id, old)
            edit(rules[kind])
            return {SCOPE: rules}

        if (position := await self.account_data.repo.update(user_id, "", PUSH_RULES_TYPE, change)) is not None:
            await self.account_data.notifier.notify([user_id], "account_data", position)

    async def put_rule(
        self, user_id: str, scope: str, kind: str, rule_id: str, body: JsonDict,
        before: str | None, after: str | None,
    ) -> None:
        """PUT /pushrules/global/{kind}/{ruleId}?before=&after="""
        check_scope_kind(scope, kind)
        new = _new_rule(kind, rule_id, body)

        def edit(rules: list[JsonDict]) -> None:
            existing = [i for i, r in enumerate(rules) if r["rule_id"] == rule_id]
            if existing and before is None and after is None:
                new["enabled"] = rules[existing[0]]["enabled"]
                rules[existing[0]] = new
                return
            for i in reversed(existing):
                del rules[i]
            anchor_id = before if before is not None else after
            if anchor_id is not None:
                at = [i for i, r in enumerate(rules) if r["rule_id"] == anchor_id]
                if not at:
                    raise MatrixError(404, Codes.NOT_FOUND, "The rule named in before/after does not exist")
                if rules[at[0]]["default"]:
                    raise _bad("before/after cannot name a server-default rule")
                rules.insert(at[0] if before is not None else at[0] + 1, new)
            else:
                # New rules go before the user's older ones (after any leading defaults).
                lead = 0
                while lead < len(rules) and rules[lead]["default"] and rules[lead]["rule_id"] == ".m.rule.master":
                    lead += 1
                rules.insert(lead, new)
            if sum(1 for r in rules if not r["default"]) > MAX_USER_RULES:
                raise _bad(f"At most {MAX_USER_RULES} push rules of one kind")

        await self._change(user_id, kind, edit)

    async def delete_rule(self, user_id: str, scope: str, kind: str, rule_id: str) -> None:
        check_scope_kind(scope, kind)

        def edit(rules: list[JsonDict]) -> None:
            at = [i for i, r in enumerate(rules) if r["rule_id"] == rule_id]
            if not at:
                raise _not_found()
            if rules[at[0]]["default"]:
                raise _bad("Server-default rules cannot be deleted (disable them instead)")
            del rules[at[0]]

        await self._change(user_id, kind, edit)

    async def set_attribute(
        self, user_id: str, scope: str, kind: str, rule_id: str, attribute: str, body: JsonDict
    ) -> None:
        """PUT .../{ruleId}/enabled and .../{ruleId}/actions"""
        check_scope_kind(scope, kind)
        if attribute == "enabled":
            value: Any = body.get("enabled")
            if not isinstance(value, bool):
                raise _bad("enabled must be a boolean", Codes.BAD_JSON)
        else:
            value = check_actions(body.get("actions"))

        def edit(rules: list[JsonDict]) -> None:
            for rule in rules:
                if rule["rule_id"] == rule_id:
                    rule[attribute] = value
                    return
            raise _not_found()

        await self._change(user_id, kind, edit)

    async def get_attribute(self, user_id: str, scope: str, kind: str, rule_id: str, attribute: str) -> JsonDict:
        rule = await self.get_rule(user_id, scope, kind, rule_id)
        return {attribute: rule[attribute]}
