"""One thing a human must do, as data: words, then the commands that do it.

Its own module so the document model (responder.report.model) holds only the document.
"""

from __future__ import annotations

from dataclasses import dataclass

from responder.incident.detail import Detail

MANUAL = "edit before running"
"""How a command holding a <placeholder> is marked, wherever it is shown."""


@dataclass(frozen=True)
class Todo(Detail):
    """One thing a human must do: in words, then the commands that do it, each pasting
    as printed (shlex-quoted; alternatives as separate commands). `manual`: a command
    holds a <placeholder> only a human can fill in, and is marked so wherever shown."""

    what: str = ""
    commands: tuple[str, ...] = ()
    manual: bool = False
    note: str = ""

    @property
    def text(self) -> str:
        """One line, as report.json's `next_actions` and older readers have it."""
        said = " or ".join(f"`{c}`" for c in self.commands)
        marked = f" ({MANUAL}: replace each <placeholder>)" if self.manual and said else ""
        tail = f" — {self.note}" if self.note else ""
        return f"{self.what}: {said}{marked}{tail}" if said else f"{self.what}{tail}"


__all__ = ["MANUAL", "Todo"]
