"""Test-only fault injection through botocore event hooks, switched on by environment
variables, so black-box tests can kill, pause or throttle a real `respond` process.

Nothing here runs unless a RESPONDER_FAULT_* variable is set. The hooks sit where
failures really happen: `before-call` (the call is about to be made), `after-call` (the
call has succeeded; nothing journaled its result yet) and `before-send` (each HTTP
attempt, so a retry by botocore would be counted too).

- RESPONDER_FAULT_CRASH_BEFORE=k   os._exit(137) right before the k-th API call
- RESPONDER_FAULT_CRASH_AFTER=k    os._exit(137) right after the k-th call succeeded
- RESPONDER_FAULT_PAUSE_BEFORE=k   before the k-th call, write "responder-fault: paused"
                                   to stderr and wait until stdin is closed
- RESPONDER_FAULT_THROTTLE=0.5     answer that share of HTTP attempts with Throttling
- RESPONDER_FAULT_SEED=n           seed for the throttling choice (default 0)
- RESPONDER_FAULT_ERROR=Op=Code[,Op=Code]   always fail operation Op with error Code
- RESPONDER_FAULT_LOG=path         append "call Op" / "attempt Op" lines to path
"""

from __future__ import annotations

import io
import os
import random
import sys
import threading
from typing import Any

import boto3
from botocore.awsrequest import AWSResponse, HTTPHeaders

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


def enabled() -> bool:
    return any(k.startswith("RESPONDER_FAULT_") for k in os.environ)


class _Raw(io.BytesIO):
    def stream(self, **_: Any) -> Any:
        yield self.read()


class _Faults:
    """Process-wide counters: a run makes calls through several sessions and threads."""

    def __init__(self) -> None:
        env = os.environ
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
        protocol = {"cloudtrail": "json", "secretsmanager": "json", "ec2": "ec2"}.get(
            service, "query")
        body, content_type = _PROTOCOL_ERRORS[protocol]
        if protocol == "json" and code == "Throttling":
            code = "ThrottlingException"
        payload = body % (code.encode(), code.encode())
        headers = HTTPHeaders()
        headers["Content-Type"] = content_type
        return AWSResponse(request.url, _STATUS.get(code, 400), headers, _Raw(payload))


_ACTIVE: _Faults | None = None


def install(session: boto3.Session) -> None:
    """Attach the hooks to a session, if the environment asks for faults."""
    global _ACTIVE  # noqa: PLW0603 - one set of counters per process, by design
    if not enabled():
        return
    if _ACTIVE is None:
        _ACTIVE = _Faults()
    session.events.register("before-call", _ACTIVE.before_call)
    session.events.register("after-call", _ACTIVE.after_call)
    # botocore types handlers as returning None; before-send may answer with a response.
    session.events.register_first("before-send", _ACTIVE.before_send)  # type: ignore[arg-type]
