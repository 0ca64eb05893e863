"""The IAM policies by use (responder.iam_policy): generated from the steps' declarations,
shipped as docs/policies/<use>.json, every action scoped to the resources it needs or
recorded as one IAM authorizes only on `*`, and the IAM writes never on the responder
itself."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from responder import iam_policy
from responder.hardening.apply import APPLY_PERMISSIONS
from responder.steps import REGISTRY

DOCS = Path(__file__).resolve().parents[1] / "docs"


def _allowed(document: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """action -> the Allow statements naming it."""
    found: dict[str, list[dict[str, Any]]] = {}
    for statement in document["Statement"]:
        if statement["Effect"] == "Allow":
            for action in statement["Action"]:
                found.setdefault(action, []).append(statement)
    return found


@pytest.mark.parametrize("use", [u.name for u in iam_policy.USES])
def test_each_use_is_shipped_as_generated(use: str) -> None:
    shipped = (DOCS / "policies" / f"{use}.json").read_text("utf-8")
    assert shipped == iam_policy.render(use), "regenerate: python -m responder.iam_policy"


def test_every_action_has_a_decision_about_its_resources() -> None:
    assert iam_policy.undecided() == []
    used = set(iam_policy.everything())
    assert set(iam_policy.SCOPES) | iam_policy.UNSCOPED <= used, "a stale decision"
    assert not set(iam_policy.SCOPES) & iam_policy.UNSCOPED


@pytest.mark.parametrize("use", [None, *(u.name for u in iam_policy.USES)])
def test_only_what_iam_authorizes_on_everything_is_allowed_on_everything(
        use: str | None) -> None:
    for action, statements in _allowed(iam_policy.document(use)).items():
        (statement,) = statements  # each action in one statement
        if statement["Resource"] == "*":
            assert action in iam_policy.UNSCOPED, action
        else:
            assert action in iam_policy.SCOPES, action


def test_the_named_resources_are_the_ones_the_tool_uses() -> None:
    allowed = _allowed(iam_policy.document("lambda"))

    def resource(action: str) -> Any:
        return allowed[action][0]["Resource"]

    assert resource("s3:PutObject") == "arn:aws:s3:::REPLACE_WITH_EVIDENCE_BUCKET/incidents/*"
    assert resource("sns:Publish") == "arn:aws:sns:*:*:REPLACE_WITH_TOPIC_NAME"
    assert resource("secretsmanager:CreateSecret") == \
        "arn:aws:secretsmanager:*:*:secret:responder/*"
    assert resource("scheduler:CreateSchedule") == "arn:aws:scheduler:*:*:schedule/default/*"
    assert resource("iam:PassRole") == "arn:aws:iam::*:role/REPLACE_WITH_SCHEDULER_ROLE"
    assert allowed["iam:PassRole"][0]["Condition"] == {
        "StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}}


@pytest.mark.parametrize("use", [None, *(u.name for u in iam_policy.USES)])
def test_iam_writes_are_denied_on_the_responder_itself(use: str | None) -> None:
    document = iam_policy.document(use)
    writes = [a for a in _allowed(document) if a in iam_policy.GUARDED]
    denies = [s for s in document["Statement"] if s["Effect"] == "Deny"]
    if not writes:
        assert denies == []
        return
    (deny,) = denies
    assert sorted(deny["Action"]) == sorted(writes)
    assert "arn:aws:iam::*:role/KeyResponder" in deny["Resource"]


def test_a_responder_that_proposes_cannot_apply() -> None:
    """harden's writes are in harden-apply's policy only: on call and in the Lambda the
    harden step proposes, and its role cannot put a proposal in place."""
    for use in ("oncall", "lambda", "rollback", "audit"):
        assert not set(APPLY_PERMISSIONS) - {"iam:PutUserPolicy", "iam:AttachUserPolicy"} \
            & set(iam_policy.actions_of(iam_policy.BY_NAME[use])), use
    assert set(APPLY_PERMISSIONS) <= set(iam_policy.actions_of(
        iam_policy.BY_NAME["harden-apply"]))


def test_every_registered_action_belongs_to_a_use() -> None:
    named = {a for use in iam_policy.USES for a in use.actions}
    assert set(REGISTRY) <= named, set(REGISTRY) - named
    assert json.loads((DOCS / "iam-policy.json").read_text("utf-8")) == \
        iam_policy.document()
