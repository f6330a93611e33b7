"""Events: every decision the device makes, with its time and its reason.

Events are stored in SQLite, streamed to the dashboard, written to the journal and listed in
a scenario's report, so every kind is named here once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class EventKind(StrEnum):
    SESSION_STARTED = "session_started"
    SESSION_PAUSED = "session_paused"
    SESSION_RESUMED = "session_resumed"
    SESSION_ENDED = "session_ended"
    MODE_CHANGED = "mode_changed"
    START_REFUSED = "start_refused"
    OVERSPEED_WARNING = "overspeed_warning"
    OVERSPEED_CLEARED = "overspeed_cleared"
    ENFORCED_STOP = "enforced_stop"
    NOT_ENFORCED = "not_enforced"
    SENSOR_LOST = "sensor_lost"
    SENSOR_RESTORED = "sensor_restored"
    LEVEL_UP = "level_up"
    RUNNING_UNLOCKED = "running_unlocked"
    CONFIG_RELOADED = "config_reloaded"


@dataclass(frozen=True)
class Event:
    """One decision. `t` is monotonic seconds (the controller's clock); `details` holds plain
    JSON values (speeds in km/h, reasons as short sentences)."""

    t: float
    kind: EventKind
    details: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        """One journal line: the kind and its details, e.g. `start_refused speed_kmh=4.0`."""
        parts = [self.kind.value]
        parts += [f"{key}={value}" for key, value in self.details.items()]
        return " ".join(parts)
