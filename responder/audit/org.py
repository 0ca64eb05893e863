"""`respond audit --org`: every active account of an organization, audited in parallel.

The organization's accounts come from ListAccounts, which only the management account
and a delegated administrator may call; each account is then reached through the role
the responder already uses (RESPONDER_ROLE_ARN_TEMPLATE) and audited from its own
credential report (credential_report.audit), exactly as `respond audit` audits one.

Why in parallel, and why that stays within IAM's limits: an account's audit is a few
calls that mostly wait (a report being generated, a document downloaded), and IAM's
request quotas are per account. Each worker calls IAM in its own account, so the
accounts' quotas do not add up; what they share is the caller's STS quota (one
AssumeRole per account), spread over the pool and retried with backoff by the Api. The
run then takes about as long as its slowest account (or, with more accounts than
workers, the pool's share of the sum), not the sum.

An account that cannot be audited (the role cannot be assumed, the credential report is
refused) is one result with its error, named in the report: never a silent gap, and
never the end of the other accounts' audit.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from responder.audit.credential_report import SEVERITY, Finding, Settings, audited
from responder.aws import Api, ApiCall, Session, error_code
from responder.errors import (
    AGAIN,
    MESSAGE_CHARS,
    AwsCallFailed,
    BadInput,
    ResponderError,
    clipped,
)
from responder.redaction import SECRET_SHAPED

WORKERS = 32
"""Accounts audited at once (`--workers`). A worker mostly waits (a report being made, a
document downloaded) and IAM's quotas are per account, so an organization of dozens of
accounts takes about as long as its slowest one (benchmarks/audit_org.py: with 8
workers, 50 accounts took 2.6x the slowest); one AssumeRole per account stays far below
STS's quota."""
PAGE_SIZE = 20
"""ListAccounts' largest page (MaxResults)."""
SESSION_NAME = "aws-key-responder-audit"
"""The AssumeRole session name: each member's CloudTrail shows who read its report."""


@dataclass(frozen=True)
class Member:
    """One active account of the organization."""

    account_id: str
    name: str


@dataclass(frozen=True)
class AccountAudit:
    """One account's audit: its findings, or why it could not be audited."""

    account_id: str
    name: str
    findings: tuple[Finding, ...]
    error: str | None
    """Why the account could not be audited (the role could not be assumed, the report
    was refused, ...): one line, no secrets. None when it was audited."""
    seconds: float
    """Wall time of this account's audit, AssumeRole included."""
    gap: str | None = None
    """What the role check could not read there (said with the findings, never dropped)."""


def _active(account: Mapping[str, Any]) -> bool:
    """ACTIVE by `State` when the response has it, else by `Status`: AWS added State
    (with PENDING_ACTIVATION and CLOSED) in 2025 and retires Status, so a newer response
    may carry only State and an older one (or an older botocore) only Status."""
    state = account.get("State") or account.get("Status")
    return state == "ACTIVE"


def members(api: Api, *, page_size: int = PAGE_SIZE) -> tuple[Member, ...]:
    """The organization's active accounts, sorted by id (every page of ListAccounts).

    Suspended, closing and closed accounts are left out: their credentials cannot be
    used, so there is nothing to audit or to fix there. BadInput when these credentials
    cannot list the organization, saying which account to run from."""
    try:
        # counts_only: a journal, if any, keeps no list of the members' emails.
        accounts: list[Mapping[str, Any]] = [
            account for page in api.pages(ApiCall("organizations", "ListAccounts",
                                                  {"MaxResults": page_size}, counts_only=True))
            for account in page.get("Accounts") or []]
    except AwsCallFailed as exc:
        raise _not_listed(api, exc) from exc
    found = {str(a["Id"]): Member(str(a["Id"]), str(a.get("Name") or ""))
             for a in accounts if _active(a)}
    return tuple(found[i] for i in sorted(found))


def _not_listed(api: Api, exc: AwsCallFailed) -> BadInput:
    """Why ListAccounts failed, in terms of where to run from. DescribeOrganization is
    allowed to every member account, so a member can still be told the management
    account's id."""
    if exc.code == "AWSOrganizationsNotInUseException":
        return BadInput("audit --org: these credentials' account is in no organization "
                        "(AWSOrganizationsNotInUseException); run `respond audit` without "
                        "--org to audit it alone, or run from an organization's management "
                        "account")
    if exc.code not in {"AccessDenied", "AccessDeniedException"}:
        return BadInput(f"audit --org: {exc.explain(AGAIN)}")
    try:
        org = api.call(ApiCall("organizations", "DescribeOrganization"))["Organization"]
        management = f"the management account {org['MasterAccountId']}"
    except (AwsCallFailed, KeyError, TypeError):
        management = "the organization's management account"
    return BadInput(
        f"audit --org: ListAccounts was denied ({_one_line(exc.aws_message, 160)}): only "
        f"{management} or a delegated administrator may list the organization's "
        "accounts. Run from there, or grant organizations:ListAccounts to these "
        "credentials")


def through_role(api: Api, template: str, *, home: str | None = None,
                 ) -> Callable[[str], Api]:
    """The `api_for` the CLI gives audit_org: an Api acting in each account through
    `template`'s role (RESPONDER_ROLE_ARN_TEMPLATE). `home`, the account these
    credentials are in, is audited with them directly, as the responder does for a key
    in its own account (the role need not exist there).

    AssumeRole goes through `api` rather than a session factory: every worker shares the
    caller's STS quota, so a throttled AssumeRole is retried under the one policy, and a
    refusal arrives as AwsCallFailed, which audit_org names as that account's error."""
    if "{account_id}" not in template:
        raise BadInput(f"the role template {clipped(template)!r} has no {{account_id}}: "
                       "e.g. arn:aws:iam::{account_id}:role/KeyResponder")

    def api_for(account_id: str) -> Api:
        if account_id == home:
            return api
        creds = api.call(ApiCall("sts", "AssumeRole", {
            "RoleArn": template.format(account_id=account_id),
            "RoleSessionName": SESSION_NAME}))["Credentials"]
        return api.with_session(Session(  # each account a session: see Session's note
            aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key=creds["SecretAccessKey"],
            aws_session_token=creds["SessionToken"],
            region_name=api.session.region_name, shared_loader=True))

    return api_for


def _one_line(text: str, limit: int = MESSAGE_CHARS) -> str:
    """A message as the report prints it: one line, nothing secret-shaped, clipped."""
    return clipped(SECRET_SHAPED.sub("<redacted>", " ".join(text.split())), limit)


def _why(exc: Exception) -> str:
    """An account's error, in terms of what to fix there. AssumeRole's refusal is said
    apart: the fix is the role in the member account (missing, or not trusting the
    caller), not the caller's own policy, which explain() would suggest."""
    if isinstance(exc, AwsCallFailed):
        operation, code, said = exc.operation, exc.code, exc.aws_message
    elif isinstance(exc, ClientError):
        operation, code = exc.operation_name, error_code(exc)
        said = str(exc.response.get("Error", {}).get("Message", exc))
    else:
        operation, code, said = "", "", str(exc)
    if operation == "AssumeRole":
        text = (f"cannot assume the responder's role there ({code}: {said}); the role must "
                "exist in the account and trust the account running the audit")
    elif isinstance(exc, AwsCallFailed):
        text = exc.explain(AGAIN)
    elif isinstance(exc, ClientError):
        text = f"{operation} failed: {code}: {said}"
    else:
        text = said if isinstance(exc, ResponderError) else f"{type(exc).__name__}: {said}"
    return _one_line(text)


def audit_org(members: Sequence[Member], api_for: Callable[[str], Api], now: datetime,
              settings: Settings, *, workers: int = WORKERS,
              progress: Callable[[int, int, AccountAudit], None] | None = None,
              seen_dir: Path | None = None,
              sleep: Callable[[float], None] = time.sleep) -> tuple[AccountAudit, ...]:
    """Every member's audit, in member order.

    `api_for(account_id)` is called inside the worker, so one account's AssumeRole
    failure is that account's error, not the run's; AWS's and the project's errors are
    caught per account, programming errors propagate (and cancel the accounts not yet
    started). `progress(done, total, last)` is called on the calling thread as each
    account finishes, so the terminal line needs no lock. Each account remembers what
    its keys were used from in `seen_dir/ACCOUNT.json`. `sleep` waits between polls of
    a report being generated (tests pass a no-op)."""
    if workers < 1:
        raise ValueError(f"workers must be at least 1, not {workers}")
    if not members:
        return ()

    def one(member: Member) -> AccountAudit:
        started = time.perf_counter()
        seen = seen_dir / f"{member.account_id}.json" if seen_dir is not None else None
        try:
            done = audited(api_for(member.account_id), now, settings, seen, sleep=sleep)
        except (ResponderError, ClientError, BotoCoreError) as exc:
            return AccountAudit(member.account_id, member.name, (), _why(exc),
                                time.perf_counter() - started)
        return AccountAudit(member.account_id, member.name, tuple(done.findings), None,
                            time.perf_counter() - started, done.gap)

    results: dict[int, AccountAudit] = {}
    pool = ThreadPoolExecutor(max_workers=min(workers, len(members)),
                              thread_name_prefix="audit-org")
    try:
        futures: dict[Future[AccountAudit], int] = {
            pool.submit(one, member): index for index, member in enumerate(members)}
        for done, future in enumerate(as_completed(futures), 1):
            result = future.result()
            results[futures[future]] = result
            if progress is not None:
                progress(done, len(members), result)
    finally:
        # On an error or Ctrl-C: no account not yet started is started.
        pool.shutdown(wait=True, cancel_futures=True)
    return tuple(results[i] for i in range(len(members)))


def ranked(results: Sequence[AccountAudit]) -> list[tuple[str, Finding]]:
    """Every finding of every account, with its account: most severe first, then by
    account and user, so the organization's worst credentials head one list whichever
    account they are in."""
    every = [(r.account_id, f) for r in results for f in r.findings]
    return sorted(every, key=lambda pair: (SEVERITY[pair[1].severity], pair[0],
                                           pair[1].user, pair[1].credential))
