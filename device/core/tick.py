"""What one tick of the Controller returns: the events, the output changes, the 1 Hz sample
and what must be saved. The daemon and the simulator record it; nothing here does I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from device.core.events import Event
from device.core.modes import Mode, SessionState
from device.core.program import Profile
from device.core.session import SessionTotals
from device.core.signals import LedPattern, RelayState, Tune


class Output(StrEnum):
    LED = "led"
    BUZZER = "buzzer"
    RELAY = "relay"
    CONSOLE_SPEED = "console_speed"  # SetSpeed to the console ([enforce] soft = "csafe")


@dataclass(frozen=True)
class OutputChange:
    t: float
    name: Output
    # a LedPattern for the LED, and so on; km/h to ask the console for
    state: LedPattern | Tune | RelayState | float


@dataclass(frozen=True)
class Sample:
    """The belt once a second, as the controller saw it and the history keeps it: `speed_kmh`
    None means unknown (sensor lost), `cap_kmh` None means no cap applied. `t` is monotonic
    from the controller, epoch seconds in the history."""

    t: float
    speed_kmh: float | None
    mode: Mode
    state: SessionState
    cap_kmh: float | None


@dataclass
class TickResult:
    events: list[Event] = field(default_factory=list)
    outputs: list[OutputChange] = field(default_factory=list)
    sample: Sample | None = None
    profile: Profile | None = None  # to save: the walker's progress changed
    # the open session's running totals, or the one that ended during this tick
    totals: SessionTotals | None = None
