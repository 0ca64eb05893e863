"""`respond` with fault hooks: the launcher black-box tests use to kill, pause or throttle
a real run. Run it as `[sys.executable, "tests/faulty_respond.py", *respond_args]`.

The product never reads these variables (an environment variable must not be able to
sabotage containment in Lambda), so the hooks live here and are attached from outside:
every botocore session the process creates gets them, then `responder.cli.main` runs as the
console script would. The hooks sit where failures really happen: `before-call` (the
call is about to be made), `after-call` (the call has succeeded; nothing journaled its
result yet) and `before-send` (each HTTP attempt, so a retry by botocore would be counted
too).

- RESPONDER_FAULT_CRASH_BEFORE=k   os._exit(137) right before the k-th API call
- RESPONDER_FAULT_CRASH_AFTER=k    os._exit(137) right after the k-th call succeeded
- RESPONDER_FAULT_PAUSE_BEFORE=k   before the k-th call, write "responder-fault: paused"
                                   to stderr and wait until stdin is closed
- RESPONDER_FAULT_THROTTLE=0.5     answer that share of HTTP attempts with Throttling
- RESPONDER_FAULT_SEED=n           seed for the throttling choice (default 0)
- RESPONDER_FAULT_ERROR=Op=Code[,Op=Code]   always fail operation Op with error Code
- RESPONDER_FAULT_LOG=path         append "call Op" / "attempt Op" / "ok Op" (the call
                                   succeeded: what CRASH_AFTER counts) lines to path

Counters are process-wide: a run makes calls through several sessions and threads, and
the k-th call means the k-th of the whole run.
"""

from __future__ import annotations

import io
import os
import random
import sys
import threading
from collections.abc import Iterator, Mapping
from typing import Any

import botocore.session
from botocore.awsrequest import AWSResponse, HTTPHeaders

PREFIX = "RESPONDER_FAULT_"
CRASH_EXIT = 137
_PROTOCOL_ERRORS = {
    "json": (b'{"__type": "%s", "message": "injected %s"}', "application/x-amz-json-1.1"),
    "query": (b"<ErrorResponse><Error><Type>Sender</Type><Code>%s</Code>"
              b"<Message>injected %s</Message></Error><RequestId>fault</RequestId>"
              b"</ErrorResponse>", "text/xml"),
    "ec2": (b"<Response><Errors><Error><Code>%s</Code><Message>injected %s</Message>"
            b"</Error></Errors><RequestID>fault</RequestID></Response>", "text/xml"),
}
_STATUS = {"AccessDenied": 403, "AccessDeniedException": 403, "NoSuchEntity": 404}


def wanted(env: Mapping[str, str]) -> bool:
    """Whether `env` asks for faults, i.e. a run must go through this launcher."""
    return any(name.startswith(PREFIX) for name in env)


class _Raw(io.BytesIO):
    """A body botocore can stream, for the error answers made up in before-send."""

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.read()


class Faults:
    """The hooks and their process-wide counters, configured from RESPONDER_FAULT_*."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.crash_before = int(env.get("RESPONDER_FAULT_CRASH_BEFORE", "0"))
        self.crash_after = int(env.get("RESPONDER_FAULT_CRASH_AFTER", "0"))
        self.pause_before = int(env.get("RESPONDER_FAULT_PAUSE_BEFORE", "0"))
        self.throttle = float(env.get("RESPONDER_FAULT_THROTTLE", "0"))
        self.random = random.Random(int(env.get("RESPONDER_FAULT_SEED", "0")))  # noqa: S311
        self.errors = dict(
            item.split("=", 1) for item in env.get("RESPONDER_FAULT_ERROR", "").split(",") if item
        )
        self.log_path = env.get("RESPONDER_FAULT_LOG")
        self.calls = 0
        self.successes = 0
        self.lock = threading.Lock()

    def _log(self, line: str) -> None:
        if self.log_path:
            with open(self.log_path, "a", encoding="utf-8") as log:
                log.write(line + "\n")

    def before_call(self, model: Any, **_: Any) -> None:
        with self.lock:
            self.calls += 1
            number = self.calls
            self._log(f"call {model.name}")
        if number == self.crash_before:
            os._exit(CRASH_EXIT)
        if number == self.pause_before:
            sys.stderr.write("responder-fault: paused\n")
            sys.stderr.flush()
            sys.stdin.read()

    def after_call(self, model: Any, http_response: Any, **_: Any) -> None:
        if http_response.status_code >= 300:
            return
        with self.lock:
            self.successes += 1
            number = self.successes
            self._log(f"ok {model.name}")
        if number == self.crash_after:
            os._exit(CRASH_EXIT)

    def before_send(self, request: Any, event_name: str, **_: Any) -> AWSResponse | None:
        service, operation = event_name.split(".")[1:3]
        with self.lock:
            self._log(f"attempt {operation}")
            throttled = self.throttle > 0 and self.random.random() < self.throttle
        code = self.errors.get(operation) or ("Throttling" if throttled else None)
        if code is None:
            return None
        # Event names carry the service id (hyphenated): "secrets-manager", not the
        # endpoint prefix; a query-shaped error to a JSON service would not parse at all.
        protocol = {"cloudtrail": "json", "secrets-manager": "json", "dynamodb": "json",
                    "ec2": "ec2"}.get(service, "query")
        body, content_type = _PROTOCOL_ERRORS[protocol]
        if protocol == "json" and code == "Throttling":
            code = "ThrottlingException"
        payload = body % (code.encode(), code.encode())
        headers = HTTPHeaders()
        headers["Content-Type"] = content_type
        return AWSResponse(request.url, _STATUS.get(code, 400), headers, _Raw(payload))

    def install(self, session: botocore.session.Session) -> None:
        events = session.get_component("event_emitter")
        events.register("before-call", self.before_call)
        events.register("after-call", self.after_call)
        events.register_first("before-send", self.before_send)


def hook_every_session(faults: Faults) -> None:
    """Attach `faults` to each botocore session as it is built (a boto3 session wraps
    one), before any client exists, so the product's clients inherit the hooks exactly
    as if it had attached them."""
    real_init = botocore.session.Session.__init__

    def init(self: botocore.session.Session, *args: Any, **kwargs: Any) -> None:
        real_init(self, *args, **kwargs)
        faults.install(self)

    botocore.session.Session.__init__ = init  # type: ignore[method-assign]


def main() -> int:
    from responder.cli import main as respond

    if wanted(os.environ):
        hook_every_session(Faults(os.environ))
    return respond(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
