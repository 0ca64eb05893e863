"""deploy/template.yaml: the Lambda role holds exactly what the steps declare."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from responder.journal.dynamodb import TABLE_DEFINITION
from responder.steps import required_permissions

TEMPLATE = Path(__file__).resolve().parent.parent / "deploy" / "template.yaml"


class _CfnLoader(yaml.SafeLoader):
    """Reads CloudFormation short-form tags (!Ref, !GetAtt, ...) as plain data."""


def _tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node)
    else:
        value = loader.construct_mapping(node)  # type: ignore[arg-type]
    return {suffix: value}


_CfnLoader.add_multi_constructor("!", _tag)


def _template() -> dict[str, Any]:
    return dict(yaml.load(TEMPLATE.read_text(), Loader=_CfnLoader))  # noqa: S506 - SafeLoader subclass


def _function() -> dict[str, Any]:
    return dict(_template()["Resources"]["ResponderFunction"]["Properties"])


def test_role_has_exactly_the_step_permissions() -> None:
    """The ResponderSteps statement lists every declared permission and nothing else."""
    statements = {
        s["Sid"]: s for policy in _function()["Policies"] if isinstance(policy, dict)
        for s in policy["Statement"]
    }
    assert sorted(statements["ResponderSteps"]["Action"]) == required_permissions()
    assert statements["ResponderSteps"]["Resource"] == "*"
    journal_actions = set(statements["Journal"]["Action"])
    assert all(a.startswith("dynamodb:") for a in journal_actions)
    assert "dynamodb:DeleteTable" not in journal_actions
    assert statements["ReachOtherAccounts"]["Action"] == "sts:AssumeRole"


def test_handler_and_rules_point_at_real_things() -> None:
    """The handler path imports; the rules cover GuardDuty, Health and Security Hub."""
    from responder import lambda_handler

    function = _function()
    module, name = function["Handler"].rsplit(".", 1)
    assert module == lambda_handler.__name__
    assert callable(getattr(lambda_handler, name))
    sources = {e["Properties"]["Pattern"]["source"][0] for e in function["Events"].values()}
    assert sources == {"aws.guardduty", "aws.health", "aws.securityhub"}
    assert function["DeadLetterQueue"]["Type"] == "SQS"
    env = function["Environment"]["Variables"]
    assert {"RESPONDER_TABLE", "RESPONDER_NOTIFY_TOPIC", "RESPONDER_ROLE_ARN_TEMPLATE"} <= set(env)


def test_table_is_the_one_the_dynamodb_journal_creates() -> None:
    """Keys, attributes, indexes, billing and TTL equal DynamoDbJournal's own definition."""
    table = _template()["Resources"]["JournalTable"]["Properties"]
    for field in ("AttributeDefinitions", "KeySchema", "GlobalSecondaryIndexes", "BillingMode"):
        assert table[field] == TABLE_DEFINITION[field], field
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
