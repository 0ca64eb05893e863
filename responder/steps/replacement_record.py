"""The replacement's record in AWS itself: tags on the IAM user, read by every responder.

A journal knows only what its own runs did. The same key answered from two journals (a
laptop's `responder.db` and the Lambda's table, or a deleted `responder.db`) would get
two replacement keys, so replace-key keeps its record where every responder looks: on
the user. Two kinds of tag (IAM user tags hold only letters, digits, spaces and
`_ . : / = + - @`; values up to 256 characters):

- a claim, one per incident: `aws-key-responder:replacing:<incident id>` =
  `<compromised key id>/<time>`, written before CreateAccessKey and removed once the
  replacement is recorded. One tag key per incident, never one shared key: a responder
  writes its claim and then reads the tags back, and whoever sees another fresh claim on
  the same key withdraws. With a shared key the second writer would overwrite the first
  and both, reading back their own value, would go on.
- the record, one per user: `aws-key-responder:replacement` =
  `<compromised key id>:<new key id>:<incident id>`, written after the secret is stored.
  The incident id gives the secret version the responder stored (version_token), so
  "does the secret still hold this key?" is one DescribeSecret, never reading the value.

A claim is fresh for CLAIM_SECONDS after it was written: far longer than a live
responder needs from claim to record (at most five calls, each bounded by the retry
deadline), short enough that a claim left by a dead responder blocks others only briefly.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from responder.aws import Api, ApiCall
from responder.context import iso, parse_iso
from responder.errors import AwsCallFailed, StepFailed

TAG_PREFIX = "aws-key-responder:"
CLAIM_PREFIX = f"{TAG_PREFIX}replacing:"
RECORD_KEY = f"{TAG_PREFIX}replacement"
CLAIM_SECONDS = 600.0
PERMISSIONS = ("iam:ListUserTags", "iam:TagUser", "iam:UntagUser")


def claim_key(incident_id: str) -> str:
    """The tag key of an incident's claim."""
    return CLAIM_PREFIX + incident_id


@dataclass(frozen=True)
class Claim:
    """A responder's "I am replacing this key now", as tagged on the user."""

    incident_id: str
    compromised: str
    at: datetime | None
    """None when the tag's time cannot be read: such a claim is stale."""

    @property
    def tag_key(self) -> str:
        return claim_key(self.incident_id)

    @property
    def tag_value(self) -> str:
        return f"{self.compromised}/{iso(self.at)}"

    def fresh(self, now: datetime) -> bool:
        """Younger than CLAIM_SECONDS (a claim dated ahead of our clock counts as fresh)."""
        return self.at is not None and now - self.at < timedelta(seconds=CLAIM_SECONDS)

    @classmethod
    def parse(cls, key: str, value: str) -> Claim:
        compromised, _, when = value.partition("/")
        try:
            at = parse_iso(when)
        except ValueError:
            at = None
        return cls(key.removeprefix(CLAIM_PREFIX), compromised, at)


@dataclass(frozen=True)
class Replacement:
    """The replacement a responder issued for a compromised key, as tagged on the user."""

    compromised: str
    access_key_id: str
    incident_id: str

    @property
    def tag_value(self) -> str:
        return f"{self.compromised}:{self.access_key_id}:{self.incident_id}"

    @classmethod
    def parse(cls, value: str) -> Replacement | None:
        parts = value.split(":")
        return cls(*parts) if len(parts) == 3 and all(parts) else None


@dataclass(frozen=True)
class UserTags:
    """The responder's tags on one user, as one ListUserTags read them."""

    claims: tuple[Claim, ...] = ()
    replacement: Replacement | None = None

    def replacement_of(self, compromised: str) -> Replacement | None:
        found = self.replacement
        return found if found is not None and found.compromised == compromised else None

    def own(self, incident_id: str) -> Claim | None:
        return next((c for c in self.claims if c.incident_id == incident_id), None)

    def in_flight(self, compromised: str, incident_id: str, now: datetime) -> Claim | None:
        """Another incident's fresh claim on this key that has not recorded its result."""
        done = self.replacement_of(compromised)
        for claim in self.claims:
            if (claim.compromised == compromised and claim.incident_id != incident_id
                    and claim.fresh(now)
                    and (done is None or done.incident_id != claim.incident_id)):
                return claim
        return None

    def stale(self, incident_id: str, now: datetime) -> tuple[str, ...]:
        """Tag keys of other incidents' claims (on any key) too old to hold anyone back."""
        return tuple(c.tag_key for c in self.claims
                     if c.incident_id != incident_id and not c.fresh(now))


def read(api: Api, user: str) -> UserTags:
    """The user's responder tags (ListUserTags; IAM allows 50 tags, one page of 100)."""
    claims: list[Claim] = []
    replacement: Replacement | None = None
    params: dict[str, str | int] = {"UserName": user, "MaxItems": 100}
    while True:
        page = api.call(ApiCall("iam", "ListUserTags", dict(params)))
        for tag in page.get("Tags", []):
            key, value = str(tag.get("Key", "")), str(tag.get("Value", ""))
            if key.startswith(CLAIM_PREFIX):
                claims.append(Claim.parse(key, value))
            elif key == RECORD_KEY:
                replacement = Replacement.parse(value)
        if not page.get("IsTruncated") or not page.get("Marker"):
            return UserTags(tuple(claims), replacement)
        params["Marker"] = str(page["Marker"])


def _tag(api: Api, step: str, user: str, key: str, value: str) -> None:
    try:
        api.call(ApiCall("iam", "TagUser", {"UserName": user, "Tags": [
            {"Key": key, "Value": value}]}, mutating=True))
    except AwsCallFailed as exc:
        if exc.code != "LimitExceeded":
            raise
        raise StepFailed(step, f"cannot tag {user} with {key} ({exc.aws_message}): IAM "
                         "allows 50 tags per user, and this tag is how other responders "
                         "see the replacement. Remove an unused tag, then `respond "
                         "resume`") from exc


def claim(api: Api, step: str, user: str, mine: Claim) -> None:
    """Tag the user with this incident's claim (TagUser overwrites an earlier one)."""
    _tag(api, step, user, mine.tag_key, mine.tag_value)


def record(api: Api, step: str, user: str, replacement: Replacement) -> None:
    """Tag the user with the replacement now stored: the commit other responders adopt."""
    _tag(api, step, user, RECORD_KEY, replacement.tag_value)


def release(api: Api, user: str, tag_keys: Iterable[str]) -> None:
    """Remove claims (ours once recorded or withdrawn, others' once stale)."""
    keys = sorted(set(tag_keys))
    if keys:
        api.call(ApiCall("iam", "UntagUser", {"UserName": user, "TagKeys": keys},
                         mutating=True))
