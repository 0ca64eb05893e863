"""Sessions on botocore, and the factory a run gets them from.

Importing boto3 (and s3transfer with it) costs about 40 ms before the first call and gives
this tool nothing: the AWS CLI is built on botocore the same way (docs/decisions.md #31).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeAlias

import botocore.session
from botocore.config import Config
from botocore.exceptions import ProfileNotFound
from botocore.loaders import Loader, create_loader

from responder.errors import BadInput

if TYPE_CHECKING:
    import boto3

BOTO_CONFIG = Config(
    retries={"total_max_attempts": 1, "mode": "standard"},
    connect_timeout=5,
    read_timeout=15,
    user_agent_extra="aws-key-responder",
)


class Session:
    """A session on botocore alone, shaped like boto3's where this tool uses one:
    client(), region_name, get_credentials() and events, and nothing else (a caller that
    needs more of boto3 makes a boto3 session). Importing boto3 (and s3transfer with it)
    costs about 40 ms before the first call and gives this tool nothing: the AWS CLI is
    built on botocore the same way. Callers may still hand in boto3 sessions (tests, the
    drill): nothing here asks more of a session than those four."""

    def __init__(self, *, profile_name: str | None = None, region_name: str | None = None,
                 aws_access_key_id: str | None = None, aws_secret_access_key: str | None = None,
                 aws_session_token: str | None = None, shared_loader: bool = False) -> None:
        """`shared_loader`: read botocore's endpoint and service files once for every
        session that asks (each new botocore session parses them again, about 0.1 s of
        CPU: an audit of 50 accounts, a session each, took 10 s instead of 3)."""
        self._core = botocore.session.Session(profile=profile_name)
        if shared_loader:
            self._core.register_component("data_loader", _loader(
                self._core.get_config_variable("data_path")))
        if profile_name is not None:
            self._core.get_scoped_config()  # ProfileNotFound now, as boto3 raises it
        if aws_access_key_id is not None and aws_secret_access_key is not None:
            self._core.set_credentials(aws_access_key_id, aws_secret_access_key,
                                       aws_session_token)
        if region_name is not None:
            self._core.set_config_variable("region", region_name)

    @property
    def region_name(self) -> str | None:
        region = self._core.get_config_variable("region")
        return str(region) if region else None

    def client(self, service_name: str, region_name: str | None = None,
               config: Config | None = None) -> Any:
        return self._core.create_client(service_name, region_name=region_name, config=config)

    def get_credentials(self) -> Any:
        return self._core.get_credentials()

    @property
    def events(self) -> Any:
        """The session's botocore event hooks (boto3's `Session.events`)."""
        return self._core.get_component("event_emitter")


@functools.cache
def _loader(data_path: str | None) -> Loader:
    """One botocore data loader per data path: it only reads and caches files."""
    return create_loader(data_path)


AnySession: TypeAlias = "Session | boto3.Session"
SessionFactory = Callable[[], AnySession]


def session_factory(
    profile: str | None = None, region: str | None = None, role_arn: str | None = None
) -> SessionFactory:
    """A factory of sessions from the default chain (optionally via a role)."""

    made: list[Session] = []
    lock = threading.Lock()

    def make() -> Session:
        """One session for the whole process (its clients are built once, see _Clients);
        its credentials refresh themselves as the default chain's do."""
        with lock:
            if made:
                return made[0]
            try:
                base = Session(profile_name=profile, region_name=region)
                if base.region_name is None:
                    # IAM and STS answer in us-east-1; the AWS CLI would fail here, we need not.
                    base = Session(profile_name=profile, region_name="us-east-1")
            except ProfileNotFound as exc:
                raise BadInput(f"AWS profile {profile!r} is not in the AWS config or "
                               "credentials files (`aws configure list-profiles` lists them)"
                               ) from exc
            made.append(base)
            return base

    return assuming(make, role_arn) if role_arn else make


def assuming(base: SessionFactory, role_arn: str) -> SessionFactory:
    """Sessions that act through `role_arn`, assumed from `base`'s credentials."""

    def make() -> Session:
        session = base()
        creds = session.client("sts", config=BOTO_CONFIG).assume_role(
            RoleArn=role_arn, RoleSessionName="aws-key-responder")["Credentials"]
        return Session(
            aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key=creds["SecretAccessKey"],
            aws_session_token=creds["SessionToken"],
            region_name=session.region_name,
        )

    return make


def caller_access_key(session: AnySession) -> str | None:
    """The access key id this process signs with, read locally (no AWS call)."""
    creds = session.get_credentials()
    return None if creds is None else creds.access_key
