"""The pieces every `respond` command's grammar is built from (responder.cli.args and
args_lifecycle): the help layout, a subcommand with its description and examples, and
the options several commands share, so each is spelled and explained one way only.

Needs nothing but argparse: `respond --help` loads no more than this.
"""

from __future__ import annotations

import argparse
import os
import textwrap
from typing import Any

INCIDENT = "inc-20261125-092338-3f9a1c"
"""The incident id the examples use."""


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """A description's paragraphs wrapped to the terminal, while an epilog's example lines
    stay exactly as written (each is a command to copy): a paragraph written on one line
    is prose, one written on several lines is kept."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        return "\n\n".join(
            textwrap.indent(paragraph, indent) if "\n" in paragraph
            else textwrap.fill(paragraph, width, initial_indent=indent,
                               subsequent_indent=indent)
            for paragraph in text.split("\n\n"))


def examples(*lines: str) -> str:
    """An epilog: `Examples:` (or `Example:`) and the command lines, indented."""
    head = "Example:" if len(lines) == 1 else "Examples:"
    return "\n".join([head, *(f"  {line}" for line in lines)])


def command(sub: Any, name: str, common: argparse.ArgumentParser | None, *, help: str,
            description: str, example: tuple[str, ...]) -> argparse.ArgumentParser:
    """A subcommand as every `respond` command is: one-line help in the list, a
    description and examples in its own --help, and the global options (`common`)."""
    parser: argparse.ArgumentParser = sub.add_parser(
        name, parents=[common] if common is not None else [], help=help,
        description=description, epilog=examples(*example), formatter_class=HelpFormatter)
    return parser


def aws_options(parser: argparse.ArgumentParser, *, role: bool = True) -> None:
    """Credentials as the AWS CLI takes them (DESIGN §2); `role`: commands that act on a
    key may reach another account, journal-only ones never do."""
    parser.add_argument("--profile", help="AWS profile (default: the AWS CLI's chain)")
    parser.add_argument("--region", help="AWS region (default: the AWS CLI's chain)")
    if role:
        parser.add_argument("--role-arn", help="assume this role first (cross-account)")


def notify_options(parser: argparse.ArgumentParser) -> None:
    """Who is told: an SNS topic and/or a Slack webhook (a credential: the environment
    keeps it out of shell history)."""
    parser.add_argument("--notify-topic", metavar="ARN", help="SNS topic for notifications")
    parser.add_argument("--slack-webhook", metavar="URL",
                        default=os.environ.get("RESPONDER_SLACK_WEBHOOK"),
                        help="Slack incoming webhook (or $RESPONDER_SLACK_WEBHOOK)")


def followup_options(parser: argparse.ArgumentParser, *, watch: bool = True) -> None:
    """What happens after containment: where the files are kept, and whether to stay for
    the sweeps."""
    parser.add_argument("--evidence-bucket", metavar="BUCKET",
                        default=os.environ.get("RESPONDER_EVIDENCE_BUCKET") or None,
                        help="S3 bucket to keep the incident's files in (or "
                        "$RESPONDER_EVIDENCE_BUCKET)")
    if watch:
        parser.add_argument("--watch", action="store_true",
                            help="stay, and run each sweep when it is due (with a countdown)")


def output_option(parser: argparse.ArgumentParser,
                  choices: tuple[str, ...] = ("human", "json"), default: str = "human",
                  *, alias: str | None = None, help: str | None = None) -> None:
    """`--output`, the one name of every format choice; `alias` is an older name kept
    working (same dest), said in the help."""
    said = help or "json prints exactly one JSON object on stdout"
    names = ["--output", *([alias] if alias else [])]
    parser.add_argument(*names, dest="output", choices=list(choices), default=default,
                        help=f"{said} (default {default})"
                        + (f"; {alias} is an alias of --output" if alias else ""))


def positive_int(text: str) -> int:
    """argparse type: a whole number of at least 1."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}")
    return int(text)


def whole(text: str) -> int:
    """argparse type: a whole number, 0 or more."""
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a whole number 0 or more, got {text!r}")
    return int(text)


def days(text: str) -> int:
    """argparse type: a whole number of days, 0 to 365."""
    if not text.isdigit() or int(text) > 365:
        raise argparse.ArgumentTypeError(f"expected a whole number of days 0-365, got {text!r}")
    return int(text)


def non_negative(text: str) -> float:
    """argparse type: a number of hours, 0 or more."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if value < 0 or value != value:  # noqa: PLR0124 - NaN
        raise argparse.ArgumentTypeError(f"expected a number of hours >= 0, got {text!r}")
    return value
