"""The safety invariant, judged on the simulated belt's truth.

    While the mode is backward, the belt may not run over the allowed speed for longer than
    the grace, counted with memory; no button, command, pause, end, mode switch or reload
    refills that time; only walking under the limit does, slowly.

The simulator knows what the belt really did (a trace row per tick: `belt_kmh`, `belt_m`), so
the device is judged on that, never on what it believed:

- The belt *runs over* at a row when the mode is backward, a cap is in force, and both the
  belt's true speed and its true 3 s mean ((belt_m(t) - belt_m(t - 3 s)) / 3 s) are above
  cap + tolerance. Both, because the rule is a 3 s mean (a belt swinging under the line on
  average is not over it) and a stopped belt's mean still remembers the last 3 s.
- Between two enforced stops (events "enforced_stop"), no continuous run-over may last longer
  than grace + RUN_SLACK_S, and no 60 s window may hold more than 2 x grace + WINDOW_SLACK_S
  of it. The slack is the device's view lagging the truth: pulses, the tick, the estimator.

Which grace: the smallest grace_s in force, with memory. A reload that shortens the grace
counts at once; one that lengthens it only as fast as the budget could have refilled since
(REFILL_PER_S), because that is all walking under the limit can earn back. So the grace a
run-over or a window is judged by is `allowance(t)` = min over s <= t of
grace(s) + (t - s) x REFILL_PER_S, taken where the run-over or the window begins. With one
grace all along it is that grace.

Two kinds of rows are not judged, and each is defined from the rules, not from what the
device says of itself:
- *Nobody asked for a cap* (`[enforce] without_session = "warn"`): the guard warns and never
  stops a belt in backward mode with no session. Judging "warn" only with sessions started
  first would not remove such rows (a session that ends lets go of its cap once the belt came
  down), and judging the invariant only under "stop" would miss whatever "warn" leaves behind
  when a session begins during a warning. So "warn" runs are judged by the same numbers, and
  only the rows where the rules owe no stop are left out: idle, no enforced stop in the last
  RESTART_WATCH_S, and no cap held from a session that ended or a start that was refused
  (held until the true mean has been at the start line for RELEASE_AFTER_S; let go a little
  early here, so a row the device still guards may be left out, never the reverse). Over
  such rows the rule is the warning instead: it must sound within WARN_WITHIN_S of the
  run-over beginning (`late_warnings`).
- *Nothing can see the belt*: one hall sensor that stops while the belt is slow (or stopped)
  reads exactly like a belt that stopped, and no rule on its pulses can tell (see
  device/core/sensor_trust.py); only a second sensor can. Nor can a speed the sensor never
  showed: a belt that jumps from a standstill (or from a crawl) and loses its sensor before
  two intervals at the new speed left edges that say "slow" (`shown_kmh`). From the moment the
  last working channel dies with the belt, or what its edges showed of it, under
  OBSERVABLE_KMH until a channel works again, nothing is judged. A sensor that dies at a
  speed its edges showed is judged throughout, before and after any stop it causes.
  A CSAFE console (in either role) is a channel of its own: it says the belt moves for as
  long as it is set to, and a console that stops answering is a fault. So with a console
  nothing is ever blind.

The soft stop ([enforce] soft = "csafe", device/core/soft_stop.py) buys time, and the docs say
how much: SOFT_WINDOW_S for the console to bring the belt down, and SPED_UP_FOR_S more if the
walker pushes it back up, once per refill of the budget. It is asked only for a belt that can
be under the line within SOFT_WINDOW_S (at 2 km/h per s measured by a hall sensor, at 1 km/h
per s on a console's own word; further over, the relay at once), and a console's word under
the line is believed only as long after the ask as that slowing takes, which is inside the
window by construction: so the extra stays SOFT_WINDOW_S + SPED_UP_FOR_S, with no term for a
belief delay. Whether the truth keeps to it (the belt may be faster than the console says) is
what the judgement checks, never assumed. So a run-over that holds a soft stop
(an event "slowdown_asked" from RUN_SLACK_S before it begins to its end) is judged against
its allowance + SOFT_EXTRA_S + RUN_SLACK_S, and a 60 s window against 2 x its allowance +
WINDOW_SLACK_S + SOFT_EXTRA_S per soft stop in it. Using the device's own events for the
extra is safe only if the device asks no more often than the rules allow, so that is judged
too (`soft_breaches`): a soft stop only while soft = "csafe" is in force, never within
RESTART_WATCH_S of an enforced stop, never after the console was found to ignore SetSpeed,
and at most one per refill of the budget (grace / REFILL_PER_S, the grace in force then).
"""

from __future__ import annotations

import bisect
import itertools
from dataclasses import dataclass, field
from typing import Any, TypeVar

from device.config.load import merge_overrides
from device.config.model import Config
from device.core.guard import RELEASE_AFTER_S, RESTART_WATCH_S
from device.core.overspeed import REFILL_PER_S
from device.core.soft_stop import SOFT_WINDOW_S, SPED_UP_FOR_S
from device.core.speed import KMH_PER_MPS
from device.sim.scenario import Scenario

MEAN_WINDOW_S = 3.0  # the rule's mean: the 3 s mean speed
RUN_SLACK_S = 1.5
WINDOW_S = 60.0
WINDOW_SLACK_S = 1.0
WARN_WITHIN_S = 1.0
# A held cap counts as let go once the true mean has been this close to the start line for
# this long: early on purpose (the device reads the mean to within about a pulse per 3 s).
RELEASE_MARGIN_KMH = 0.25
RELEASE_EARLY_S = 0.5
# A hall sensor that dies above this speed ends its pulses more abruptly than a belt can stop
# (device/core/sensor_trust.py suspicion_floor_kmh: 2.66 km/h at 0.157 m per pulse).
OBSERVABLE_KMH = 3.5
LEGIT_MARGIN_KMH = 0.1  # a walker "at the cap" on the truth: its 3 s mean within this
# What a soft stop may add to a run-over: the console's window, and the walker pushing back up.
SOFT_EXTRA_S = SOFT_WINDOW_S + SPED_UP_FOR_S
TICK_S = 0.1  # the simulator's tick: a soft stop's rest is judged to within one

T = TypeVar("T")


@dataclass(frozen=True)
class Rules:
    """The rules in force from `t` on: the config, then each reload."""

    t: float
    tolerance_kmh: float
    grace_s: float
    start_cap_kmh: float
    without_session: str
    soft: str = "none"  # [enforce] soft


def rules_over_time(config: Config, scenario: Scenario) -> list[Rules]:
    """The rules at the start and after every reload step, merged as the simulator merges."""

    def rules(t: float, c: Config) -> Rules:
        b, e = c.backward, c.enforce
        return Rules(t, b.tolerance_kmh, b.grace_s, b.start_cap_kmh, e.without_session, e.soft)

    timeline = [rules(0.0, config)]
    for step in scenario.steps:
        if step.action == "reload":
            config = merge_overrides(config, {} if step.value is True else step.value)
            timeline.append(rules(step.at, config))
    return timeline


def allowance_s(timeline: list[Rules], t: float) -> float:
    """The most grace a guard can hold at t: min over s <= t of grace(s) + (t - s) x refill."""
    allowed = []
    for rules, after in zip(timeline, [*timeline[1:], None], strict=True):
        if rules.t > t:
            break
        until = t if after is None else min(t, after.t)
        allowed.append(rules.grace_s + (t - until) * REFILL_PER_S)
    return min(allowed)


def _in_force(timeline: list[Rules], t: float) -> Rules:
    return timeline[bisect.bisect_right([r.t for r in timeline], t + 1e-9) - 1]


def true_means_kmh(trace: list[dict[str, Any]]) -> list[float]:
    """The belt's true 3 s mean at each row (the belt stood still before t = 0)."""
    times = [row["t"] for row in trace]
    means = []
    for row in trace:
        j = bisect.bisect_left(times, row["t"] - MEAN_WINDOW_S - 1e-9)
        before_m = trace[j]["belt_m"] if row["t"] >= MEAN_WINDOW_S - 1e-9 else 0.0
        means.append((row["belt_m"] - before_m) / MEAN_WINDOW_S * KMH_PER_MPS)
    return means


def _durations(trace: list[dict[str, Any]]) -> list[float]:
    gaps = [b["t"] - a["t"] for a, b in itertools.pairwise(trace)]
    return [*gaps, gaps[-1] if gaps else 0.1]


def over_rows(trace: list[dict[str, Any]], timeline: list[Rules]) -> list[bool]:
    """Whether the belt runs over the limit at each row, on the truth."""
    flags = []
    for row, mean in zip(trace, true_means_kmh(trace), strict=True):
        cap = row["cap_kmh"]
        if row["mode"] != "backward" or cap is None:
            flags.append(False)
            continue
        line = cap + _in_force(timeline, row["t"]).tolerance_kmh
        flags.append(row["belt_kmh"] > line + 1e-9 and mean > line + 1e-9)
    return flags


def _times(events: list[dict[str, Any]], *kinds: str) -> list[float]:
    return sorted(e["t"] for e in events if e["kind"] in kinds)


def enforced_stops(events: list[dict[str, Any]]) -> list[float]:
    return _times(events, "enforced_stop")


def unguarded_rows(
    trace: list[dict[str, Any]],
    events: list[dict[str, Any]],
    timeline: list[Rules],
    blind: list[bool],
) -> list[bool]:
    """Rows where the rules owe no stop: "warn", idle, no recent stop, no held cap (a blind
    device may have read the belt as stopped and let go of one)."""
    stops = enforced_stops(events)
    holds = _times(events, "start_refused", "session_ended")
    starts = _times(events, "session_started")
    flags = []
    hold_t: float | None = None  # when the cap last held began
    held, slow_since = False, None
    for row, mean, unseen in zip(trace, true_means_kmh(trace), blind, strict=True):
        t = row["t"]
        rules = _in_force(timeline, t)
        held = held and not unseen
        began, started = _last(holds, t), _last(starts, t)
        if began is not None and began != hold_t:
            hold_t, held, slow_since = began, True, None  # a session ended, a start refused
        if held and started is not None and started >= hold_t:
            held = False  # a session took over
        if held and mean > rules.start_cap_kmh + rules.tolerance_kmh + RELEASE_MARGIN_KMH:
            slow_since = None
        elif held:
            slow_since = t if slow_since is None else slow_since
            held = t - slow_since < RELEASE_AFTER_S - RELEASE_EARLY_S
        stopped = _last(stops, t)
        flags.append(
            rules.without_session == "warn"
            and row["state"] == "idle"
            and (stopped is None or t - stopped >= RESTART_WATCH_S)
            and not held
        )
    return flags


def _last(times: list[float], t: float) -> float | None:
    i = bisect.bisect_right(times, t + 1e-9)
    return times[i - 1] if i else None


def shown_kmh(trace: list[dict[str, Any]], t: float, meters_per_pulse: float) -> float:
    """The speed a hall sensor's own edges could show at `t`: the slowest of its last two
    intervals and the wait since its last edge, from the edges the true belt gave it (one
    per `meters_per_pulse` of belt travel, placed within a tick by its mean speed). 0 before
    it gave three."""
    edges: list[float] = []
    for before, row in itertools.pairwise(trace):
        if row["t"] > t + 1e-9:
            break
        m0, m1 = before["belt_m"], row["belt_m"]
        k = int(m0 / meters_per_pulse + 1e-9) + 1
        while m1 > m0 and k * meters_per_pulse <= m1 + 1e-9:
            share = (k * meters_per_pulse - m0) / (m1 - m0)
            edges.append(before["t"] + share * (row["t"] - before["t"]))
            k += 1
    if len(edges) < 3:
        return 0.0
    slower = max(edges[-1] - edges[-2], edges[-2] - edges[-3], t - edges[-1])
    return meters_per_pulse / slower * KMH_PER_MPS if slower > 0 else 0.0


def blind_rows(
    trace: list[dict[str, Any]], scenario: Scenario, *, meters_per_pulse: dict[str, float]
) -> list[bool]:
    """Rows after the last working speed sensor died with the belt slow, or before its edges
    could show the belt's speed (a belt that jumped from a standstill and lost its sensor
    before two intervals at the new speed), until one works."""
    check_fitted = "check" in meters_per_pulse
    alive = {"hall": True, "check": check_fitted}
    changes = []  # (t, blind from then on)
    times = [row["t"] for row in trace]
    for step in scenario.steps:
        if step.action not in ("sensor", "check_sensor"):
            continue
        channel = "hall" if step.action == "sensor" else "check"
        if channel == "check" and not check_fitted:
            continue
        was_seen = any(alive.values())
        alive[channel] = step.value == "ok"
        if step.value == "ok":  # seen again, once the device has a mean's worth of pulses
            changes.append((step.at + MEAN_WINDOW_S, False))
        elif was_seen and not any(alive.values()):
            changes = [change for change in changes if change[0] <= step.at]
            i = min(bisect.bisect_left(times, step.at - 1e-9), len(trace) - 1)
            unseen = min(trace[i]["belt_kmh"], shown_kmh(trace, step.at, meters_per_pulse[channel]))
            changes.append((step.at, unseen < OBSERVABLE_KMH))
    changes.sort()
    flags, blind, k = [], False, 0
    for t in times:
        while k < len(changes) and changes[k][0] <= t + 1e-9:
            blind, k = changes[k][1], k + 1
        flags.append(blind)
    return flags


@dataclass(frozen=True)
class RunOver:
    """A continuous stretch of run-over, or a 60 s window's share of it."""

    start_t: float
    seconds: float
    allowed_s: float  # the bound it is judged against

    @property
    def excess_s(self) -> float:
        return self.seconds - self.allowed_s

    def describe(self) -> str:
        return f"{self.seconds:.1f} s from t = {self.start_t:.1f} s (bound {self.allowed_s:.1f} s)"


@dataclass
class Judgement:
    stops: list[float]
    runs: list[RunOver] = field(default_factory=list)  # each continuous run-over
    windows: list[RunOver] = field(default_factory=list)  # the fullest window per stretch
    late_warnings: list[float] = field(default_factory=list)  # unwarned run-over starts
    # the fullest window across stops too: what restarts after stops add up to (no bound)
    across_stops: RunOver | None = None
    judged_s: float = 0.0  # seconds of trace judged (not blind, not unguarded)
    soft_asks: list[float] = field(default_factory=list)  # each "slowdown_asked"
    soft_breaches: list[str] = field(default_factory=list)  # soft stops the rules forbid

    @property
    def longest(self) -> RunOver | None:
        return max(self.runs, key=lambda r: r.seconds, default=None)

    @property
    def fullest(self) -> RunOver | None:
        return max(self.windows, key=lambda w: w.seconds, default=None)

    def breaches(self) -> list[str]:
        said = [f"run-over of {r.describe()}" for r in self.runs if r.excess_s > 1e-9]
        said += [f"60 s window with {w.describe()}" for w in self.windows if w.excess_s > 1e-9]
        said += [f"run-over from t = {t:g} s not warned within 1 s" for t in self.late_warnings]
        return said + self.soft_breaches

    @property
    def holds(self) -> bool:
        return not self.breaches()


def judge(
    trace: list[dict[str, Any]],
    events: list[dict[str, Any]],
    timeline: list[Rules],
    *,
    left_out: list[bool] | None = None,
    unguarded: list[bool] | None = None,
) -> Judgement:
    """The run-overs between enforced stops and the fullest 60 s window of each stretch,
    each with its bound; rows in `left_out` or `unguarded` are not judged, and run-over
    that begins on an unguarded row must be warned of within WARN_WITHIN_S."""
    over = over_rows(trace, timeline)
    dts = _durations(trace)
    stops = enforced_stops(events)
    skip = left_out or [False] * len(trace)
    free = unguarded or [False] * len(trace)
    asks = _times(events, "slowdown_asked")
    verdict = Judgement(stops=stops, soft_asks=asks, soft_breaches=soft_breaches(events, timeline))
    stretch_rows: dict[int, list[int]] = {}
    run: list[int] = []
    for i, row in enumerate(trace):
        stretch = bisect.bisect_right(stops, row["t"] + 1e-9)
        counted = over[i] and not skip[i] and not free[i]
        verdict.judged_s += 0.0 if skip[i] or free[i] else dts[i]
        if run and (not counted or stretch != run[0]):
            verdict.runs.append(_run(trace, dts, run[1:], timeline, asks))
            run = []
        if counted:
            run = run or [stretch]
            run.append(i)
            stretch_rows.setdefault(stretch, []).append(i)
        begins = i == 0 or not over[i - 1] or skip[i - 1]
        if over[i] and free[i] and not skip[i] and begins and not _warned(events, row["t"]):
            verdict.late_warnings.append(row["t"])
    if run:
        verdict.runs.append(_run(trace, dts, run[1:], timeline, asks))
    for rows in stretch_rows.values():
        verdict.windows.append(_fullest_window(trace, dts, rows, timeline, asks))
    if stretch_rows:
        every = sorted(i for rows in stretch_rows.values() for i in rows)
        verdict.across_stops = _fullest_window(trace, dts, every, timeline, asks)
    return verdict


def _soft_within(asks: list[float], start: float, end: float) -> int:
    """The soft stops asked from RUN_SLACK_S before `start` (the device's view may lead the
    truth's by that much) up to `end`."""
    return sum(start - RUN_SLACK_S - 1e-9 <= t <= end + 1e-9 for t in asks)


def _run(trace, dts, rows: list[int], timeline: list[Rules], asks: list[float]) -> RunOver:
    start, end = trace[rows[0]]["t"], trace[rows[-1]]["t"]
    seconds = sum(dts[i] for i in rows)
    soft = SOFT_EXTRA_S * _soft_within(asks, start, end)
    return RunOver(start, round(seconds, 3), allowance_s(timeline, start) + soft + RUN_SLACK_S)


def _fullest_window(
    trace, dts, rows: list[int], timeline: list[Rules], asks: list[float]
) -> RunOver:
    """The 60 s window, starting at a run-over row, whose run-over is furthest over its bound."""
    worst: RunOver | None = None
    total, end = 0.0, 0
    for k, i in enumerate(rows):
        start = trace[i]["t"]
        while end < len(rows) and trace[rows[end]]["t"] < start + WINDOW_S - 1e-9:
            total += dts[rows[end]]
            end += 1
        soft = SOFT_EXTRA_S * _soft_within(asks, start, start + WINDOW_S)
        allowed = 2 * allowance_s(timeline, start) + soft + WINDOW_SLACK_S
        window = RunOver(start, round(total, 3), allowed)
        if worst is None or window.excess_s > worst.excess_s:
            worst = window
        total -= dts[rows[k]]
    assert worst is not None
    return worst


def soft_breaches(events: list[dict[str, Any]], timeline: list[Rules]) -> list[str]:
    """Soft stops the rules do not grant: with soft = "none" in force, within RESTART_WATCH_S
    of an enforced stop, after the console was found to ignore SetSpeed, or sooner after the
    last one than a spent budget takes to refill (grace / REFILL_PER_S, the grace in force)."""
    said = []
    stops = enforced_stops(events)
    ignored = _times(events, "console_ignores_speed")
    last: float | None = None
    for t in _times(events, "slowdown_asked"):
        rules = _in_force(timeline, t)
        stopped = _last(stops, t)
        if rules.soft != "csafe":
            said.append(f'soft stop at t = {t:g} s with soft = "{rules.soft}"')
        if stopped is not None and t - stopped < RESTART_WATCH_S:
            said.append(f"soft stop at t = {t:g} s, {t - stopped:.1f} s after an enforced stop")
        if ignored and ignored[0] < t:
            said.append(f"soft stop at t = {t:g} s to a console that ignored SetSpeed")
        rest_s = rules.grace_s / REFILL_PER_S
        if last is not None and t - last < rest_s - TICK_S:
            said.append(f"soft stop at t = {t:g} s, {t - last:.1f} s after the last one")
        last = t
    return said


def _warned(events: list[dict[str, Any]], t: float) -> bool:
    """Whether a warning sounds at some moment from t to t + WARN_WITHIN_S."""
    began = _times(events, "overspeed_warning")
    ended = _times(events, "overspeed_cleared", "enforced_stop")
    last_began, last_ended = _last(began, t), _last(ended, t)
    if last_began is not None and (last_ended is None or last_began > last_ended):
        return True
    return any(t < b <= t + WARN_WITHIN_S + 1e-9 for b in began)


def over_the_cap_rows(trace: list[dict[str, Any]]) -> list[float]:
    """Times the walker's true 3 s mean was above the cap in force (+ LEGIT_MARGIN_KMH)."""
    return [
        row["t"]
        for row, mean in zip(trace, true_means_kmh(trace), strict=True)
        if row["mode"] == "backward"
        and row["cap_kmh"] is not None
        and mean > row["cap_kmh"] + LEGIT_MARGIN_KMH
    ]
