"""Load and validate playbooks before anything touches AWS.

A playbook is refused as a whole, with the file, the step and the field named, so a
typo in a 3 a.m. edit costs one re-run instead of a half-finished incident.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable  # Python ≥ 3.11
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from responder.context import responder_home
from responder.errors import BadInput, PlaybookInvalid
from responder.incident.action import REGISTRY

if TYPE_CHECKING:
    import jsonschema
    import yaml

SHIPPED_PACKAGE = "responder.playbooks"
RESERVED_STATES = ("completed", "halted", "refused", "waiting")
"""The runner's terminal states; a step may not take one of these names."""


@dataclass(frozen=True)
class StepSpec:
    """One step of a playbook, as validated."""

    name: str
    action: str
    on_failure: Literal["halt", "continue"] = "halt"
    settings: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Playbook:
    """A validated playbook; `origin` names its file in every error message."""

    name: str
    version: int
    steps: tuple[StepSpec, ...]
    origin: str
    description: str = ""
    sweeps: Mapping[str, Any] = field(default_factory=dict)
    """When to look at CloudTrail again after containment (schedule_sweeps' settings)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "description": self.description,
            **({"sweeps": dict(self.sweeps)} if self.sweeps else {}),
            "steps": [
                {"name": s.name, "action": s.action, "on_failure": s.on_failure,
                 "with": dict(s.settings)}
                for s in self.steps
            ],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], origin: str) -> Playbook:
        """Validate and build; `origin` names the file in every error message."""
        _validated(data, origin)
        steps = tuple(
            StepSpec(
                name=s["name"],
                action=s["action"],
                on_failure=s.get("on_failure", "halt"),
                settings=dict(s.get("with") or {}),
            )
            for s in data["steps"]
        )
        return cls(data["name"], data["version"], steps, origin, data.get("description", ""),
                   dict(data.get("sweeps") or {}))


def shipped_dir() -> Traversable:
    return resources.files(SHIPPED_PACKAGE)


def shipped_names() -> list[str]:
    return sorted(
        p.name.removesuffix(".yaml") for p in shipped_dir().iterdir() if p.name.endswith(".yaml")
    )


@cache
def _schema_text() -> str:
    return (shipped_dir() / "playbook.schema.json").read_text("utf-8")


def _schema() -> dict[str, Any]:
    return dict(json.loads(_schema_text()))


def _where(data: Any, path: list[Any]) -> str:
    """'step disable-key (steps[1]) field with.foo' from a jsonschema error path."""
    if len(path) >= 2 and path[0] == "steps" and isinstance(path[1], int):
        steps = data.get("steps") or []
        step = steps[path[1]] if path[1] < len(steps) else {}
        name = step.get("name", "?") if isinstance(step, dict) else "?"
        rest = ".".join(str(p) for p in path[2:])
        return f"step {name!r} (steps[{path[1]}])" + (f" field {rest!r}" if rest else "")
    return f"field {'.'.join(str(p) for p in path)!r}" if path else "top level"


def _schema_message(error: jsonschema.ValidationError) -> str:
    if error.validator == "additionalProperties":
        schema = error.schema if isinstance(error.schema, Mapping) else {}
        known = set(schema.get("properties", {}))
        instance = error.instance if isinstance(error.instance, Mapping) else {}
        extra = sorted(set(instance) - known)
        return f"unknown field {', '.join(repr(e) for e in extra)}"
    if error.validator == "required":
        return str(error.message).replace("is a required property", "is required")
    return str(error.message)


_VALID: set[str] = set()
"""Digests of playbook contents validated by this process."""


def _digest(data: Any) -> str | None:
    """What a validation depends on: the playbook's content, the schemas it is checked
    against (the file's and every action's: a shipped action's by its source file, so
    the digest imports no step) and the code that validates it."""
    try:
        content = json.dumps(data, sort_keys=True, default=str)
    except (TypeError, ValueError):
        return None
    steps = data.get("steps") if isinstance(data, Mapping) else None
    used = sorted({str(s.get("action")) for s in steps if isinstance(s, Mapping)} & set(REGISTRY)
                  ) if isinstance(steps, list) else []
    actions = json.dumps({name: REGISTRY.fingerprint(name) for name in [*used, "schedule_sweeps"]},
                         sort_keys=True, default=str)
    whole = "\0".join((content, actions, _schema_text(), _code_version()))
    return hashlib.sha256(whole.encode()).hexdigest()


@cache
def _code_version() -> str:
    """This module's source by size and modification time: what validates a playbook
    (cheaper than the package version, and it changes with every edit of a checkout)."""
    source = Path(__file__).stat()
    return f"{source.st_size}:{source.st_mtime_ns}"


def _cache_dir() -> Path:
    return responder_home() / "cache" / "playbooks"


def _validated(data: Any, origin: str) -> None:
    """Validate `data` once per content: a content this version already found valid (in
    this process, or recorded under $RESPONDER_HOME/cache) is not checked again, which
    keeps jsonschema (and its import) off the path to containment. Anything else is
    validated in full; an invalid playbook is never recorded."""
    digest = _digest(data)
    if digest is not None and (digest in _VALID or (_cache_dir() / digest).is_file()):
        return
    _validate(data, origin)
    if digest is None:
        return
    _VALID.add(digest)
    try:
        _cache_dir().mkdir(parents=True, exist_ok=True)
        (_cache_dir() / digest).touch()
    except OSError:
        pass  # a cache that cannot be written only costs the next run a validation


def _validate(data: Any, origin: str) -> None:
    import jsonschema  # noqa: PLC0415 - only when a content was not validated before

    if not isinstance(data, dict):
        raise PlaybookInvalid(f"{origin}: a playbook must be a mapping with name, version, steps")
    schema_errors = sorted(
        jsonschema.Draft202012Validator(_schema()).iter_errors(data),
        key=lambda e: list(map(str, e.absolute_path)),
    )
    if schema_errors:
        err = schema_errors[0]
        raise PlaybookInvalid(
            f"{origin}: {_where(data, list(err.absolute_path))}: {_schema_message(err)}"
        )
    seen: set[str] = set()
    for index, step in enumerate(data["steps"]):
        where = f"{origin}: step {step['name']!r} (steps[{index}])"
        if step["name"] in seen:
            raise PlaybookInvalid(f"{where}: step name used twice")
        if step["name"] in RESERVED_STATES:
            raise PlaybookInvalid(f"{where}: {step['name']!r} is reserved for the runner")
        seen.add(step["name"])
        action = REGISTRY.get(step["action"])
        if action is None:
            raise PlaybookInvalid(
                f"{where} field 'action': unknown action {step['action']!r}; known: "
                f"{', '.join(sorted(REGISTRY))}"
            )
        for err in jsonschema.Draft202012Validator(action.schema).iter_errors(
            step.get("with") or {}
        ):
            path = ".".join(["with", *map(str, err.absolute_path)])
            raise PlaybookInvalid(f"{where} field {path!r}: {_schema_message(err)}")
        problem = action.check_settings(step.get("with") or {})
        if problem is not None:
            raise PlaybookInvalid(f"{where}: {problem}")
    for err in jsonschema.Draft202012Validator(REGISTRY["schedule_sweeps"].schema).iter_errors(
        data.get("sweeps") or {}
    ):
        path = ".".join(["sweeps", *map(str, err.absolute_path)])
        raise PlaybookInvalid(f"{origin}: field {path!r}: {_schema_message(err)}")
    if REGISTRY[data["steps"][0]["action"]].kind != "identification":
        raise PlaybookInvalid(
            f"{origin}: step {data['steps'][0]['name']!r} (steps[0]): the first step must use "
            "action 'identify' (later steps need the key's owner)"
        )


@cache
def _strict_loader() -> type[yaml.SafeLoader]:
    """SafeLoader that refuses a key given twice in one mapping: YAML lets the second
    silently win, so a pasted `with:` block could quietly replace the reviewed one. Built
    on first use: most runs read a playbook whose parsed form is cached (see parse)."""
    import yaml  # noqa: PLC0415

    class StrictLoader(yaml.SafeLoader):
        def construct_mapping(self, node: yaml.MappingNode, deep: bool = False
                              ) -> dict[Any, Any]:
            seen: set[Any] = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=deep)
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"key {key!r} given twice", key_node.start_mark)
                seen.add(key)
            return super().construct_mapping(node, deep=deep)

    return StrictLoader


def load_yaml(text: str, origin: str, error: type[BadInput] = PlaybookInvalid) -> Any:
    """YAML to data; a syntax error becomes `error` naming the origin, line and column."""
    import yaml  # noqa: PLC0415

    try:
        return yaml.load(text, Loader=_strict_loader())  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1} column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise error(f"{origin}:{where}: invalid YAML: {problem}") from exc


def parse(text: str, origin: str) -> Playbook:
    """The playbook in `text`. Its parsed form is kept under $RESPONDER_HOME/cache by the
    digest of the text, so a later run with the same text needs no YAML parser."""
    parsed = _cache_dir() / (hashlib.sha256(text.encode()).hexdigest() + ".json")
    try:
        data = json.loads(parsed.read_text("utf-8"))
    except (OSError, ValueError):
        data = load_yaml(text, origin)
        playbook = Playbook.from_dict(data, origin)  # an invalid one is never kept
        try:
            _cache_dir().mkdir(parents=True, exist_ok=True)
            partial = parsed.with_suffix(".partial")
            partial.write_text(json.dumps(data), "utf-8")
            partial.replace(parsed)
        except (OSError, TypeError, ValueError):
            pass  # not JSON-shaped (dates in YAML), or no cache: parse again next time
        return playbook
    return Playbook.from_dict(data, origin)


def load(name_or_file: str) -> Playbook:
    """A shipped playbook by name, or a YAML file by path."""
    if name_or_file in shipped_names():
        resource = shipped_dir() / f"{name_or_file}.yaml"
        return parse(resource.read_text("utf-8"), f"playbooks/{name_or_file}.yaml")
    path = Path(name_or_file)
    if path.suffix in {".yaml", ".yml"} or path.exists() or "/" in name_or_file:
        try:
            text = path.read_text("utf-8")
        except OSError as exc:
            raise BadInput(f"cannot read playbook {name_or_file}: {exc.strerror}") from exc
        return parse(text, str(path))
    raise BadInput(
        f"unknown playbook {name_or_file!r}; shipped playbooks: {', '.join(shipped_names())} "
        "(or pass a path to a .yaml file)"
    )
