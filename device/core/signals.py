"""What the LED and the buzzer say, as patterns with their timings. Pure data: the controller
picks a pattern, the outputs adapter plays it on gpiozero devices, the simulator records it.

Patterns are short and distinct so a walker facing away from the Pi can tell them apart by ear.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class LedPattern(StrEnum):
    OFF = "off"
    STEADY = "steady"  # forward mode
    SLOW_BLINK = "slow_blink"  # backward mode
    FAST_BLINK = "fast_blink"  # over the cap: slow down


@dataclass(frozen=True)
class Blink:
    on_s: float
    off_s: float


LED_BLINKS: dict[LedPattern, Blink] = {
    LedPattern.SLOW_BLINK: Blink(0.5, 1.5),
    LedPattern.FAST_BLINK: Blink(0.1, 0.1),
}


@dataclass(frozen=True)
class Beeps:
    """`count` beeps of `on_s`, `off_s` apart; count 0 beeps on until another tune (or
    silence) replaces it."""

    on_s: float
    off_s: float
    count: int

    @property
    def endless(self) -> bool:
        return self.count == 0

    @property
    def duration_s(self) -> float:
        return self.count * self.on_s + max(self.count - 1, 0) * self.off_s


class Tune(StrEnum):
    SILENT = "silent"
    START = "start"  # one short beep: off you go
    PAUSE = "pause"  # two short beeps
    RESUME = "resume"  # one short beep, like start
    END = "end"  # one long beep: saved
    MODE = "mode"  # a very short chirp on each DIRECTION press
    REFUSED = "refused"  # three short beeps: not at this speed
    # Over the cap: beeping on and on, faster as the grace runs out, until the walker slows.
    WARN_SLOW = "warn_slow"
    WARN_FAST = "warn_fast"
    WARN_URGENT = "warn_urgent"
    STOPPED = "stopped"  # the cap was enforced: three long beeps


TUNES: dict[Tune, Beeps] = {
    Tune.START: Beeps(0.15, 0.0, 1),
    Tune.PAUSE: Beeps(0.1, 0.1, 2),
    Tune.RESUME: Beeps(0.15, 0.0, 1),
    Tune.END: Beeps(0.8, 0.0, 1),
    Tune.MODE: Beeps(0.05, 0.0, 1),
    Tune.REFUSED: Beeps(0.1, 0.1, 3),
    Tune.WARN_SLOW: Beeps(0.1, 0.9, 0),
    Tune.WARN_FAST: Beeps(0.1, 0.4, 0),
    Tune.WARN_URGENT: Beeps(0.1, 0.15, 0),
    Tune.STOPPED: Beeps(0.6, 0.3, 3),
}


def warning_tune(seconds_left: float, grace_s: float) -> Tune:
    """The warning beeps faster as the grace runs out: slow for its first half, fast until
    its last fifth, then urgent."""
    share = seconds_left / grace_s if grace_s > 0 else 0.0
    if share > 0.5:
        return Tune.WARN_SLOW
    return Tune.WARN_FAST if share > 0.2 else Tune.WARN_URGENT


class RelayState(StrEnum):
    CLOSED = "closed"  # the safety-key loop is whole: the treadmill runs as if we were not here
    OPEN = "open"  # the loop is cut: the treadmill stops as if the key were pulled
