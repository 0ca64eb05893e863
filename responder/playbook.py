"""Load and validate playbooks before anything touches AWS.

A playbook is refused as a whole, with the file, the step and the field named, so a
typo in a 3 a.m. edit costs one re-run instead of a half-finished incident.

The shipped playbooks are validated when the package is built, not at run time:
`python -m responder.playbook > playbooks/shipped.json` writes each one as validated
(Playbook.to_dict), and a test fails when that file and the YAML drift apart. Loading
one by name reads that JSON, so neither PyYAML nor jsonschema nor any step module is
imported on the way to containment. A user's own playbook file is parsed and validated
on every load.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable  # Python ≥ 3.11
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from responder.errors import BadInput, PlaybookInvalid
from responder.incident.action import REGISTRY

if TYPE_CHECKING:
    import jsonschema
    import yaml

SHIPPED_PACKAGE = "responder.playbooks"
SHIPPED_JSON = "shipped.json"
"""The shipped playbooks as validated at build time: name -> Playbook.to_dict()."""
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
        """Validate and build; `origin` names the file in every error message.

        Data exactly equal to a shipped playbook as validated at build time (what the
        runner reads back from the journal for an incident of a shipped playbook) is
        valid already and is not checked again; anything else is validated in full."""
        if not _is_shipped(data):
            _validate(data, origin)
        return cls._build(data, origin)

    @classmethod
    def _build(cls, data: Mapping[str, Any], origin: str) -> Playbook:
        """The playbook of `data`, which must be valid already."""
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


@cache
def _shipped_text() -> str:
    return (shipped_dir() / SHIPPED_JSON).read_text("utf-8")


def _shipped() -> dict[str, dict[str, Any]]:
    """playbooks/shipped.json, parsed afresh (callers may keep what they are given)."""
    return dict(json.loads(_shipped_text()))


def shipped_names() -> list[str]:
    return sorted(_shipped())


def _canonical(data: Any) -> str | None:
    try:
        return json.dumps(data, sort_keys=True)
    except (TypeError, ValueError):
        return None


def _is_shipped(data: Any) -> bool:
    """True when `data` is, exactly (JSON types included: 1 is not true), a shipped
    playbook as validated at build time."""
    name = data.get("name") if isinstance(data, Mapping) else None
    shipped = _shipped().get(name) if isinstance(name, str) else None
    return shipped is not None and _canonical(data) == _canonical(shipped)


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


def _validate(data: Any, origin: str) -> None:
    """Refuse `data` naming the file, step and field; imports jsonschema and the step
    modules of the actions it uses (their schemas and check_settings)."""
    import jsonschema  # noqa: PLC0415 - a user's playbook only: shipped ones are validated

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
    on first use: only a user's own playbook file (or a mapping of findings) is YAML."""
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
    """The playbook in `text`, parsed and validated in full (nothing is kept)."""
    data = load_yaml(text, origin)
    _validate(data, origin)
    return Playbook._build(data, origin)


def load(name_or_file: str) -> Playbook:
    """A shipped playbook by name (validated at build time: read from shipped.json), or
    a YAML file by path (parsed and validated now)."""
    shipped = _shipped()
    if name_or_file in shipped:
        return Playbook._build(shipped[name_or_file], f"playbooks/{name_or_file}.yaml")
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


def validated_shipped() -> dict[str, dict[str, Any]]:
    """Every playbooks/*.yaml parsed and validated now, by name: what shipped.json must
    hold (tests/test_playbook.py compares the two)."""
    found = sorted(p.name for p in shipped_dir().iterdir() if p.name.endswith(".yaml"))
    return {
        name.removesuffix(".yaml"): parse((shipped_dir() / name).read_text("utf-8"),
                                          f"playbooks/{name}").to_dict()
        for name in found
    }


def render_shipped() -> str:
    """playbooks/shipped.json's text."""
    return json.dumps(validated_shipped(), indent=2) + "\n"


if __name__ == "__main__":  # pragma: no cover
    sys.stdout.write(render_shipped())
