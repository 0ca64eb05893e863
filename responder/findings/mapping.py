"""The trigger mapping: which finding types start which playbook, read and validated.

Which types start which playbook is data (`playbooks/triggers.json`, or a mapping file of
your own), not code, so an operator can widen or narrow automatic response without a
release. It is validated in full on load, so a typo fails before any finding is judged.

A rule's `action` is what its types get: `respond` (the default) runs its playbook;
`notify` and `ignore` start nothing and say so, each with its own refusal, so a type
decided not to act on is told apart from one nobody decided (`docs/findings.md` holds
the shipped decisions for every GuardDuty access-key type, and why).
"""

from __future__ import annotations

from collections.abc import Iterable, Set
from dataclasses import dataclass
from fnmatch import fnmatchcase
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal, TypeAlias, get_args

from responder.errors import BadInput, clipped
from responder.findings.lookup import json_kind
from responder.playbook import load_yaml

SHIPPED_PACKAGE = "responder.playbooks"
"""Where playbooks/ is installed (same package responder.playbook reads)."""
DEFAULT_MAPPING = "triggers.json"
"""The shipped mapping. JSON, not YAML: every playbooks/*.yaml is listed as a playbook."""


KeyKind: TypeAlias = Literal["long-term", "temporary"]
"""Which kind of access key a playbook can respond to: an IAM user's long-term (AKIA) key,
which can be disabled, or a temporary (ASIA) STS key, whose session must be revoked
instead. The two need different playbooks, so each rule says which kind it answers."""
KEY_KINDS: tuple[KeyKind, ...] = get_args(KeyKind)

RuleKeys: TypeAlias = Literal["long-term", "temporary", "any"]
"""The kinds of key a rule is considered for: one kind (a playbook answers one), or `any`
for a rule that starts no playbook (notify, ignore)."""

Action: TypeAlias = Literal["respond", "notify", "ignore"]
"""What a rule's types get: its playbook run (respond), or nothing: `notify` (a human
should look; the refusal says what at) or `ignore` (not a sign this tool acts on)."""
ACTIONS: tuple[Action, ...] = get_args(Action)


@dataclass(frozen=True)
class Rule:
    match: str
    """Shell-style pattern (fnmatch, case-sensitive) on the finding type."""
    playbook: str | None = None
    """The playbook a respond rule runs; None for notify and ignore rules."""
    min_severity: float | None = None
    """Overrides the mapping's min_severity for this rule (respond rules only)."""
    keys: RuleKeys = "long-term"
    """The kind of key the rule's playbook responds to; a rule is only considered for
    findings about that kind, so a key-disabling playbook never meets an ASIA key.
    `any` only for a rule that starts no playbook."""
    action: Action = "respond"

    def __post_init__(self) -> None:
        if (self.action == "respond") != (self.playbook is not None):
            raise ValueError(f"rule {self.match!r}: a respond rule names a playbook, "
                             "a notify or ignore rule none")
        if self.keys == "any" and self.action == "respond":
            raise ValueError(f"rule {self.match!r}: a playbook answers one kind of key")

    def answers(self, keys: KeyKind) -> bool:
        """Whether the rule is considered for a finding about that kind of key."""
        return self.keys in (keys, "any")


@dataclass(frozen=True)
class TriggerMapping:
    """Which finding types start which playbook; the first matching rule decides."""

    rules: tuple[Rule, ...]
    min_severity: float = 0.0
    origin: str = "<mapping>"
    description: str = ""

    def rule_for(self, types: Iterable[tuple[str, str]],
                 keys: KeyKind = "long-term") -> tuple[Rule, str] | None:
        """The first rule for `keys` matching any candidate, with the type to report for it.

        `types` pairs each candidate string to match with the type to report (they
        differ for ASFF, where GuardDuty's own type is derived from the Types entry).
        Rules for the other kind of key are skipped, not matched and rejected, so one
        type can map to a different playbook for each kind.
        """
        candidates = list(types)
        for rule in self.rules:
            if not rule.answers(keys):
                continue
            for candidate, reported in candidates:
                if fnmatchcase(candidate, rule.match):
                    return rule, reported
        return None

    def threshold(self, rule: Rule) -> float:
        return self.min_severity if rule.min_severity is None else rule.min_severity


Mapping: TypeAlias = TriggerMapping
"""The name the interface uses for the trigger mapping."""

_MAPPING_FIELDS = frozenset({"description", "min_severity", "rules"})
_RULE_FIELDS = frozenset({"match", "playbook", "min_severity", "keys", "action"})
_RULE_SHAPE = ("{match, playbook[, min_severity][, keys]} or "
               "{match, action: notify|ignore[, keys]}")


def _reject_unknown(data: dict[Any, Any], known: Set[str], where: str) -> None:
    """A misspelt field would otherwise be ignored and the rule silently mean less."""
    unknown = sorted(set(map(str, data)) - known)
    if unknown:
        raise BadInput(f"{where}: unknown field {clipped(', '.join(map(repr, unknown)))}; "
                       f"known: {', '.join(sorted(known))}")


def _severity_setting(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 10:
        raise BadInput(f"{where}: min_severity must be a number from 0 to 10, "
                       f"got {clipped(repr(value))}")
    return float(value)


def _text_setting(value: Any, where: str, name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise BadInput(f"{where}: {name} must be a non-empty string, got {clipped(repr(value))}")
    return value.strip()


def _rule_from(item: Any, at: str) -> Rule:
    if not isinstance(item, dict):
        raise BadInput(f"{at}: must be a mapping {_RULE_SHAPE}")
    _reject_unknown(item, _RULE_FIELDS, at)
    if "match" not in item:
        raise BadInput(f"{at}: `match` is required")
    match = _text_setting(item["match"], at, "match")
    action = _action_setting(item.get("action", "respond"), at)
    if action != "respond":
        return _quiet_rule(item, at, match, action)
    if "playbook" not in item:
        raise BadInput(f"{at}: `playbook` is required (or `action: notify` or "
                       "`action: ignore` for types that start none)")
    return Rule(
        match=match,
        playbook=_text_setting(item["playbook"], at, "playbook"),
        min_severity=(None if item.get("min_severity") is None
                      else _severity_setting(item["min_severity"], at)),
        keys=_keys_setting(item.get("keys", "long-term"), at),
    )


def _quiet_rule(item: dict[Any, Any], at: str, match: str, action: Action) -> Rule:
    """A notify or ignore rule: no playbook, so no threshold; both kinds of key by default."""
    for name in ("playbook", "min_severity"):
        if name in item:
            raise BadInput(f"{at}: an `action: {action}` rule starts no playbook, so it "
                           f"takes no `{name}`")
    keys = item.get("keys", "any")
    return Rule(match=match, action=action,
                keys="any" if keys == "any" else _keys_setting(keys, at))


def _action_setting(value: Any, at: str) -> Action:
    for action in ACTIONS:
        if value == action:
            return action
    allowed = ", ".join(repr(a) for a in ACTIONS)
    raise BadInput(f"{at}: action must be one of {allowed}, got {clipped(repr(value))}")


def _keys_setting(value: Any, at: str) -> KeyKind:
    """Checked, not defaulted: a misspelt kind would silently leave the rule unused."""
    for kind in KEY_KINDS:
        if value == kind:
            return kind
    allowed = " or ".join(repr(k) for k in KEY_KINDS)
    raise BadInput(f"{at}: keys must be {allowed} (which kind of access key the rule's "
                   f"playbook responds to; a notify or ignore rule may also say 'any'), "
                   f"got {clipped(repr(value))}")


def _mapping_from(data: Any, origin: str) -> TriggerMapping:
    where = f"trigger mapping {origin}"
    if not isinstance(data, dict):
        raise BadInput(f"{where}: must be a mapping with `rules` (and optionally "
                       f"`min_severity`), got {json_kind(data)}")
    _reject_unknown(data, _MAPPING_FIELDS, where)
    if "rules" not in data or not isinstance(data["rules"], list):
        raise BadInput(f"{where}: `rules` is required and must be a list of {_RULE_SHAPE}")
    min_severity = _severity_setting(data.get("min_severity", 0.0), where)
    description = data.get("description", "")
    if not isinstance(description, str):
        raise BadInput(f"{where}: description must be a string")
    rules = tuple(_rule_from(item, f"{where}: rules[{index}]")
                  for index, item in enumerate(data["rules"]))
    return TriggerMapping(rules, min_severity, origin, description)


def _parse_mapping(text: str, origin: str) -> TriggerMapping:
    return _mapping_from(load_yaml(text, f"trigger mapping {origin}", BadInput), origin)


@cache
def _shipped_mapping() -> TriggerMapping:
    text = (resources.files(SHIPPED_PACKAGE) / DEFAULT_MAPPING).read_text("utf-8")
    return _parse_mapping(text, f"playbooks/{DEFAULT_MAPPING}")


def load_mapping(path: str | None = None) -> TriggerMapping:
    """The mapping in `path` (YAML or JSON), or the shipped default; validated."""
    if path is None:
        return _shipped_mapping()
    return _parse_mapping(read_text(path, "trigger mapping"), path)


def read_text(path: str, what: str) -> str:
    """A UTF-8 file (BOM tolerated); unreadable or undecodable is BadInput naming it.

    Shared with the finding reader so both files fail with the same kind of message.
    """
    try:
        return Path(path).read_text("utf-8-sig")
    except OSError as exc:
        raise BadInput(f"cannot read {what} {clipped(path, 120)}: "
                       f"{clipped(exc.strerror or exc)}") from exc
    except UnicodeDecodeError as exc:
        raise BadInput(f"{what} {clipped(path, 120)}: not UTF-8 text") from exc
