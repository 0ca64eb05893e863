"""The one retry policy and the redaction of what is journaled."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from responder.aws import BOTO_CONFIG, RetryPolicy, is_retryable
from responder.redaction import redact

SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


def _error(code: str, status: int = 400) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": code},
                        "ResponseMetadata": {"HTTPStatusCode": status}}, "Op")


@pytest.mark.parametrize("code", ["Throttling", "ThrottlingException", "RequestLimitExceeded",
                                  "ConcurrentModification", "EntityTemporarilyUnmodifiable",
                                  "ServiceFailure"])
def test_transient_errors_are_retried(code: str) -> None:
    """DESIGN §5's transient codes are retried."""
    assert is_retryable(_error(code))


@pytest.mark.parametrize("code", ["AccessDenied", "LimitExceeded", "ValidationError",
                                  "InvalidClientTokenId"])
def test_permanent_errors_are_not_retried_even_as_5xx(code: str) -> None:
    """Retrying cannot fix a denial or a bad request, whatever the status code says."""
    assert not is_retryable(_error(code, 500))


def test_5xx_and_connection_errors_are_retried() -> None:
    """Unknown server errors and dropped connections are transient."""
    assert is_retryable(_error("SomethingNew", 503))
    assert is_retryable(EndpointConnectionError(endpoint_url="http://x"))
    assert not is_retryable(_error("SomethingNew", 400))


def test_no_such_entity_only_retried_right_after_a_create() -> None:
    """NoSuchEntity is transient only where the caller says so (eventual consistency)."""
    assert not is_retryable(_error("NoSuchEntity", 404))
    assert is_retryable(_error("NoSuchEntity", 404), not_found_is_transient=True)


def test_policy_counts_attempts_and_reraises() -> None:
    """The policy returns the attempt count, and re-raises the last error when it gives up."""
    policy = RetryPolicy(max_attempts=3, initial_seconds=0, max_seconds=0)
    failures = iter([_error("Throttling"), _error("Throttling")])

    def flaky() -> str:
        error = next(failures, None)
        if error is not None:
            raise error
        return "ok"

    assert policy.call(flaky) == ("ok", 3)
    with pytest.raises(ClientError, match="AccessDenied"):
        policy.call(lambda: (_ for _ in ()).throw(_error("AccessDenied")))


def test_botocore_retries_are_off() -> None:
    """Only tenacity retries: botocore makes exactly one attempt per call."""
    assert BOTO_CONFIG.retries == {"total_max_attempts": 1, "mode": "standard"}


def test_redact_removes_secret_fields_and_secret_shaped_strings() -> None:
    """Secrets never reach the journal: by field name, and by shape in any string field."""
    response = {
        "AccessKey": {"AccessKeyId": "AKIAIOSFODNN7EXAMPLE", "SecretAccessKey": SECRET},
        "Other": [SECRET],
        "ResponseMetadata": {"RequestId": "r"},
    }
    cleaned = redact(response)
    assert SECRET not in repr(cleaned)
    assert cleaned["AccessKey"]["AccessKeyId"] == "AKIAIOSFODNN7EXAMPLE"
    assert "ResponseMetadata" not in cleaned
