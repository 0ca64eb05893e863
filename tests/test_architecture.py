"""Meta-tests over the package itself: imports go one way, no module grows past a page.

Every `import` counts, at the top of a module, inside a function or under
TYPE_CHECKING: a cycle hidden in a function is still a cycle a reader must untangle.
The allowed directions are data (LAYERS), like cloud-custodian's meta-tests over its
registry: a part may import only parts in the layers below its own.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

import responder

PACKAGE = Path(responder.__file__).parent
MAX_LINES = 400

LAYERS: tuple[frozenset[str], ...] = tuple(frozenset(layer) for layer in (
    # responder: the package's own __init__; playbooks: the shipped YAML, as installed
    {"errors", "redaction", "responder", "playbooks"},
    {"logging"},
    {"aws"},
    {"context", "guardrails"},
    {"journal"},
    {"incident"},  # facts, the action registry, the view: one typed picture
    {"catalog"},  # what an attacker's CloudTrail event means, how to undo it: data
    {"playbook", "evidence", "iam"},
    {"hardening", "attacker", "findings", "report"},
    {"steps"},
    {"run"},  # service, executor, runner, machine, lease, follow-ups, trigger
    {"rotation", "audit"},
    {"iam_policy"},  # the policies, from every step's and use's declarations
    {"drill", "lambda_handler"},
    {"cli"},
))
"""Bottom first. A part is a subpackage of responder, or a module at its top."""


def _modules() -> Iterator[tuple[str, Path]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        yield ".".join(parts), path


MODULES = dict(_modules())


def _imports(name: str, path: Path) -> set[str]:
    """The responder modules `name` imports, wherever the import statement is."""
    found: set[str] = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            # `from package import module` imports the module; `from m import name`, m
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base
                       for a in node.names]
        else:
            continue
        for imported in targets:
            target = imported
            while target and target not in MODULES and "." in target:
                target = target.rpartition(".")[0]
            if target in MODULES and target != name:
                found.add(target)
    return found


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _part(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "responder"


def _layer(part: str) -> int:
    return next(i for i, layer in enumerate(LAYERS) if part in layer)


def test_every_part_has_a_layer() -> None:
    """A new subpackage or top-level module must be placed in LAYERS, on purpose."""
    parts = {_part(m) for m in MODULES}
    assert parts <= set().union(*LAYERS), parts - set().union(*LAYERS)


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_imports_go_down(module: str) -> None:
    """A part imports only from the layers below it: data flows one way."""
    mine = _layer(_part(module))
    upward = sorted(t for t in GRAPH[module]
                    if _part(t) != _part(module) and _layer(_part(t)) >= mine)
    assert not upward, f"{module} imports {upward} from its own layer or above"


def test_no_import_cycles_between_modules() -> None:
    """No two modules reach each other, not even through functions or TYPE_CHECKING."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in GRAPH[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for name in GRAPH:
        if name not in index:
            visit(name)
    assert cycles == []


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_over_a_page(module: str) -> None:
    """A module has one job: past 400 lines it has grown a second one."""
    lines = MODULES[module].read_text("utf-8").count("\n")
    assert lines <= MAX_LINES, f"{module}: {lines} lines"
