"""The playbook as a state machine: states and transitions as plain data.

One pure function turns a playbook into the machine, and both the runner (which hands
it to `transitions`) and `respond playbooks graph` (which draws it) read that one
description, so the picture can never show a machine other than the one that runs.
"""

from __future__ import annotations

from dataclasses import dataclass

from responder.incident.action import REGISTRY
from responder.playbook import RESERVED_STATES, Playbook, StepSpec

TERMINAL = RESERVED_STATES
COMPLETED, HALTED, REFUSED, WAITING = RESERVED_STATES


@dataclass(frozen=True)
class Transition:
    """One edge of the machine; `step` runs in its `before` callback."""

    trigger: str
    source: str
    dest: str
    step: StepSpec | None = None
    """For `advance`: the step whose side effects run in the transition's `before`."""


@dataclass(frozen=True)
class MachineSpec:
    """The machine as data: what the runner builds and `respond playbooks graph` draws."""

    states: tuple[str, ...]
    transitions: tuple[Transition, ...]


def machine_spec(playbook: Playbook) -> MachineSpec:
    """One state per step plus the terminal ones. Each step advances to the next (the
    last to `completed`); any step may halt (a failure) or be refused (a guardrail); a
    step whose action may wait (a rotation's, for the applications or a grace period)
    may also stop at `waiting`, where the next run takes it up again."""
    specs = playbook.steps
    transitions: list[Transition] = []
    for i, spec in enumerate(specs):
        dest = specs[i + 1].name if i + 1 < len(specs) else COMPLETED
        transitions.append(Transition("advance", spec.name, dest, spec))
    transitions += [Transition("halt", s.name, HALTED) for s in specs]
    transitions += [Transition("refuse", s.name, REFUSED) for s in specs]
    waits = [Transition("wait", s.name, WAITING) for s in specs if REGISTRY.may_wait(s.action)]
    terminal = TERMINAL if waits else tuple(t for t in TERMINAL if t != WAITING)
    return MachineSpec(tuple(s.name for s in specs) + terminal, tuple(transitions + waits))


def graph(playbook: Playbook) -> str:
    """The playbook's state machine as Graphviz DOT (no graphviz dependency needed)."""
    lines = [f'digraph "{playbook.name}" {{', "  rankdir=LR;", "  node [shape=box];"]
    for t in machine_spec(playbook).transitions:
        if t.step is not None:
            label = "advance" if t.step.on_failure == "halt" else "advance (continue on failure)"
            lines.append(f'  "{t.source}" -> "{t.dest}" [label="{label}"];')
        else:
            lines.append(f'  "{t.source}" -> "{t.dest}" [label="{t.trigger}", style=dashed];')
    lines += [f'  "{COMPLETED}" [shape=doublecircle];', f'  "{HALTED}" [shape=octagon];',
              f'  "{REFUSED}" [shape=octagon];']
    if any(t.dest == WAITING for t in machine_spec(playbook).transitions):
        lines.append(f'  "{WAITING}" [shape=diamond];')
    lines.append("}")
    return "\n".join(lines)
