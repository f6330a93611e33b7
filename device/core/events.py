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
    STILL_GUARDED = "still_guarded"  # a session ended (or a start was refused) at speed
    GUARD_RELEASED = "guard_released"  # ... and the belt has slowed since
    STOP_HELD = "stop_held"  # a relay pulse ended with the speed still unknown: kept open
    SLOWDOWN_ASKED = "slowdown_asked"  # the grace ran out: the console was sent SetSpeed
    SLOWED = "slowed"  # ... and the belt came down under the line: no relay
    CONSOLE_IGNORES_SPEED = "console_ignores_speed"  # remembered: stops go to the relay
    CONSOLE_STATE = "console_state"  # the console's machine state changed
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
        """One journal line that reads as the story of the session, then the details as
        key=value for grep: `over the cap: 2.9 km/h against 2.0 km/h ... [speed_kmh=2.9 ...]`."""
        facts = " ".join(f"{key}={value}" for key, value in self.details.items())
        story = tell(self.kind, self.details)
        return f"{story} [{facts}]" if facts else story


def tell(kind: EventKind, details: dict[str, Any]) -> str:
    """The event's sentence: the first of its stories whose details are all there (events
    stored by an older version have fewer), else its kind in words."""
    stories = STORY.get(kind, ())
    for story in (stories,) if isinstance(stories, str) else stories:
        try:
            return story.format(**details)
        except (KeyError, IndexError, ValueError):
            continue
    return kind.value.replace("_", " ")


# How each event reads in the journal; details missing from an event fall back to its kind.
STORY: dict[EventKind, str | tuple[str, ...]] = {
    EventKind.SESSION_STARTED: "session started walking {mode} ({reason}; {profile}, "
    "level {level})",
    EventKind.SESSION_PAUSED: "session paused ({reason})",
    EventKind.SESSION_RESUMED: "session resumed ({reason})",
    EventKind.SESSION_ENDED: "session ended ({reason}): {distance_m} m, {backward_s} s backward, "
    "{forward_s} s forward",
    EventKind.MODE_CHANGED: "now walking {mode} ({reason})",
    EventKind.START_REFUSED: "start refused: {reason}",
    EventKind.OVERSPEED_WARNING: (
        "warning ({reason}, {scope}): {speed_kmh} km/h against the {cap_kmh} km/h cap; "
        "{grace_s} s of grace left",
        "warning ({reason}): {speed_kmh} km/h against the {cap_kmh} km/h cap",
    ),
    EventKind.OVERSPEED_CLEARED: "warning cleared: back to {speed_kmh} km/h under the "
    "{cap_kmh} km/h cap",
    EventKind.ENFORCED_STOP: (
        "enforced stop ({reason}): the {action} cut the safety-key loop ({mode}) at "
        "{speed_kmh} km/h against the {cap_kmh} km/h cap; the console's slow-down: {soft}",
        "enforced stop ({reason}): the {action} cut the safety-key loop ({mode}) at "
        "{speed_kmh} km/h against the {cap_kmh} km/h cap",
    ),
    EventKind.NOT_ENFORCED: (
        "not enforced ({reason}): {speed_kmh} km/h against the {cap_kmh} km/h cap, and {why}",
        "not enforced ({reason}): {speed_kmh} km/h against the {cap_kmh} km/h cap, and this "
        "machine has no enforcement action",
    ),
    EventKind.SENSOR_LOST: (
        "speed sensor {state} ({sensor}): {why}",
        "speed sensor lost ({sensor}): the belt speed is unknown",
    ),
    EventKind.SENSOR_RESTORED: "speed sensor back ({sensor})",
    EventKind.STILL_GUARDED: "still guarded: {why} at {speed_kmh} km/h, over the "
    "{start_cap_kmh} km/h start cap; the {cap_kmh} km/h cap holds until the belt slows",
    EventKind.GUARD_RELEASED: "guard released: the belt is down to {speed_kmh} km/h",
    EventKind.STOP_HELD: "stop held ({sensor}): the belt speed is still unknown, so the "
    "safety-key loop stays open in backward mode",
    EventKind.SLOWDOWN_ASKED: "slow-down asked ({reason}, {scope}): the console was sent "
    "SetSpeed {cap_kmh} km/h at {speed_kmh} km/h; the relay follows in {within_s} s if the "
    "belt has not come down",
    EventKind.SLOWED: "slowed by the console to {speed_kmh} km/h ({cap_kmh} km/h asked) in "
    "{after_s} s: no stop needed",
    EventKind.CONSOLE_IGNORES_SPEED: "this console ignores SetSpeed ({why}): from now on the "
    "relay stops the belt",
    EventKind.CONSOLE_STATE: "console {state}",
    EventKind.LEVEL_UP: "{profile} moved up to level {level}: backward cap up to {cap_kmh} km/h",
    EventKind.RUNNING_UNLOCKED: "{profile} unlocked backward running: cap up to {cap_kmh} km/h",
    EventKind.CONFIG_RELOADED: "config reloaded",
}
