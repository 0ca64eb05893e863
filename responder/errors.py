"""Every failure the tool reports, each mapped to the exit code of DESIGN §2.

One module so the CLI, the Lambda handler and the tests agree on what a failure means:
exit 1 is resumable, 2 and 3 guarantee nothing was changed, 4 means someone else is
already working on the incident, 5 that it completed and was contained but something is
missing: a notification, the evidence upload, or a region's evidence.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Final

EXIT_COMPLETED: Final = 0
EXIT_HALTED: Final = 1
EXIT_BAD_INPUT: Final = 2
EXIT_REFUSED: Final = 3
EXIT_LEASE_HELD: Final = 4
EXIT_NOT_NOTIFIED: Final = 5
"""Completed and contained, but something is missing: a notification, the evidence
upload, or evidence from a region that could not be read."""
EXIT_INCOMPLETE: Final = EXIT_NOT_NOTIFIED
EXIT_FINDINGS: Final = 6
"""`respond audit --fail-on LEVEL`: a finding at or above LEVEL exists (a pipeline's
gate). Distinct from 5, which says the audit itself is incomplete (an account it could
not reach, a Security Hub import that failed)."""

INPUT_CHARS: Final = 60
"""How much of one piece of user input (a field name, a value, a path) a message quotes:
enough to recognise it, never enough to make the message the size of the input."""
MESSAGE_CHARS: Final = 400
"""The longest error message the CLI prints (responder.cli.output.err), a last guard: a
finding file of 200,000 malformed entries once made a 19.7 MB line. A few hundred
characters, not fewer: a refusal and its advice (what to run instead) take up to ~380."""


def clipped(text: object, limit: int = INPUT_CHARS) -> str:
    """`text` as a message may quote it: at most `limit` characters, then an ellipsis and
    how many more there were, so the reader knows it was cut and by how much."""
    said = str(text)
    if len(said) <= limit:
        return said
    return f"{said[:limit]}… ({len(said) - limit} more characters)"


def exit_code_for(status: str, *, notification_failed: bool = False,
                  evidence_gap: bool = False) -> int:
    """The exit code of an incident that ended (or stopped) in `status`."""
    if status == "completed":
        return EXIT_INCOMPLETE if notification_failed or evidence_gap else EXIT_COMPLETED
    if status == "refused":
        return EXIT_REFUSED
    if status in {"waiting", "closed"}:
        # waiting: a rotation waiting for people or a grace period, as asked;
        # closed: a human took the incident over and said why (`respond close`).
        return EXIT_COMPLETED
    return EXIT_HALTED  # halted, or still running under someone else's lease


class ResponderError(Exception):
    """Base class; `exit_code` is what the CLI exits with."""

    exit_code: ClassVar[int] = EXIT_HALTED
    status: ClassVar[str] = "halted"
    incident_id: str | None = None
    """Set by the runner when the failure ended a journaled incident."""


class BadInput(ResponderError):
    """The request itself is wrong; nothing was changed."""

    exit_code = EXIT_BAD_INPUT
    status = "refused"


class PlaybookInvalid(BadInput):
    """A playbook file failed to parse or validate; names file, step and field."""


class JournalUnavailable(BadInput):
    """The journal cannot be opened or written (a directory, a corrupt file, a read-only
    or full disk, a missing table)."""


class UnknownIncident(BadInput):
    """No incident with that id exists in the journal."""


class Refused(ResponderError):
    """A guardrail declined to act (DESIGN §6); nothing was changed."""

    exit_code = EXIT_REFUSED
    status = "refused"


class OtherAccount(Refused):
    """The key lives in another account and no role to reach it was given."""

    def __init__(self, message: str, owner_account: str) -> None:
        super().__init__(message)
        self.owner_account = owner_account


class AlreadyHandled(Refused):
    """This finding already has an incident (EventBridge delivers at least once)."""

    def __init__(self, finding_id: str, incident_id: str, status: str) -> None:
        super().__init__(
            f"finding {finding_id} was already handled by incident {incident_id} ({status}); "
            f"`respond status {incident_id}` shows it"
        )
        self.finding_id = finding_id
        self.existing_incident = incident_id


class LeaseHeld(ResponderError):
    """Another live runner holds this incident's lease."""

    exit_code = EXIT_LEASE_HELD
    status = "running"

    def __init__(self, incident_id: str, owner: str, expires_at: str) -> None:
        super().__init__(
            f"incident {incident_id} is being handled by {owner} (lease expires {expires_at}); "
            f"wait for it or run `respond status {incident_id}`"
        )
        self.incident_id = incident_id
        self.owner = owner
        self.expires_at = expires_at


class Interrupted(ResponderError):
    """SIGINT or SIGTERM stopped the run; the incident, if one was opened, is halted.
    `said` replaces the message when the interrupt stopped something else (a sweep, a
    read-only command): what it left, in the words of that phase."""

    exit_code = EXIT_HALTED
    status = "halted"

    def __init__(self, signal_name: str, incident_id: str | None = None, *,
                 said: str | None = None) -> None:
        if said is not None:
            message = said
        elif incident_id is None:
            message = (f"interrupted by {signal_name} before any incident was opened; "
                       "nothing was changed")
        else:
            message = (f"interrupted by {signal_name}: incident {incident_id} is halted; "
                       f"`respond resume {incident_id}` continues it")
        super().__init__(message)
        self.signal_name = signal_name
        self.incident_id = incident_id


class NotVerified(ResponderError):
    """Re-reading AWS after acting did not show what the incident claims (a key still
    Active, a deny missing or with another cutoff): the incident halts and names it."""

    exit_code = EXIT_HALTED
    status = "halted"

    def __init__(self, moment: str, mismatches: tuple[str, ...]) -> None:
        super().__init__(f"not verified {moment}: AWS shows " + "; ".join(mismatches)
                         + "; fix it, then `respond resume` checks again")
        self.moment = moment
        self.mismatches = mismatches


class _StepStopped(ResponderError):
    """A step's own account of why the run stops at it: the step, the reason, and what it
    journals with it (what it did achieve, or what it waits for)."""

    said: ClassVar[str]

    def __init__(self, step: str, message: str, detail: Mapping[str, Any] | None = None) -> None:
        super().__init__(self.said.format(step=step, message=message))
        self.step = step
        self.reason = message
        self.detail = detail or {}


class Waiting(_StepStopped):
    """A step cannot go on until something outside the run happens: the applications
    are updated (a human says so with `respond rotate --continue`, or a check command
    passes), or a grace period ends. The incident waits there, open, and the run ends
    with exit 0: waiting is what was asked for, not a failure. `detail` is journaled as
    the waiting step's (results_rotation.Awaiting)."""

    exit_code = EXIT_COMPLETED
    status = "waiting"
    said = "{step} is waiting: {message}"


class StepFailed(_StepStopped):
    """A step could not reach its goal; the incident halts there and can be resumed.
    `detail` is what the step did achieve before failing, journaled with the failure."""

    exit_code = EXIT_HALTED
    status = "halted"
    said = "step {step} failed: {message}"


class AwsCallFailed(ResponderError):
    """An AWS call failed for good (not retryable, or retries exhausted)."""

    def __init__(self, service: str, operation: str, code: str, message: str) -> None:
        super().__init__(f"{operation} failed: {code}: {message}")
        self.service = service
        self.operation = operation
        self.code = code
        self.aws_message = message

    def explain(self, again: str = "`respond resume`") -> str:
        """What the on-call engineer must fix, rather than what AWS said; `again` is what
        to run once it is fixed (a step of an incident: resume; other work: its own)."""
        for codes, advice in _ADVICE:
            if self.code in codes:
                return advice.format(op=self.operation, service=self.service, code=self.code,
                                     said=self.aws_message, again=again)
        return str(self)


AGAIN: Final = "run the same command again"
"""explain()'s `again` for work that is not a step of an incident (identify, audit)."""

_ADVICE: Final = (
    ({"AccessDenied", "AccessDeniedException"},
     "{op} was denied ({said}); the responder's credentials need {service}:{op} (see "
     "docs/iam-policy.json). Fix the policy, then {again}"),
    ({"NoSuchEntity"},
     "{op}: {said}. Was the user or key deleted meanwhile? If so, `respond status` shows "
     "what was done; nothing more is needed for it"),
    ({"NoCredentialsError", "PartialCredentialsError", "CredentialRetrievalError"},
     "no usable AWS credentials: set AWS_PROFILE (or pass --profile), or AWS_ACCESS_KEY_ID "
     "and AWS_SECRET_ACCESS_KEY, as for the AWS CLI ({said})"),
    ({"InvalidClientTokenId", "SignatureDoesNotMatch", "ExpiredToken", "ExpiredTokenException",
      "UnrecognizedClientException"},
     "AWS rejected the responder's credentials ({code}: {said}): refresh them (e.g. `aws sso "
     "login`) and run again"),
    ({"EndpointConnectionError", "ConnectTimeoutError", "ReadTimeoutError",
      "ConnectionClosedError"},
     "AWS did not answer {op} ({said}): check the network and AWS_ENDPOINT_URL; "
     "RESPONDER_RETRY_DEADLINE_SECONDS bounds the wait"),
    ({"LimitExceeded"},
     "{op} hit an IAM limit ({said}): a user may hold two access keys. Delete a key you are "
     "sure is unused, then {again}"),
)


def step_failure(exc: Exception, *, again: str) -> tuple[str, Mapping[str, Any]]:
    """What a step that raised `exc` journals: its error and what it did achieve. `again`
    is the command that runs it again once the cause is fixed (local files only)."""
    if isinstance(exc, AwsCallFailed):
        return exc.explain(again), {}
    if isinstance(exc, StepFailed):
        return exc.reason, exc.detail
    if isinstance(exc, OSError):  # local files (evidence, reports): never AWS's doing
        return (f"cannot write local files: {type(exc).__name__}: {exc}; fix the disk or "
                f"$RESPONDER_HOME, then {again}"), {}
    return f"internal error: {type(exc).__name__}: {exc}", {}
