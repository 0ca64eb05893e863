"""The playbook's machine: the graph `respond playbooks graph` draws is the machine the
runner builds, and notify's resume does not page twice."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from conftest import Account, Crash, Faults, crash, make_pager
from test_notify import Hook, hook  # noqa: F401 - the local Slack stand-in fixture

from responder import playbook
from responder.context import Options, RunContext
from responder.incident.view import IncidentView
from responder.journal.sqlite import SqliteJournal
from responder.run import machine, service
from responder.run.runner import new_machine

EDGE = re.compile(r'^\s*"([^"]+)" -> "([^"]+)" \[label="([a-z]+)')


def _drawn(name: str) -> set[tuple[str, str, str]]:
    return {(m[1], m[2], m[3]) for line in machine.graph(playbook.load(name)).splitlines()
            if (m := EDGE.match(line))}


def _built(name: str) -> tuple[set[tuple[str, str, str]], set[str]]:
    pb = playbook.load(name)

    class Model:
        """Stands in for IncidentRun: only holds the machine's state."""

    built = new_machine(Model(), pb, pb.steps[0].name, lambda *_: None)
    edges = {(t.source, t.dest, trigger) for trigger, event in built.events.items()
             for transitions in event.transitions.values() for t in transitions}
    return edges, set(built.states)


@pytest.mark.parametrize("name", playbook.shipped_names())
def test_graph_draws_exactly_the_machine_the_runner_builds(name: str) -> None:
    """Every edge of the DOT output is a transition of the runner's machine and back."""
    edges, states = _built(name)
    assert _drawn(name) == edges
    assert {s for e in edges for s in e[:2]} == states


def test_every_step_can_be_refused_and_halted() -> None:
    """A guardrail may refuse at any step, and any step may halt: both are drawn."""
    drawn = _drawn("compromised-key")
    for step in playbook.load("compromised-key").steps:
        assert (step.name, "refused", "refuse") in drawn
        assert (step.name, "halted", "halt") in drawn



def test_resumed_notify_with_slack_does_not_publish_to_sns_again(
    account: Account, journal: SqliteJournal, make_ctx: Callable[..., RunContext],
    faults: Faults, hook: Hook,  # noqa: F811 - the fixture imported above
) -> None:
    """Killed right after SNS accepted the notice: on resume Slack is told, and the SNS
    topic is not published to a second time."""
    pager = make_pager(account.session)
    ctx = make_ctx(session_factory=faults.session_factory(),
                   options=Options(replace=False, notify_topic=pager.topic_arn,
                                   slack_webhook=hook.url))
    faults.rewrite("Publish", crash)
    with pytest.raises(Crash):
        service.respond(ctx, journal, playbook.load("compromised-key"), account.leaked_key)
    (incident,) = journal.recent()
    faults.clear()
    record = service.resume(ctx, journal, incident.id)
    assert record.status == "completed"
    assert faults.count("Publish") == 1
    assert len(pager.messages()) == 1
    assert len(hook.bodies) == 1
    view = IncidentView.load(journal, incident.id)
    (notify,) = view.of_kind("notification")
    assert notify.status == "done"
    assert [s["channel"] for s in notify.detail["sent"]] == ["sns", "slack"]
