"""schedule-sweeps: when CloudTrail is looked at again after containment.

CloudTrail delivers events minutes late (usually within 15, sometimes later), so a
response at minute one cannot see the attacker's last calls before the key died. The
playbook says when to look again (`after_minutes`, default 15 and 60 after containment).
In the Lambda deployment each sweep is a one-time EventBridge Scheduler schedule that
invokes the function with {"sweep": "<incident id>"} and deletes itself after running;
elsewhere the due times are recorded and `respond sweep ID` (or --watch) runs them. A
moment a sweep already covered (one run by hand after it) is not scheduled again; the
others keep their numbers, so a retry names the same schedules.

Never critical: a schedule that cannot be created is reported, the incident still
completes, and `respond sweep ID` does the same by hand.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, ClassVar

from responder.aws import Api, ApiCall
from responder.context import iso
from responder.errors import AwsCallFailed
from responder.incident.action import Action, StepInput, StepResult, register
from responder.incident.facts import SweepsScheduled
from responder.incident.sweeps import DEFAULT_OVERLAP_MINUTES, due_times, still_due

SCHEDULE_LEAD = timedelta(minutes=1)
"""A schedule is never set in the past (a late resume): at the soonest a minute ahead."""


def schedule_name(incident_id: str, number: int) -> str:
    return f"responder-{incident_id}-sweep-{number}"


@register("schedule_sweeps")
class ScheduleSweeps(Action):
    permissions = ("scheduler:CreateSchedule", "iam:PassRole")
    kind = "schedule"
    result = SweepsScheduled
    critical = False
    schema: ClassVar[Mapping[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "after_minutes": {"type": "array", "maxItems": 10, "uniqueItems": True,
                              "items": {"type": "integer", "minimum": 0, "maximum": 10080}},
            "overlap_minutes": {"type": "integer", "minimum": 0, "maximum": 1440},
        },
    }

    def plan(self, inp: StepInput) -> tuple[ApiCall, ...]:
        due = due_times(inp.settings, inp.incident.started_at)
        return tuple(self._create(inp, n, at, "<this function>", "<scheduler role>",
                                  note="only in the Lambda deployment; elsewhere `respond "
                                  "sweep` or --watch runs it")
                     for n, at in enumerate(due, 1))

    @staticmethod
    def _create(inp: StepInput, number: int, at: datetime, target: str, role: str, *,
                note: str = "") -> ApiCall:
        return ApiCall("scheduler", "CreateSchedule", {
            "Name": schedule_name(inp.incident.id, number),
            "GroupName": inp.ctx.scheduler.group if inp.ctx.scheduler else "default",
            "ScheduleExpression": f"at({at:%Y-%m-%dT%H:%M:%S})",
            "ScheduleExpressionTimezone": "UTC",
            "FlexibleTimeWindow": {"Mode": "OFF"},
            "ActionAfterCompletion": "DELETE",
            "Target": {"Arn": target, "RoleArn": role,
                       "Input": json.dumps({"sweep": inp.incident.id})},
        }, mutating=True, note=note)

    def run(self, inp: StepInput, api: Api) -> StepResult:
        view = inp.view
        contained = (view.contained_at if view is not None else None) or inp.ctx.clock()
        due = due_times(inp.settings, contained)
        pending = set(still_due(inp.settings, contained,
                                view.swept_at if view is not None else ()))
        overlap = int(inp.settings.get("overlap_minutes", DEFAULT_OVERLAP_MINUTES))
        facts = SweepsScheduled(due=tuple(iso(d) or "" for d in due), overlap_minutes=overlap)
        scheduler = inp.ctx.scheduler
        if scheduler is None or not pending:
            return StepResult("done", facts)
        soonest = inp.ctx.clock() + SCHEDULE_LEAD
        names: list[str] = []
        for number, at in enumerate(due, 1):
            if at not in pending:
                continue  # a sweep already ran at or after it
            call = self._create(inp, number, max(at, soonest), scheduler.target_arn,
                                scheduler.role_arn)
            try:
                api.call(call)
            except AwsCallFailed as exc:
                if exc.code != "ConflictException":  # made by an earlier attempt
                    raise
            names.append(str(call.params["Name"]))
        return StepResult("done", SweepsScheduled(
            due=facts.due, overlap_minutes=overlap, scheduler="eventbridge-scheduler",
            schedules=tuple(names)))
