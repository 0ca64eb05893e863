"""The grammar of the key's life outside an emergency: rollback, audit, rotate, harden
and close (their commands are in responder.cli.lifecycle). Apart from responder.cli.args
only to keep each module to a page; built from the same pieces (responder.cli.grammar).
"""

from __future__ import annotations

import argparse
from typing import Any

from responder.cli.grammar import (
    INCIDENT,
    aws_options,
    command,
    days,
    non_negative,
    output_option,
    positive_int,
    whole,
)


def rollback_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    back = command(
        sub, "rollback", common,
        help="undo a false positive's containment (prints the plan unless --yes)",
        description="Undo a leaked key's containment when it was a false positive: the "
        "keys contain-attacker set Inactive made Active, its quarantine policies deleted, "
        "the deny removed and the key made Active, each re-read from AWS afterwards. "
        "Without --yes it prints what it would undo and exits 0, changing nothing (a "
        "preview, on a terminal or not). AWS's own quarantine policy is never touched.",
        example=(f"respond rollback {INCIDENT}",
                 f"respond rollback {INCIDENT} --yes --reason \"the key was a test "
                 "fixture\""))
    back.add_argument("incident_id", metavar="INCIDENT_ID")
    aws_options(back)
    back.add_argument("--yes", action="store_true", help="undo it (else: print what it would)")
    back.add_argument("--reason", help="why it was a false positive (required with --yes; "
                                       "kept in the journal and the report)")
    output_option(back)


def audit_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    aud = command(
        sub, "audit", common,
        help="access-key hygiene from one IAM credential report (read-only)",
        description="Read one IAM credential report and list, most urgent first with the "
        "fix for each: root access keys, console users without MFA, keys older than "
        "--max-age-days, keys unused for --unused-days, users with two active keys, keys "
        "used from a service or region never seen before. With --org, every active "
        "account of the organization (run from the management account or a delegated "
        "administrator), each through RESPONDER_ROLE_ARN_TEMPLATE's role, in parallel; "
        "an account it cannot reach is named and the exit is 5. Read-only, but "
        "--to-security-hub imports the findings, and --deactivate-unused DAYS --yes sets "
        "keys unused for more than DAYS days Inactive (never deleted; one incident per key, "
        "each undone by `respond rollback ID --yes`; without --yes it prints the plan). Exit "
        "0 whatever it finds, unless --fail-on: then 6 when a finding at or above that rank "
        "exists; 1 when a key could not be retired.",
        example=("respond audit", "respond audit --max-age-days 60 --output csv",
                 "respond audit --output md > audit.md",
                 "RESPONDER_ROLE_ARN_TEMPLATE=arn:aws:iam::{account_id}:role/KeyResponder "
                 "respond audit --org --fail-on high",
                 "respond audit --output sarif > audit.sarif",
                 "respond audit --to-security-hub --output json",
                 "respond audit --deactivate-unused 180",
                 "respond audit --deactivate-unused 180 --yes"))
    aws_options(aud)
    aud.add_argument("--max-age-days", type=positive_int, default=90,
                     help="a key older than this needs rotating (default 90)")
    aud.add_argument("--unused-days", type=positive_int, default=90,
                     help="a key unused (or never used) this long should go (default 90)")
    aud.add_argument("--org", action="store_true",
                     help="every active account of the organization, each through "
                     "RESPONDER_ROLE_ARN_TEMPLATE's role")
    aud.add_argument("--workers", type=positive_int, default=32, metavar="N",
                     help="with --org: accounts audited at once (default 32)")
    aud.add_argument("--fail-on", choices=("critical", "high", "medium", "low"),
                     help="exit 6 when a finding at or above this rank exists")
    aud.add_argument("--to-security-hub", action="store_true",
                     help="import the findings into each account's Security Hub "
                     "(BatchImportFindings: the same credential updates its finding, a "
                     "fixed one is archived)")
    aud.add_argument("--role-check-keys", type=whole, default=100, metavar="N",
                     help="read one CloudTrail page for each of the N most recently used "
                     "keys: a key used only from inside AWS gets \"use an IAM role "
                     "instead\" (default 100; 0 skips the check)")
    aud.add_argument("--deactivate-unused", type=positive_int, metavar="DAYS",
                     help="set keys unused for more than DAYS days Inactive (with --yes; "
                     "without it, print the plan); also the audit's --unused-days")
    aud.add_argument("--yes", action="store_true",
                     help="with --deactivate-unused: do it (else: print what it would do)")
    output_option(aud, ("human", "json", "csv", "md", "asff", "sarif"),
                  help="json prints exactly one JSON object on stdout; csv and md a table; "
                  "asff the findings in AWS Security Finding Format; sarif SARIF 2.1.0")



def rotate_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    rot = command(
        sub, "rotate", common,
        help="rotate a long-term key: new key, update apps, test, retire the old one",
        description="Routine rotation (playbook rotate-key): create the new key and keep its "
        "secret in Secrets Manager, then WAIT until the applications use it; `--continue ID` "
        "(or a passing --check-command) tests the new key, deactivates the old one and "
        "watches it through the grace period: a use of the old key then means an "
        "application was missed (alert; --reactivate ID turns it back on). After a quiet "
        "grace period `--continue ID` deletes the old key. A user with two keys already is "
        "refused before anything changes. --reactivate without --yes only says what it "
        "would do (exit 0).",
        example=("respond rotate AKIAIOSFODNN7EXAMPLE --dry-run",
                 "respond rotate AKIAIOSFODNN7EXAMPLE --yes --grace-hours 48",
                 f"respond rotate --continue {INCIDENT}          # apps updated",
                 f"respond rotate --continue {INCIDENT} --watch  # wait out the grace",
                 f"respond rotate --reactivate {INCIDENT} --yes  # a missed app"))
    rot.add_argument("target", nargs="?", metavar="ACCESS_KEY_ID", help="the key to rotate")
    which = rot.add_mutually_exclusive_group()
    which.add_argument("--continue", dest="continue_id", metavar="ID",
                       help="the applications use the new key: go on with rotation ID")
    which.add_argument("--reactivate", dest="reactivate_id", metavar="ID",
                       help="turn rotation ID's old key back on (a missed application)")
    rot.add_argument("--dry-run", action="store_true", help="identify, check and print the plan")
    rot.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    rot.add_argument("--check-command", metavar="CMD",
                     help="run this to learn whether the applications use the new key (exit "
                     "0: they do); it gets RESPONDER_NEW_ACCESS_KEY_ID and RESPONDER_SECRET_ARN")
    rot.add_argument("--grace-hours", type=non_negative, metavar="H",
                     help="how long the old key stays Inactive before deletion (default 24)")
    rot.add_argument("--watch", action="store_true",
                     help="with --continue: stay until the grace period ends, then go on")
    aws_options(rot)
    rot.add_argument("--notify-topic", metavar="ARN",
                     help="SNS topic alerted when the old key is used during the grace period")
    output_option(rot)


def harden_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    hard = command(
        sub, "harden", common,
        help="propose MFA and a least-privilege policy for a user, from its CloudTrail usage",
        description="After a leak: say whether the user has a console password without MFA "
        "(then propose the inline policy responder-require-mfa), and propose a policy of "
        "exactly the actions the user's CloudTrail history shows before the compromise "
        "time, with what its current policies grant but it never used. Changes nothing "
        "unless --apply --yes: then the managed policy responder-proposed-USER is created "
        "and attached (and the MFA policy put); nothing the user has is ever removed. The "
        "commands that would are printed once the proposal has been in place --grace-days "
        "with nothing denied. Every used call is checked against the proposal first, and "
        "what could not be is listed. A proposal of nothing (no usage found: a deny "
        "of everything) is never applied: refused, exit 3.",
        example=(f"respond harden alice --incident {INCIDENT}",
                 "respond harden alice --compromised-at 2026-11-25T09:00:00Z --output json",
                 f"respond harden alice --incident {INCIDENT} --apply --yes",
                 "respond harden alice --data-events s3://org-trail-logs/cloudtrail"))
    hard.add_argument("user", metavar="USER", help="the IAM user whose key leaked")
    hard.add_argument("--incident", metavar="ID",
                      help="the incident of the leak: journaled there, in its report")
    hard.add_argument("--compromised-at", metavar="TIME",
                      help="ISO 8601; usage from then on is the attacker's (default: the "
                      "finding's first-seen time, else 24 h before the incident, or now)")
    hard.add_argument("--lookback-days", type=positive_int, default=90, metavar="N",
                      help="CloudTrail history to learn usage from (default 90, at most 90)")
    hard.add_argument("--regions", metavar="all|R1,R2",
                      help="regions to read (default us-east-1 and the session's region)")
    hard.add_argument("--data-events", metavar="s3://BUCKET[/PREFIX]",
                      help="also read the user's data events (S3 objects, DynamoDB items, "
                      "Lambda invocations: never in the event history) from the log files "
                      "of a trail that logs them, over the lookback")
    hard.add_argument("--grace-days", type=days, default=14, metavar="N",
                      help="days the applied proposal must be in place, with no call of "
                      "the user's denied or outside it, before the commands that take the "
                      "rest away are offered (default 14)")
    hard.add_argument("--dry-run", action="store_true",
                      help="print the proposal; write and change nothing")
    hard.add_argument("--apply", action="store_true",
                      help="create and attach the proposed policy (and the MFA policy)")
    hard.add_argument("--yes", action="store_true", help="with --apply: do not ask")
    aws_options(hard)
    output_option(hard)


def close_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    close = command(
        sub, "close", common,
        help="a human takes over an incident the responder cannot finish",
        description="End an open incident (halted, waiting, or left running by a runner "
        "that is gone) that `respond resume` cannot finish, e.g. one that halts again on "
        "every resume: it is journaled as closed with your reason, and its report "
        "written again. Nothing is changed in AWS. A finished incident is refused (exit "
        "2); one a live runner holds is left alone (exit 4).",
        example=(f"respond close {INCIDENT} --reason \"replaced the key by hand; the user "
                 "was deleted\"",))
    close.add_argument("incident_id", metavar="INCIDENT_ID")
    close.add_argument("--reason", metavar="TEXT",
                       help="required: why a human takes it over (kept in the journal and "
                       "the report)")
    aws_options(close, role=False)  # where a dynamodb:// journal is
    output_option(close)
