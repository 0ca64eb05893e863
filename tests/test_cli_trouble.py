"""Black-box: local trouble, interruptions and bad settings never block containment, never
leave a traceback, and always leave one line on stderr and one JSON object on stdout."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from conftest import Account, CliResult, iam_state, respond_command, run_respond

Cli = Callable[..., CliResult]
INTERRUPTING = Path(__file__).resolve().parent / "interrupting_respond.py"
POLICY_NAME = "responder-revoke-older-sessions"


def _status(account: Account, key: str, user: str = "alice") -> str:
    keys = account.iam.list_access_keys(UserName=user)["AccessKeyMetadata"]
    return next((k["Status"] for k in keys if k["AccessKeyId"] == key), "Deleted")


def _one_json(result: CliResult) -> dict[str, Any]:
    doc = json.loads(result.stdout)
    assert isinstance(doc, dict)
    return doc


def _clean(result: CliResult) -> None:
    """No traceback, ever; what went wrong is said in lines starting `respond:`."""
    assert "Traceback" not in result.stderr, result.stderr
    assert any(line.startswith("respond: ") for line in result.stderr.splitlines()), \
        result.stderr


def _home() -> Path:
    return Path(os.environ["RESPONDER_HOME"])


# -------------------------------------------------------------------- local trouble


def test_incident_directory_not_a_directory_still_contains(
    server_account: Account, cli: Cli
) -> None:
    """$RESPONDER_HOME/incidents is a file: the key is still disabled and the deny policy
    attached; the log and evidence trouble is said, not raised. Without evidence what the
    attacker created is unknown, so contain-attacker halts the incident (resumable)."""
    _home().mkdir(parents=True, exist_ok=True)
    (_home() / "incidents").write_text("not a directory")
    result = cli("compromised", server_account.leaked_key, "--yes", "--no-replace",
                 "--output", "json")
    doc = _one_json(result)
    assert _status(server_account, server_account.leaked_key) == "Inactive"
    assert server_account.iam.list_user_policies(UserName="alice")["PolicyNames"] == [
        POLICY_NAME]
    assert doc["contained_at"] is not None
    assert doc["status"] == "halted", doc
    assert result.code == 1
    attacker = next(s for s in doc["steps"] if s["name"] == "contain-attacker")
    assert attacker["status"] == "failed"
    assert "evidence collection has not finished" in attacker["error"]
    evidence = next(s for s in doc["steps"] if s["name"] == "collect-evidence")
    assert evidence["status"] == "failed"
    assert "cannot write local files" in evidence["error"]
    assert "Traceback" not in result.stderr
    assert "incident_log.unwritable" in result.stderr


@pytest.mark.parametrize("breakage", ["corrupt", "directory"])
def test_unusable_journal_falls_back_and_contains(
    server_account: Account, cli: Cli, breakage: str
) -> None:
    """A corrupt journal file, or --state naming a directory: one line names the problem
    and the temporary journal used instead; the key is contained."""
    _home().mkdir(parents=True, exist_ok=True)
    if breakage == "corrupt":
        (_home() / "responder.db").write_bytes(b"this is not a database" * 100)
        extra: tuple[str, ...] = ()
    else:
        extra = ("--state", str(_home()))
    result = cli(*extra, "compromised", server_account.leaked_key, "--yes", "--no-replace",
                 "--output", "json")
    _clean(result)
    assert result.code == 0, result.stderr
    warning = next(line for line in result.stderr.splitlines() if line.startswith("respond: "))
    assert "cannot be used" in warning
    assert "journaling this response in " in warning
    fallback = Path(warning.rsplit(" ", 1)[1])
    assert fallback.exists()
    assert _one_json(result)["status"] == "completed"
    assert _status(server_account, server_account.leaked_key) == "Inactive"


def test_reading_an_unusable_journal_is_one_line(cli: Cli) -> None:
    """status on a corrupt journal: exit 2 and one line (no fallback: there is nothing to
    show from a fresh journal)."""
    _home().mkdir(parents=True, exist_ok=True)
    (_home() / "responder.db").write_bytes(b"garbage" * 200)
    result = cli("status")
    _clean(result)
    assert result.code == 2
    assert "cannot be used" in result.stderr


def test_files_under_home_are_private(server_account: Account, cli: Cli) -> None:
    """Journal, evidence, reports and logs are readable by their owner only."""
    result = cli("compromised", server_account.leaked_key, "--yes", "--no-replace")
    assert result.code == 0, result.stderr
    found = list(_home().rglob("*"))
    assert any(p.name == "report.md" for p in found)
    for path in found:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode & 0o077 == 0, (path, oct(mode))


# ------------------------------------------------------------------ interruptions


@contextmanager
def _paused(moto_server: str, call: int, *args: str) -> Iterator[subprocess.Popen[str]]:
    """`respond ARGS` paused right before its `call`-th AWS call (the fault launcher)."""
    env = {**os.environ, "AWS_ENDPOINT_URL": moto_server, "RESPONDER_RETRY_MAX_SECONDS": "0",
           "RESPONDER_FAULT_PAUSE_BEFORE": str(call)}
    with subprocess.Popen(
        [*respond_command(env), *args], env=env, stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    ) as proc:
        assert proc.stderr is not None
        for line in proc.stderr:  # blocks until the run reports it is paused
            if "responder-fault: paused" in line:
                break
        yield proc


def _launched(moto_server: str, *args: str, env: dict[str, str] | None = None
              ) -> subprocess.Popen[str]:
    """`respond ARGS` through the interrupting launcher (tests/interrupting_respond.py)."""
    full = {**os.environ, "AWS_ENDPOINT_URL": moto_server,
            "RESPONDER_RETRY_INITIAL_SECONDS": "0", "RESPONDER_RETRY_MAX_SECONDS": "0",
            **(env or {})}
    return subprocess.Popen([sys.executable, str(INTERRUPTING), *args], env=full,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _until(proc: subprocess.Popen[str], marker: str) -> str:
    """Read stderr until a line holding `marker` (what came before it); a run that ends
    without it fails the test with what it said instead."""
    assert proc.stderr is not None
    seen: list[str] = []
    for line in proc.stderr:
        seen.append(line)
        if marker in line:
            return "".join(seen)
    proc.wait(timeout=60)
    pytest.fail(f"never said {marker!r} (exit {proc.returncode}):\n{''.join(seen)[-3000:]}")


@contextmanager
def _paused_at(moto_server: str, where: str, *args: str) -> Iterator[subprocess.Popen[str]]:
    """`respond ARGS` blocked on its main thread at `where` (before:Op or after:Op, the
    first such AWS call): a signal sent now lands exactly there, every run."""
    with _launched(moto_server, *args, env={"RESPONDER_PAUSE_AT": where}) as proc:
        _until(proc, f"responder-pause: paused at {where}")
        yield proc


def _never_a_traceback(stdout: str, stderr: str, output: str = "json") -> dict[str, Any] | None:
    """What every interrupt leaves: no traceback, no internal error, an `interrupted` or
    `stopped watching` line, and on stdout nothing or exactly one JSON object."""
    assert "Traceback" not in stderr, stderr
    assert "internal error" not in stderr, stderr
    assert "respond: interrupted by SIG" in stderr or "respond: stopped watching" in stderr, \
        stderr
    if output != "json" or not stdout:
        return None
    doc = json.loads(stdout)  # one object: anything before or after it would not parse
    assert isinstance(doc, dict)
    return doc


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_halts_the_incident_and_says_how_to_resume(
    server_account: Account, cli: Cli, moto_server: str, signum: signal.Signals
) -> None:
    """SIGTERM/SIGINT once AWS has disabled the key (blocked in UpdateAccessKey's answer):
    exit 1, the incident is halted (not left running), stderr names it and the resume
    command, stdout still has the JSON object; resume then completes."""
    with _paused_at(moto_server, "after:UpdateAccessKey", "compromised",
                    server_account.leaked_key, "--yes", "--no-replace", "--output",
                    "json") as proc:
        proc.send_signal(signum)
        stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 1, stderr
    doc = _never_a_traceback(stdout, stderr)
    assert doc is not None
    incident = doc["incident_id"]
    assert doc["status"] == "halted"
    assert f"interrupted by {signum.name}: incident {incident} is halted" in stderr
    assert f"respond resume {incident}" in stderr
    assert _status(server_account, server_account.leaked_key) == "Inactive"
    listed = _one_json(cli("status", incident, "--output", "json"))
    assert listed["status"] == "halted"
    resumed = cli("resume", incident, "--output", "json")
    assert resumed.code == 0, resumed.stderr
    assert _one_json(resumed)["status"] == "completed"


def test_signal_before_any_incident_says_nothing_changed(
    server_account: Account, cli: Cli, moto_server: str
) -> None:
    """Interrupted during identify (blocked before GetAccessKeyLastUsed): no incident, no
    resume advice, one JSON object."""
    with _paused_at(moto_server, "before:GetAccessKeyLastUsed", "compromised",
                    server_account.leaked_key, "--yes", "--output", "json") as proc:
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 1, stderr
    doc = _never_a_traceback(stdout, stderr)
    assert "before any incident was opened; nothing was changed" in stderr
    assert "respond resume" not in stderr
    assert doc is not None
    assert doc["incident_id"] is None
    assert _one_json(cli("status", "--output", "json"))["incidents"] == []
    assert _status(server_account, server_account.leaked_key) == "Active"


# Each place is reached at the same moment of every run; the launcher signals itself there.
EARLY_PLACES = [
    ("import:responder.cli.args", "nothing"),  # main() loads the grammar
    ("call:argparse:ArgumentParser.parse_known_args", "nothing"),  # parsing
    ("import:responder.cli.commands", "nothing"),  # loading the commands
    ("import:botocore", "nothing"),  # ... and with them the AWS stack
    ("body:botocore.context", "nothing"),  # halfway through a module's body (a class)
    ("body:responder.report.document", "any"),  # ... one the run loads late
    ("call:responder.logging:configure", "nothing"),  # the command's first line
    ("before:GetAccessKeyLastUsed", "nothing"),  # identify (read-only)
    ("call:responder.journal.sqlite:SqliteJournal.create_incident:after", "halted"),
    ("after:UpdateAccessKey", "halted"),  # the run, inside the runner's own guard
    ("call:responder.run.service:respond:after", "ended"),  # the run is over
    ("call:responder.cli.output:out:after", "ended"),  # the JSON object is out
]


@pytest.mark.parametrize(("place", "left"), EARLY_PLACES,
                         ids=[p.split(":", 1)[1] for p, _ in EARLY_PLACES])
def test_an_interrupt_at_any_instant_is_one_line(
    server_account: Account, cli: Cli, moto_server: str, place: str, left: str
) -> None:
    """SIGINT at each place of a run, from main()'s first import on: never a traceback
    or an internal error, stdout empty or one JSON object, and the line says what was
    left: nothing changed before an incident existed (exit 1), the incident halted with
    its resume command once one did (exit 1, resume completes it), the outcome once the
    run was over (exit 0)."""
    with _launched(moto_server, "compromised", server_account.leaked_key, "--yes",
                   "--no-replace", "--output", "json",
                   env={"RESPONDER_INTERRUPT_AT": place}) as proc:
        stdout, stderr = proc.communicate(timeout=120)
    doc = _never_a_traceback(stdout, stderr)
    if left == "any":  # where the run is when it loads the module: not this test's point
        return
    if left == "nothing":
        assert proc.returncode == 1, stderr
        assert "interrupted by SIGINT before any incident was opened; nothing was changed" \
            in stderr
        assert doc is None or (doc["incident_id"] is None and doc["status"] == "halted")
        assert _status(server_account, server_account.leaked_key) == "Active"
        assert _one_json(cli("status", "--output", "json"))["incidents"] == []
        return
    assert doc is not None, stderr
    incident = doc["incident_id"]
    if left == "halted":
        assert proc.returncode == 1, stderr
        assert doc["status"] == "halted"
        assert f"`respond resume {incident}` continues it" in stderr
        resumed = cli("resume", incident, "--output", "json")
        assert resumed.code == 0, resumed.stderr
        assert _one_json(resumed)["status"] == "completed"
    else:
        assert proc.returncode == 0, stderr
        assert doc["status"] == "completed"
        assert f"after incident {incident} ended (completed)" in stderr
    assert _status(server_account, server_account.leaked_key) == "Inactive"


def test_sigterm_while_loading_is_the_same_line(server_account: Account,
                                                 moto_server: str) -> None:
    """SIGTERM acts like Ctrl-C from main()'s first line: named, one line, exit 1."""
    with _launched(moto_server, "compromised", server_account.leaked_key, "--yes",
                   "--output", "json",
                   env={"RESPONDER_INTERRUPT_AT": "import:responder.cli.commands",
                        "RESPONDER_INTERRUPT_SIGNAL": "SIGTERM"}) as proc:
        stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 1, stderr
    doc = _never_a_traceback(stdout, stderr)
    assert "interrupted by SIGTERM before any incident was opened" in stderr
    assert doc is not None
    assert doc["incident_id"] is None


def test_an_interrupt_after_the_first_word_on_stderr(server_account: Account,
                                                      moto_server: str) -> None:
    """Ctrl-C as soon as the run says anything (the installed `respond`, no launcher):
    wherever it lands, one line and at most one JSON object."""
    env = {**os.environ, "AWS_ENDPOINT_URL": moto_server}
    with subprocess.Popen([*respond_command(env), "-v", "compromised", server_account.leaked_key,
                           "--yes", "--no-replace", "--output", "json"], env=env,
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True) as proc:
        assert proc.stderr is not None
        first = proc.stderr.read(1)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode in {0, 1}, first + stderr
    _never_a_traceback(stdout, first + stderr)


@pytest.mark.parametrize("delay", [0.0, 0.02, 0.05, 0.1, 0.2, 0.4])
def test_an_interrupt_right_after_spawn(server_account: Account, moto_server: str,
                                        delay: float) -> None:
    """Ctrl-C a moment after `respond` starts. Before main() runs, the interpreter is
    starting (site-packages, then `import responder.cli`): there Python answers, killing
    the process or printing its own KeyboardInterrupt; no package code can run earlier.
    From main() on, never a traceback; stdout is empty or one JSON object throughout."""
    env = {**os.environ, "AWS_ENDPOINT_URL": moto_server}
    with subprocess.Popen([*respond_command(env), "compromised", server_account.leaked_key,
                           "--yes", "--no-replace", "--output", "json"], env=env,
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True) as proc:
        time.sleep(delay)  # an instant, not a wait for something: any instant must do
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=120)
    assert "internal error" not in stderr, stderr
    if "Traceback" in stderr:  # Python's own, from before main() began
        assert stderr.rstrip().endswith("KeyboardInterrupt"), stderr
        assert not re.search(r'responder/cli/__init__\.py", line \d+, in main', stderr), \
            stderr
        assert stdout == ""
    elif proc.returncode != -signal.SIGINT:  # else killed before Python took signals
        assert "internal error" not in stderr, stderr
        if stdout:
            assert isinstance(json.loads(stdout), dict)
        # Said, unless the run had ended before the signal came (then its own outcome).
        assert "respond: interrupted by SIGINT" in stderr or proc.returncode == 0, stderr


def test_ctrl_c_while_watching_says_watching_stopped(
    server_account: Account, moto_server: str
) -> None:
    """`respond compromised --watch` once the key is contained: Ctrl-C during the
    countdown stops watching, exit 0, the line names the sweep command (not "nothing was
    changed"), and stdout holds the incident's one JSON object."""
    with _launched(moto_server, "compromised", server_account.leaked_key, "--yes",
                   "--no-replace", "--watch", "--output", "json") as proc:
        before = _until(proc, "Ctrl-C stops watching")
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, before + stderr
    doc = _never_a_traceback(stdout, stderr)
    assert doc is not None
    incident = doc["incident_id"]
    assert doc["status"] == "completed"
    assert (f"respond: stopped watching; incident {incident} is contained, `respond sweep "
            f"{incident}` runs the sweeps still due") in stderr
    assert "nothing was changed" not in stderr


def test_ctrl_c_while_sweep_watches(server_account: Account, cli: Cli,
                                    moto_server: str) -> None:
    """`respond sweep ID --watch` waiting for the next sweep: Ctrl-C stops watching,
    exit 0, the same line, one JSON object."""
    first = cli("compromised", server_account.leaked_key, "--yes", "--no-replace",
                "--output", "json")
    assert first.code == 0, first.stderr
    incident = _one_json(first)["incident_id"]
    with _launched(moto_server, "sweep", incident, "--watch", "--output", "json") as proc:
        _until(proc, "Ctrl-C stops watching")
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    doc = _never_a_traceback(stdout, stderr)
    assert doc is not None
    assert doc["incident_id"] == incident
    assert f"stopped watching; incident {incident} is contained" in stderr


def test_killed_runner_shows_as_halted_interrupted(
    server_account: Account, cli: Cli, moto_server: str
) -> None:
    """kill -9 leaves the journal saying running; status shows it halted (interrupted)
    since no runner holds it, and lists it first."""
    with _paused(moto_server, 4, "compromised", server_account.leaked_key, "--yes",
                 "--no-replace") as proc:
        proc.kill()
        proc.communicate(timeout=60)
    listed = _one_json(cli("status", "--output", "json"))["incidents"]
    assert listed[0]["status"] == "halted"
    shown = _one_json(cli("status", listed[0]["incident_id"], "--output", "json"))
    assert shown["status"] == "halted"
    assert "interrupted" in shown["error"]
    assert "respond resume" in shown["error"]


def test_status_lists_every_open_incident_and_takes_a_limit(
    server_account: Account, cli: Cli, moto_server: str
) -> None:
    """An open incident is listed however many finished ones are newer; --limit bounds the
    finished ones, --all lists everything."""
    with _paused(moto_server, 4, "compromised", server_account.leaked_key, "--yes",
                 "--no-replace") as proc:
        proc.kill()
        proc.communicate(timeout=60)
    for key in (server_account.bob_key, server_account.other_key):
        assert cli("compromised", key, "--yes", "--no-replace").code == 0
    limited = _one_json(cli("status", "--limit", "1", "--output", "json"))["incidents"]
    assert [i["access_key_id"] for i in limited] == [server_account.leaked_key,
                                                     server_account.other_key]
    everything = _one_json(cli("status", "--all", "--output", "json"))["incidents"]
    assert len(everything) == 3
    human = cli("status", "--limit", "1")
    assert "1 older finished incidents not shown" in human.stdout


# ------------------------------------------------------------ before any incident


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_no_credentials_is_bad_input(server_account: Account, moto_server: str) -> None:
    """No credentials anywhere: exit 2 with what to set, no incident, no traceback."""
    env = {k: v for k, v in os.environ.items()
           if k not in {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}}
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    result = run_respond(moto_server, env, "compromised", server_account.leaked_key, "--yes",
                         "--output", "json")
    _clean(result)
    assert result.code == 2
    assert "no usable AWS credentials" in result.stderr
    assert _one_json(result)["incident_id"] is None


def _against_nothing(account: Account, moto_server: str, attempts: int,
                     deadline: int) -> CliResult:
    """`respond compromised` with AWS_ENDPOINT_URL on a port nothing listens on."""
    return run_respond(moto_server, dict(os.environ), "compromised", account.leaked_key,
                       "--yes", env={"AWS_ENDPOINT_URL": f"http://127.0.0.1:{_closed_port()}",
                                     "RESPONDER_RETRY_ATTEMPTS": str(attempts),
                                     "RESPONDER_RETRY_DEADLINE_SECONDS": str(deadline)})


def test_dead_endpoint_is_bounded_visible_and_bad_input(server_account: Account,
                                                        moto_server: str) -> None:
    """Nothing listens at AWS_ENDPOINT_URL: each retry is shown (call, attempt n/m), the
    wait is bounded by the policy, and it is exit 2 saying what to check."""
    result = _against_nothing(server_account, moto_server, attempts=3, deadline=30)
    _clean(result)
    assert result.code == 2
    assert "AWS did not answer" in result.stderr
    assert "attempt=1/3 call=iam:GetAccessKeyLastUsed" in result.stderr
    assert "attempt=2/3" in result.stderr
    assert "attempt=3/3" not in result.stderr  # no retry is announced after the last


@pytest.mark.parametrize(("args", "env", "says"), [
    (("--profile", "nosuchprofile"), {}, "AWS profile 'nosuchprofile' is not"),
    ((), {"RESPONDER_LEASE_SECONDS": "abc"}, "RESPONDER_LEASE_SECONDS='abc'"),
    ((), {"RESPONDER_RETRY_ATTEMPTS": "-3"}, "RESPONDER_RETRY_ATTEMPTS='-3'"),
    (("--notify-topic", "my-topic"), {}, "is not an SNS topic ARN"),
    (("--role-arn", "arn:aws:iam::123:user/x"), {}, "is not an IAM role ARN"),
    ((), {"RESPONDER_ROLE_ARN_TEMPLATE": "KeyResponder"}, "RESPONDER_ROLE_ARN_TEMPLATE"),
])
def test_bad_settings_are_one_line_and_change_nothing(
    server_account: Account, cli: Cli, args: tuple[str, ...], env: dict[str, str], says: str
) -> None:
    """Each bad setting is exit 2, one line naming it, and nothing changed in IAM."""
    before = iam_state(server_account.iam)
    result = cli("compromised", server_account.leaked_key, "--yes", *args, env=env)
    _clean(result)
    assert result.code == 2, result.stderr
    assert says in result.stderr
    assert iam_state(server_account.iam) == before


def test_lowercase_key_says_upper_case(cli: Cli) -> None:
    """A lower-cased key id is told to be upper case, not that its length is wrong."""
    result = cli("compromised", "akiaiosfodnn7example", "--yes")
    assert result.code == 2
    assert "did you mean AKIAIOSFODNN7EXAMPLE" in result.stderr
    assert "expected 20" not in result.stderr


def test_verbose_shows_each_aws_call(server_account: Account, cli: Cli) -> None:
    """-v adds debug lines (each AWS call); without it they are not shown."""
    quiet = cli("compromised", server_account.leaked_key, "--dry-run")
    loud = cli("-v", "compromised", server_account.leaked_key, "--dry-run")
    assert quiet.code == loud.code == 0
    assert "aws.call" not in quiet.stderr
    assert "call=iam:GetAccessKeyLastUsed" in loud.stderr


# ------------------------------------------------------------- ways out of a halt


def test_key_deleted_mid_run_finishes_with_that_fact(
    server_account: Account, cli: Cli, moto_server: str
) -> None:
    """The leaked key is deleted between identify and UpdateAccessKey: the incident
    completes, recording the key as Deleted, instead of halting forever."""
    with _paused(moto_server, 3, "compromised", server_account.leaked_key, "--yes",
                 "--no-replace", "--output", "json") as proc:
        server_account.iam.delete_access_key(UserName="alice",
                                             AccessKeyId=server_account.leaked_key)
        stdout, stderr = proc.communicate(input="", timeout=120)
    assert proc.returncode == 0, stderr
    doc = json.loads(stdout)
    assert doc["status"] == "completed"
    disable = next(s for s in doc["steps"] if s["name"] == "disable-key")
    assert disable["detail"]["status"] == "Deleted"


def test_resume_reruns_failed_evidence_that_replacement_needs(
    server_account: Account, cli: Cli
) -> None:
    """Evidence failed (continue) and alice has two keys, so replace-key halts; `respond
    resume` collects the evidence again and then replaces, instead of halting forever."""
    first = cli("compromised", server_account.leaked_key, "--yes", "--output", "json",
                env={"RESPONDER_FAULT_ERROR": "LookupEvents=AccessDeniedException"})
    assert first.code == 1, first.stderr
    doc = _one_json(first)
    assert [s["status"] for s in doc["steps"]][3:5] == ["failed", "failed"]
    resumed = cli("resume", doc["incident_id"], "--output", "json")
    assert resumed.code == 0, resumed.stderr
    again = _one_json(resumed)
    assert [s["status"] for s in again["steps"]][3:5] == ["done", "done"]
    assert again["replacement"] is not None


def test_resume_no_replace_is_a_way_out(server_account: Account, cli: Cli) -> None:
    """A replace-key that cannot succeed is passed with `respond resume ID --no-replace`."""
    first = cli("compromised", server_account.leaked_key, "--yes", "--output", "json",
                env={"RESPONDER_FAULT_ERROR": "CreateAccessKey=AccessDenied"})
    assert first.code == 1, first.stderr
    incident = _one_json(first)["incident_id"]
    resumed = cli("resume", incident, "--no-replace", "--yes", "--output", "json")
    assert resumed.code == 0, resumed.stderr
    doc = _one_json(resumed)
    replace = next(s for s in doc["steps"] if s["name"] == "replace-key")
    assert replace["status"] == "skipped"
    assert doc["status"] == "completed"


def test_duplicate_yaml_keys_are_refused(tmp_path: Path, cli: Cli) -> None:
    """A playbook with a key given twice is invalid (the second would silently win)."""
    path = tmp_path / "dup.yaml"
    path.write_text("name: dup\nversion: 1\nversion: 2\nsteps:\n"
                    "  - {name: identify, action: identify}\n")
    result = cli("playbooks", "validate", str(path))
    assert result.code == 2
    assert "version" in result.stderr
    assert "twice" in result.stderr


def test_retry_deadline_ends_the_wait(server_account: Account, moto_server: str) -> None:
    """RESPONDER_RETRY_DEADLINE_SECONDS=0: no retry starts once the deadline has passed,
    however many attempts the policy would allow."""
    result = _against_nothing(server_account, moto_server, attempts=8, deadline=0)
    _clean(result)
    assert result.code == 2
    assert "retrying" not in result.stderr


def test_user_deleted_mid_run_finishes_with_that_fact(
    server_account: Account, cli: Cli, moto_server: str
) -> None:
    """alice is deleted between UpdateAccessKey and PutUserPolicy: the incident completes,
    recording that the user is gone and that no replacement was issued."""
    iam = server_account.iam
    with _paused(moto_server, 4, "compromised", server_account.leaked_key, "--yes",
                 "--output", "json") as proc:
        for key in (server_account.leaked_key, server_account.other_key):
            iam.delete_access_key(UserName="alice", AccessKeyId=key)
        iam.delete_user(UserName="alice")
        stdout, stderr = proc.communicate(input="", timeout=120)
    assert proc.returncode == 0, stderr
    doc = json.loads(stdout)
    assert doc["status"] == "completed"
    steps = {s["name"]: s for s in doc["steps"]}
    assert steps["revoke-sessions"]["detail"]["user_deleted"] is True
    assert steps["replace-key"]["status"] == "skipped"
    assert "no longer exists" in steps["replace-key"]["detail"]["reason"]


@pytest.mark.parametrize("command", [("playbooks", "validate"), ("compromised", "--dry-run")])
def test_secret_name_template_is_checked_with_the_playbook(
    tmp_path: Path, cli: Cli, command: tuple[str, ...]
) -> None:
    """A secret_name naming an unknown placeholder fails validation (exit 2, the field
    named), before any run could trip on it halfway."""
    path = tmp_path / "bad-template.yaml"
    path.write_text("name: bad\nversion: 1\nsteps:\n  - {name: identify, action: identify}\n"
                    "  - name: replace-key\n    action: replace_access_key\n"
                    "    with: {secret_name: 'team/{username}/key'}\n")
    args = (*command, str(path)) if command[0] == "playbooks" else (
        "compromised", "AKIAIOSFODNN7EXAMPLE", "--dry-run", "--playbook", str(path))
    result = cli(*args)
    _clean(result)
    assert result.code == 2
    assert "with.secret_name" in result.stderr
    assert "{user}" in result.stderr


def test_an_event_logged_before_any_configuration_goes_to_stderr() -> None:
    """structlog's own default prints to stdout; responder.logging, once imported, never
    lets an event (however early: before a command configures, or while an interrupt is
    answered) land there, where `--output json` keeps its one object."""
    code = ("from responder.logging import get_logger\n"
            "get_logger('early').warning('logged.early', hint='before configure()')\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
    assert "logged.early" in proc.stderr
