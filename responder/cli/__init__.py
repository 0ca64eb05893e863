"""`respond`: the console entry point. It parses the command line (responder.cli.args,
which needs nothing but argparse), and only then imports the commands and with them the
AWS stack: `respond --help` and `--version` answer at once, and a leaked key's response
starts parsing before boto3 has loaded.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

EXIT_INTERRUPTED = 1
"""errors.Interrupted's exit code (EXIT_HALTED), known here without importing anything:
main() imports nothing before its guard is up, so that a Ctrl-C at its first line is
answered too."""


def main(argv: Sequence[str] | None = None) -> int:
    """Parse, then run; the exit code (DESIGN §2).

    From this function's first line on, Ctrl-C (SIGINT) and SIGTERM are answered at any
    instant with one line on stderr and never a traceback; with `--output json` stdout
    holds the one §2 object or nothing (nothing when the interrupt came before the
    command line was parsed). The exit code says what the interrupt left:

    - 1 (Interrupted): it came before any incident was opened (parsing, loading,
      identify): nothing was changed; or during a run: its incident is halted and the
      line names `respond resume ID`; or during a sweep or other follow-up, which the
      named command runs again.
    - 0: only watching stopped (`--watch`, once the incident is contained): the line
      names `respond sweep ID` for the sweeps still due. Also 0, or the incident's own
      code, when the interrupt came after the outcome was reached.
    - 1 at once, saying so, for a second signal while the first is answered; and the
      outcome's code at once for a signal after it was printed.

    Before main() runs (the interpreter starting, site-packages, importing this module,
    which needs nothing but collections.abc), a signal is Python's to answer as ever.
    """
    stop = None
    args = None
    try:
        from responder.cli import interrupts  # noqa: PLC0415 - inside the guard, like all

        stop = interrupts.install()
        from responder.cli.args import build_parser  # noqa: PLC0415

        args = build_parser().parse_args(argv)
        from responder.cli import commands  # noqa: PLC0415 - the stack, only once a command runs

        code = commands.run(args)
    except KeyboardInterrupt as stopped:
        code = _interrupted(args, str(stopped) or "SIGINT")
    except SystemExit as leaving:  # --help, --version, a usage error: argparse's own exit
        if stop is not None:
            stop.done(leaving.code if isinstance(leaving.code, int) else 2)
        raise
    except Exception:
        if stop is None or stop.signal_name is None:
            raise  # a bug before the command's own guard: Python's traceback, as ever
        code = _interrupted(args, stop.signal_name)  # the interrupt's doing
    if stop is not None:
        stop.done(code)
    return code


def _interrupted(args: object, signal_name: str) -> int:
    """An interrupt outside the command's own guard (while loading or parsing it)."""
    if args is not None:
        try:
            import argparse  # noqa: PLC0415 - loaded already, as args was parsed

            from responder.cli import commands  # noqa: PLC0415 - a second signal exits now

            if isinstance(args, argparse.Namespace):
                return commands.interrupted(args, signal_name)
        except Exception:  # noqa: BLE001, S110 - the stack would not load: the line below
            pass
    # Nothing parsed (no output format), or nothing loaded: no incident, nothing changed.
    sys.stderr.write(f"respond: interrupted by {signal_name} before any incident was "
                     "opened; nothing was changed\n")
    sys.stderr.flush()
    return EXIT_INTERRUPTED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
