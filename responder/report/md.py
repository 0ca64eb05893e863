"""Markdown that an attacker cannot write into.

Much of an incident's text comes from CloudTrail: session and policy names, user agents,
descriptions, tag values and policy documents carry whatever the attacker put there. In
report.md each such value is either escaped (`text`: markup characters backslashed, `<`
and `&` as entities, so no renderer sees a tag, a link or emphasis) or shown as code
(`code`, `fenced`: a fence longer than any backtick run inside, so it cannot be closed
from within). Values are one line: a newline cannot start a heading or a list item.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from responder.report.story import words

_MARKUP = re.compile(r"([\\`*_\[\]#|~])")
_TICKS = re.compile(r"`+")


def _line(value: object, empty: str) -> str:
    return " ".join(words(value, empty).split())


def text(value: object, empty: str = "not recorded") -> str:
    """`value` as inert Markdown text on one line."""
    escaped = _line(value, empty).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MARKUP.sub(r"\\\1", escaped)


def _fence(body: str, tick: str = "`") -> str:
    longest = max((len(run) for run in _TICKS.findall(body)), default=0)
    return tick * (longest + 1)


def code(value: object, *, in_table: bool = False) -> str:
    """`value` as a code span (shown as is, never interpreted); in a table, its pipes
    are escaped, which GitHub's tables require even inside code."""
    body = _line(value, "")
    if not body:
        return ""
    fence = _fence(body)
    padded = f" {body} " if body.startswith("`") or body.endswith("`") else body
    span = f"{fence}{padded}{fence}"
    return span.replace("|", "\\|") if in_table else span


def fenced(lines: Iterable[str], language: str = "") -> list[str]:
    """A fenced code block (a command to paste, a policy document), closed only by its
    own fence: one longer than any backtick run inside it."""
    body = [str(line) for line in lines]
    fence = max(_fence("\n".join(body)), "```", key=len)
    return [f"{fence}{language}", *body, fence]


def cell(value: object, empty: str = "") -> str:
    """A table cell: escaped text on one line (a pipe cannot split the row)."""
    return text(value, empty) if words(value, empty) else ""


def row(*cells: str) -> str:
    """A table row of cells already made (by `cell` or `code(..., in_table=True)`)."""
    return "| " + " | ".join(cells) + " |"


__all__ = ["cell", "code", "fenced", "row", "text"]
