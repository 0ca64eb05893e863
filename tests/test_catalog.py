"""Meta-tests over the attacker-change catalog (responder/catalog), in the manner of
cloud-custodian's registry meta-tests: every entry has a CloudTrail record of its event
in the shape AWS writes it (tests/fixtures/catalog/<entry id>.json), reads back as that
entry with exactly the texts and commands the fixture expects, and every command is one
botocore's service model accepts: the operation exists, each option is a member of its
input shape, every required member is given, and values are shell-quoted.
"""

from __future__ import annotations

import json
import re
import shlex
from functools import cache
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from botocore import xform_name

from responder.catalog.coverage import COVERED, STRATUS
from responder.catalog.model import Command, Manual, Meaning, Response
from responder.catalog.reading import CLI_SERVICE, FIELD, fill, flag, render
from responder.catalog.registry import BY_EVENT, CATALOG, lookup
from responder.catalog.table import markdown

FIXTURES = Path(__file__).parent / "fixtures" / "catalog"
DOCS = Path(__file__).parent.parent / "docs" / "attacker-catalog.md"
IDS = [e.id for e in CATALOG]
RECORD_KEYS = {"eventVersion", "userIdentity", "eventTime", "eventSource", "eventName",
               "awsRegion", "sourceIPAddress", "userAgent", "requestParameters",
               "responseElements", "requestID", "eventID", "eventType", "recipientAccountId"}
"""Members every management event's record carries (responseElements may be null)."""
ROOTS = ("requestParameters", "responseElements", "resources[]", "additionalEventData",
         "serviceEventDetails")
WHEN_ROOTS = (*ROOTS, "userIdentity.invokedBy")
"""`when` may also ask who made the call (a service on the caller's behalf)."""
HANDLERS = {Response.NEUTRALISE: {"key", "user", "role", "session", "cutoff", "login"},
            Response.RESTORE: {"trail", "detector", "recorder"}}
CREDENTIALS = {"secret", "parameter", "kms-key", "instance-password"}


@cache
def _model(service: str) -> Any:
    return botocore.session.get_session().get_service_model(service)


def _fixture(entry_id: str) -> dict[str, Any]:
    data = json.loads((FIXTURES / f"{entry_id}.json").read_text("utf-8"))
    assert isinstance(data, dict)
    return data


def test_ids_are_unique_and_every_entry_has_exactly_one_fixture() -> None:
    assert len(IDS) == len(set(IDS))
    assert sorted(p.stem for p in FIXTURES.glob("*.json")) == sorted(IDS)


@pytest.mark.parametrize("entry_id", IDS)
def test_fixture_is_a_real_record_that_reads_as_its_entry(entry_id: str) -> None:
    data = _fixture(entry_id)
    record, expect = data["record"], data["expect"]
    assert set(record) >= RECORD_KEYS, RECORD_KEYS - set(record)
    assert record["eventType"] == "AwsApiCall"
    assert "errorCode" not in record
    # SAMLUser and WebIdentityUser identities carry no accountId (as AWS writes them)
    assert record["userIdentity"].get("accountId", record["recipientAccountId"]) == \
        record["recipientAccountId"]
    reading = lookup(record)
    assert reading is not None
    assert reading.entry.id == entry_id
    assert reading.what == expect["what"]
    assert reading.undo == expect["undo"]
    assert reading.entry.note == expect["note"]
    assert "(" not in reading.undo or "'" in reading.undo, "prose stays out of the command"
    assert reading.manual is expect["manual"]
    assert list(reading.outside) == expect["outside"]
    assert "<" not in reading.what, "every field the text names is in the fixture"
    if not reading.manual:
        assert "<" not in " ".join(reading.commands)


@pytest.mark.parametrize("entry_id", IDS)
def test_entry_is_well_formed(entry_id: str) -> None:
    entry = next(e for e in CATALOG if e.id == entry_id)
    assert entry.source.endswith(".amazonaws.com")
    assert entry.fields or not entry.undo
    assert all(p.startswith(ROOTS) for p in [*entry.fields.values(), *entry.outside]), \
        entry.fields
    assert all(p.startswith(WHEN_ROOTS) for p in entry.when), entry.when
    named = set(FIELD.findall(entry.what))
    assert named <= {*entry.fields, "region"}
    assert entry.handler in HANDLERS.get(entry.response, {""})
    assert (entry.credential in CREDENTIALS) is (entry.meaning is Meaning.READS_CREDENTIALS)
    if entry.meaning is Meaning.GRANTS_OUTSIDE:
        assert entry.outside, "a grant to the outside says where to find whom"
    assert entry.undo or entry.note, "a human is told what to do"


@pytest.mark.parametrize("entry_id", IDS)
def test_printed_commands_give_one_value_to_each_scalar_option(entry_id: str) -> None:
    """As printed for the fixture: every option is an input member, a list member may
    take several words, any other exactly one (a boolean none)."""
    reading = lookup(_fixture(entry_id)["record"])
    assert reading is not None
    for entry_command, text in zip(reading.entry.undo * len(reading.commands),
                                   reading.commands, strict=False):
        tokens = shlex.split(re.sub(r"<[^<>]*>", "PLACEHOLDER", text))
        assert tokens[:3] == ["aws", CLI_SERVICE.get(entry_command.service,
                                                     entry_command.service),
                              xform_name(entry_command.operation, "-")]
        shape = _model(entry_command.service).operation_model(
            entry_command.operation).input_shape
        by_flag = {flag(m): s for m, s in (shape.members.items() if shape else ())}
        by_flag["--region"] = by_flag.get("--region") or _STRING
        words: dict[str, list[str]] = {}
        current = ""
        for token in tokens[3:]:
            if token.startswith("--"):
                current = token.removeprefix("--no-") and token.replace("--no-", "--")
                assert current in by_flag, f"{entry_id}: {token}"
                words[current] = []
            else:
                words[current].append(token)
        for option, values in words.items():
            kind = by_flag[option].type_name
            if kind == "boolean":
                assert values == [], (entry_id, option)
            elif kind != "list":
                assert len(values) == 1, (entry_id, option, values)


class _Scalar:
    type_name = "string"


_STRING: Any = _Scalar()


def test_entries_of_one_event_differ_in_shape() -> None:
    for entries in BY_EVENT.values():
        shapes = [tuple(sorted(e.when.items())) for e in entries]
        assert len(shapes) == len(set(shapes)), [e.id for e in entries]


def _commands() -> list[tuple[str, Command]]:
    return [(f"{e.id}:{i}", c) for e in CATALOG for i, c in enumerate(e.undo)]


@pytest.mark.parametrize(("where", "command"), _commands(), ids=[w for w, _ in _commands()])
def test_command_is_one_botocore_accepts(where: str, command: Command) -> None:
    model = _model(command.service)
    assert command.operation in model.operation_names, where
    shape = model.operation_model(command.operation).input_shape
    members = shape.members if shape is not None else {}
    assert set(command.params) <= set(members), set(command.params) - set(members)
    required = set(shape.required_members) if shape is not None else set()
    assert required <= set(command.params), f"{where} lacks {required - set(command.params)}"
    for member, value in command.params.items():
        if value is True:
            assert members[member].type_name == "boolean", member
    assert command.regional is (command.service not in {"iam", "organizations", "s3",
                                                        "s3control"}), where


def test_cli_names_match_botocore() -> None:
    """The printed service is the CLI's; the operation and options are botocore's names
    as the CLI spells them (xform_name with dashes)."""
    assert CLI_SERVICE == {"s3": "s3api", "config": "configservice"}
    assert flag("SnapshotId") == "--snapshot-id"
    assert xform_name("ModifySnapshotAttribute", "-") == "modify-snapshot-attribute"


EVIL = "a b;$(touch /tmp/x)'\"`"


@pytest.mark.parametrize(("where", "command"), _commands(), ids=[w for w, _ in _commands()])
def test_values_reach_the_shell_as_one_word_each(where: str, command: Command) -> None:
    """Whatever the attacker put in a name, the pasted command passes it as one word."""
    fields = {n for v in command.params.values() if isinstance(v, str)
              for n in FIELD.findall(v)}
    words, manual = render(command, dict.fromkeys(fields, (EVIL,)), "eu-west-1")
    tokens = shlex.split(" ".join(w for w in words if not w.startswith("<")))
    for member, value in command.params.items():
        if isinstance(value, str):
            assert tokens[tokens.index(flag(member)) + 1] == fill(
                value, dict.fromkeys(fields, EVIL)), where
    assert manual is any(isinstance(v, Manual) for v in command.params.values())


def test_every_stratus_technique_is_answered_or_says_why_not() -> None:
    named = {t for e in CATALOG for t in e.techniques if t.startswith("aws.")}
    assert named <= set(STRATUS), named - set(STRATUS)
    for technique, why_not in STRATUS.items():
        assert (technique in named) is (why_not == COVERED), technique


def test_mitre_ids_are_well_formed() -> None:
    for entry in CATALOG:
        for technique in entry.techniques:
            assert technique.startswith("aws.") or (
                technique[0] == "T" and technique[1:5].isdigit()), (entry.id, technique)


def test_the_docs_page_is_the_catalog() -> None:
    """docs/attacker-catalog.md is regenerated with `python -m responder.catalog.table`."""
    assert DOCS.read_text("utf-8") == markdown()


def test_a_decrypt_a_service_made_for_the_caller_is_not_the_attackers_read() -> None:
    """S3 reading an SSE-KMS object for the key writes a Decrypt under the key's identity
    with `invokedBy`: that is the object read, not a KMS key the attacker decrypted."""
    record = _fixture("kms.Decrypt")["record"]
    assert lookup(record) is not None
    by_s3 = {**record, "userIdentity": {**record["userIdentity"],
                                        "invokedBy": "s3.amazonaws.com"},
             "sourceIPAddress": "s3.amazonaws.com"}
    assert lookup(by_s3) is None
