"""Black-box tests of the installed `respond` console script against a moto server.

Each test runs `respond` as a subprocess (DESIGN §2 contract, §3 playbook, §6 guardrails)
and judges it only by exit code, stdout, stderr and the IAM state the server ends up in.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from conftest import Account, CliResult, iam_state

from responder import __version__, playbook

Cli = Callable[..., CliResult]

POLICY_NAME = "responder-revoke-older-sessions"
DOC_KEYS = {
    "incident_id", "status", "access_key_id", "user_name", "account_id", "started_at",
    "contained_at", "steps", "evidence", "replacement", "report",
}
STEP_NAMES = [
    "identify", "disable-key", "revoke-sessions", "collect-evidence", "contain-attacker",
    "replace-key", "notify", "harden",
]
STEP_STATUSES = ["done", "done", "done", "done", "done", "done", "skipped", "done"]
ACCOUNT_ID = "123456789012"
UNKNOWN_INCIDENT = "inc-20990101-000000-abcdef"


# -- helpers -------------------------------------------------------------------------------


def parse_ts(text: str) -> datetime:
    """ISO-8601 with a trailing Z (the product's one timestamp format) to an aware datetime."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def assert_no_traceback(result: CliResult) -> None:
    assert "Traceback" not in result.stderr, result.stderr
    assert "Traceback" not in result.stdout, result.stdout


def json_doc(result: CliResult, code: int = 0) -> dict[str, Any]:
    """Assert the exit code and that stdout is exactly one JSON object; return it."""
    assert result.code == code, (result.code, result.stdout, result.stderr)
    assert_no_traceback(result)
    doc = result.json()  # json.loads: fails on trailing text or a second object
    assert isinstance(doc, dict), result.stdout
    return doc


def refusal_message(result: CliResult, code: int) -> str:
    """Assert the exit code and exactly one `respond: ...` line on stderr; return the line."""
    assert result.code == code, (result.code, result.stdout, result.stderr)
    assert_no_traceback(result)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("respond: "), lines[0]
    return lines[0]


def key_statuses(iam: Any, user: str) -> dict[str, str]:
    return {k["AccessKeyId"]: k["Status"]
            for k in iam.list_access_keys(UserName=user)["AccessKeyMetadata"]}


def policy_document(iam: Any, user: str, name: str = POLICY_NAME) -> dict[str, Any]:
    document = iam.get_user_policy(UserName=user, PolicyName=name)["PolicyDocument"]
    return dict(json.loads(document) if isinstance(document, str) else document)


def contain(cli: Cli, key: str) -> dict[str, Any]:
    """Run the playbook for `key` with --yes --output json; it must complete (exit 0)."""
    return json_doc(cli("compromised", key, "--yes", "--output", "json"))


def step(doc: dict[str, Any], name: str) -> dict[str, Any]:
    return next(s for s in doc["steps"] if s["name"] == name)


# -- 1, 2: a real run ----------------------------------------------------------------------


def test_compromised_yes_contains_only_the_leaked_key(server_account: Account, cli: Cli) -> None:
    """A run with --yes completes: key disabled, deny policy attached, bystanders untouched."""
    iam = server_account.iam
    result = cli("compromised", server_account.leaked_key, "--yes", "--output", "json")
    doc = json_doc(result)

    assert doc.keys() >= DOC_KEYS, DOC_KEYS - doc.keys()
    assert doc["status"] == "completed"
    assert doc["access_key_id"] == server_account.leaked_key
    assert doc["user_name"] == "alice"
    assert doc["account_id"] == ACCOUNT_ID
    assert [s["name"] for s in doc["steps"]] == STEP_NAMES
    assert [s["status"] for s in doc["steps"]] == STEP_STATUSES, doc["steps"]
    for skipped in doc["steps"][6:7]:
        assert skipped["detail"].get("reason"), skipped
    evidence = doc["evidence"]
    assert evidence["events"] == 0
    assert "us-east-1" in evidence["regions"]
    assert Path(evidence["path"]).name == "cloudtrail.jsonl"
    assert evidence["sha256"] == hashlib.sha256(Path(evidence["path"]).read_bytes()).hexdigest()
    assert doc["contained_at"] is not None
    started = parse_ts(doc["started_at"])
    assert parse_ts(doc["contained_at"]) >= started

    # alice had two keys: once evidence was collected the leaked one made room for the new.
    new_key = doc["replacement"]["access_key_id"]
    assert key_statuses(iam, "alice") == {
        new_key: "Active", server_account.other_key: "Active",
    }
    assert doc["replacement"]["secret_ref"].startswith("arn:aws:secretsmanager:")
    assert step(doc, "disable-key")["detail"]["status"] == "Inactive"
    assert key_statuses(iam, "bob") == {server_account.bob_key: "Active"}
    assert iam.list_user_policies(UserName="alice")["PolicyNames"] == [POLICY_NAME]
    assert iam.list_user_policies(UserName="bob")["PolicyNames"] == []
    (statement,) = policy_document(iam, "alice")["Statement"]
    assert statement["Effect"] == "Deny"
    assert statement["Action"] == "*"
    assert statement["Resource"] == "*"
    disabled = parse_ts(step(doc, "disable-key")["detail"]["effective_at"])
    cutoff = parse_ts(statement["Condition"]["DateLessThan"]["aws:TokenIssueTime"])
    assert list(statement["Condition"]) == ["DateLessThan"]
    assert timedelta(seconds=300) <= cutoff - disabled <= timedelta(seconds=301)  # ms in journal


def test_second_run_on_same_key_is_idempotent(server_account: Account, cli: Cli) -> None:
    """Re-running on a contained key answers with the completed incident: no new incident,
    no second replacement key, no second policy."""
    iam = server_account.iam
    first = contain(cli, server_account.leaked_key)
    state_after_first = iam_state(iam)

    second = contain(cli, server_account.leaked_key)

    assert second["status"] == "completed"
    assert second["incident_id"] == first["incident_id"]
    assert iam.list_user_policies(UserName="alice")["PolicyNames"] == [POLICY_NAME]
    assert iam_state(iam) == state_after_first


# -- 3, 4: bad input changes nothing ---------------------------------------------------------


@dataclass(frozen=True)
class BadCase:
    """A refused invocation: argv (after setup), extra env, exit code, words the message has."""

    args: list[str]
    code: int = 2
    mentions: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)


def _own_key(account: Account, _: Path) -> BadCase:
    key = account.iam.create_access_key(UserName="bob")["AccessKey"]["AccessKeyId"]
    return BadCase(["compromised", key, "--yes"], code=3, mentions=[key, "signing"],
                   env={"AWS_ACCESS_KEY_ID": key})


def _playbook_file(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def _bad_yaml(account: Account, tmp_path: Path) -> BadCase:
    path = _playbook_file(tmp_path, "broken.yaml", "name: broken\nsteps: [\n  - {name: x\n")
    return BadCase(["compromised", account.leaked_key, "--yes", "--playbook", path],
                   mentions=[path])


def _unknown_action(account: Account, tmp_path: Path) -> BadCase:
    path = _playbook_file(tmp_path, "action.yaml", (
        "name: nuke\nversion: 1\nsteps:\n"
        "  - {name: identify, action: identify}\n"
        "  - {name: wipe-account, action: nuke_everything}\n"))
    return BadCase(["compromised", account.leaked_key, "--yes", "--playbook", path],
                   mentions=[path, "wipe-account", "action", "nuke_everything"])


def _unknown_field(account: Account, tmp_path: Path) -> BadCase:
    path = _playbook_file(tmp_path, "field.yaml", (
        "name: typo\nversion: 1\nsteps:\n"
        "  - {name: identify, action: identify}\n"
        "  - {name: disable-key, action: disable_access_key, retries: 3}\n"))
    return BadCase(["compromised", account.leaked_key, "--yes", "--playbook", path],
                   mentions=[path, "disable-key", "retries"])


def _static(case: BadCase) -> Callable[[Account, Path], BadCase]:
    return lambda _account, _tmp: case


def _for_leaked(*extra: str, code: int = 2, mentions: tuple[str, ...] = ()
                ) -> Callable[[Account, Path], BadCase]:
    return lambda account, _tmp: BadCase(
        ["compromised", account.leaked_key, "--yes", *extra], code=code, mentions=list(mentions))


BAD_CASES: dict[str, Callable[[Account, Path], BadCase]] = {
    "short": _static(BadCase(["compromised", "AKIA123", "--yes"], mentions=["malformed"])),
    "lower-case": _static(BadCase(["compromised", "akiaiosfodnn7example", "--yes"],
                                  mentions=["malformed"])),
    "21-chars": _static(BadCase(["compromised", "AKIAIOSFODNN7EXAMPLEX", "--yes"],
                                mentions=["malformed"])),
    "empty": _static(BadCase(["compromised", "", "--yes"], mentions=["malformed"])),
    # A temporary key CloudTrail never saw: refused, saying what was searched.
    "asia": _static(BadCase(["compromised", "ASIAIOSFODNN7EXAMPLE", "--yes"], code=3,
                            mentions=["temporary", "CloudTrail", "us-east-1"])),
    "asia-principal-garbage": _static(BadCase(
        ["compromised", "ASIAIOSFODNN7EXAMPLE", "--yes", "--principal", "alice"],
        mentions=["--principal"])),
    "akia-with-principal": _for_leaked("--principal", "arn:aws:iam::123456789012:user/bob",
                                       mentions=("long-term",)),
    "asia-key-playbook": _static(BadCase(
        ["compromised", "ASIAIOSFODNN7EXAMPLE", "--yes", "--playbook", "compromised-key"],
        mentions=["compromised-session"])),
    "not-found": _static(BadCase(["compromised", "AKIAAAAAAAAAAAAAAAAA", "--yes"],
                                 mentions=["AKIAAAAAAAAAAAAAAAAA", "not found"])),
    "own-key": _own_key,
    "unknown-playbook": _for_leaked("--playbook", "nope", mentions=("nope",)),
    "bucket-uri": _for_leaked("--evidence-bucket", "s3://evidence", mentions=("S3 bucket name",)),
    "invalid-yaml": _bad_yaml,
    "unknown-action": _unknown_action,
    "unknown-field": _unknown_field,
    "status-unknown-incident": _static(BadCase(["status", UNKNOWN_INCIDENT],
                                               mentions=[UNKNOWN_INCIDENT])),
    "resume-unknown-incident": _static(BadCase(["resume", UNKNOWN_INCIDENT],
                                               mentions=[UNKNOWN_INCIDENT])),
    "report-unknown-incident": _static(BadCase(["report", UNKNOWN_INCIDENT],
                                               mentions=[UNKNOWN_INCIDENT])),
}
# The subset whose command takes --output (report takes --format instead).
JSON_CASES = [name for name in BAD_CASES
              if name in {"short", "asia", "not-found", "own-key", "unknown-playbook",
                          "unknown-action", "status-unknown-incident",
                          "resume-unknown-incident"}]


@pytest.mark.parametrize("case_name", list(BAD_CASES))
def test_bad_input_is_one_line_and_changes_nothing(
    case_name: str, server_account: Account, cli: Cli, tmp_path: Path
) -> None:
    """Bad input or a guardrail exits 2/3 with one `respond:` line and no IAM change."""
    case = BAD_CASES[case_name](server_account, tmp_path)
    before = iam_state(server_account.iam)

    result = cli(*case.args, env=case.env)

    message = refusal_message(result, case.code)
    for word in case.mentions:
        assert word in message, (word, message)
    assert iam_state(server_account.iam) == before


@pytest.mark.parametrize("case_name", JSON_CASES)
def test_bad_input_with_json_output_prints_one_refused_object(
    case_name: str, server_account: Account, cli: Cli, tmp_path: Path
) -> None:
    """With --output json a refusal still prints exactly one object: status refused, error set."""
    case = BAD_CASES[case_name](server_account, tmp_path)
    before = iam_state(server_account.iam)

    doc = json_doc(cli(*case.args, "--output", "json", env=case.env), code=case.code)

    assert doc["status"] == "refused"
    assert doc["error"]
    assert iam_state(server_account.iam) == before


# -- 5, 6: dry run and confirmation -----------------------------------------------------------


def test_dry_run_plans_without_changing_or_journaling(server_account: Account, cli: Cli) -> None:
    """--dry-run names the owner, plans UpdateAccessKey, changes nothing and journals nothing."""
    iam = server_account.iam
    key = server_account.leaked_key
    before = iam_state(iam)

    doc = json_doc(cli("compromised", key, "--dry-run", "--output", "json"))

    assert doc["status"] == "planned"
    assert doc["user_name"] == "alice"
    calls = step(doc, "disable-key")["detail"]["calls"]
    assert {"operation": "UpdateAccessKey",
            "params": {"AccessKeyId": key, "UserName": "alice", "Status": "Inactive"}} in [
        {"operation": c["operation"], "params": c["params"]} for c in calls
    ], calls
    assert iam_state(iam) == before
    assert json_doc(cli("status", "--output", "json"))["incidents"] == []

    human = cli("compromised", key, "--dry-run")
    assert human.code == 0, human.stderr
    assert_no_traceback(human)
    assert "UpdateAccessKey" in human.stdout
    assert iam_state(iam) == before


def test_without_yes_and_without_terminal_refuses(server_account: Account, cli: Cli) -> None:
    """No --yes and stdin not a terminal: exit 2 asking for --yes, even if stdin says 'y'."""
    before = iam_state(server_account.iam)

    result = cli("compromised", server_account.leaked_key, stdin="y\n")

    assert "--yes" in refusal_message(result, 2)
    assert iam_state(server_account.iam) == before


# -- 7: status and report ------------------------------------------------------------------


def test_status_and_report_read_back_the_incident(server_account: Account, cli: Cli) -> None:
    """status lists and shows the run's incident as the run printed it; report renders it."""
    run = contain(cli, server_account.leaked_key)
    incident_id = run["incident_id"]

    listing = cli("status")
    assert listing.code == 0, listing.stderr
    assert incident_id in listing.stdout

    shown = json_doc(cli("status", incident_id, "--output", "json"))
    assert shown["incident_id"] == incident_id
    assert shown["status"] == "completed"
    assert shown == run

    as_json = json_doc(cli("report", incident_id, "--format", "json"))
    assert as_json["incident_id"] == incident_id

    markdown = cli("report", incident_id)
    assert markdown.code == 0, markdown.stderr
    assert server_account.leaked_key in markdown.stdout


# -- 8, 9: playbooks, version, help ----------------------------------------------------------


def test_playbooks_subcommands(cli: Cli) -> None:
    """playbooks list/show/validate/graph work on the shipped compromised-key playbook."""
    listing = cli("playbooks", "list")
    assert listing.code == 0, listing.stderr
    assert "compromised-key" in listing.stdout

    shown = json_doc(cli("playbooks", "show", "compromised-key"))
    assert [s["name"] for s in shown["steps"]] == STEP_NAMES

    with resources.as_file(playbook.shipped_dir() / "compromised-key.yaml") as shipped:
        valid = cli("playbooks", "validate", str(shipped))
    assert valid.code == 0, valid.stderr

    graph = cli("playbooks", "graph", "compromised-key")
    assert graph.code == 0, graph.stderr
    assert any(line.startswith("digraph") for line in graph.stdout.splitlines()), graph.stdout


def test_version_and_help(cli: Cli) -> None:
    """--version and `compromised --help` exit 0; help documents --dry-run with an example."""
    version = cli("--version")
    assert version.code == 0, version.stderr
    assert __version__ in version.stdout

    helped = cli("compromised", "--help")
    assert helped.code == 0, helped.stderr
    assert "--dry-run" in helped.stdout
    assert any(line.strip().startswith("respond compromised AKIA")
               for line in helped.stdout.splitlines()), helped.stdout
