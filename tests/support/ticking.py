"""Driving the pure core through virtual time, tick by tick, as the daemon's 10 Hz loop does:
the tick times themselves, and a Treadmill (a simulated belt's pulses and the walker's
presses into one Controller) for the tests that follow a whole walk."""

from __future__ import annotations

from device.config.model import Config
from device.core.controller import Controller
from device.core.events import EventKind
from device.core.modes import SessionState
from device.core.tick import TickResult
from device.sim.belt import SimulatedBelt

TICK_S = 0.1  # the daemon ticks at 10 Hz
# float sums drift (0.1 * 3 is 0.30000000000000004): a tick this close to a time is at it
SAME_TICK_S = 1e-9


def tick_time(n: int, *, start: float = 0.0, every_s: float = TICK_S) -> float:
    """The time of tick `n` after `start`, rounded to the microsecond so that a test can name
    a tick's time exactly (`t == 4.6`)."""
    return round(start + n * every_s, 6)


def tick_times(start: float, end: float, *, every_s: float = TICK_S) -> list[float]:
    """Tick times every `every_s` from `start` up to and including `end`."""
    times: list[float] = []
    while (t := tick_time(len(times), start=start, every_s=every_s)) <= end + SAME_TICK_S:
        times.append(t)
    return times


class Treadmill:
    """A belt making pulses and the device ticking at 10 Hz, in virtual time from 0. What the
    ticks return is collected for the test to read."""

    def __init__(self, config: Config | None = None):
        self.config = config or Config()
        self.device = Controller(self.config, t=0.0)
        self.belt = SimulatedBelt(self.config.sensor.meters_per_pulse)
        self.now = 0.0
        self.results: list[TickResult] = []
        self._ticks = 0
        self._release_at: float | None = None
        self._tick()

    def _tick(self) -> None:
        t = tick_time(self._ticks)
        for pulse_t in self.belt.advance(t):
            self.device.pulse(pulse_t)
        if self._release_at is not None and self._release_at <= t + 1e-9:
            self.device.start_up(self._release_at)
            self._release_at = None
        self.results.append(self.device.tick(t))
        self.now = t
        self._ticks += 1

    def run(self, seconds: float) -> None:
        end = self.now + seconds
        while tick_time(self._ticks) <= end + SAME_TICK_S:
            self._tick()

    def belt_kmh(self, kmh: float) -> None:
        self.belt.set_speed(kmh)

    def press_start(self, *, hold: float = 0.2) -> None:
        """Finger down now; up `hold` seconds later, which run() reaches."""
        self.device.start_down(self.now)
        self._release_at = self.now + hold
        self.run(hold)

    def press_direction(self) -> None:
        self.device.direction_pressed(self.now)
        self.run(TICK_S)

    def events(self, kind: EventKind | None = None) -> list:
        found = [e for r in self.results for e in r.events]
        return [e for e in found if kind is None or e.kind is kind]

    def outputs(self, name: str) -> list[str]:
        return [o.state for r in self.results for o in r.outputs if o.name == name]

    def samples(self) -> list:
        return [r.sample for r in self.results if r.sample is not None]

    @property
    def state(self) -> SessionState:
        return self.device.session.state


def walking(kmh: float, *, config: Config | None = None, seconds: float = 5.0) -> Treadmill:
    """A treadmill whose belt has run at `kmh` for `seconds`, no session yet."""
    mill = Treadmill(config)
    mill.belt_kmh(kmh)
    mill.run(seconds)
    return mill
