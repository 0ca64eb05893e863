"""The one way any value reaches report.html: redacted, then escaped.

Shared by the page (html.py) and its timeline (html_timeline.py), so that no part of the
page can skip either step: the page is mailed around (redacted), and much of what it shows
was chosen by the attacker (escaped, and cleaned of characters XML forbids, as the inline
svg must stay valid XML).
"""

from __future__ import annotations

import html
import re
from typing import Any

from responder.redaction import redact
from responder.report.story import words

NOT_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff]")
"""Forbidden in XML even escaped: one in an eventName would make the inline svg invalid."""


def text(value: Any, empty: str = "—") -> str:
    """`value` as words (never a None, a bool or a repr), redacted and escaped."""
    said = words(redact(value), "")
    clean = html.escape(NOT_XML.sub("", redact(said)), quote=True)
    return clean or html.escape(empty)
