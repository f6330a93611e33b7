"""Calibration arithmetic: the belt travel per pulse (`[sensor] meters_per_pulse`) from a count
at a known console speed, from a count against the speeds a CSAFE console reported, from the
belt's length or from the roller's diameter; a serial bridge's factor (`[sensor]
serial_scale`) from its readings at a console speed; the error of the current value at two
console speeds; and saving a result into the config file.

Counting times the first to the last magnet pass in the window instead of dividing the pulses
by the window: a window cuts an interval at each end, which costs up to a whole pulse (20 % of
a 5-pulse count), while edge times are good to a millisecond.

A console is no perfect reference either: console displays commonly read 2.5-6 % fast, so the
console method copies the console's error into meters_per_pulse. The belt-length method does
not; the roller method is as good as the diameter measured.

Pure apart from `save_setting`: edge times are monotonic seconds handed in. The terminal side
(counting on the pin, prompts, the countdown) is device/calibrate/command.py.
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from device.config.kinds import ConfigError, Number
from device.config.load import merge_overrides
from device.config.model import Config
from device.config.rules import RULES
from device.config.write import ConfigWriteError, write_config_changes
from device.errors import RetrotreadError

KMH_PER_MPS = 3.6

# The smallest [sensor] meters_per_pulse the config accepts: no real pulse can come sooner
# than that much belt at the console's speed.
_METERS_PER_PULSE = RULES["sensor"]["meters_per_pulse"]
assert isinstance(_METERS_PER_PULSE, Number)
MIN_METERS_PER_PULSE = _METERS_PER_PULSE.lo
# Reed switches chatter for 1-3 ms after closing; an edge this soon after the last accepted one
# is that, not a magnet (capped at half the shortest real interval, see bounce_gap_s).
BOUNCE_S = 0.005
# Fewer intervals than this and one uneven interval shows in the result: warn.
MIN_INTERVALS = 20
# With one magnet every interval is alike on an empty belt; a longest interval this many times
# the shortest means missed or extra pulses (or magnets spaced unevenly, which is harmless).
UNEVEN_RATIO = 1.5
# Console displays commonly read this much fast (percent): a correct sensor reads this much
# below the console.
CONSOLE_READS_FAST_PCT = (2.5, 6.0)
# A check within this many percent of the console agrees with it.
AGREE_PCT = 1.0
# Errors at two speeds further apart than this (percentage points) are not a wrong scale,
# which errs by the same factor at every speed.
SPREAD_PCT = 3.0
# A result this far (percent) from the current value is worth a second look.
SURPRISE_PCT = 25.0


class CalibrationError(RetrotreadError):
    """Calibration cannot go on for a reason the user can fix; str() is one sentence naming
    the pin, port, file or option and the fix."""


@dataclass(frozen=True)
class BeltCount:
    """Magnet passes seen in a counting window.

    `edges` accepted falling edges, `span_s` seconds from the first to the last of them,
    `bounces` edges dropped as contact bounce, `shortest_s`/`longest_s` the extreme intervals
    (None with fewer than two edges), `window_s` how long the sensor was watched, `first_s`
    when the first accepted edge came (None without edges).
    """

    edges: int
    span_s: float
    bounces: int
    shortest_s: float | None
    longest_s: float | None
    window_s: float
    first_s: float | None = None

    @property
    def intervals(self) -> int:
        return max(self.edges - 1, 0)

    def speed_kmh(self, meters_per_pulse: float) -> float:
        """The belt speed this count means with `meters_per_pulse` m per pulse, km/h."""
        if self.intervals == 0 or self.span_s <= 0:
            return 0.0
        return meters_per_pulse * self.intervals / self.span_s * KMH_PER_MPS

    @property
    def uneven(self) -> bool:
        """Intervals differ by more than UNEVEN_RATIO: missed or extra pulses, or magnets not
        evenly spaced."""
        if self.shortest_s is None or self.longest_s is None or self.shortest_s <= 0:
            return False
        return self.longest_s > UNEVEN_RATIO * self.shortest_s


def bounce_gap_s(console_kmh: float) -> float:
    """Edges closer than this (seconds) to the last accepted one are bounces: BOUNCE_S, but at
    most half the interval of the smallest meters_per_pulse at `console_kmh` km/h, so no real
    pulse is ever dropped."""
    shortest_real_s = MIN_METERS_PER_PULSE / (console_kmh / KMH_PER_MPS)
    return min(BOUNCE_S, shortest_real_s / 2)


def count_edges(edge_times: Iterable[float], *, window_s: float, bounce_s: float) -> BeltCount:
    """Sum up the falling edges seen in a window (monotonic seconds, any order), dropping
    those within `bounce_s` seconds of the last accepted edge."""
    accepted: list[float] = []
    bounces = 0
    for t in sorted(edge_times):
        if accepted and t - accepted[-1] < bounce_s:
            bounces += 1
        else:
            accepted.append(t)
    gaps = [b - a for a, b in itertools.pairwise(accepted)]
    return BeltCount(
        edges=len(accepted),
        span_s=accepted[-1] - accepted[0] if accepted else 0.0,
        bounces=bounces,
        shortest_s=min(gaps, default=None),
        longest_s=max(gaps, default=None),
        window_s=window_s,
        first_s=accepted[0] if accepted else None,
    )


def mpp_from_count(count: BeltCount, *, console_kmh: float) -> float:
    """meters_per_pulse from magnet passes counted with the belt at `console_kmh` km/h:
    the belt's travel from the first to the last edge over the intervals in between."""
    if count.intervals < 1 or count.span_s <= 0:
        raise CalibrationError(
            f"only {count.edges} pulse(s) in {count.window_s:g} s, too few to time the belt; "
            "check that it runs and see the sensor checks in hardware.md."
        )
    return console_kmh / KMH_PER_MPS * count.span_s / count.intervals


@dataclass(frozen=True)
class ConsoleSpeeds:
    """What a CSAFE console said of the belt over a stretch of time: the `distance_m` its
    speeds add up to over `span_s` seconds, the lowest and highest speed in force (km/h), how
    many `readings` came within the stretch, and `longest_gap_s`, the longest wait for a new
    one (counted from the reading in force at its start)."""

    distance_m: float
    span_s: float
    lowest_kmh: float
    highest_kmh: float
    readings: int
    longest_gap_s: float

    @property
    def mean_kmh(self) -> float:
        return self.distance_m / self.span_s * KMH_PER_MPS if self.span_s > 0 else self.lowest_kmh


def console_speeds(
    readings: Iterable[tuple[float, float]], *, start_s: float, end_s: float
) -> ConsoleSpeeds:
    """The console's (t, km/h) readings from `start_s` to `end_s`. Each speed holds until the
    next reading, as the console's display does (it shows its speed in steps, not a curve);
    the one in force at the start is the last before it, or the first of all when none came
    before. ValueError without any reading."""
    ordered = sorted(readings)
    if not ordered:
        raise ValueError("no console readings to add up")
    before = [r for r in ordered if r[0] <= start_s]
    held = before[-1] if before else ordered[0]
    within = [r for r in ordered if start_s < r[0] < end_s]
    # the speed in force from each moment on, and when the belt's story was last told
    steps = [(start_s, held[1]), *within, (end_s, within[-1][1] if within else held[1])]
    distance_m = sum(
        kmh / KMH_PER_MPS * (t_next - t) for (t, kmh), (t_next, _) in itertools.pairwise(steps)
    )
    told = [min(held[0], start_s), *(t for t, _ in within), end_s]
    speeds = [held[1], *(kmh for _, kmh in within)]
    return ConsoleSpeeds(
        distance_m=distance_m,
        span_s=end_s - start_s,
        lowest_kmh=min(speeds),
        highest_kmh=max(speeds),
        readings=len(within),
        longest_gap_s=max(b - a for a, b in itertools.pairwise(told)),
    )


def mpp_from_console(count: BeltCount, speeds: ConsoleSpeeds) -> float:
    """meters_per_pulse from magnet passes counted while the console reported its speed:
    the belt's travel by the console from the first to the last edge over the intervals in
    between (`speeds` taken over that span)."""
    if count.intervals < 1 or speeds.distance_m <= 0:
        raise CalibrationError(
            f"{count.edges} pulse(s) at {speeds.mean_kmh:.1f} km/h on the console, too little "
            "belt to time; start the belt and see the sensor checks in hardware.md."
        )
    return speeds.distance_m / count.intervals


def mpp_from_belt(belt_length_m: float, *, magnets: int) -> float:
    """meters_per_pulse for `magnets` magnets fixed on the belt itself, evenly spaced: one
    pulse per magnet per belt revolution of `belt_length_m` metres."""
    _check_magnets(magnets)
    return belt_length_m / magnets


def mpp_from_roller(
    roller_diameter_mm: float, *, magnets: int, belt_thickness_mm: float = 0.0
) -> float:
    """meters_per_pulse for `magnets` magnets on the roller the belt runs on (not on the
    motor's pulley or flywheel, which turns at another rate).

    The belt's middle wraps a circle one belt thickness wider than the roller, so its travel
    per turn is pi x (diameter + thickness); leaving the thickness out reads slow by
    thickness / diameter (3 % for a 1.5 mm belt on a 50 mm roller).
    """
    _check_magnets(magnets)
    return math.pi * (roller_diameter_mm + belt_thickness_mm) / 1000.0 / magnets


def _check_magnets(magnets: int) -> None:
    if magnets < 1:
        raise CalibrationError(f"--magnets must be 1 or more, not {magnets}.")


def rounded(value: float) -> float:
    """A calibrated value as the config keeps it: 4 significant digits, finer than any
    measurement here (0.1 % or better)."""
    return float(f"{value:.4g}")


def percent_off(measured: float, reference: float) -> float:
    """How far `measured` is above (+) or below (-) `reference`, percent."""
    return (measured / reference - 1.0) * 100.0


def signed_pct(pct: float) -> str:
    """A percentage with its sign, to 0.1: "+4.0 %", "-3.0 %", and "+0.0 %" for a tiny
    negative (never "-0.0 %")."""
    return f"{round(pct, 1) + 0.0:+.1f} %"


@dataclass(frozen=True)
class SpeedCheck:
    """One check: the console's speed and what retrotread read meanwhile, km/h."""

    console_kmh: float
    measured_kmh: float

    @property
    def error_pct(self) -> float:
        return percent_off(self.measured_kmh, self.console_kmh)


def check_verdict(checks: Sequence[SpeedCheck], *, setting: str, current: float) -> list[str]:
    """What the errors at the checked speeds say, as sentences for the terminal. `setting`
    names the value that scales every reading ("[sensor] meters_per_pulse") and `current` is
    its value now; a constant error gets the value that would match the console."""
    errors = [c.error_pct for c in checks]
    mean = sum(errors) / len(errors)
    spread = max(errors) - min(errors)
    matching = rounded(current / (1.0 + mean / 100.0))
    low, high = CONSOLE_READS_FAST_PCT
    if spread > SPREAD_PCT:
        return [
            f"The error changes with speed ({spread:.1f} points apart), so no {setting} can "
            "fix it: look for missed or extra pulses (sensor gap at most 3 mm, cable away from "
            "the motor, a reed switch that bounces) or check the console's display."
        ]
    if abs(mean) <= AGREE_PCT:
        return [f"retrotread agrees with the console within {AGREE_PCT:g} % at these speeds."]
    if -high <= mean < 0:
        return [
            f"retrotread reads {-mean:.1f} % below the console at every speed checked. That "
            f"may be the console: displays commonly read {low:g}-{high:g} % fast, and a belt "
            "measured by its length is the better reference.",
            f"To match the console instead, set {setting} to {matching:g}.",
        ]
    direction = "above" if mean > 0 else "below"
    return [
        f"retrotread reads {abs(mean):.1f} % {direction} the console at every speed checked: "
        f"{setting} is off; {matching:g} would match the console."
    ]


def save_setting(
    path: str | os.PathLike[str], key: str, value: float, *, config: Config, hint: str
) -> Config:
    """Write `[sensor] key = value` into the config file at `path`, keeping its comments, and
    return the new Config. The value is validated like the daemon would (merge_overrides)
    before the file is touched; a refused value raises CalibrationError naming the range and
    `hint` (what to measure again), with the file unchanged."""
    shown = os.fspath(path)
    changes = {"sensor": {key: value}}
    try:
        merge_overrides(config, changes, source="the calibrated value")
    except ConfigError as exc:
        reason = str(exc).rstrip(".")
        raise CalibrationError(f"{reason}, so {shown} is unchanged; {hint}.") from None
    try:
        return write_config_changes(path, changes, base=config)
    except ConfigWriteError as exc:
        raise CalibrationError(str(exc)) from None


def scale_for_console(reported_kmh: float, *, console_kmh: float, current: float) -> float:
    """The serial scale (a factor on every reading of the bridge) that makes `reported_kmh`,
    read with the scale at `current`, show `console_kmh`."""
    if reported_kmh <= 0:
        raise CalibrationError(
            "the bridge reported a standing belt the whole time; start the belt and try again."
        )
    return current * console_kmh / reported_kmh
