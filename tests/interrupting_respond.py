"""`respond` that is interrupted at a chosen instant, the same instant every run: the
launcher the signal tests use instead of sleeping. Run it as
`[sys.executable, "tests/interrupting_respond.py", *respond_args]`.

Two ways, each keyed to a place in the run rather than to a time, and only ever on the
main thread (where Python runs signal handlers, so the interrupt lands exactly there):

- RESPONDER_PAUSE_AT=before:Op | after:Op   at the first such AWS call, write
      "responder-pause: paused at <where>" to stderr and block reading stdin: the test
      sends its signal then, from outside, and the blocked read is where it lands.
- RESPONDER_INTERRUPT_AT=...                 the process signals itself, right there:
      import:MODULE                 as MODULE is first imported (e.g. while main() loads
                                    the commands, or argparse parses)
      body:MODULE                   halfway through MODULE's body as it is imported (its
                                    tenth line run), where an interrupt that landed would
                                    leave the module half-made
      before:Op | after:Op          at the first such AWS call
      call:MODULE:QUALNAME[:after]  as that function is entered (or once it returned)
- RESPONDER_INTERRUPT_SIGNAL=SIGINT (default) | SIGTERM

A place reached first on another thread is a broken test, not a flaky one: the launcher
says so on stderr and exits 99.
"""

from __future__ import annotations

import functools
import importlib
import importlib.abc
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any

WRONG_THREAD = 99


def _on_main_thread(where: str) -> None:
    if threading.current_thread() is not threading.main_thread():
        sys.stderr.write(f"responder-pause: {where} was reached on another thread\n")
        sys.stderr.flush()
        os._exit(WRONG_THREAD)


def _interrupt() -> None:
    """The signal, to this process, from the main thread: its handler runs before the
    next line of Python does."""
    os.kill(os.getpid(), signal.Signals[os.environ.get("RESPONDER_INTERRUPT_SIGNAL",
                                                       "SIGINT")])


def _pause(where: str) -> None:
    sys.stderr.write(f"responder-pause: paused at {where}\n")
    sys.stderr.flush()
    sys.stdin.read()


class _OnImport(importlib.abc.MetaPathFinder):
    """Interrupts the import of `module`, as a Ctrl-C while it loads would."""

    def __init__(self, module: str) -> None:
        self.module = module
        self.fired = False

    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: Any = None) -> None:
        if fullname == self.module and not self.fired:
            self.fired = True
            _on_main_thread(f"import:{fullname}")
            _interrupt()


def _mid_body(module: str, line: int = 10) -> None:
    """Signal at the `line`-th line run of MODULE's body (traced on the main thread only,
    and only until then)."""
    path = "/" + module.replace(".", "/")
    suffixes = (f"{path}.py", f"{path}/__init__.py")
    count = 0

    def in_body(frame: Any, event: str, _arg: Any) -> Any:
        nonlocal count
        if event == "line":
            count += 1
            if count == line:
                sys.settrace(None)
                frame.f_trace = None
                _interrupt()
        return in_body

    def calls(frame: Any, event: str, _arg: Any) -> Any:
        code = frame.f_code
        if event == "call" and code.co_name == "<module>" and \
                code.co_filename.endswith(suffixes):
            return in_body
        return None

    sys.settrace(calls)


def _at_call(when: str, operation: str, act: Callable[[str], None]) -> None:
    """`act` on the main thread at the first `before`/`after` of the AWS `operation`,
    in every botocore session the process makes (as faulty_respond attaches its hooks)."""
    import botocore.session  # only when a call is the place

    done = threading.Event()
    where = f"{when}:{operation}"

    def hook(model: Any, **_: Any) -> None:
        if model.name != operation or done.is_set():
            return
        done.set()
        _on_main_thread(where)
        act(where)

    real_init = botocore.session.Session.__init__

    def init(self: botocore.session.Session, *args: Any, **kwargs: Any) -> None:
        real_init(self, *args, **kwargs)
        self.get_component("event_emitter").register(f"{when}-call", hook)

    botocore.session.Session.__init__ = init  # type: ignore[method-assign]


def _at_function(module: str, qualname: str, after: bool) -> None:
    owner: Any = importlib.import_module(module)
    *path, name = qualname.split(".")
    for part in path:
        owner = getattr(owner, part)
    real = getattr(owner, name)
    fired = threading.Event()

    @functools.wraps(real)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        first = not fired.is_set()
        fired.set()
        if first and not after:
            _on_main_thread(f"call:{qualname}")
            _interrupt()
        result = real(*args, **kwargs)
        if first and after:
            _on_main_thread(f"call:{qualname}:after")
            _interrupt()
        return result

    setattr(owner, name, wrapped)


def arm(env: dict[str, str]) -> None:
    pause = env.get("RESPONDER_PAUSE_AT")
    if pause:
        when, operation = pause.split(":", 1)
        _at_call(when, operation, _pause)
    place = env.get("RESPONDER_INTERRUPT_AT")
    if not place:
        return
    kind, _, rest = place.partition(":")
    if kind == "import":
        sys.meta_path.insert(0, _OnImport(rest))
    elif kind == "body":
        _mid_body(rest)
    elif kind in {"before", "after"}:
        _at_call(kind, rest, lambda _where: _interrupt())
    elif kind == "call":
        module, qualname, *flag = rest.split(":")
        _at_function(module, qualname, after=flag == ["after"])
    else:
        raise SystemExit(f"RESPONDER_INTERRUPT_AT={place!r}: unknown place")


def main() -> int:
    arm(dict(os.environ))
    from responder.cli import main as respond  # after the places are armed

    return respond(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
