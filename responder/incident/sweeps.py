"""When an incident's sweeps are due: the playbook's `sweeps` settings counted from
containment. Read by the view (what is due) and by schedule-sweeps (what to schedule),
so the two can never disagree."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

DEFAULT_AFTER_MINUTES = (15, 60)
DEFAULT_OVERLAP_MINUTES = 30


def due_times(settings: Mapping[str, Any], contained_at: datetime) -> list[datetime]:
    minutes = settings.get("after_minutes", DEFAULT_AFTER_MINUTES)
    return [contained_at + timedelta(minutes=int(m)) for m in sorted(minutes)]
