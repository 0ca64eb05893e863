"""The command line's grammar: every command, option, help text and example of `respond`.

Kept apart from cli.py, which only runs what was parsed and prints the outcome, so the
grammar reads in one place and `respond --help` can be checked without running anything.

One grammar for every command (DESIGN §2): a choice of format is always `--output`
(`report --format` stays as its alias), every command and subcommand has a description
and examples in its `--help`, and `--state` names the journal the same way everywhere
(checked, before anything is opened, by responder.journal.check_state).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from responder import package_version
from responder.cli import args_lifecycle
from responder.cli.grammar import (
    INCIDENT,
    HelpFormatter,
    aws_options,
    command,
    followup_options,
    notify_options,
    output_option,
    positive_int,
)

EXIT_CODES = """\
Exit codes:
  0  completed, or planned (--dry-run and every preview: rollback without --yes, ...)
  1  halted at a step: `respond resume ID` continues it
  2  bad input; nothing changed
  3  refused by a guardrail; nothing changed
  4  another runner holds the incident's lease
  5  completed and contained, but something is missing (a notification, the evidence
     upload, a region's evidence; an account an audit could not reach)
  6  respond audit --fail-on LEVEL: a finding at or above LEVEL
"""

EXAMPLES = """\
Examples:
  respond compromised AKIAIOSFODNN7EXAMPLE --dry-run      # see the plan, change nothing
  respond compromised AKIAIOSFODNN7EXAMPLE --yes          # contain it now
  respond compromised ASIAIOSFODNN7EXAMPLE --yes          # a leaked session: deny just it
  respond status                                          # open and recent incidents
  respond resume inc-20261125-092338-3f9a1c               # continue a halted incident
  respond resume inc-20261125-092338-3f9a1c --no-replace  # ... without a replacement key
  respond finding guardduty-event.json                    # answer a finding (or a list)
  respond sweep inc-20261125-092338-3f9a1c                # CloudTrail again: late events
  respond report inc-20261125-092338-3f9a1c --output html # the report as one page
  respond close inc-20261125-092338-3f9a1c --reason TEXT  # a human takes it over
  respond audit --output md                               # old, unused, doubled keys, no MFA
  respond rotate AKIAIOSFODNN7EXAMPLE --yes               # routine rotation, step by step
  respond harden alice --incident inc-20261125-092338-3f9a1c  # MFA, least privilege
  respond drill --list                                    # the attacks one can rehearse
  respond drill --scenario all                            # rehearse them in a fake account
  respond playbooks list                                  # the shipped playbooks

""" + EXIT_CODES


class _Version(argparse.Action):
    """--version, with the version read only when asked for."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        sys.stdout.write(f"respond {package_version()}\n")
        parser.exit()


def _global_options(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    default: Any = argparse.SUPPRESS if suppress else None
    parser.add_argument("--state", metavar="PATH_OR_URL", default=default,
                        help="the journal: a SQLite file path (default "
                        "$RESPONDER_HOME/responder.db) or dynamodb://TABLE; any other URL "
                        "is refused (exit 2)")
    parser.add_argument("-v", "--verbose", action="store_true",
                        default=argparse.SUPPRESS if suppress else False,
                        help="debug logging on stderr")


def _sweep_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    swp = command(
        sub, "sweep", common,
        help="look at CloudTrail again for an incident's keys (events delivered late)",
        description="Re-read CloudTrail for the incident's keys (the leaked key and every "
        "temporary key found so far) from a little before what was already covered up to "
        "now; merge new events into the evidence once each, contain what they reveal and "
        "notify only when something is new. Sweeps are due 15 and 60 minutes after "
        "containment by default (the playbook's `sweeps`).",
        example=(f"respond sweep {INCIDENT}",
                 f"respond sweep {INCIDENT} --watch   # every sweep still due"))
    swp.add_argument("incident_id", metavar="INCIDENT_ID")
    aws_options(swp)
    notify_options(swp)
    followup_options(swp)
    output_option(swp)


def _compromised_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    comp = command(
        sub, "compromised", common, help="contain a leaked access key (AKIA or ASIA)",
        description="A long-term (AKIA) key: identify its owner, disable the key, revoke "
        "its sessions, collect evidence, contain the attacker, replace it and notify "
        "(compromised-key). A temporary (ASIA) key: identify its session through "
        "CloudTrail, deny exactly that session (an EC2 instance's only away from the "
        "instance), collect evidence, contain the attacker and notify; no key is disabled "
        "(compromised-session).\n\n"
        "Without --yes the plan is shown and a terminal asked `Proceed? [y/N]`; with no "
        "terminal it exits 2 saying --yes is needed. --dry-run never asks and changes "
        "nothing.",
        example=("respond compromised AKIAIOSFODNN7EXAMPLE --dry-run",
                 "respond compromised AKIAIOSFODNN7EXAMPLE --yes --output json",
                 "respond compromised ASIAIOSFODNN7EXAMPLE --dry-run",
                 "respond compromised ASIAIOSFODNN7EXAMPLE --yes \\",
                 "    --principal arn:aws:sts::123456789012:assumed-role/app/session-1"))
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
    aws_options(comp)
    notify_options(comp)
    comp.add_argument("--no-replace", action="store_true", help="skip issuing a replacement key")
    followup_options(comp)
    output_option(comp)


def _finding_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    find = command(
        sub, "finding", common,
        help="respond to a GuardDuty / Health / Security Hub finding",
        description="Parse a finding (EventBridge event, GetFindings output, one raw "
        "finding, or a JSON list of these) and run the playbook each finding maps to "
        "(playbooks/triggers.json). Sample findings and findings already handled are "
        "refused (exit 3); a file that holds no finding is bad input (exit 2). With "
        "several findings the exit code is the worst of theirs.",
        example=("respond finding guardduty-event.json --output json",
                 "aws guardduty get-findings ... | respond finding -"))
    find.add_argument("file", metavar="FILE|-")
    aws_options(find)
    notify_options(find)
    followup_options(find, watch=False)
    output_option(find)


def _resume_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    res = command(
        sub, "resume", common, help="continue a halted incident",
        description="Continue an incident from the first step not done (exit 1 left it "
        "halted: fix what its error names first). Every step looks at AWS before it "
        "acts, so nothing is done twice. Resume never asks: the incident was confirmed "
        "when it started.",
        example=(f"respond resume {INCIDENT}",
                 f"respond resume {INCIDENT} --no-replace   # past a replace-key that "
                 "cannot succeed"))
    res.add_argument("incident_id", metavar="INCIDENT_ID")
    res.add_argument("--no-replace", action="store_true",
                     help="issue no replacement key from here on (the way past a replace-key "
                     "that cannot succeed)")
    res.add_argument("--yes", action="store_true",
                     help="accepted for symmetry with compromised; resume never asks")
    aws_options(res)
    followup_options(res, watch=False)
    output_option(res)


def _status_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    stat = command(
        sub, "status", common, help="list incidents, or show one (reads only the journal)",
        description="Without INCIDENT_ID: every open incident, then the newest finished "
        "ones, with their current step, sweeps and age. With it: that incident as the "
        "§2 object (--output json) or its summary. Reads only the journal; calls no AWS "
        "API but DynamoDB for a dynamodb:// journal.",
        example=("respond status",
                 "respond status --all",
                 f"respond status {INCIDENT} --output json"))
    stat.add_argument("incident_id", nargs="?", metavar="INCIDENT_ID")
    stat.add_argument("--limit", type=positive_int, default=20, metavar="N",
                      help="finished incidents to list after every open one (default 20)")
    stat.add_argument("--all", action="store_true", help="list every incident")
    aws_options(stat, role=False)  # where a dynamodb:// journal is
    output_option(stat)


def _report_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    rep = command(
        sub, "report", common, help="print an incident's report",
        description="Print an incident's report from the journal: Markdown (the "
        "report.md kept in its directory), the report as JSON, or one self-contained HTML "
        "page with the timeline drawn. Reads only the journal.",
        example=(f"respond report {INCIDENT}",
                 f"respond report {INCIDENT} --output json",
                 f"respond report {INCIDENT} --output html > report.html"))
    rep.add_argument("incident_id", metavar="INCIDENT_ID")
    aws_options(rep, role=False)  # where a dynamodb:// journal is
    output_option(rep, ("md", "json", "html"), "md", alias="--format",
                   help="md: Markdown; json: the report as one JSON object; html: one "
                   "self-contained page with the timeline drawn")


def _drill_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    drill = command(
        sub, "drill", common,
        help="rehearse an attack and the playbook against an embedded fake AWS account",
        description="Build a fake AWS account in-process (moto, the `drill` extra), let an "
        "attacker use a leaked key in it, run the real playbook through the same code "
        "path and check the outcome: the key inactive, the deny in place, the attacker's "
        "events in the evidence, a new key stored, the humans told. Prints a timeline and "
        "the time to contain; exits 1 if any check fails. Touches no real AWS account.",
        example=("respond drill --list", "respond drill --scenario persistence",
                 "respond drill --scenario all --output json"))
    drill.add_argument("--scenario", default="two-keys", metavar="NAME",
                       help="a scenario from --list, or all (default: two-keys)")
    drill.add_argument("--list", action="store_true", help="name the scenarios and stop")
    output_option(drill)


def _playbooks_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    pbs = command(
        sub, "playbooks", common, help="list, show, validate, graph",
        description="The playbooks: the shipped ones (inside the package), their steps, "
        "a playbook file of your own checked against playbooks/playbook.schema.json "
        "before it is used, and the state machine a playbook builds.",
        example=("respond playbooks list", "respond playbooks show compromised-key",
                 "respond playbooks validate my-playbook.yaml",
                 "respond playbooks graph compromised-key | dot -Tsvg > playbook.svg"))
    pb_sub = pbs.add_subparsers(dest="pb_command", required=True, metavar="ACTION")
    command(pb_sub, "list", None, help="shipped playbooks",
            description="Name every shipped playbook with its version and description.",
            example=("respond playbooks list",))
    command(pb_sub, "show", None, help="print a playbook",
            description="Print a playbook (a shipped name or a file) as JSON, as it is "
            "loaded and validated: its steps, their actions and settings.",
            example=("respond playbooks show compromised-key",
                     "respond playbooks show ./my-playbook.yaml")
            ).add_argument("name", metavar="NAME")
    command(pb_sub, "validate", None, help="check a playbook file",
            description="Check a playbook file against the schema and every step's settings "
            "without running anything: exit 0 and a summary when valid, exit 2 naming the "
            "file, step and field when not.",
            example=("respond playbooks validate my-playbook.yaml",)
            ).add_argument("file", metavar="FILE")
    command(pb_sub, "graph", None, help="the state machine in Graphviz DOT",
            description="Print the state machine a playbook builds (one state per step, "
            "plus completed, halted and refused) in Graphviz DOT.",
            example=("respond playbooks graph compromised-key",
                     "respond playbooks graph compromised-key | dot -Tpng > machine.png")
            ).add_argument("name", metavar="NAME")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="respond",
        description="Contain a leaked AWS access key (long-term or temporary) through a journaled, "
        "resumable playbook.",
        epilog=EXAMPLES,
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action=_Version, nargs=0,
                        help="show program's version number and exit")
    _global_options(parser, suppress=False)
    common = argparse.ArgumentParser(add_help=False)
    _global_options(common, suppress=True)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    _compromised_parser(sub, common)
    _finding_parser(sub, common)
    _resume_parser(sub, common)
    _sweep_parser(sub, common)
    _status_parser(sub, common)
    _report_parser(sub, common)
    _drill_parser(sub, common)
    args_lifecycle.rollback_parser(sub, common)
    args_lifecycle.audit_parser(sub, common)
    args_lifecycle.rotate_parser(sub, common)
    args_lifecycle.harden_parser(sub, common)
    args_lifecycle.close_parser(sub, common)
    _playbooks_parser(sub, common)
    return parser
