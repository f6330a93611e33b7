"""The simulated treadmill: a belt that turns a set speed into hall pulses, the way a real one
would for `retrotread simulate`, the demo and the tests. Pure: no clock, no I/O.

What it models, because the safety rules depend on it:
- The console changes the belt's speed gradually, at CONSOLE_RATE_KMH_PER_S (a treadmill
  takes a few seconds to reach a new speed), unless a step asks for an abrupt change.
- While the safety-key loop is open the belt cannot run: it stops at once (the motor loses
  power; a real belt coasts for a fraction of a second) and a restart asked for on the console
  only takes effect once the loop has closed again. After the loop closes the belt stays
  stopped until someone sets a speed.
- Foot strikes slow the belt a little and the motor catches up (`ripple_pct` at `ripple_hz`),
  and `jitter_pct` adds random variation per pulse interval.
- One magnet passes the sensor every `meters_per_pulse`; an optional check sensor sees its own
  magnet every `check_meters_per_pulse`, half a pulse out of phase.

`travel_m` is the belt's true distance: the tests judge the device on it.
"""

from __future__ import annotations

import math
import random

# How fast the simulated console changes the belt's speed, km/h per second. Treadmill consoles
# speed up and slow down at about 1-2 km/h per second; the sensor-trust rule allows up to 2.
CONSOLE_RATE_KMH_PER_S = 1.5


class SimulatedBelt:
    SUBSTEP_S = 0.01

    def __init__(
        self,
        meters_per_pulse: float,
        *,
        seed: int = 1,
        check_meters_per_pulse: float | None = None,
        console_rate_kmh_per_s: float = CONSOLE_RATE_KMH_PER_S,
    ):
        self.meters_per_pulse = meters_per_pulse
        self.check_meters_per_pulse = check_meters_per_pulse
        self.console_rate = console_rate_kmh_per_s
        self.set_kmh = 0.0  # what the console was asked for
        self.base_kmh = 0.0  # the belt's speed now, before foot strikes and jitter
        self.jitter_pct = 0.0
        self.ripple_pct = 0.0
        self.ripple_hz = 2.0
        self.loop_open = False
        self.travel_m = 0.0  # the belt's true distance since the start
        self.check_pulses: list[float] = []  # the check sensor's edges not yet taken
        self._pending: tuple[float, float, float, float, bool] | None = None
        self._random = random.Random(seed)
        self._next_pulse_m = meters_per_pulse
        self._next_check_m = (check_meters_per_pulse or 0.0) / 2
        self._jitter = 1.0
        self._t = 0.0

    @property
    def stopped_by_key(self) -> bool:
        return self.loop_open

    def set_speed(
        self,
        kmh: float,
        *,
        jitter_pct: float = 0.0,
        ripple_pct: float = 0.0,
        ripple_hz: float = 2.0,
        abrupt: bool = False,
    ) -> None:
        """The console's speed buttons. While the loop is open the console cannot start the
        belt: the request waits until the loop closes."""
        if self.loop_open:
            self._pending = (kmh, jitter_pct, ripple_pct, ripple_hz, abrupt)
            return
        self.set_kmh = kmh
        self.jitter_pct, self.ripple_pct, self.ripple_hz = jitter_pct, ripple_pct, ripple_hz
        if abrupt:
            self.base_kmh = kmh

    def key_pulled(self) -> None:
        """The safety-key loop opened: the motor stops and the console forgets its speed."""
        self.loop_open = True
        self.set_kmh = self.base_kmh = 0.0

    def key_back(self) -> None:
        """The loop closed again: a restart asked for meanwhile now takes effect."""
        self.loop_open = False
        pending, self._pending = self._pending, None
        if pending is not None:
            kmh, jitter_pct, ripple_pct, ripple_hz, abrupt = pending
            self.set_speed(
                kmh, jitter_pct=jitter_pct, ripple_pct=ripple_pct, ripple_hz=ripple_hz,
                abrupt=abrupt,
            )  # fmt: skip

    def speed_kmh(self, t: float) -> float:
        """The belt's true speed at t (as of the last advance), km/h."""
        if self.loop_open or self.base_kmh <= 0:
            return 0.0
        ripple = 1.0 + self.ripple_pct / 100 * math.sin(2 * math.pi * self.ripple_hz * t)
        return self.base_kmh * ripple * self._jitter

    def take_check_pulses(self) -> list[float]:
        pulses, self.check_pulses = self.check_pulses, []
        return pulses

    def advance(self, until: float) -> list[float]:
        """Move the belt to time `until`; returns the sensor's pulse times on the way (the
        check sensor's wait in `check_pulses`)."""
        pulses: list[float] = []
        if self.set_kmh <= 0 and self.base_kmh <= 0 and until > self._t:
            self._t = until  # a standing belt: nothing happens, however long (a skipped night)
            return pulses
        while self._t < until - 1e-12:
            steady = self.base_kmh == self.set_kmh and not self.ripple_pct
            # a belt at a steady speed without foot strikes covers the stretch in one go
            step = until - self._t if steady else min(self.SUBSTEP_S, until - self._t)
            self._follow_console(step)
            speed_ms = self.speed_kmh(self._t) / 3.6
            end = self.travel_m + speed_ms * step
            while speed_ms > 0 and end >= min(self._next_pulse_m, self._next_check()):
                if self._next_pulse_m <= self._next_check():
                    at_m = self._next_pulse_m
                    pulse_t = self._t + (at_m - self.travel_m) / speed_ms
                    pulses.append(pulse_t)
                    self._next_pulse_m += self.meters_per_pulse
                    if self.jitter_pct:
                        # a new interval, a new random pace: the rest of the step runs at it
                        step -= pulse_t - self._t
                        self._t, self.travel_m = pulse_t, at_m
                        self._jitter = 1.0 + self._random.uniform(-1, 1) * self.jitter_pct / 100
                        speed_ms = self.speed_kmh(self._t) / 3.6
                        end = self.travel_m + speed_ms * step
                else:
                    at_m = self._next_check()
                    self.check_pulses.append(self._t + (at_m - self.travel_m) / speed_ms)
                    assert self.check_meters_per_pulse is not None
                    self._next_check_m += self.check_meters_per_pulse
            self.travel_m = end
            self._t += step
        return pulses

    def _next_check(self) -> float:
        return math.inf if self.check_meters_per_pulse is None else self._next_check_m

    def _follow_console(self, dt: float) -> None:
        if self.loop_open:
            return
        gap = self.set_kmh - self.base_kmh
        change = self.console_rate * dt
        self.base_kmh = (
            self.set_kmh if abs(gap) <= change else self.base_kmh + math.copysign(change, gap)
        )
