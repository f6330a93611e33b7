"""The guard's rules (issue 8), one story each in tests/scenarios/rule_*.toml, run through the
real `retrotread simulate FILE --trace` and judged on the simulated belt's truth: its true speed
(belt_kmh) and distance (belt_m) at every tick, beside what the device believed.

    While the mode is backward, the belt may not run over the allowed speed for longer than
    the grace, counted with memory; no button, command, pause, end, mode switch or reload
    refills that time; only walking under the limit does, slowly.

The belt *runs over* the limit at a tick when the mode is backward, a cap is in force, and both
the belt's true speed and its true 3 s mean are above the cap plus the tolerance. (The rule is
a 3 s mean: a stopped belt's mean still remembers the past for 3 s, and a belt swinging under
the line on average is not over it.)
"""

from __future__ import annotations

import bisect
import functools
import itertools
import math
from dataclasses import dataclass

import pytest
from support.scenarios import events, sample_at, status_at, story, the

from device.core.guard import RELEASE_AFTER_S
from device.core.overspeed import REFILL_PER_S
from device.core.walker_reads import NO_SESSION_READS

GRACE_S = 5.0  # the built-in grace; no story changes it before its first stop
TOLERANCE_KMH = 0.3  # the built-in tolerance
START_LINE_KMH = 2.0 + TOLERANCE_KMH  # the built-in start cap plus the tolerance
TICK_S = 0.1  # the simulator ticks at 10 Hz: a stop due between two ticks comes at the next
MEAN_WINDOW_S = 3.0
KMH_PER_MPS = 3.6
# belt_m is printed to the millimetre: a 3 s mean taken from two such values is off by up to
# 0.0012 km/h, and belt_kmh is printed to 0.001 km/h. Over the line means over it by more.
ROUNDING_KMH = 0.005


# ---- the stories and their truth -------------------------------------------------------------


@dataclass(frozen=True)
class Tick:
    """One trace row: what the belt truly did, beside what the device believed."""

    t: float
    belt_kmh: float  # true
    belt_m: float  # true distance since the start
    mean_kmh: float | None  # the true 3 s mean; None in the first 3 s
    speed_kmh: float | None  # the device's display; None when it cannot vouch for it
    mode: str
    state: str
    cap_kmh: float | None  # the cap of the limit in force
    relay: str
    sensor: str

    @property
    def line_kmh(self) -> float:
        """The limit in force: the cap plus the tolerance (none outside backward mode)."""
        if self.mode != "backward" or self.cap_kmh is None:
            return math.inf
        return self.cap_kmh + TOLERANCE_KMH + ROUNDING_KMH

    @property
    def mean_over(self) -> bool:
        return self.mean_kmh is not None and self.mean_kmh > self.line_kmh

    @property
    def runs_over(self) -> bool:
        return self.mean_over and self.belt_kmh > self.line_kmh


@functools.cache
def truth(name: str) -> tuple[Tick, ...]:
    rows = story(name)["trace"]
    back = round(MEAN_WINDOW_S / TICK_S)
    ticks = []
    for i, row in enumerate(rows):
        mean = None
        if i >= back:
            before = rows[i - back]
            assert row["t"] - before["t"] == pytest.approx(MEAN_WINDOW_S)  # a tick every 0.1 s
            mean = (row["belt_m"] - before["belt_m"]) / MEAN_WINDOW_S * KMH_PER_MPS
        fields = {k: row[k] for k in ("t", "belt_kmh", "belt_m", "speed_kmh", "mode", "state")}
        fields.update(cap_kmh=row["cap_kmh"], relay=row["relay"], sensor=row["sensor"])
        ticks.append(Tick(**fields, mean_kmh=mean))
    return tuple(ticks)


def at(ticks: tuple[Tick, ...], t: float) -> Tick:
    (tick,) = [k for k in ticks if k.t == pytest.approx(t)]
    return tick


def between(ticks: tuple[Tick, ...], start: float, end: float) -> list[Tick]:
    """The ticks from `start` up to, not including, `end`."""
    return [k for k in ticks if start - 1e-6 <= k.t < end - 1e-6]


def over_s(ticks: tuple[Tick, ...], start: float = -math.inf, end: float = math.inf) -> float:
    """Seconds the belt ran over the limit from `start` up to `end`."""
    return TICK_S * sum(k.runs_over for k in between(ticks, start, end))


def over_runs(ticks: tuple[Tick, ...]) -> list[tuple[float, float]]:
    """Each continuous run over the limit: (its first tick, its length in seconds)."""
    runs = []
    for over, run in itertools.groupby(ticks, key=lambda k: k.runs_over):
        if over:
            run = list(run)
            runs.append((run[0].t, round(TICK_S * len(run), 1)))
    return runs


def worst_minute_s(ticks: tuple[Tick, ...]) -> float:
    """The most seconds over the limit in any 60 s window."""
    times = [k.t for k in ticks]
    counts = list(itertools.accumulate((k.runs_over for k in ticks), initial=0))
    worst = 0
    for i, t in enumerate(times):
        j = bisect.bisect_left(times, t + 60.0 - 1e-6)
        worst = max(worst, counts[j] - counts[i])
    return round(TICK_S * worst, 1)


def mean_crosses_the_line(ticks: tuple[Tick, ...], after: float) -> float:
    """The first tick from `after` at which the belt's true 3 s mean is over the limit."""
    return next(k.t for k in ticks if k.t >= after and k.mean_over)


# ---- the invariant, for every story ---------------------------------------------------------

STORIES = (
    "rule_pause_does_not_lift_the_cap",
    "rule_dashboard_pause_does_not_lift_the_cap",
    "rule_ending_does_not_lift_the_cap",
    "rule_ending_slowly_releases_the_guard",
    "rule_restart_after_a_stop_is_stopped_at_once",
    "rule_restart_after_an_ended_session_is_stopped_at_once",
    "rule_restart_after_a_latched_stop_is_stopped_at_once",
    "rule_direction_double_tap_keeps_the_budget",
    "rule_oscillation_keeps_the_budget",
    "rule_triangle_wave_keeps_the_budget",
    "rule_hysteresis_one_warning_at_the_line",
    "rule_hall_sensor_dies_at_speed",
    "rule_hall_dropouts_latch_a_fault",
    "rule_hall_dropouts_latch_until_seen_stopped",
    "rule_too_fast_for_the_sensor_is_a_fault",
    "rule_check_sensor_catches_a_dead_primary",
    "rule_check_sensor_disagrees",
    "rule_without_session_warns_by_default",
    "rule_without_session_stop",
    "rule_refused_start_arms_the_guard",
    "rule_refused_dashboard_start_arms_the_guard",
    "rule_hold_and_ramp_count_walking",
    "rule_bumped_direction_keeps_the_earned_cap",
    "rule_reload_does_not_lengthen_the_grace",
    "rule_same_reload_does_not_restart_the_grace",
)
# A magnet on the belt (3.16 m per pulse) sees a 6 km/h belt once every 1.9 s: the device
# cannot know the belt runs fast before the second edge, so its stop comes up to that much
# later than with magnets on the roller. The sensor, not the guard, sets this bound.
COARSE = {"rule_start_gate_needs_two_intervals": 3.16 / (6.0 / 3.6)}
# Stories where running out of budget only warns, by design: no relay, or nobody started a
# session and [enforce] without_session is "warn".
WARN_ONLY = ("rule_hysteresis_one_warning_at_the_line", "rule_without_session_warns_by_default")


@pytest.mark.parametrize("name", [name for name in (*STORIES, *COARSE) if name not in WARN_ONLY])
def test_the_belt_never_runs_over_the_limit_for_longer_than_the_grace(name):
    ticks = truth(name)
    runs = over_runs(ticks)
    # grace + 1.5 s: the 3 s mean needs a moment to show a speed step, and the stop comes at
    # the tick after the budget runs out; a coarse sensor adds the interval it waits for
    longest = max((length for _, length in runs), default=0.0)
    allowed = GRACE_S + 1.5 + COARSE.get(name, 0.0)
    assert longest <= allowed, f"runs over the limit (start, seconds): {runs}"
    # the budget refills at a thirtieth, so no minute holds more than about two graces
    assert worst_minute_s(ticks) <= 2 * GRACE_S + 1.0, f"runs over the limit: {runs}"


@pytest.mark.parametrize("name", (*STORIES, *COARSE))
def test_the_belt_cannot_run_while_the_relay_is_open(name):
    running = [k.t for k in truth(name) if k.relay == "open" and k.belt_kmh > 0]
    assert running == []


# ---- no pause, end or reload refills the grace ------------------------------------------------


@pytest.mark.parametrize(
    ("name", "reason", "paused_at"),
    [
        ("rule_pause_does_not_lift_the_cap", "button", 67.2),
        ("rule_dashboard_pause_does_not_lift_the_cap", "command", 67.0),
    ],
)
def test_pausing_during_a_warning_still_stops_the_fast_belt_when_the_grace_runs_out(
    name, reason, paused_at
):
    rep, ticks = story(name), truth(name)
    warning, paused = the(rep, "overspeed_warning"), the(rep, "session_paused")
    stop = the(rep, "enforced_stop")
    assert (paused["t"], paused["reason"]) == (paused_at, reason)
    assert warning["t"] < paused["t"] < warning["t"] + GRACE_S
    # the paused session keeps its cap, and the budget counts on from the warning
    assert (stop["scope"], stop["cap_kmh"]) == ("paused", 2.0)
    assert stop["t"] == pytest.approx(warning["t"] + GRACE_S, abs=TICK_S)
    # the belt truly ran on at 3 km/h through the pause, and stood after the stop
    assert all(k.runs_over for k in between(ticks, paused["t"], stop["t"]))
    assert at(ticks, stop["t"]).belt_kmh == 0.0
    assert over_s(ticks) <= GRACE_S + TICK_S  # the truth may cross a tick before the device


def test_ending_the_session_at_speed_keeps_its_cap_and_the_belt_is_stopped_within_the_grace():
    name = "rule_ending_does_not_lift_the_cap"
    rep, ticks = story(name), truth(name)
    warning, ended = the(rep, "overspeed_warning"), the(rep, "session_ended")
    held = the(rep, "still_guarded")
    assert (ended["t"], ended["reason"]) == (69.0, "button")  # START held for 2 s
    assert held["t"] == ended["t"]
    assert (held["why"], held["cap_kmh"], held["start_cap_kmh"]) == ("the session ended", 2.0, 2.0)
    assert held["speed_kmh"] == pytest.approx(3.0, abs=0.1)
    stop = the(rep, "enforced_stop")
    assert stop["scope"] == "ended"
    assert stop["t"] == pytest.approx(warning["t"] + GRACE_S, abs=TICK_S)
    assert all(k.runs_over for k in between(ticks, ended["t"], stop["t"]))
    assert {k.belt_kmh for k in ticks if k.t >= stop["t"]} == {0.0}  # and it stays stopped
    assert over_s(ticks) <= GRACE_S + TICK_S


def test_an_ended_session_slowed_to_the_start_line_lets_go_and_no_stop_follows():
    name = "rule_ending_slowly_releases_the_guard"
    rep, ticks = story(name), truth(name)
    ended, held = the(rep, "session_ended"), the(rep, "still_guarded")
    assert held["t"] == ended["t"] == 68.5
    # the true 3 s mean is back at the start line from here, for good
    slow_from = ticks[-1].t
    for tick in reversed(ticks):
        if tick.mean_kmh is None or tick.mean_kmh > START_LINE_KMH:
            break
        slow_from = tick.t
    assert slow_from > ended["t"]
    released = the(rep, "guard_released")
    # released RELEASE_AFTER_S later; the device's mean follows the true one within a tick or
    # two (interval timing at 0.157 m per pulse)
    assert released["t"] == pytest.approx(slow_from + RELEASE_AFTER_S, abs=0.3)
    assert slow_from < the(rep, "overspeed_warning")["t"] + GRACE_S  # back before the grace ran out
    assert events(rep, "enforced_stop") == []
    assert {k.relay for k in ticks} == {"closed"}
    last = ticks[-1]
    assert (last.t, last.belt_kmh, last.state) == (130.0, 2.2, "idle")  # walked on, a minute


@pytest.mark.parametrize(
    "name",
    ["rule_reload_does_not_lengthen_the_grace", "rule_same_reload_does_not_restart_the_grace"],
)
def test_a_reload_during_a_warning_does_not_lengthen_the_grace(name):
    rep, ticks = story(name), truth(name)
    warning, reloaded = the(rep, "overspeed_warning"), the(rep, "config_reloaded")
    stop = the(rep, "enforced_stop")
    assert warning["t"] < reloaded["t"] == 68.0 < stop["t"]
    assert stop["t"] == pytest.approx(warning["t"] + GRACE_S, abs=TICK_S)
    assert over_s(ticks) <= GRACE_S + TICK_S


# ---- a restart after an enforced stop ----------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "restarted_at", "state"),
    [
        # the console restarts the belt; the session is still paused by the stop
        ("rule_restart_after_a_stop_is_stopped_at_once", 80.0, "paused"),
        # ... after the walker ended the session
        ("rule_restart_after_an_ended_session_is_stopped_at_once", 80.0, "idle"),
        # latch: the belt runs once START closed the loop (and resumed the session)
        ("rule_restart_after_a_latched_stop_is_stopped_at_once", 85.2, "running"),
    ],
)
def test_a_fast_restart_after_an_enforced_stop_is_stopped_within_a_second(
    name, restarted_at, state
):
    rep, ticks = story(name), truth(name)
    first, again = events(rep, "enforced_stop")
    assert first["t"] == pytest.approx(71.3) and first["scope"] == "session"
    assert again["scope"] == "after a stop"
    crossed = mean_crosses_the_line(ticks, restarted_at)
    assert at(ticks, crossed).state == state
    # what the first stop spent refilled at a thirtieth: a few tenths of a second of budget
    assert crossed <= again["t"] <= crossed + 1.0
    assert any(k.relay == "open" for k in ticks)  # the relay-open check below is not empty
    assert [k.t for k in ticks if k.relay == "open" and k.belt_kmh > 0] == []


def test_a_latched_stop_keeps_the_belt_standing_until_start():
    name = "rule_restart_after_a_latched_stop_is_stopped_at_once"
    rep, ticks = story(name), truth(name)
    first = events(rep, "enforced_stop")[0]
    assert first["mode"] == "latch"
    # the console asked for 6 km/h at 75 s; nothing ran until START closed the loop at 85.2 s
    latched = between(ticks, first["t"], 85.2)
    assert {(k.relay, k.belt_kmh) for k in latched} == {("open", 0.0)}
    assert at(ticks, 86.0).belt_kmh > 0


# ---- dodging the budget ------------------------------------------------------------------------


def test_tapping_direction_twice_does_not_refill_the_grace():
    name = "rule_direction_double_tap_keeps_the_budget"
    rep, ticks = story(name), truth(name)
    stop = events(rep, "enforced_stop")[0]
    taps = [e for e in events(rep, "mode_changed") if e["t"] < stop["t"]]
    assert len(taps) >= 4  # the walker did dodge, twice over
    # backward time over the limit in total (forward has no limit, so it is not counted):
    # the grace, plus a tick as the truth crosses the line before the device does, a tick to
    # the next tick of the stop, and the 0.4 s forward moments' refill (0.013 s each)
    assert over_s(ticks, end=stop["t"]) <= GRACE_S + 3 * TICK_S
    budgets = [w["grace_s"] for w in events(rep, "overspeed_warning") if w["t"] < stop["t"]]
    assert budgets[0] == GRACE_S
    assert all(later < earlier for earlier, later in itertools.pairwise(budgets)), budgets
    assert budgets[-1] < 1.0


@pytest.mark.parametrize(
    "name", ["rule_oscillation_keeps_the_budget", "rule_triangle_wave_keeps_the_budget"]
)
def test_swinging_over_and_under_the_line_never_earns_a_fresh_grace(name):
    rep, ticks = story(name), truth(name)
    warnings, stops = events(rep, "overspeed_warning"), events(rep, "enforced_stop")
    assert stops, "the swinging walker was never stopped"
    first_stop = stops[0]["t"]
    # the stop comes once the time over adds up to the grace, never later (the device counts
    # on the 3 s mean alone, the truth also asks the belt itself to be over: the device may
    # count more, never less), give or take the tick the truth leads and the tick of the stop
    assert over_s(ticks, end=first_stop) <= GRACE_S + 2 * TICK_S
    # one warning per excursion at most: between two warnings the mean went back under
    for earlier, later in itertools.pairwise(warnings):
        assert later["t"] - earlier["t"] >= 1.0
        assert not all(k.mean_over for k in between(ticks, earlier["t"], later["t"]))
    # each warning is told what is left of the one budget: the grace less the time over
    # before it, refilled at a thirtieth of the time since the first warning
    for warning in warnings:
        spent = over_s(ticks, end=warning["t"])
        refilled = (warning["t"] - warnings[0]["t"]) * REFILL_PER_S
        assert warning["grace_s"] <= max(0.0, GRACE_S - spent) + refilled + TICK_S, warning
    assert worst_minute_s(ticks) <= 2 * GRACE_S + 1.0


def test_a_belt_at_the_line_gets_a_handful_of_warnings_at_most_never_a_chatter():
    name = "rule_hysteresis_one_warning_at_the_line"
    rep, ticks = story(name), truth(name)
    at_the_line = between(ticks, 14.0, 72.0)  # the belt at 2.3 km/h, its mean too from 14 s
    # truly at the line: the foot strikes cross it, the true 3 s mean never does
    assert max(k.belt_kmh for k in at_the_line) > START_LINE_KMH + 0.1
    assert max(k.mean_kmh for k in at_the_line) <= START_LINE_KMH + ROUNDING_KMH
    warnings = events(rep, "overspeed_warning")
    # a warning clears only after a second at or under the cap itself (2.0 km/h), which a belt
    # at 2.3 km/h never is: one warning is right, three would already be a lot
    assert len(warnings) <= 3, [w["t"] for w in warnings]
    assert all(b["t"] - a["t"] >= 1.0 for a, b in itertools.pairwise(warnings))
    assert len(events(rep, "not_enforced")) <= len(warnings)


# ---- sensors that cannot vouch for the speed ---------------------------------------------------


def test_a_hall_sensor_dying_at_speed_is_suspected_within_a_second_and_stopped_after_the_grace():
    name = "rule_hall_sensor_dies_at_speed"
    rep, ticks = story(name), truth(name)
    lost, unproven = events(rep, "sensor_lost")
    warning = the(rep, "overspeed_warning")
    assert (lost["sensor"], lost["state"]) == ("hall", "suspect")
    # the last edge came at most an interval (0.19 s) before 30 s; a belt slowing at 2 km/h/s
    # from 3 km/h would pass two more magnets within about 0.65 s
    assert 30.0 < lost["t"] <= 31.0
    assert warning["t"] == lost["t"]
    assert (warning["reason"], warning["speed_kmh"], warning["cap_kmh"]) == (
        "speed unknown",
        None,
        3.0,
    )
    stop = events(rep, "enforced_stop")[0]
    assert stop["reason"] == "speed unknown"
    assert stop["t"] == pytest.approx(warning["t"] + GRACE_S, abs=TICK_S)
    # until the stop the device never vouches for a speed, and the session never pauses as if
    # the belt had stopped: it is truly running at 6 km/h when the relay cuts it
    blind = between(ticks, lost["t"], stop["t"])
    assert {(k.sensor, k.speed_kmh, k.state) for k in blind} == {("suspect", None, "running")}
    assert [p for p in events(rep, "session_paused") if p["reason"] != "enforced stop"] == []
    assert at(ticks, stop["t"] - TICK_S).belt_kmh == pytest.approx(6.0)
    # the stop does not make the sensor good: it has not seen the belt since, so the loop
    # stays open in backward mode instead of letting the belt run past a dead sensor
    assert (unproven["state"], unproven["t"]) == ("unproven", pytest.approx(stop["t"] + TICK_S))
    held = the(rep, "stop_held")
    assert held["t"] == pytest.approx(stop["t"] + 2.0, abs=TICK_S)  # when the pulse would end
    assert {k.relay for k in ticks if k.t >= stop["t"]} == {"open"}


DROPOUTS = "rule_hall_dropouts_latch_a_fault"
FIRST_DROPOUT_AT = 30.0  # lost for 2 s in every 6 from here, the belt at a legal 3 km/h
DROPOUT_START_AT = 70.2  # START released with the belt standing


def test_hall_dropouts_at_three_kmh_latch_a_fault_until_the_belt_stood_and_start():
    rep, ticks = story(DROPOUTS), truth(DROPOUTS)
    said = [(e["t"], e["state"]) for e in events(rep, "sensor_lost")]
    latched = [e for e in events(rep, "sensor_lost") if e["state"] == "dropout"]
    assert latched, f"no dropout fault; sensor_lost said {said}"
    # latched by the second edge after the first gap: 2 s + two intervals at 3 km/h (0.38 s)
    assert latched[0]["t"] <= FIRST_DROPOUT_AT + 2.0 + 1.0
    held = between(ticks, latched[0]["t"], DROPOUT_START_AT)
    assert {k.sensor for k in held} == {"dropout"}
    assert at(ticks, DROPOUT_START_AT + TICK_S).sensor == "ok"


def test_hall_dropouts_at_three_kmh_are_stopped_within_the_grace_and_the_gap():
    rep = story(DROPOUTS)
    stop = events(rep, "enforced_stop")[0]
    warnings = [(w["t"], w["grace_s"]) for w in events(rep, "overspeed_warning")]
    assert stop["t"] <= FIRST_DROPOUT_AT + GRACE_S + 2.0, f"warnings (t, budget): {warnings}"


def test_a_dropout_fault_holds_through_slowing_down_until_seen_stopped_and_start():
    name = "rule_hall_dropouts_latch_until_seen_stopped"
    rep, ticks = story(name), truth(name)
    (latched,) = [e for e in events(rep, "sensor_lost") if e["state"] == "dropout"]
    assert 22.0 < latched["t"] <= 22.5  # the second edge at 6 km/h after the gap: 0.19 s
    # latched through the slow-down to 1.5 km/h, the turn backward and the stop, until START
    held = between(ticks, latched["t"], 60.2)
    assert {k.sensor for k in held} == {"dropout"}
    assert min(k.belt_kmh for k in held if k.t < 40.0) == pytest.approx(1.5)
    turned = next(e for e in events(rep, "mode_changed") if e["mode"] == "backward")
    warning = events(rep, "overspeed_warning")[0]
    assert warning["t"] == turned["t"] == 40.0
    assert warning["reason"] == "speed unknown"
    stop = events(rep, "enforced_stop")[0]
    assert stop["t"] == pytest.approx(warning["t"] + GRACE_S, abs=TICK_S)
    restored = the(rep, "sensor_restored")
    assert restored["t"] == 60.2
    assert at(ticks, 70.0).speed_kmh == pytest.approx(1.0, abs=0.1)  # read again


def test_a_belt_too_fast_for_the_sensor_reads_unknown_never_half_its_speed():
    name = "rule_too_fast_for_the_sensor_is_a_fault"
    rep, ticks = story(name), truth(name)
    lost = the(rep, "sensor_lost")
    assert (lost["sensor"], lost["state"]) == ("hall", "too fast")
    assert lost["t"] < 15.5  # the belt reaches 9 km/h at 15 s
    fast = [k for k in ticks if k.belt_kmh >= 8.9]
    assert fast and {k.speed_kmh for k in fast} == {None}
    assert {k.sensor for k in between(ticks, lost["t"], 30.0)} == {"too fast"}
    assert {s["speed_kmh"] for s in story(name)["samples"] if 15 <= s["t"] <= 30} == {None}


def test_turning_backward_on_a_belt_too_fast_for_the_sensor_is_stopped_after_the_grace():
    rep = story("rule_too_fast_for_the_sensor_is_a_fault")
    warning, stop = the(rep, "overspeed_warning"), events(rep, "enforced_stop")[0]
    assert (warning["t"], warning["reason"]) == (30.0, "speed unknown")  # forward: no limit
    assert stop["t"] == pytest.approx(warning["t"] + GRACE_S, abs=TICK_S)
    assert (stop["reason"], stop["scope"]) == ("speed unknown", "session")


@pytest.mark.parametrize(
    ("name", "channel"),
    [
        ("rule_check_sensor_catches_a_dead_primary", "hall"),
        ("rule_check_sensor_disagrees", "check"),
    ],
)
def test_a_sensor_silent_beside_a_moving_one_is_a_fault_and_stopped(name, channel):
    rep = story(name)
    lost = the(rep, "sensor_lost")
    assert (lost["sensor"], lost["state"]) == (channel, "silent")
    # silent once 2.5 of its intervals overdue: 1.4 s at 1 km/h
    assert 30.0 < lost["t"] <= 30.0 + 2.0
    stop = events(rep, "enforced_stop")[0]
    assert stop["reason"] == "speed unknown"
    assert stop["t"] <= 30.0 + GRACE_S + 2.0


def test_a_dead_hall_sensor_does_not_hide_a_belt_sped_up_to_six_kmh():
    name = "rule_check_sensor_catches_a_dead_primary"
    stop = events(story(name), "enforced_stop")[0]
    assert at(truth(name), stop["t"] - TICK_S).belt_kmh == pytest.approx(6.0)


# ---- outside a session -----------------------------------------------------------------------

NO_SESSION = "rule_without_session_warns_by_default"


def test_running_fast_without_a_session_is_warned_and_never_stopped():
    rep, ticks = story(NO_SESSION), truth(NO_SESSION)
    warning = the(rep, "overspeed_warning")
    assert (warning["scope"], warning["cap_kmh"], warning["stop_coming"]) == (
        "no session",
        2.0,
        False,
    )
    not_enforced = the(rep, "not_enforced")
    assert not_enforced["action"] == "warn"
    assert not_enforced["t"] == pytest.approx(warning["t"] + GRACE_S, abs=TICK_S)
    assert events(rep, "enforced_stop") == []
    assert {k.relay for k in ticks} == {"closed"}
    assert over_s(ticks) >= 60.0  # the runner truly ran over the start cap all along


def test_the_no_session_warning_tells_the_runner_what_to_do():
    status = status_at(NO_SESSION, 30.0)
    assert status["message"] == NO_SESSION_READS
    assert status["warning"]["scope"] == "no session"
    assert status["warning"]["stop_coming"] is False


def test_without_session_stop_stops_the_runner_after_the_grace():
    rep = story("rule_without_session_stop")
    warning, stop = the(rep, "overspeed_warning"), the(rep, "enforced_stop")
    assert (warning["scope"], warning["stop_coming"]) == ("no session", True)
    assert stop["scope"] == "no session"
    assert stop["t"] == pytest.approx(warning["t"] + GRACE_S, abs=TICK_S)


@pytest.mark.parametrize(
    ("name", "refused_at"),
    [
        ("rule_refused_start_arms_the_guard", 6.2),
        ("rule_refused_dashboard_start_arms_the_guard", 6.0),
    ],
)
def test_a_refused_start_at_speed_arms_the_guard_with_the_budget_left(name, refused_at):
    rep = story(name)
    first = events(rep, "overspeed_warning")[0]
    assert first["scope"] == "no session" and first["t"] < refused_at
    refused, held = the(rep, "start_refused"), the(rep, "still_guarded")
    assert refused["t"] == held["t"] == refused_at
    assert refused["speed_kmh"] == pytest.approx(6.0, abs=0.1)
    assert (held["why"], held["cap_kmh"]) == ("the start was refused", 2.0)
    stop = the(rep, "enforced_stop")
    assert stop["scope"] == "refused"
    # the no-session warning already drew on the one budget: no fresh grace from the press
    assert stop["t"] <= first["t"] + GRACE_S + TICK_S
    assert events(rep, "session_started") == []


def test_a_start_between_the_first_and_the_second_edge_is_refused_as_speed_unknown():
    name = "rule_start_gate_needs_two_intervals"
    rep, ticks = story(name), truth(name)
    meters_per_pulse = 3.16
    refused = the(rep, "start_refused")
    assert refused["t"] == 7.7  # released: one magnet has passed, the second not yet
    assert meters_per_pulse <= at(ticks, 7.7).belt_m < 2 * meters_per_pulse
    assert refused["speed_kmh"] is None and "not known" in refused["reason"]
    assert events(rep, "session_started") == []
    assert {k.state for k in ticks} == {"idle"}


# ---- the cap's schedule follows the walking ---------------------------------------------------

HOLD = "rule_hold_and_ramp_count_walking"


def test_a_long_pause_neither_ramps_the_cap_nor_lifts_it_to_the_level_cap():
    rep = story(HOLD)
    assert sample_at(rep, 189.0)["cap_kmh"] == 2.3  # 184 s walked
    paused = [s for s in rep["samples"] if 191 <= s["t"] <= 429]
    assert {(s["state"], s["cap_kmh"]) for s in paused} == {("paused", 2.3)}
    # resumed at 430 s with 185 s walked: 2.4 km/h comes at 210 s walked, 455 s
    assert sample_at(rep, 431.0)["cap_kmh"] == 2.3
    assert sample_at(rep, 453.0)["cap_kmh"] == 2.3
    assert sample_at(rep, 457.0)["cap_kmh"] == 2.4


def test_standing_on_a_stopped_belt_does_not_ramp_the_cap():
    rep = story(HOLD)
    (stood,) = [p for p in events(rep, "session_paused") if p["reason"] == "belt stopped"]
    (walks,) = [r for r in events(rep, "session_resumed") if r["reason"] == "belt running"]
    assert 475.0 <= stood["t"] <= 478.0  # 5 s after the belt reads 0
    assert 541.0 <= walks["t"] <= 543.0  # a second after it runs again
    assert sample_at(rep, 469.0)["cap_kmh"] == sample_at(rep, 545.0)["cap_kmh"] == 2.4
    # 2.5 km/h at 240 s walked: 225 s at 470 s, about a second more as the belt slows through
    # 0.3 km/h, the rest after the resume: about 556 s. Had the 5 s standing before the pause
    # counted, it would come by 552 s.
    assert sample_at(rep, 553.0)["cap_kmh"] == 2.4
    assert sample_at(rep, 558.0)["cap_kmh"] == 2.5


BUMPED = "rule_bumped_direction_keeps_the_earned_cap"


def test_bumping_direction_twice_keeps_the_earned_cap_and_the_walk_goes_on():
    rep, ticks = story(BUMPED), truth(BUMPED)
    assert sample_at(rep, 21.0)["cap_kmh"] == 3.0  # earned 15 s into the segment
    bumps = [(e["t"], e["mode"]) for e in events(rep, "mode_changed") if e["t"] < 61]
    assert bumps == [(60.0, "forward"), (60.5, "backward")]
    assert [w for w in events(rep, "overspeed_warning") if w["t"] < 150] == []
    assert [s for s in events(rep, "enforced_stop") if s["t"] < 150] == []
    walking_on = between(ticks, 60.5, 90.0)
    assert {(k.mode, k.cap_kmh, k.belt_kmh) for k in walking_on} == {("backward", 3.0, 2.8)}


def test_turning_back_after_more_than_a_minute_starts_again_at_the_start_cap():
    rep = story(BUMPED)
    (back,) = [e for e in events(rep, "mode_changed") if e["t"] > 150]
    assert (back["t"], back["mode"]) == (155.0, "backward")  # 65 s after turning forward
    warning = the(rep, "overspeed_warning")
    assert warning["t"] - back["t"] <= TICK_S
    assert (warning["cap_kmh"], warning["speed_kmh"]) == (2.0, pytest.approx(2.8, abs=0.05))
    assert sample_at(rep, 156.0)["cap_kmh"] == 2.0
    stop = the(rep, "enforced_stop")
    assert stop["t"] == pytest.approx(warning["t"] + GRACE_S, abs=TICK_S)
