"""Meta-tests over the step registry: every action describes itself completely."""

from __future__ import annotations

import dataclasses
import json
import re
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import get_args

import jsonschema
import pytest

from responder import iam_policy
from responder.context import RunContext
from responder.incident.facts import (
    EvidenceCollected,
    FactKind,
    Facts,
    Incident,
    KeyReplaced,
    Target,
)
from responder.incident.shapes import EvidenceWindow, TemporaryKey
from responder.steps import REGISTRY, StepInput, required_permissions

PERMISSION = re.compile(r"^[a-z0-9-]+:[A-Z][A-Za-z0-9]+$")
DOCS = Path(__file__).resolve().parent.parent / "docs"


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_action_declares_permissions_and_a_valid_schema(name: str) -> None:
    """Each action names its IAM actions (service:Operation) and a valid `with` schema."""
    action = REGISTRY[name]
    assert action.name == name
    assert action.permissions, f"{name} declares no IAM permissions"
    assert all(PERMISSION.match(p) for p in action.permissions), action.permissions
    jsonschema.Draft202012Validator.check_schema(action.schema)
    assert sys.modules[action.__module__].__doc__, f"{name}'s module does not say why"


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_planned_calls_are_covered_by_declared_permissions(name: str, tmp_path: Path) -> None:
    """Whatever a step plans to call, its declared permissions allow."""
    ctx = RunContext(session_factory=lambda: None, home=tmp_path)  # type: ignore[arg-type,return-value]
    now = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
    inp = StepInput(ctx, Incident("inc-x", "AKIAIOSFODNN7EXAMPLE", "p", now),
                    Target("alice", "123456789012"), {})
    for call in REGISTRY[name]().plan(inp):
        assert call.iam_action in REGISTRY[name].permissions


def test_shipped_iam_policy_is_generated_from_the_registry() -> None:
    """docs/iam-policy.json equals what the registry generates (regenerate: see module)."""
    assert (DOCS / "iam-policy.json").read_text() == iam_policy.render()
    listed = {a for s in iam_policy.document()["Statement"] if s["Effect"] == "Allow"
              for a in s["Action"]}
    assert listed == set(iam_policy.everything())
    assert set(required_permissions()) <= listed


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_action_declares_the_kind_and_type_of_its_facts(name: str) -> None:
    """Each action says what kind of fact it establishes and the frozen type of its result,
    and that type survives the journal's round trip (to_detail, then from_detail)."""
    action = REGISTRY[name]
    assert action.kind in get_args(FactKind)
    assert issubclass(action.result, Facts)
    assert dataclasses.is_dataclass(action.result)
    assert action.result.__dataclass_params__.frozen  # type: ignore[attr-defined]
    empty = action.result()
    assert action.result.from_detail(json.loads(json.dumps(empty.to_detail()))) == empty


def test_facts_read_back_from_the_journal_keep_their_types() -> None:
    """Tuples come back as tuples and mappings as mappings after a JSON round trip, and a
    detail journaled by an older version (missing or unknown keys) still reads."""
    facts = EvidenceCollected(events=3, regions=("us-east-1",),
                              window=EvidenceWindow(start="s"),
                              temporary_keys=(TemporaryKey(access_key_id="ASIAX"),))
    again = EvidenceCollected.from_detail(json.loads(json.dumps(facts.to_detail())))
    assert again == facts
    assert again.temporary_key_ids == ("ASIAX",)
    assert "describe_regions_error" not in facts.to_detail()
    assert KeyReplaced.from_detail({"created_access_key_id": "AKIAX"}) == KeyReplaced()


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_the_shipped_table_says_what_the_action_says(name: str) -> None:
    """The registry knows an action's module, kind and facts without importing it (so a
    run loads only the steps it reaches): that table must agree with the class."""
    from responder.incident.action import SHIPPED

    action = REGISTRY[name]
    assert action.__module__ == f"responder.steps.{SHIPPED[name].module}"
    assert action.kind == SHIPPED[name].kind == REGISTRY.kind_of(name)
    assert action.result.__name__ == SHIPPED[name].result
    assert REGISTRY.establishes(name, action.result)
