"""The one retry policy and the redaction of what is journaled."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from responder.aws import BOTO_CONFIG, RetryPolicy, is_retryable
from responder.redaction import redact

SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


def _error(code: str, status: int = 400) -> ClientError:
    response: Any = {"Error": {"Code": code, "Message": code},
                     "ResponseMetadata": {"HTTPStatusCode": status}}
    return ClientError(response, "Op")


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


def test_one_attempt_policy_makes_one_attempt() -> None:
    """max_attempts=1: a retryable error is raised as it came, after the one attempt."""
    calls: list[int] = []

    def throttled() -> None:
        calls.append(1)
        raise _error("Throttling")

    with pytest.raises(ClientError, match="Throttling"):
        RetryPolicy(max_attempts=1, initial_seconds=0, max_seconds=0).call(throttled)
    assert calls == [1]


def test_session_offers_only_what_the_tool_uses() -> None:
    """aws.Session has client, region_name, get_credentials and events, and nothing falls
    back to boto3: an attribute of boto3's session alone is an AttributeError, and boto3
    is never imported."""
    code = (
        "import sys\n"
        "from responder.aws import Session\n"
        "s = Session(region_name='eu-west-1', aws_access_key_id='AKIAEXAMPLE0000000001',\n"
        "            aws_secret_access_key='x')\n"
        "assert s.region_name == 'eu-west-1'\n"
        "assert s.get_credentials().access_key == 'AKIAEXAMPLE0000000001'\n"
        "s.events.register('before-call', lambda **_: None)\n"
        "assert s.client('sts').meta.region_name == 'eu-west-1'\n"
        "try:\n"
        "    s.resource\n"
        "except AttributeError:\n"
        "    pass\n"
        "else:\n"
        "    raise SystemExit('resource() fell back to boto3')\n"
        "assert 'boto3' not in sys.modules\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=False, env={**os.environ, "AWS_CONFIG_FILE": os.devnull,
                                            "AWS_SHARED_CREDENTIALS_FILE": os.devnull})
    assert done.returncode == 0, done.stderr


def test_botocore_retries_are_off() -> None:
    """Only tenacity retries: botocore makes exactly one attempt per call."""
    retries = BOTO_CONFIG.retries  # type: ignore[attr-defined]  # set by Config()
    assert retries == {"total_max_attempts": 1, "mode": "standard"}


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
