"""`respond drill`: the real playbook against an embedded fake account, under attack,
checked and timed.

Each scenario (responder/drill/scenarios.py) rehearses one attack this tool answers. The
drill goes through the production entry points (`service.respond`, `resume`, `sweep`),
so a passing drill says the production path works, not a copy of it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from unittest import mock

import boto3

from responder.aws import RetryPolicy
from responder.context import Options, RunContext, iso, parse_iso, responder_home
from responder.drill import checks as checks_mod
from responder.drill import world as world_mod
from responder.drill.checks import Check
from responder.drill.cloudtrail import CloudTrailFake
from responder.drill.scenarios import SCENARIOS
from responder.drill.stage import Stage
from responder.errors import BadInput
from responder.incident.view import IncidentView
from responder.journal.sqlite import SqliteJournal
from responder.report import document as report
from responder.report import html as report_html
from responder.report.model import IncidentDocument

DEFAULT = "two-keys"
ALIASES = {"basic": DEFAULT}
"""Names an earlier version knew."""


@dataclass(frozen=True)
class DrillResult:
    scenario: str
    view: IncidentView
    incident: IncidentDocument
    """The §2 object of the view (as --output json prints it, in as_dict)."""
    checks: tuple[Check, ...]
    attacker: tuple[dict[str, Any], ...]
    home: str
    time_to_contain: float | None
    timeline: tuple[dict[str, Any], ...]
    """Attacker actions and responder steps on one time axis (seconds from the first)."""
    calls_before_containment: int
    report_html: str

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    def as_dict(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "passed": self.passed,
            "time_to_contain_seconds": self.time_to_contain,
            "calls_before_containment": self.calls_before_containment,
            "checks": [{"name": c.name, "passed": c.passed, "detail": c.detail}
                       for c in self.checks],
            "attacker": list(self.attacker),
            "timeline": list(self.timeline),
            "state_dir": self.home,
            "report_html": self.report_html,
            "incident": self.incident.to_json(),
        }

    def render(self) -> str:
        lines = [f"drill {self.scenario}: {'PASSED' if self.passed else 'FAILED'}",
                 "timeline (attacker and responder on one axis):"]
        lines += [f"  +{t['offset_seconds']:8.3f}s  {t['who']:<9} {t['what']:<28} "
                  f"{t.get('status') or t.get('region') or ''}" for t in self.timeline]
        if self.time_to_contain is not None:
            lines.append(f"time to contain: {self.time_to_contain:.3f}s "
                         f"({self.calls_before_containment} AWS calls before it)")
        evidence = self.view.evidence
        if evidence:
            risky = ", ".join(f"{e['eventName']} ({e['accessKeyId']}, {e['region']})"
                              for e in evidence.high_risk)
            lines.append(f"evidence: {evidence.events} events in "
                         f"{len(evidence.regions)} regions, sha256 {(evidence.sha256 or '')[:16]}")
            lines.append(f"high-risk actions: {risky or 'none'}")
        lines.append("checks:")
        lines += [f"  {'PASS' if c.passed else 'FAIL'} {c.name}"
                  + (f" ({c.detail})" if c.detail else "") for c in self.checks]
        if self.report_html:
            lines.append(f"report: {self.report_html}")
        lines.append(f"journal and logs: {self.home}")
        return "\n".join(lines)


@contextmanager
def fake_account() -> Iterator[Callable[[], boto3.Session]]:
    """moto in-process, shielded from the shell's AWS settings."""
    from moto import mock_aws  # noqa: PLC0415 - moto is only in the drill/test extras

    env = {
        "AWS_ACCESS_KEY_ID": world_mod.RESPONDER_KEY,
        "AWS_SECRET_ACCESS_KEY": "drill-responder-secret",
        "AWS_DEFAULT_REGION": world_mod.REGION,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        # AWS's own managed policies (AdministratorAccess, ...): the persistence scenario
        # attaches one, as an attacker would.
        "MOTO_IAM_LOAD_MANAGED_POLICIES": "true",
    }
    drop = ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_REGION")
    with mock.patch.dict(os.environ, env):
        for name in drop:
            os.environ.pop(name, None)
        with mock_aws():
            yield lambda: boto3.Session(region_name=world_mod.REGION)


def names() -> tuple[str, ...]:
    return tuple(SCENARIOS)


def describe() -> list[dict[str, str]]:
    """`--list`: each scenario's name and what it rehearses."""
    return [{"name": s.name, "summary": s.summary} for s in SCENARIOS.values()]


def check_name(scenario: str) -> str:
    """The scenario's name, or BadInput naming the known ones."""
    name = ALIASES.get(scenario, scenario)
    if name not in SCENARIOS:
        raise BadInput(f"unknown drill scenario {scenario!r}; known: {', '.join(SCENARIOS)} "
                       "(or all)")
    return name


def run(scenario: str = DEFAULT) -> DrillResult:
    """Build the world, let the attacker act, respond, check the outcome."""
    name = check_name(scenario)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    home = responder_home() / "drills" / f"{name}-{stamp}"
    trail = CloudTrailFake()
    with fake_account() as sessions, trail.installed():
        world = world_mod.build(sessions())
        ctx = RunContext(
            session_factory=sessions,
            home=home,
            retry=RetryPolicy(max_attempts=5, initial_seconds=0.01, max_seconds=0.1),
            source="drill",
            options=Options(notify_topic=world.topic_arn),
        )
        journal = SqliteJournal(home / "responder.db")
        stage = Stage(world, trail, sessions, ctx, journal, world_mod.Attacker(world, trail))
        incident_id, own = SCENARIOS[name].play(stage)
        view = IncidentView.load(journal, incident_id, calls=True)
        attacker = stage.hands.done
        found = checks_mod.common(sessions(), world, view, attacker) + own
    journal.close()
    contain = (round((view.contained_at - view.started_at).total_seconds(), 3)
               if view.contained_at else None)
    html = _write_html(view, home)
    return DrillResult(name, view, report.document_of(view), tuple(found),
                       tuple(attacker), str(home), contain, _timeline(view, attacker),
                       _calls_before(view), html)


def run_all() -> list[DrillResult]:
    return [run(name) for name in SCENARIOS]


def _timeline(view: IncidentView, attacker: list[dict[str, Any]]) -> tuple[dict[str, Any], ...]:
    rows: list[tuple[datetime, dict[str, Any]]] = []
    for action in attacker:
        at = parse_iso(action["at"])
        if at is not None:
            rows.append((at, {"who": "attacker", "what": action["action"],
                              "region": action["region"], "late": action.get("late", False)}))
    for step in view.all_steps:
        if step.started_at is not None:
            rows.append((step.started_at, {"who": "responder", "what": step.name,
                                           "status": step.status}))
    if view.contained_at is not None:
        rows.append((view.contained_at, {"who": "responder", "what": "contained",
                                         "status": "contained"}))
    rows.sort(key=lambda r: r[0])
    first = rows[0][0] if rows else view.started_at
    return tuple({"at": iso(at), "offset_seconds": round((at - first).total_seconds(), 3),
                  **row} for at, row in rows)


def _calls_before(view: IncidentView) -> int:
    """AWS calls sent before the incident was contained (identify's included)."""
    if view.contained_at is None:
        return len(view.calls)
    return sum(1 for c in view.calls if c.intent_at <= view.contained_at)


def _write_html(view: IncidentView, home: Path) -> str:
    """The incident's HTML report next to its journal, for people to look at."""
    path = home / "incidents" / view.id / "report.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(report_html.page(view), "utf-8")
    return str(path)
