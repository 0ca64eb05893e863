"""Ctrl-C and SIGTERM at any instant of `respond`, from main()'s first line to the exit.

The first signal raises KeyboardInterrupt, named after the signal, wherever the process
is: the runner halts its incident, and main() turns what is left into one honest line
(commands.interrupted). Except inside an import: a module left half-imported breaks
every later use of it (a NameError, or a RuntimeError that Python makes of an interrupt
in a class body), so there the interrupt waits, a few milliseconds at a time, until the
import is done. A signal while the first is being answered (the human insists), or one
after the outcome was printed (the interpreter waiting for a worker thread to end),
exits at once: one line, never a traceback, and nothing half-written on stdout
(cli/output.py writes with these signals blocked).

Standard library (and responder.errors) only: main() installs it before anything else
is imported.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Callable
from types import FrameType
from typing import Final

from responder.errors import EXIT_HALTED

SIGNALS: Final = (signal.SIGINT, signal.SIGTERM)
RETRY_SECONDS: Final = 0.005
"""How often an interrupt that came during an import looks again whether it is done."""
_IMPORTING: Final = "<frozen importlib._bootstrap"


class Stop:
    """The process's answer to SIGINT and SIGTERM, in three moments: running (raise
    KeyboardInterrupt, once no import is under way), stopping (exit at once), done
    (exit at once with the outcome's code)."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Back to the first moment (each main() starts there)."""
        self.signal_name: str | None = None
        """The first signal received, once one was."""
        self.waiting = False
        """That signal came during an import and is not raised yet."""
        self.exit_code: int | None = None
        """The outcome's exit code, once it is printed."""
        self.said: Callable[[str], str] = str
        """What a printed line becomes (output.pasteable, once a journal is named)."""

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        if signum == signal.SIGALRM:  # the look again of a waiting interrupt
            if self.waiting:
                self._raise_unless_importing(frame)
            return
        if self.exit_code is not None:
            os._exit(self.exit_code)
        name = signal.Signals(signum).name
        if self.signal_name is not None and not self.waiting:
            _last_words(self.said(
                f"respond: {name} again while stopping: stopped at once; an incident left "
                "running shows as halted (interrupted), `respond status` shows it"))
            os._exit(EXIT_HALTED)
        self.signal_name = self.signal_name or name
        self._raise_unless_importing(frame)

    def _raise_unless_importing(self, frame: FrameType | None) -> None:
        if _importing(frame):
            self.waiting = True
            signal.setitimer(signal.ITIMER_REAL, RETRY_SECONDS)
            return
        self.waiting = False
        raise KeyboardInterrupt(self.signal_name)

    def done(self, exit_code: int) -> None:
        """The outcome is printed: from now on a signal only ends the process."""
        self.exit_code = exit_code


def _importing(frame: FrameType | None) -> bool:
    """Whether the main thread is inside an import (the module's body included)."""
    while frame is not None:
        if frame.f_code.co_filename.startswith(_IMPORTING):
            return True
        frame = frame.f_back
    return False


def _last_words(line: str) -> None:
    with contextlib.suppress(OSError, ValueError):  # no stderr: the exit code says it
        os.write(sys.stderr.fileno(), (line + "\n").encode())


STOP = Stop()


def install() -> Stop:
    """Answer SIGINT and SIGTERM with STOP (back at its first moment). Outside the main
    thread (an embedding caller) Python's own handling stays."""
    STOP.reset()
    with contextlib.suppress(ValueError):  # not the main thread: not ours to answer
        for signum in (*SIGNALS, signal.SIGALRM):
            signal.signal(signum, STOP)
    return STOP


def signal_name(stop: BaseException | None = None) -> str:
    """The signal a KeyboardInterrupt stands for (SIGINT when nothing says otherwise)."""
    return (str(stop) if stop is not None else "") or STOP.signal_name or "SIGINT"


def interrupted() -> bool:
    """Whether a signal has come: an exception now may be its doing, not a bug."""
    return STOP.signal_name is not None
