"""The template language of iam-dataset's map, applied to a CloudTrail record's request.

The map (hardening/data, iam_data.py) says which IAM actions an API call needs and how to
fill each action's ARN format from the request: `${FunctionName}` is a request parameter,
`%%regex%${QueueUrl}%/.../g%%` takes a regular expression's first group of one,
`%%iftruthy%${X}%then%else%%`, `%%iftemplatematch%${X}%%` (X only if it looks like the
ARN format), `%%many%${A}%${B}%%` (several resources) and `%%urlencode%${X}%%`. This is
iamlive's reading of the same templates (iamlivecore/logger.go: resolveSpecials,
subARNParameters), so the map means here what its authors meant.

Two differences from iamlive, both because a proposal must never deny the user's own
call: a variable the request does not fill becomes `*` in the ARN (iamlive does the
same), and an IAM name "WithPath" (a role created under /service-role/) also gets a
`*/` form, since CloudTrail names a role without its path.

CloudTrail's requestParameters name members in lowerCamelCase where the map uses the
SDK's PascalCase, and S3's REST events say bucketName for the SDK's Bucket: names are
compared case-insensitively, through ALIASES.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

ALIASES: Mapping[str, str] = {
    "bucket": "bucketname",  # S3's REST events: bucketName for the SDK's Bucket
}
"""A template variable (lower case) -> the path CloudTrail records it under."""
GENERALISED: frozenset[str] = frozenset({"objectname"})
"""ARN format variables (lower case) kept as `*` whatever the request says: one
statement per S3 object key would be a policy nobody can read or fit."""
MAX_ARNS = 20
"""A call naming more resources than this (a batch) is held to `*` in those variables
rather than a statement that lists every one."""

_VARIABLE = re.compile(r"\$\{([^}]+)\}")
_SPECIAL = re.compile(r"%%(.*)%%", re.DOTALL)


@dataclass(frozen=True)
class Request:
    """What fills a template: the request's parameters, flattened to lower-case paths
    (`transactitems[].put.tablename`), each with every value it takes, and where."""

    params: Mapping[str, tuple[str, ...]]
    partition: str
    region: str
    account: str


def flatten(value: Any, path: str = "", into: dict[str, list[str]] | None = None
            ) -> dict[str, list[str]]:
    """requestParameters as lower-case paths -> values (lists as `[]` segments)."""
    found: dict[str, list[str]] = {} if into is None else into
    if isinstance(value, Mapping):
        for key, item in value.items():
            flatten(item, f"{path}.{str(key).lower()}" if path else str(key).lower(), found)
    elif isinstance(value, list):
        for item in value:
            flatten(item, f"{path}[]", found)
    elif value is not None and path:
        text = str(value).lower() if isinstance(value, bool) else str(value)
        found.setdefault(path, []).append(text)
    return found


def request_of(params: Any, partition: str, region: str, account: str) -> Request:
    flat = flatten(params if isinstance(params, Mapping) else {})
    return Request({k: tuple(dict.fromkeys(v)) for k, v in flat.items()}, partition, region,
                   account)


def _values(name: str, request: Request) -> tuple[str, ...]:
    key = name.lower().removesuffix("[]")
    found = request.params.get(key) or request.params.get(ALIASES.get(key, key))
    if found is None and "[]" not in key:  # a list the map names without its brackets
        found = request.params.get(f"{key}[]")
    return found or ()


def _fill(template: str, request: Request) -> list[str]:
    """Every `${...}` the request's parameters fill, one text per combination of their
    values; a variable whose values would pass MAX_ARNS combinations is left as is."""
    texts = [template]
    for name in dict.fromkeys(_VARIABLE.findall(template)):
        if name in ("Partition", "Region", "Account"):
            continue
        values = _values(name, request)
        if values and len(texts) * len(values) <= MAX_ARNS:
            texts = [t.replace(f"${{{name}}}", v) for t in texts for v in values]
    return texts


def substitute_params(template: str, request: Request) -> tuple[bool, tuple[str, ...]]:
    """Request parameters only (iamlive's specialsOnly): whether every `${...}` was
    filled, and the results."""
    texts = _fill(template, request)
    return all(_VARIABLE.search(t) is None for t in texts), tuple(texts)


def substitute(template: str, request: Request) -> tuple[bool, tuple[str, ...]]:
    """Fill every `${...}` from the request, then Partition, Region and Account; what is
    left becomes `*`. (whether every variable was filled, the ARNs): one per combination
    of a parameter's values, at most MAX_ARNS."""
    full = True
    done: list[str] = []
    for text in _fill(template, request):
        arn = (text.replace("${Partition}", request.partition)
               .replace("${Region}", request.region).replace("${Account}", request.account))
        starred = _VARIABLE.sub("*", arn)
        full = full and starred == arn
        done.append(starred)
    return full, tuple(dict.fromkeys(done))


@lru_cache(maxsize=1024)
def _format_pattern(arn_format: str) -> re.Pattern[str]:
    parts = _VARIABLE.split(arn_format)
    # split() alternates text and variable names: text is literal, a name any text.
    return re.compile("".join(re.escape(p) if i % 2 == 0 else ".*?"
                              for i, p in enumerate(parts)))


def _go_regex(text: str) -> re.Pattern[str] | None:
    """The map writes JavaScript-style /pattern/g; Go's and Python's syntax agree on
    what the map uses. A pattern Python refuses resolves nothing (so `*`)."""
    if text.startswith("/"):
        text = text[1:text.rfind("/")] if text.rfind("/") > 0 else text[1:]
    try:
        return re.compile(text)
    except re.error:
        return None


def _one(arg: str, request: Request) -> str | None:
    full, values = substitute_params(arg, request)
    return values[0] if full and values and values[0] else None


def _iftruthy(args: list[str], request: Request, _: str | None) -> tuple[str, ...] | None:
    args = [*args, ""] if len(args) == 2 else args
    if len(args) != 3:
        return ("*",)
    value = _one(args[0], request)
    chosen = args[2] if value is None or value.lower() in ("false", "0") else args[1]
    return (chosen,) if chosen else None


def _urlencode(args: list[str], request: Request, _: str | None) -> tuple[str, ...] | None:
    value = _one(args[0], request) if len(args) == 1 else None
    return (urllib.parse.quote_plus(value),) if value else None


def _iftemplatematch(args: list[str], request: Request, arn_format: str | None
                     ) -> tuple[str, ...] | None:
    if len(args) != 1 or arn_format is None:
        return ("*",)
    value = _one(args[0], request)
    return (value,) if value and _format_pattern(arn_format).match(value) else ("",)


def _many(args: list[str], request: Request, _: str | None) -> tuple[str, ...] | None:
    values = [_one(a, request) for a in args]
    return None if any(v is None for v in values) else tuple(v for v in values if v)


def _regex(args: list[str], request: Request, _: str | None) -> tuple[str, ...] | None:
    if len(args) != 2:
        return ("*",)
    value, pattern = _one(args[0], request), _go_regex(args[1])
    matched = pattern.search(value) if value is not None and pattern is not None else None
    if matched is None or not matched.groups() or not matched.group(1):
        return None
    return (matched.group(1),)


SPECIALS = {"iftruthy": _iftruthy, "urlencode": _urlencode,
            "iftemplatematch": _iftemplatematch, "many": _many, "regex": _regex}
"""The map's template functions: each gives the texts that replace it, or None when the
request does not fill it. An unknown function resolves to `*`, as in iamlive."""


def specials(template: str, request: Request, *, mandatory: bool,
             arn_format: str | None) -> tuple[str, ...]:
    """Resolve the `%%function%...%%` part of a template (iamlive's resolveSpecials);
    ("",) means "this resource does not apply to this request". `%%many%%` gives each
    value alone, without the text around it, as iamlive does."""
    found = _SPECIAL.search(template)
    if found is None:
        return (template,)
    before, after = template[:found.start()], template[found.end():]
    kind, *args = found.group(1).split("%")
    function = SPECIALS.get(kind)
    texts = function(args, request, arn_format) if function is not None and args else ("*",)
    if texts is None:
        return (before + ("*" if mandatory else "") + after,)
    if kind == "many":
        return texts
    return tuple(before + t + after for t in texts)


def with_paths(variable: str, values: tuple[str, ...]) -> tuple[str, ...]:
    """An IAM "...WithPath" variable filled from a bare name also matches the entity
    under any path: CloudTrail names a role `app` whose ARN is role/service-role/app."""
    if not variable.endswith("WithPath"):
        return values
    return tuple(dict.fromkeys([*values, *(f"*/{v}" for v in values
                                          if "/" not in v and v != "*")]))


def leading_slash(variable: str, template: str) -> str:
    """An ARN variable "...WithoutLeadingSlash" (SSM's parameter/${Name...}) filled from
    a request that names `/app/db`: the slash is already in the ARN format."""
    if not variable.endswith("WithoutLeadingSlash") or "%%" in template:
        return template
    return f"%%regex%{template}%/^\\/?(.+)$/g%%"
