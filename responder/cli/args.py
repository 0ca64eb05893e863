"""The command line's grammar: every command, option, help text and example of `respond`.

Kept apart from cli.py, which only runs what was parsed and prints the outcome, so the
grammar reads in one place and `respond --help` can be checked without running anything.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from responder import package_version

EXAMPLES = """\
examples:
  respond compromised AKIAIOSFODNN7EXAMPLE --dry-run      # see the plan, change nothing
  respond compromised AKIAIOSFODNN7EXAMPLE --yes          # contain it now
  respond compromised ASIAIOSFODNN7EXAMPLE --yes          # a leaked session: deny just it
  respond status                                          # open and recent incidents
  respond resume inc-20261125-092338-3f9a1c               # continue a halted incident
  respond resume inc-20261125-092338-3f9a1c --no-replace  # ... without a replacement key
  respond finding guardduty-event.json                    # answer a finding (or a list)
  respond sweep inc-20261125-092338-3f9a1c                # CloudTrail again: late events
  respond close inc-20261125-092338-3f9a1c --reason TEXT  # a human takes it over
  respond audit --output md                               # old, unused, doubled keys, no MFA
  respond rotate AKIAIOSFODNN7EXAMPLE --yes               # routine rotation, step by step
  respond harden alice --incident inc-20261125-092338-3f9a1c  # MFA, least privilege
  respond drill --list                                    # the attacks one can rehearse
  respond drill --scenario all                            # rehearse them in a fake account
"""


class _Version(argparse.Action):
    """--version, with the version read only when asked for."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        sys.stdout.write(f"respond {package_version()}\n")
        parser.exit()


def _global_options(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    default: Any = argparse.SUPPRESS if suppress else None
    parser.add_argument("--state", metavar="PATH", default=default,
                        help="journal location (default $RESPONDER_HOME/responder.db)")
    parser.add_argument("-v", "--verbose", action="store_true",
                        default=argparse.SUPPRESS if suppress else False,
                        help="debug logging on stderr")


def _aws_options(parser: argparse.ArgumentParser, *, role: bool = True) -> None:
    parser.add_argument("--profile", help="AWS profile (default: the AWS CLI's chain)")
    parser.add_argument("--region", help="AWS region (default: the AWS CLI's chain)")
    if role:
        parser.add_argument("--role-arn", help="assume this role first (cross-account)")


def _notify_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--notify-topic", metavar="ARN", help="SNS topic for notifications")
    parser.add_argument("--slack-webhook", metavar="URL",
                        default=os.environ.get("RESPONDER_SLACK_WEBHOOK"),
                        help="Slack incoming webhook (or $RESPONDER_SLACK_WEBHOOK)")


def _followup_options(parser: argparse.ArgumentParser, *, watch: bool = True) -> None:
    parser.add_argument("--evidence-bucket", metavar="BUCKET",
                        default=os.environ.get("RESPONDER_EVIDENCE_BUCKET") or None,
                        help="S3 bucket to keep the incident's files in (or "
                        "$RESPONDER_EVIDENCE_BUCKET)")
    if watch:
        parser.add_argument("--watch", action="store_true",
                            help="stay, and run each sweep when it is due (with a countdown)")


def _output_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output", choices=["human", "json"], default="human",
                        help="json prints exactly one JSON object on stdout")


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}")
    return int(text)


def _sweep_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    swp = sub.add_parser(
        "sweep", parents=[common],
        help="look at CloudTrail again for an incident's keys (events delivered late)",
        description="Re-read CloudTrail for the incident's keys (the leaked key and every "
        "temporary key found so far) from a little before what was already covered up to "
        "now; merge new events into the evidence once each, contain what they reveal and "
        "notify only when something is new. Sweeps are due 15 and 60 minutes after "
        "containment by default (the playbook's `sweeps`).",
        epilog="examples:\n  respond sweep inc-20261125-092338-3f9a1c\n"
        "  respond sweep inc-20261125-092338-3f9a1c --watch   # every sweep still due",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    swp.add_argument("incident_id", metavar="INCIDENT_ID")
    _aws_options(swp)
    _notify_options(swp)
    _followup_options(swp)
    _output_option(swp)


def _compromised_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    comp = sub.add_parser(
        "compromised", parents=[common], help="contain a leaked access key (AKIA or ASIA)",
        description="A long-term (AKIA) key: identify its owner, disable the key, revoke "
        "its sessions, collect evidence, contain the attacker, replace it and notify "
        "(compromised-key). A temporary (ASIA) key: identify its session through "
        "CloudTrail, deny exactly that session (an EC2 instance's only away from the "
        "instance), collect evidence, contain the attacker and notify; no key is disabled "
        "(compromised-session).",
        epilog="examples:\n  respond compromised AKIAIOSFODNN7EXAMPLE --dry-run\n"
        "  respond compromised AKIAIOSFODNN7EXAMPLE --yes --output json\n"
        "  respond compromised ASIAIOSFODNN7EXAMPLE --dry-run\n"
        "  respond compromised ASIAIOSFODNN7EXAMPLE --yes \\\n"
        "      --principal arn:aws:sts::123456789012:assumed-role/app/session-1",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    comp.add_argument("access_key_id", metavar="ACCESS_KEY_ID")
    comp.add_argument("--dry-run", action="store_true",
                      help="run only the read-only identify step and print the plan")
    comp.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    comp.add_argument("--playbook", metavar="NAME|FILE",
                      help="default: compromised-key for AKIA keys, compromised-session for "
                      "ASIA keys")
    comp.add_argument("--principal", metavar="ARN",
                      help="ASIA keys only: the session's principal (arn:aws:sts::ACCOUNT:"
                      "assumed-role/ROLE/SESSION or arn:aws:iam::ACCOUNT:user/NAME), used "
                      "when CloudTrail has no event for the key yet")
    _aws_options(comp)
    _notify_options(comp)
    comp.add_argument("--no-replace", action="store_true", help="skip issuing a replacement key")
    _followup_options(comp)
    _output_option(comp)


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if value < 0 or value != value:  # noqa: PLR0124 - NaN
        raise argparse.ArgumentTypeError(f"expected a number of hours >= 0, got {text!r}")
    return value


def _rotate_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    rot = sub.add_parser(
        "rotate", parents=[common],
        help="rotate a long-term key: new key, update apps, test, retire the old one",
        description="Routine rotation (playbook rotate-key): create the new key and keep its "
        "secret in Secrets Manager, then WAIT until the applications use it; `--continue ID` "
        "(or a passing --check-command) tests the new key, deactivates the old one and "
        "watches it through the grace period: a use of the old key then means an "
        "application was missed (alert; --reactivate ID turns it back on). After a quiet "
        "grace period `--continue ID` deletes the old key. A user with two keys already is "
        "refused before anything changes.",
        epilog="examples:\n  respond rotate AKIAIOSFODNN7EXAMPLE --dry-run\n"
        "  respond rotate AKIAIOSFODNN7EXAMPLE --yes --grace-hours 48\n"
        "  respond rotate --continue inc-20261125-092338-3f9a1c          # apps updated\n"
        "  respond rotate --continue inc-20261125-092338-3f9a1c --watch  # wait out the grace\n"
        "  respond rotate --reactivate inc-20261125-092338-3f9a1c --yes  # a missed app",
        formatter_class=argparse.RawDescriptionHelpFormatter)
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
    rot.add_argument("--grace-hours", type=_non_negative, metavar="H",
                     help="how long the old key stays Inactive before deletion (default 24)")
    rot.add_argument("--watch", action="store_true",
                     help="with --continue: stay until the grace period ends, then go on")
    _aws_options(rot)
    rot.add_argument("--notify-topic", metavar="ARN",
                     help="SNS topic alerted when the old key is used during the grace period")
    _output_option(rot)


def _harden_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    hard = sub.add_parser(
        "harden", parents=[common],
        help="propose MFA and a least-privilege policy for a user, from its CloudTrail usage",
        description="After a leak: say whether the user has a console password without MFA "
        "(then propose the inline policy responder-require-mfa), and propose a policy of "
        "exactly the actions the user's CloudTrail history shows before the compromise "
        "time, with what its current policies grant but it never used. Changes nothing "
        "unless --apply --yes: then the managed policy responder-proposed-USER is created "
        "and attached (and the MFA policy put); nothing the user has is ever removed, the "
        "commands that would are printed.",
        epilog="examples:\n  respond harden alice --incident inc-20261125-092338-3f9a1c\n"
        "  respond harden alice --compromised-at 2026-11-25T09:00:00Z --output json\n"
        "  respond harden alice --incident inc-20261125-092338-3f9a1c --apply --yes",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    hard.add_argument("user", metavar="USER", help="the IAM user whose key leaked")
    hard.add_argument("--incident", metavar="ID",
                      help="the incident of the leak: journaled there, in its report")
    hard.add_argument("--compromised-at", metavar="TIME",
                      help="ISO 8601; usage from then on is the attacker's (default: the "
                      "finding's first-seen time, else 24 h before the incident, or now)")
    hard.add_argument("--lookback-days", type=_positive_int, default=90, metavar="N",
                      help="CloudTrail history to learn usage from (default 90, at most 90)")
    hard.add_argument("--regions", metavar="all|R1,R2",
                      help="regions to read (default us-east-1 and the session's region)")
    hard.add_argument("--dry-run", action="store_true",
                      help="print the proposal; write and change nothing")
    hard.add_argument("--apply", action="store_true",
                      help="create and attach the proposed policy (and the MFA policy)")
    hard.add_argument("--yes", action="store_true", help="with --apply: do not ask")
    _aws_options(hard)
    _output_option(hard)


def _lifecycle(sub: Any, common: argparse.ArgumentParser) -> None:
    """rollback, audit and rotate: the key's life outside an emergency."""
    back = sub.add_parser(
        "rollback", parents=[common],
        help="undo a false positive's containment (prints the plan unless --yes)",
        epilog="examples:\n  respond rollback inc-20261125-092338-3f9a1c\n"
               "  respond rollback inc-20261125-092338-3f9a1c --yes --reason "
               "\"the key was a test fixture\"",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    back.add_argument("incident_id", metavar="INCIDENT_ID")
    _aws_options(back)
    back.add_argument("--yes", action="store_true", help="undo it (else: print what it would)")
    back.add_argument("--reason", help="why it was a false positive (required with --yes; "
                                       "kept in the journal and the report)")
    _output_option(back)

    aud = sub.add_parser(
        "audit", parents=[common],
        help="access-key hygiene from one IAM credential report (read-only)",
        epilog="examples:\n  respond audit\n  respond audit --max-age-days 60 --output csv",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    _aws_options(aud)
    aud.add_argument("--max-age-days", type=_positive_int, default=90,
                     help="a key older than this needs rotating (default 90)")
    aud.add_argument("--unused-days", type=_positive_int, default=90,
                     help="a key unused (or never used) this long should go (default 90)")
    aud.add_argument("--output", choices=["human", "json", "csv", "md"], default="human",
                     help="json prints exactly one JSON object on stdout")
    _rotate_parser(sub, common)
    _harden_parser(sub, common)
    _close_parser(sub, common)


def _close_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    close = sub.add_parser(
        "close", parents=[common],
        help="a human takes over an incident the responder cannot finish",
        description="End an open incident (halted, waiting, or left running by a runner "
        "that is gone) that `respond resume` cannot finish, e.g. one that halts again on "
        "every resume: it is journaled as closed with your reason, and its report "
        "written again. Nothing is changed in AWS. A finished incident is refused (exit "
        "2); one a live runner holds is left alone (exit 4).",
        epilog="example:\n  respond close inc-20261125-092338-3f9a1c --reason \"replaced "
        "the key by hand; the user was deleted\"",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    close.add_argument("incident_id", metavar="INCIDENT_ID")
    close.add_argument("--reason", metavar="TEXT",
                       help="required: why a human takes it over (kept in the journal and "
                       "the report)")
    _aws_options(close, role=False)  # where a dynamodb:// journal is
    _output_option(close)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="respond",
        description="Contain a leaked AWS access key (long-term or temporary) through a journaled, "
        "resumable playbook.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action=_Version, nargs=0,
                        help="show program's version number and exit")
    _global_options(parser, suppress=False)
    common = argparse.ArgumentParser(add_help=False)
    _global_options(common, suppress=True)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    _compromised_parser(sub, common)

    find = sub.add_parser(
        "finding", parents=[common],
        help="respond to a GuardDuty / Health / Security Hub finding",
        description="Parse a finding (EventBridge event or raw finding JSON) and run the "
        "playbook it maps to (playbooks/triggers.json). Sample findings and findings "
        "already handled are refused (exit 3).",
        epilog="examples:\n  respond finding guardduty-event.json --output json\n"
        "  aws guardduty get-findings ... | respond finding -",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    find.add_argument("file", metavar="FILE|-")
    _aws_options(find)
    _notify_options(find)
    _followup_options(find, watch=False)
    _output_option(find)

    res = sub.add_parser("resume", parents=[common], help="continue a halted incident",
                         epilog="example:\n  respond resume inc-20261125-092338-3f9a1c",
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    res.add_argument("incident_id", metavar="INCIDENT_ID")
    res.add_argument("--no-replace", action="store_true",
                     help="issue no replacement key from here on (the way past a replace-key "
                     "that cannot succeed)")
    res.add_argument("--yes", action="store_true",
                     help="accepted for symmetry with compromised; resume never asks")
    _aws_options(res)
    _followup_options(res, watch=False)
    _output_option(res)

    _sweep_parser(sub, common)

    stat = sub.add_parser("status", parents=[common],
                          help="list incidents, or show one (reads only the journal)")
    stat.add_argument("incident_id", nargs="?", metavar="INCIDENT_ID")
    stat.add_argument("--limit", type=_positive_int, default=20, metavar="N",
                      help="finished incidents to list after every open one (default 20)")
    stat.add_argument("--all", action="store_true", help="list every incident")
    _aws_options(stat, role=False)  # where a dynamodb:// journal is
    _output_option(stat)

    rep = sub.add_parser("report", parents=[common], help="print an incident's report")
    rep.add_argument("incident_id", metavar="INCIDENT_ID")
    _aws_options(rep, role=False)  # where a dynamodb:// journal is
    rep.add_argument("--format", choices=["md", "json", "html"], default="md",
                     help="html: one self-contained page with the timeline drawn")

    drill = sub.add_parser(
        "drill", parents=[common],
        help="rehearse an attack and the playbook against an embedded fake AWS account",
        epilog="examples:\n  respond drill --list\n  respond drill --scenario persistence\n"
               "  respond drill --scenario all --output json",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    drill.add_argument("--scenario", default="two-keys", metavar="NAME",
                       help="a scenario from --list, or all (default: two-keys)")
    drill.add_argument("--list", action="store_true", help="name the scenarios and stop")
    _output_option(drill)

    _lifecycle(sub, common)

    pbs = sub.add_parser("playbooks", parents=[common], help="list, show, validate, graph")
    pb_sub = pbs.add_subparsers(dest="pb_command", required=True, metavar="ACTION")
    pb_sub.add_parser("list", help="shipped playbooks")
    pb_sub.add_parser("show", help="print a playbook").add_argument("name", metavar="NAME")
    pb_sub.add_parser("validate", help="check a playbook file").add_argument("file",
                                                                             metavar="FILE")
    pb_sub.add_parser("graph", help="the state machine in Graphviz DOT").add_argument(
        "name", metavar="NAME")
    return parser


