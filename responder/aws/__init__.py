"""The AWS layer: botocore sessions (sessions.py), the one retry policy and journaled
calls (Api, in this module), and the per-region rate limiter (ratelimit.py).

botocore's own retries are turned off (one attempt per botocore call) so that
tenacity's policy is the only one: otherwise a throttling storm multiplies the two
(botocore's 3-5 attempts inside each of tenacity's) and a run that should take seconds
takes minutes. Endpoints are never set here, so `AWS_ENDPOINT_URL` and profiles behave
exactly as they do for the AWS CLI.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import weakref
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from botocore import xform_name
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    EndpointConnectionError,
    ReadTimeoutError,
)
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_random_exponential,
)

from responder.aws.sessions import (
    BOTO_CONFIG,
    AnySession,
    Session,
    SessionFactory,
    assuming,
    caller_access_key,
    session_factory,
)
from responder.errors import AwsCallFailed, BadInput
from responder.logging import get_logger
from responder.redaction import SECRET_FIELDS, SECRET_SHAPED, redact

__all__ = [  # what callers import from here; the sessions are kept in responder/sessions.py
    "BOTO_CONFIG", "FATAL_CODES", "RETRYABLE_CODES", "SECRET_FIELDS", "SECRET_SHAPED",
    "AnySession", "Api", "ApiCall", "CallRecorder", "RetryPolicy", "Session",
    "SessionFactory", "assuming", "caller_access_key", "counts_only", "env_number",
    "error_code", "is_retryable", "redact", "session_factory",
]

T = TypeVar("T")
_log = get_logger("responder.aws")


RETRYABLE_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "RequestThrottled",
        "SlowDown",
        "ConcurrentModification",
        "ConcurrentModificationException",
        "EntityTemporarilyUnmodifiable",
        "ServiceFailure",
        "ServiceUnavailable",
        "InternalFailure",
        "InternalError",
    }
)
# Never retried even though some arrive with 5xx-looking wrappers: retrying cannot fix them.
FATAL_CODES = frozenset(
    {"AccessDenied", "AccessDeniedException", "LimitExceeded", "ValidationError",
     "InvalidClientTokenId", "UnrecognizedClientException", "ExpiredToken"}
)
def error_code(exc: BaseException) -> str:
    """The AWS error code of a ClientError, else the exception's class name."""
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", "Unknown"))
    return type(exc).__name__


def is_retryable(exc: BaseException, *, not_found_is_transient: bool = False) -> bool:
    """DESIGN §5: which failures are worth another attempt."""
    if isinstance(exc, (EndpointConnectionError, ConnectionClosedError, ReadTimeoutError)):
        return True
    if not isinstance(exc, ClientError):
        return False
    code = error_code(exc)
    if code in FATAL_CODES:
        return False
    if code in RETRYABLE_CODES:
        return True
    if not_found_is_transient and code == "NoSuchEntity":
        return True
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    return isinstance(status, int) and status >= 500


def env_number(name: str, default: float) -> float:
    """A numeric setting from the environment; a typo is bad input, said in one line."""
    text = os.environ.get(name)
    if text is None or text == "":
        return default
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:  # negative, or NaN (which compares false with everything)
        raise BadInput(f"{name}={text!r}: expected a number of 0 or more")
    return value


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter, bounded in attempts and in time; tests pass a
    zero-wait policy. No new attempt starts after `deadline_seconds`, so the longest wait
    on an endpoint that never answers is about the deadline plus one read timeout."""

    max_attempts: int = 8
    initial_seconds: float = 0.25
    max_seconds: float = 8.0
    deadline_seconds: float = 60.0

    @classmethod
    def from_env(cls) -> RetryPolicy:
        """Defaults, with RESPONDER_RETRY_* overrides (drills, fault tests, slow links)."""
        return cls(
            max_attempts=max(1, int(env_number("RESPONDER_RETRY_ATTEMPTS", cls.max_attempts))),
            initial_seconds=env_number("RESPONDER_RETRY_INITIAL_SECONDS", cls.initial_seconds),
            max_seconds=env_number("RESPONDER_RETRY_MAX_SECONDS", cls.max_seconds),
            deadline_seconds=env_number("RESPONDER_RETRY_DEADLINE_SECONDS",
                                        cls.deadline_seconds),
        )

    def retrying(self, retry_on: Callable[[BaseException], bool], label: str = "") -> Retrying:
        """The backoff itself, for any transport (AWS calls, the Slack webhook). Each
        retry is logged (which call, attempt n of m, why), so a slow endpoint is visible."""
        def say(state: RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome is not None else None
            _log.warning("retrying", call=label or "request",
                         attempt=f"{state.attempt_number}/{self.max_attempts}",
                         error=error_code(error) if error is not None else None)

        return Retrying(
            retry=retry_if_exception(retry_on),
            wait=wait_random_exponential(multiplier=self.initial_seconds, max=self.max_seconds),
            stop=stop_after_attempt(self.max_attempts)
            | stop_after_delay(self.deadline_seconds),
            before_sleep=say,
            reraise=True,
        )

    def call(self, fn: Callable[[], T], *, not_found_is_transient: bool = False,
             label: str = "") -> tuple[T, int]:
        """Run `fn` under the policy; returns its value and the number of attempts.

        Every attempt, the first included, goes through tenacity: importing it and
        building the policy costs about 4 ms once per process and a call through it
        17 µs (measured, issue 27), too little to justify a bare first attempt."""

        def retry_on(exc: BaseException) -> bool:
            return is_retryable(exc, not_found_is_transient=not_found_is_transient)

        for attempt in self.retrying(retry_on, label):
            with attempt:
                value = fn()
        return value, attempt.retry_state.attempt_number


def counts_only(response: Mapping[str, Any]) -> dict[str, Any]:
    """A bulk response reduced to its list sizes and whether another page follows."""
    return {
        k: len(v) if isinstance(v, list) else bool(v)
        for k, v in response.items()
        if k != "ResponseMetadata"
    }


@dataclass(frozen=True)
class ApiCall:
    """One AWS API call as planned or made: what --dry-run prints and the journal keeps."""

    service: str
    operation: str
    params: Mapping[str, Any] = field(default_factory=dict)
    mutating: bool = False
    counts_only: bool = False
    """Journal only the sizes of the response's lists (bulk reads such as evidence)."""
    note: str = ""
    """For --dry-run: when the call happens only under a condition."""

    @property
    def iam_action(self) -> str:
        prefix = "states" if self.service == "stepfunctions" else self.service
        return f"{prefix}:{self.operation}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "operation": self.operation,
            "params": redact(dict(self.params)),
            "mutating": self.mutating,
            **({"note": self.note} if self.note else {}),
        }


class CallRecorder(Protocol):
    """Where Api writes intent before and outcome after each call (the journal)."""

    def intent(self, call: ApiCall) -> Any:
        """Record the intent; returns an opaque handle that Api passes back unchanged."""

    def sending(self, token: Any) -> None:
        """The request is about to go on the wire: from now on AWS may have acted."""

    def result(
        self, token: Any, *, ok: bool, attempts: int, result: Any = None, error: str | None = None
    ) -> None: ...


class _Clients:
    """One session's clients, shared by every Api over it: a boto3 client costs tens of
    milliseconds to build, and each step has an Api of its own (its own recorder), so
    without sharing every step before containment would build its clients again.

    The before-send hook is registered once per client; the recorder and token of the
    call in flight on this thread say what to journal as `sending`.
    """

    def __init__(self, session: AnySession) -> None:
        self.session = session
        self._clients: dict[tuple[str, str | None], Any] = {}
        self._lock = threading.Lock()  # building a client from a session is not thread-safe
        self.sending = threading.local()

    def get(self, service: str, region: str | None) -> Any:
        key = (service, region)
        with self._lock:
            if key not in self._clients:
                client = self.session.client(
                    service,  # type: ignore[call-overload]
                    region_name=region,
                    config=BOTO_CONFIG,
                )
                client.meta.events.register_first("before-send", self._on_send)
                self._clients[key] = client
            return self._clients[key]

    def _on_send(self, **_: Any) -> None:
        """before-send hook: journal that a mutating request is leaving, once per call."""
        pending = getattr(self.sending, "pending", None)
        if pending is not None:
            self.sending.pending = None
            recorder, token = pending
            recorder.sending(token)


_SHARED: weakref.WeakKeyDictionary[AnySession, _Clients] = weakref.WeakKeyDictionary()
_SHARED_LOCK = threading.Lock()


def _clients_of(session: AnySession) -> _Clients:
    with _SHARED_LOCK:
        if session not in _SHARED:
            _SHARED[session] = _Clients(session)
        return _SHARED[session]


class Api:
    """Clients for one session with the retry policy and write-ahead recording applied."""

    def __init__(
        self,
        session: AnySession,
        retry: RetryPolicy,
        recorder: CallRecorder | None = None,
    ) -> None:
        self._session = session
        self._retry = retry
        self._recorder = recorder
        self._shared = _clients_of(session)

    @property
    def session(self) -> AnySession:
        return self._session

    def with_session(self, session: AnySession) -> Api:
        """The same policy and journal, acting through another session (another account)."""
        return Api(session, self._retry, self._recorder)

    def client(self, service: str, region: str | None = None) -> Any:
        return self._shared.get(service, region)

    def call(
        self,
        call: ApiCall,
        *,
        region: str | None = None,
        not_found_is_transient: bool = False,
        before_attempt: Callable[[], None] | None = None,
        unjournaled: Callable[[], Mapping[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """Make one call: journal intent, run under the retry policy, journal the outcome.

        `before_attempt` runs before every attempt, retries included: a rate limiter
        goes there, since a throttled retry spends the service's quota too.
        `unjournaled` gives parameters built afresh for each attempt and never journaled
        (an upload's body: a file, opened again for a retry).
        """
        method = getattr(self.client(call.service, region), xform_name(call.operation))
        _log.debug("aws.call", call=f"{call.service}:{call.operation}", region=region,
                   mutating=call.mutating)
        token = self._recorder.intent(call) if self._recorder else None
        attempts_seen = 0

        def attempt() -> dict[str, Any]:
            nonlocal attempts_seen
            attempts_seen += 1
            if before_attempt is not None:
                before_attempt()
            sending = self._shared.sending
            sending.pending = (self._recorder, token) if (
                call.mutating and self._recorder is not None and token is not None) else None
            extra = unjournaled() if unjournaled is not None else {}
            try:
                return dict(method(**call.params, **extra))
            finally:
                sending.pending = None
                for value in extra.values():  # a file opened for this attempt
                    if hasattr(value, "close"):
                        value.close()

        try:
            response, attempts = self._retry.call(
                attempt, not_found_is_transient=not_found_is_transient,
                label=f"{call.service}:{call.operation}",
            )
        except (ClientError, BotoCoreError) as exc:
            if self._recorder and token is not None:
                self._recorder.result(
                    token, ok=False, attempts=attempts_seen, error=f"{error_code(exc)}: {exc}"
                )
            message = (
                str(exc.response.get("Error", {}).get("Message", exc))
                if isinstance(exc, ClientError)
                else str(exc)
            )
            raise AwsCallFailed(call.service, call.operation, error_code(exc), message) from exc
        if self._recorder and token is not None:
            recorded = counts_only(response) if call.counts_only else redact(response)
            self._recorder.result(token, ok=True, attempts=attempts, result=recorded)
        response.pop("ResponseMetadata", None)
        return response

    def pages(self, call: ApiCall, *, region: str | None = None) -> Iterator[dict[str, Any]]:
        """Every page of a call paged by NextToken (ListAccounts, GetFindings,
        DescribeInstances...), each made and journaled as call() makes one."""
        token: str | None = None
        while True:
            page = self.call(dataclasses.replace(call, params={
                **call.params, **({"NextToken": token} if token else {})}), region=region)
            yield page
            token = page.get("NextToken") or None
            if token is None:
                return
