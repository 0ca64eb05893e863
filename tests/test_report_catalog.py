"""Every reader of an incident leads with what cannot wait: the credentials the attacker
read (each with the command that rotates it), the principals outside the account it let
in, and the defenses it turned off that were turned back on. Built from the one typed
document (and the notice from the same view), in the JSON, the terminal summary, the
notice (SNS, Slack), report.md and report.html; a journal written before these fields
still renders; attacker-chosen names are escaped and redacted on the page."""

from __future__ import annotations

import html
from datetime import UTC, datetime
from typing import Any

import pytest

from responder.incident.facts import AttackerContained, SweepFound
from responder.incident.shapes import (
    CredentialRead,
    DisabledKey,
    HumanAction,
    OutsideGrant,
    RestoredDefense,
)
from responder.incident.view import IncidentView
from responder.journal import IncidentRecord, StepRecord
from responder.report.document import document_of, report_of, summary
from responder.report.html import html_of
from responder.report.markdown import markdown_of
from responder.report.notice import build_notice, build_sweep_notice
from responder.report.notify import render_text, slack_payload

INCIDENT = "inc-20260301-120000-cat001"
KEY = "AKIAEXAMPLELEAKED001"
BACKDOOR_KEY = "AKIAEXAMPLEBACKDOOR1"
ACCOUNT = "123456789012"
OUTSIDER = "444455556666"
SWEEP_OUTSIDER = "arn:aws:iam::777788889999:root"
SCRIPT = "<script>alert(1)</script>"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"  # 40 characters: secret-shaped
STARTED = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
CONTAINED = datetime(2026, 3, 1, 12, 0, 2, tzinfo=UTC)
SWEPT = datetime(2026, 3, 1, 12, 20, tzinfo=UTC)

DB = CredentialRead(
    kind="secret", name="prod/db-password", region="us-east-1", event_name="GetSecretValue",
    event_id="ev-1", time="2026-03-01T11:05:00Z", access_key_id=KEY,
    rotate="aws secretsmanager rotate-secret --secret-id prod/db-password --region us-east-1")
TOKEN = CredentialRead(
    kind="parameter", name="/app/api-token", region="eu-west-1", event_name="GetParameter",
    event_id="ev-2", time="2026-03-01T11:06:00Z", access_key_id=KEY,
    rotate="aws ssm put-parameter --name /app/api-token --type SecureString --value "
           "<new-value> --overwrite --region eu-west-1", manual=True)
PUBLIC = OutsideGrant(principal="*", resource="snap-0123456789abcdef0",
                      what="snapshot snap-0123456789abcdef0 shared with every account",
                      event_name="ModifySnapshotAttribute", event_id="ev-3",
                      time="2026-03-01T11:07:00Z")
SHARED = OutsideGrant(principal=OUTSIDER, resource="arn:aws:s3:::exports",
                      what=f"bucket exports readable by {OUTSIDER}",
                      event_name="PutBucketPolicy", event_id="ev-4",
                      time="2026-03-01T11:08:00Z")
TRAIL = RestoredDefense(kind="trail", name="org-trail", region="us-east-1", event_id="ev-5")
DETECTOR = RestoredDefense(kind="detector", name="12abc34d567e8fa901bc2d34e56789f0",
                           region="eu-west-1", already=True, event_id="ev-6")
SNAPSHOT_UNDO = HumanAction(
    event_id="ev-3", event_name="ModifySnapshotAttribute", time="2026-03-01T11:07:00Z",
    access_key_id=KEY, what="snapshot snap-0123456789abcdef0 made public",
    undo="aws ec2 modify-snapshot-attribute --snapshot-id snap-0123456789abcdef0 "
         "--attribute createVolumePermission --operation-type remove --group-names all",
    meaning="grants access to an outside principal", resource="snap-0123456789abcdef0",
    region="us-east-1", outside=("*",), entry="ec2.ModifySnapshotAttribute")
POLICY_UNDO = HumanAction(
    event_id="ev-4", event_name="PutBucketPolicy", time="2026-03-01T11:08:00Z",
    access_key_id=KEY, what=f"bucket exports opened to {OUTSIDER}",
    undo="aws s3api put-bucket-policy --bucket exports --policy <previous-policy>",
    meaning="grants access to an outside principal", resource="exports",
    region="us-east-1", outside=(OUTSIDER,), manual=True, entry="s3.PutBucketPolicy")

ATTACKER = AttackerContained(
    keys_disabled=(DisabledKey(user_name="backdoor", access_key_id=BACKDOOR_KEY),),
    needs_human=(SNAPSHOT_UNDO, POLICY_UNDO), events_considered=9,
    credentials_read=(DB, TOKEN), granted_to=(PUBLIC, SHARED), restored=(TRAIL, DETECTOR))

KMS = CredentialRead(kind="kms-key", name="arn:aws:kms:us-east-1:123456789012:key/k-1",
                     region="us-east-1", event_name="Decrypt", event_id="ev-9",
                     time="2026-03-01T12:10:00Z", access_key_id=KEY,
                     rotate="aws kms enable-key-rotation --key-id "
                            "arn:aws:kms:us-east-1:123456789012:key/k-1")
LAMBDA = OutsideGrant(principal=SWEEP_OUTSIDER, resource="function:exporter",
                      what="function exporter invocable by 777788889999",
                      event_name="AddPermission20150331v2", event_id="ev-10")
RECORDER = RestoredDefense(kind="recorder", name="default", region="us-east-1",
                           event_id="ev-11")
SWEEP = SweepFound(
    new_events=2, new_event_ids=("ev-9", "ev-10", "ev-11"), events_total=11,
    sha256="cd" * 32, keys=(KEY,),
    attacker=AttackerContained(credentials_read=(KMS,), granted_to=(LAMBDA,),
                               restored=(RECORDER,)))

CREDENTIALS = (DB.name, TOKEN.name, KMS.name)
PRINCIPALS = ("everyone (*)", OUTSIDER, SWEEP_OUTSIDER)
DEFENSES = ("trail org-trail logs again in us-east-1",
            f"detector {DETECTOR.name} detects again in eu-west-1",
            "recorder default records again in us-east-1")
EVIDENCE = {"events": 9, "regions": ["eu-west-1", "us-east-1"], "regions_failed": {},
            "path": "/state/incidents/inc/cloudtrail.jsonl", "sha256": "ab" * 32,
            "summary": {"events": 9, "high_risk": [], "high_risk_total": 0}}
PLAYBOOK = {"name": "compromised-key", "steps": [
    {"name": n} for n in ("identify", "disable-key", "revoke-sessions", "collect-evidence",
                          "contain-attacker", "notify")]}


def _step(position: int, name: str, action: str, detail: dict[str, Any],
          *, at: datetime = CONTAINED) -> StepRecord:
    return StepRecord(incident_id=INCIDENT, position=position, name=name, action=action,
                      on_failure="halt", status="done", started_at=at, ended_at=at,
                      detail=detail, error=None)


def _view(attacker: dict[str, Any], sweep: dict[str, Any] | None) -> IncidentView:
    """A completed response whose contain-attacker (and sweep, if any) journaled these."""
    steps = [
        _step(0, "identify", "identify", {"user_name": "alice", "account_id": ACCOUNT}),
        _step(1, "disable-key", "disable_access_key", {"status": "Inactive"}),
        _step(2, "revoke-sessions", "attach_deny_policy",
              {"token_issue_time_before": "2026-03-01T12:05:02Z"}),
        _step(3, "collect-evidence", "collect_cloudtrail", EVIDENCE),
        _step(4, "contain-attacker", "contain_attacker", attacker),
    ]
    if sweep is not None:
        steps.append(_step(10, "sweep-1", "sweep_cloudtrail", sweep, at=SWEPT))
    record = IncidentRecord(
        id=INCIDENT, access_key_id=KEY, playbook=PLAYBOOK, status="completed",
        started_at=STARTED, updated_at=SWEPT, source="cli", options={},
        contained_at=CONTAINED, user_name="alice", account_id=ACCOUNT)
    return IncidentView.of(record, steps)


@pytest.fixture
def view() -> IncidentView:
    return _view(ATTACKER.to_detail(), SWEEP.to_detail())


def _before(text: str, names: tuple[str, ...], marker: str) -> None:
    """Each name is in `text`, first told before `marker` (which is there too)."""
    assert marker in text, text
    for name in names:
        assert name in text, (name, text)
        assert text.index(name) < text.index(marker), (name, marker, text)


# --------------------------------------------------------------------------- JSON


def test_the_json_carries_each_list_for_the_attacker_and_the_sweep(view: IncidentView) -> None:
    doc = document_of(view).to_json()
    attacker = doc["attacker"]
    assert [c["name"] for c in attacker["credentials_read"]] == [DB.name, TOKEN.name]
    assert attacker["credentials_read"][1]["manual"] is True
    assert attacker["credentials_read"][0]["rotate"] == DB.rotate
    assert [(g["principal"], g["resource"]) for g in attacker["granted_to"]] == [
        ("*", PUBLIC.resource), (OUTSIDER, SHARED.resource)]
    assert [(r["kind"], r["name"], r["already"]) for r in attacker["restored"]] == [
        ("trail", "org-trail", False), ("detector", DETECTOR.name, True)]
    assert attacker["needs_human"][1]["meaning"] == "grants access to an outside principal"
    (done,) = doc["sweeps"]["done"]
    assert [c["name"] for c in done["credentials_read"]] == [KMS.name]
    assert [g["principal"] for g in done["granted_to"]] == [SWEEP_OUTSIDER]
    assert [r["name"] for r in done["restored"]] == ["default"]
    report = report_of(view).to_json()
    assert report["attacker"] == attacker


# --------------------------------------------------------------------------- summary


def test_the_summary_headline_names_each_before_the_steps(view: IncidentView) -> None:
    text = summary(document_of(view))
    lines = text.splitlines()
    assert "  CREDENTIALS READ: 3 — rotate: prod/db-password, /app/api-token, " \
           f"{KMS.name}" in lines
    assert (f"  ACCESS GRANTED OUTSIDE THE ACCOUNT: everyone (*), {OUTSIDER}, "
            f"{SWEEP_OUTSIDER} ({PUBLIC.resource}, {SHARED.resource}, {LAMBDA.resource})"
            ) in lines
    restored = next(x for x in lines if x.startswith("  RESTORED: "))
    for words in DEFENSES:
        assert words in restored
    assert "already back on when read" in restored  # the detector: nothing changed
    _before(text, CREDENTIALS + PRINCIPALS + DEFENSES, "[ok] identify")
    told = summary(document_of(view), report_of(view).extras).splitlines()
    _before("\n".join(told), ("WHAT WAS SHUT", "WHAT YOU MUST DO"), "STEPS")
    command = told.index(f"       {DB.rotate}")  # alone on its line: it pastes as printed
    assert told[command - 1].startswith("  1. Rotate secret prod/db-password")
    token = told.index(f"       {TOKEN.rotate}")
    assert told[token + 1] == "       (edit before running: replace each <placeholder>)"


# --------------------------------------------------------------------------- notice


def test_the_notice_leads_with_what_to_rotate_and_who_got_in(view: IncidentView) -> None:
    notice = build_notice("completed", view)
    actions = notice.next_actions
    for action, read in zip(actions, (DB, TOKEN, KMS), strict=False):
        assert action.startswith(f"Rotate {read.kind} {read.name} ({read.region})"), action
    assert f"`{DB.rotate}`" in actions[0]
    assert "edit before running" in actions[1]
    assert "edit before running" not in actions[0]
    joined = "\n".join(actions)
    _before(joined, CREDENTIALS + PRINCIPALS, "Verify MFA")
    _before(joined, CREDENTIALS + PRINCIPALS, "Undo what the attacker did")
    assert "(grants access to an outside principal)" in joined
    _, body = render_text(notice)
    _before(body, CREDENTIALS + PRINCIPALS + DEFENSES, "WHAT YOU MUST DO")
    _before(body, ("WHAT WAS SHUT", "WHAT YOU MUST DO", f"  {DB.rotate}"), "STEPS")
    blocks = slack_payload(notice)["blocks"]
    lead = "\n".join(b["text"]["text"] for b in blocks[1:] if "text" in b)
    for name in CREDENTIALS + PRINCIPALS:
        assert name in lead
    assert f"```{DB.rotate}```" in lead  # a code block of its own, to copy exactly
    assert "&lt;new-value&gt;" in lead  # mrkdwn-escaped, still there to replace


def test_a_sweeps_notice_leads_with_what_its_new_events_read(view: IncidentView) -> None:
    notice = build_sweep_notice(view, SWEEP)
    first = notice.next_actions[0]
    assert first.startswith(f"Rotate kms-key {KMS.name}")
    assert KMS.rotate in first
    assert SWEEP_OUTSIDER in notice.next_actions[1]
    assert "Review the 2 events" in notice.next_actions[3]
    _, body = render_text(notice)
    _before(body, (KMS.name, SWEEP_OUTSIDER, "recorder default records again"), "STEPS")


# --------------------------------------------------------------------------- report.md


def test_markdown_opens_with_them_and_what_to_do(view: IncidentView) -> None:
    text = markdown_of(report_of(view))
    story = text.split("## Evidence", 1)[0]
    _before(story, ("## What was shut", "## Credentials the attacker read — rotate each",
                    "## Access granted outside the account",
                    *(n.replace("*", "\\*") for n in CREDENTIALS + PRINCIPALS + DEFENSES)),
            "## What you must do")
    lines = story.splitlines()
    token = lines.index(f"   {TOKEN.rotate}")  # in a fenced block of its own
    assert lines[token - 1] == "   ```sh"
    assert lines[token + 3] == "   *edit before running: replace each \\<placeholder\\>*"
    db = lines.index(f"   {DB.rotate}")
    assert "edit before running" not in lines[db + 3]
    section = text.split("### The attacker", 1)[1].split("\n### ", 1)[0]
    assert "| event | time | key | meaning | what | undo |" in section
    undo = next(x for x in section.splitlines() if x.startswith("| PutBucketPolicy"))
    assert "grants access to an outside principal" in undo
    assert undo.endswith("(edit before running) |")


# --------------------------------------------------------------------------- report.html


def test_html_opens_the_attacker_part_with_them(view: IncidentView) -> None:
    page = html_of(report_of(view))
    _before(page, ("Credentials the attacker read — rotate each",
                   "Access granted outside the account", "Defenses turned back on",
                   *(html.escape(n) for n in CREDENTIALS + PRINCIPALS + DEFENSES)),
            "Attacker keys set Inactive")
    assert html.escape(TOKEN.rotate) + " (edit before running)" in page
    assert "<th>meaning</th>" in page
    assert "grants access to an outside principal" in page


def test_html_escapes_and_redacts_hostile_names() -> None:
    hostile = AttackerContained(
        credentials_read=(CredentialRead(kind="secret", name=SCRIPT, region="us-east-1",
                                         rotate=f"aws secretsmanager rotate-secret "
                                                f"--secret-id '{SCRIPT}'"),),
        granted_to=(OutsideGrant(principal=f'"><img onerror=x>{OUTSIDER}',
                                 resource=SCRIPT, what=f"key {SECRET}"),),
        restored=(RestoredDefense(kind="trail", name=SCRIPT, region="us-east-1"),),
        needs_human=(HumanAction(event_name="PutBucketPolicy", what=SCRIPT, undo=SCRIPT,
                                 meaning=SCRIPT, manual=True),))
    page = html_of(report_of(_view(hostile.to_detail(), None)))
    assert SCRIPT not in page
    assert "<img" not in page
    assert SECRET not in page
    assert html.escape(SCRIPT) in page
    assert page.index(html.escape(SCRIPT)) < page.index("Changed by the attacker")


# --------------------------------------------------------------------------- old journals


def test_an_old_journal_without_the_fields_still_renders() -> None:
    """contain-attacker's detail as journaled before the catalog (no credentials_read,
    granted_to or restored; needs-human items without meaning), a sweep with nothing."""
    old = {"keys_disabled": [{"user_name": "backdoor", "access_key_id": BACKDOOR_KEY,
                              "already": False}],
           "principals_quarantined": [], "sessions_revoked": [], "covered_by_cutoff": [],
           "needs_human": [{"event_id": "ev-3", "event_name": "AttachUserPolicy",
                            "time": "2026-03-01T11:07:00Z", "access_key_id": KEY,
                            "what": "AdministratorAccess attached to bob",
                            "undo": "aws iam detach-user-policy --user-name bob"}],
           "events_considered": 4}
    sweep = {"new_events": 0, "new_event_ids": [], "events_total": 9, "attacker": {}}
    view = _view(old, sweep)
    doc = document_of(view)
    attacker = doc.to_json()["attacker"]
    assert (attacker["credentials_read"], attacker["granted_to"], attacker["restored"]) \
        == ([], [], [])
    assert attacker["needs_human"][0]["meaning"] == ""
    text = summary(doc)
    for heading in ("CREDENTIALS READ", "ACCESS GRANTED OUTSIDE", "RESTORED:"):
        assert heading not in text
    notice = build_notice("completed", view)
    assert not notice.next_actions[0].startswith(("Rotate", "Access granted"))
    assert any("aws iam detach-user-policy --user-name bob" in a for a in notice.next_actions)
    _, body = render_text(notice)
    assert "ROTATE" not in body
    titles = [b["text"]["text"].split("\n", 1)[0] for b in slack_payload(notice)["blocks"][2:]
              if "text" in b]
    assert titles == ["*WHAT WAS SHUT*", "*WHAT YOU MUST DO*", "*EVIDENCE*", "*STEPS*"]
    report = report_of(view)
    markdown = markdown_of(report)
    assert "Credentials the attacker read" not in markdown
    assert "| AttachUserPolicy | 2026-03-01T11:07:00Z" in markdown
    page = html_of(report)
    assert "Credentials the attacker read" not in page
    assert "detach-user-policy" in page


def test_a_note_goes_beside_the_command_never_inside_it() -> None:
    """What a responder pastes runs as printed: the entry's prose follows the command."""
    noted = HumanAction(
        event_id="ev-9", event_name="RunInstances", time="2026-03-01T11:09:00Z",
        access_key_id=KEY, what="launched instances i-0abc in us-east-1",
        undo="aws ec2 stop-instances --region us-east-1 --instance-ids i-0abc",
        note="terminate them once their volumes are kept as evidence",
        meaning="creates access", resource="i-0abc", entry="ec2.RunInstances")
    only_note = HumanAction(
        event_id="ev-10", event_name="DisableSecurityHub", time="2026-03-01T11:10:00Z",
        access_key_id=KEY, what="disabled Security Hub in us-east-1",
        note="enable it again with enable-security-hub", entry="securityhub.DisableSecurityHub")
    facts = AttackerContained(needs_human=(noted, only_note), events_considered=2)
    view = _view(facts.to_detail(), None)
    text = markdown_of(report_of(view))
    assert ("`aws ec2 stop-instances --region us-east-1 --instance-ids i-0abc` — terminate "
            "them once their volumes are kept as evidence") in text
    assert "| enable it again with enable-security-hub |" in text
    notice = "\n".join(build_notice("completed", view).next_actions)
    assert "`aws ec2 stop-instances --region us-east-1 --instance-ids i-0abc` — terminate" \
        in notice
