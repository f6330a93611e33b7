"""Whether the device can vouch for the belt speed it reads: the hall sensor's edges against
the physics of a belt, a second (check) sensor against the first, a serial source going quiet.

Belts here are edge times: exact for steady belts and for a console's steady slowing, and
integrated in 1 ms steps for a belt with foot-strike ripple and edge jitter. Times start at
100 s, as a monotonic clock would; the device judges every TICK_S.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from device.core.readings import ReadingSpeed
from device.core.sensor_trust import (
    PulseTrust,
    SensorState,
    SensorVerdict,
    suspicion_floor_kmh,
)
from device.core.sensor_watch import SensorWatch, agreement_kmh
from device.core.speed import SpeedEstimator

T0 = 100.0
ROLLER_M = 0.157  # one magnet on a 50 mm roller, the default config
CHECK_M = 0.2  # the check sensor's own magnet
TICK_S = 0.02  # stricter than the daemon's 10 Hz: more chances to raise a false alarm
CONSOLE_RATE = 1.5  # km/h per s: how the console slows the belt
FLOOR_KMH = suspicion_floor_kmh(ROLLER_M)

OK, SUSPECT, DROPOUT = SensorState.OK, SensorState.SUSPECT, SensorState.DROPOUT


# ---- belts ---------------------------------------------------------------------------------------


def interval_s(kmh: float, meters_per_pulse: float = ROLLER_M) -> float:
    return meters_per_pulse / (kmh / 3.6)


def steady(
    kmh: float, seconds: float, *, start: float = T0, meters_per_pulse: float = ROLLER_M
) -> list[float]:
    """Edge times of a belt running steadily at kmh from an edge at `start` for `seconds`."""
    step = interval_s(kmh, meters_per_pulse)
    return [start + k * step for k in range(int(seconds / step) + 1)]


def slowing(
    kmh: float, rate: float, *, start: float, meters_per_pulse: float = ROLLER_M
) -> list[float]:
    """Edge times of a belt at kmh from an edge at `start`, slowing at `rate` km/h per s until
    it stands: the edges after that one."""
    v, a = kmh / 3.6, rate / 3.6
    edges = []
    for k in range(1, 10_000):
        left = v * v - 2.0 * a * k * meters_per_pulse
        if left < 0:
            return edges
        edges.append(start + (v - math.sqrt(left)) / a)
    raise AssertionError("the belt never stood")


def starting(
    rate: float, kmh: float, *, start: float, seconds: float, offset_m: float
) -> list[float]:
    """Edge times of a belt starting from standstill at `start`, speeding up at `rate` km/h
    per s to kmh and running on; its magnet `offset_m` short of the sensor."""
    a, v = rate / 3.6, kmh / 3.6
    ramp_s = v / a
    ramp_m = v * ramp_s / 2.0
    edges = []
    for k in range(10_000):
        x = offset_m + k * ROLLER_M
        t = math.sqrt(2.0 * x / a) if x <= ramp_m else ramp_s + (x - ramp_m) / v
        if t > seconds:
            return edges
        edges.append(start + t)
    raise AssertionError("too many edges")


def walked(
    kmh_at: Callable[[float], float],
    seconds: float,
    *,
    start: float = T0,
    ripple_pct: float = 0.0,
    ripple_hz: float = 2.0,
    jitter_pct: float = 0.0,
    seed: int = 0,
    meters_per_pulse: float = ROLLER_M,
    offset_m: float = 0.0,
) -> list[float]:
    """Edge times of a belt at kmh_at(s) for s seconds from `start`, with foot strikes slowing
    and surging it (`ripple_pct` at `ripple_hz`) and each interval at its own random pace
    (`jitter_pct`), as the simulated belt does. The magnet passes the sensor at `start`, or
    `offset_m` later along the belt."""
    rng = random.Random(seed)
    phase = rng.uniform(0.0, 2.0 * math.pi)
    dt = 0.001
    edges = [] if offset_m else [start]
    travel_m, jitter = (meters_per_pulse - offset_m) % meters_per_pulse, 1.0
    for n in range(round(seconds / dt)):
        s = n * dt
        ripple = 1.0 + ripple_pct / 100 * math.sin(2 * math.pi * ripple_hz * s + phase)
        mps = max(0.0, kmh_at(s)) * ripple * jitter / 3.6
        if mps <= 0.0:
            continue
        ahead = travel_m + mps * dt
        if ahead >= meters_per_pulse:
            edges.append(start + s + (meters_per_pulse - travel_m) / mps)
            ahead -= meters_per_pulse
            jitter = 1.0 + rng.uniform(-1.0, 1.0) * jitter_pct / 100
        travel_m = ahead
    return edges


def console_stop(kmh: float, *, run_s: float, rate: float = CONSOLE_RATE) -> Callable:
    """Speed over time: kmh for run_s, then slowing at `rate` to a stand."""
    return lambda s: kmh if s < run_s else kmh - rate * (s - run_s)


# ---- the device judging --------------------------------------------------------------------------


def hall(meters_per_pulse: float = ROLLER_M, **kw) -> PulseTrust:
    return PulseTrust(SpeedEstimator(meters_per_pulse, **kw), channel="hall")


def check(meters_per_pulse: float = CHECK_M) -> PulseTrust:
    return PulseTrust(SpeedEstimator(meters_per_pulse), channel="check")


def judged(
    judge: Callable[[float], SensorVerdict],
    feeds: list[tuple[Callable[[float], object], list[float]]],
    *,
    until: float,
    start: float = T0,
    tick_s: float = TICK_S,
) -> list[tuple[float, SensorVerdict]]:
    """Ticks from `start` to `until`: each feeds the edges due by then, then judges."""
    fed = [0] * len(feeds)
    verdicts = []
    for n in range(round((until - start) / tick_s) + 1):
        t = start + n * tick_s
        for i, (pulse, edges) in enumerate(feeds):
            while fed[i] < len(edges) and edges[fed[i]] <= t:
                pulse(edges[fed[i]])
                fed[i] += 1
        verdicts.append((t, judge(t)))
    return verdicts


def states(verdicts: list[tuple[float, SensorVerdict]]) -> set[SensorState]:
    return {verdict.state for _, verdict in verdicts}


def first(verdicts: list[tuple[float, SensorVerdict]], state: SensorState) -> float | None:
    return next((t for t, verdict in verdicts if verdict.state is state), None)


def watch_alone(trust: PulseTrust, edges: list[float], until: float, **kw):
    return judged(trust.judge, [(trust.pulse, edges)], until=until, **kw)


# ---- a belt stopping as a belt does --------------------------------------------------------------


@pytest.mark.parametrize("kmh", [2.0, 4.0, 6.0, 10.0, 16.0])
def test_an_ordinary_console_stop_never_raises_suspicion(kmh):
    run = steady(kmh, 5.0)
    edges = run + slowing(kmh, CONSOLE_RATE, start=run[-1])
    trust = hall()
    verdicts = watch_alone(trust, edges, until=edges[-1] + 10.0)
    assert states(verdicts) == {OK}
    assert trust.estimator.stopped(edges[-1] + 10.0)


def test_a_console_stop_at_the_quickest_rate_a_console_makes_raises_no_suspicion():
    run = steady(6.0, 5.0)
    edges = run + slowing(6.0, 2.0, start=run[-1])
    assert states(watch_alone(hall(), edges, until=edges[-1] + 10.0)) == {OK}


@settings(max_examples=60, deadline=None)
@given(
    kmh=st.floats(2.0, 16.0),
    rate=st.floats(0.3, CONSOLE_RATE),
    ripple_pct=st.floats(0.0, 7.0),
    ripple_hz=st.floats(0.5, 3.0),
    jitter_pct=st.floats(0.0, 5.0),
    seed=st.integers(0, 2**32 - 1),
)
def test_a_console_stop_with_foot_strikes_and_jitter_never_raises_suspicion(
    kmh, rate, ripple_pct, ripple_hz, jitter_pct, seed
):
    edges = walked(
        console_stop(kmh, run_s=4.0, rate=rate),
        4.0 + kmh / rate + 0.5,
        ripple_pct=ripple_pct,
        ripple_hz=ripple_hz,
        jitter_pct=jitter_pct,
        seed=seed,
    )
    verdicts = watch_alone(hall(), edges, until=edges[-1] + 6.0)
    assert states(verdicts) == {OK}


def test_the_usual_walk_from_6_kmh_at_the_documented_ripple_and_jitter_raises_nothing():
    for seed in range(5):
        edges = walked(
            console_stop(6.0, run_s=10.0), 15.0, ripple_pct=7.0, jitter_pct=5.0, seed=seed
        )
        assert states(watch_alone(hall(), edges, until=edges[-1] + 6.0)) == {OK}, seed


def test_one_missed_pulse_at_speed_raises_no_suspicion():
    edges = steady(6.0, 6.0)
    del edges[40]  # a magnet pass not seen
    assert states(watch_alone(hall(), edges, until=edges[-1] + 0.05)) == {OK}


# ---- edges that end as no belt stops -------------------------------------------------------------


def test_pulses_ending_abruptly_at_6_kmh_are_suspect_within_a_third_of_a_second():
    edges = steady(6.0, 3.0)
    verdicts = watch_alone(hall(), edges, until=edges[-1] + 2.0, tick_s=0.005)
    suspect_at = first(verdicts, SUSPECT)
    assert suspect_at is not None
    after = suspect_at - edges[-1]
    assert 2 * interval_s(6.0) < after <= 0.3  # one missed pulse is not yet a fault
    verdict = dict(verdicts)[suspect_at]
    assert (verdict.channel, verdict.trusted) == ("hall", False)
    assert "hall sensor" in verdict.detail
    assert states([(t, v) for t, v in verdicts if t >= suspect_at]) == {SUSPECT}  # it stays


@settings(max_examples=40, deadline=None)
@given(slow=st.floats(0.5, 2.0), fast=st.floats(1.3 * FLOOR_KMH, 12.0), intervals=st.integers(2, 6))
def test_pulses_ending_abruptly_just_after_a_sudden_speed_up_are_suspect(slow, fast, intervals):
    """The one-second pace lags a belt that just sped up by seconds; two intervals at the new
    speed are enough to know the silence after them is no belt's stop (a CI run found a
    sensor dying 0.3 s after a jump from 1.5 to 4.8 km/h that read as a belt stopping)."""
    crawl = steady(slow, 3.0)
    edges = crawl + steady(fast, intervals * interval_s(fast), start=crawl[-1] + interval_s(fast))
    verdicts = watch_alone(hall(), edges, until=edges[-1] + 1.0, tick_s=0.01)
    assert first(verdicts, SUSPECT) is not None


@settings(max_examples=40, deadline=None)
@given(kmh=st.floats(1.05 * FLOOR_KMH, 20.0), seconds=st.floats(2.0, 5.0))
def test_pulses_ending_abruptly_above_the_floor_are_always_suspect(kmh, seconds):
    edges = steady(kmh, seconds)
    verdicts = watch_alone(hall(), edges, until=edges[-1] + 1.0, tick_s=0.01)
    suspect_at = first(verdicts, SUSPECT)
    assert suspect_at is not None and suspect_at - edges[-1] > 2 * interval_s(kmh)


def test_the_suspicion_floor_at_the_default_magnet_is_about_2_66_kmh():
    assert suspicion_floor_kmh(ROLLER_M) == pytest.approx(2.66, abs=0.01)
    assert suspicion_floor_kmh(4 * ROLLER_M) == pytest.approx(2 * FLOOR_KMH)


@settings(max_examples=40, deadline=None)
@given(kmh=st.floats(0.3, 0.99 * FLOOR_KMH), seconds=st.floats(4.0, 8.0))
def test_pulses_ending_below_the_floor_are_never_suspect(kmh, seconds):
    # a belt this slow may stop within two pulses: nothing on one channel can tell
    edges = steady(kmh, seconds)
    verdicts = watch_alone(hall(), edges, until=edges[-1] + 10.0, tick_s=0.05)
    assert states(verdicts) == {OK}


# ---- edges that resume ---------------------------------------------------------------------------


@pytest.mark.parametrize("gap_s", [0.4, 1.5])
def test_edges_resuming_at_speed_after_a_suspicious_gap_latch_a_dropout(gap_s):
    # 0.4 s: the run goes on across the gap; 1.5 s: a new run, but back at 6 km/h at once
    before = steady(6.0, 3.0)
    after = steady(6.0, 20.0, start=before[-1] + gap_s)
    trust = hall()
    verdicts = watch_alone(trust, before + after, until=after[-1])
    assert first(verdicts, SUSPECT) < after[0] < first(verdicts, DROPOUT) <= after[1] + TICK_S
    latched = [(t, v) for t, v in verdicts if t >= after[1] + TICK_S]
    assert states(latched) == {DROPOUT}  # latched while the belt runs on
    verdict = latched[0][1]
    assert verdict.channel == "hall" and "START" in verdict.detail
    trust.start_pressed(after[-1])  # START while the belt runs: no
    assert trust.judge(after[-1]).state is DROPOUT


def dropped_out() -> tuple[PulseTrust, list[float]]:
    """A hall channel latched on a dropout at 6 km/h; the walker then stops the belt at the
    console. Returns it and the edges after the dropout."""
    before = steady(6.0, 3.0)
    after = steady(6.0, 5.0, start=before[-1] + 0.4)
    after += slowing(6.0, CONSOLE_RATE, start=after[-1])
    trust = hall()
    assert first(watch_alone(trust, before + after, until=after[-1]), DROPOUT) is not None
    return trust, after


def test_a_dropout_clears_on_start_only_after_five_seconds_without_edges():
    trust, edges = dropped_out()
    last = edges[-1]
    standing = watch_alone(trust, [], until=last + 4.9, start=last + 0.1)
    assert states(standing) == {DROPOUT}
    trust.start_pressed(last + 4.9)  # stopped, but not yet seen stopped long enough
    assert trust.judge(last + 4.95).state is DROPOUT
    assert trust.judge(last + 5.01).state is DROPOUT  # seen stopped now
    trust.start_pressed(last + 5.1)
    assert trust.judge(last + 5.1).state is OK


def test_a_dropout_clears_on_start_after_our_relay_cut_the_belt():
    before = steady(6.0, 3.0)
    after = steady(6.0, 5.0, start=before[-1] + 0.4)
    trust = hall()
    watch_alone(trust, before + after, until=after[-1])
    assert trust.judge(after[-1]).state is DROPOUT
    cut = after[-1] + 0.01
    trust.belt_cut(cut)
    assert trust.judge(cut + 0.1).state is DROPOUT  # still latched until START
    trust.start_pressed(cut + 0.2)
    assert trust.judge(cut + 0.2).state is OK


def test_a_dropout_stays_latched_when_start_comes_with_the_belt_running_again():
    trust, edges = dropped_out()
    watch_alone(trust, [], until=edges[-1] + 6.0, start=edges[-1] + 0.1)  # seen stopped
    again = steady(3.0, 3.0, start=edges[-1] + 6.1)
    watch_alone(trust, again, until=again[-1], start=again[0])
    trust.start_pressed(again[-1])  # START on a running belt
    assert trust.judge(again[-1]).state is DROPOUT


@pytest.mark.parametrize("offset_m", [0.0, 0.05, 0.12])
def test_a_restart_from_standstill_after_a_suspicious_gap_clears_the_suspicion(offset_m):
    # the belt really stopped (the key was pulled): it comes back from standstill
    before = steady(6.0, 3.0)
    after = starting(1.5, 2.0, start=before[-1] + 5.0, seconds=10.0, offset_m=offset_m)
    verdicts = watch_alone(hall(), before + after, until=after[-1])
    assert first(verdicts, SUSPECT) < after[0]
    back = [(t, v) for t, v in verdicts if t >= after[1]]
    assert states(back) == {OK}
    assert DROPOUT not in states(verdicts)


# ---- our relay cut the belt ----------------------------------------------------------------------


def test_our_relay_cutting_the_belt_excuses_its_coasting():
    run = steady(6.0, 3.0)
    trust = hall()
    watch_alone(trust, run, until=run[-1])
    cut = run[-1] + 0.01
    trust.belt_cut(cut)  # the belt stops at once, but for a pulse or two as it coasts
    coast = [run[-1] + interval_s(6.0), run[-1] + 2.2 * interval_s(6.0)]
    verdicts = watch_alone(trust, coast, until=cut + 10.0, start=cut)
    assert states(verdicts) == {OK}
    assert trust.estimator.mean_kmh(cut + 0.5, 3.0) < 1.0  # the run before the cut is forgotten


def test_our_relay_cutting_the_belt_leaves_a_suspect_sensor_to_prove_itself():
    # the belt stops for a reason we know, but a dead sensor would read it stopped as well: it
    # stays unproven (speed unknown) until it has seen the belt move again
    run = steady(6.0, 3.0)
    trust = hall()
    assert first(watch_alone(trust, run, until=run[-1] + 1.0), SUSPECT) is not None
    cut = run[-1] + 1.0
    trust.belt_cut(cut)
    assert trust.judge(cut).state is SensorState.UNPROVEN
    assert trust.judge(cut + 60.0).state is SensorState.UNPROVEN
    restart = steady(1.0, 3.0, start=cut + 70.0)
    verdicts = watch_alone(trust, restart, until=restart[-1])
    proven = first(verdicts, OK)
    assert proven is not None and proven >= restart[2]  # two intervals of the new run


def test_our_relay_cutting_a_trusted_sensor_leaves_it_trusted():
    run = steady(3.0, 3.0)
    trust = hall()
    watch_alone(trust, run, until=run[-1])
    last = trust.estimator.last_pulse_t
    assert last is not None
    trust.belt_cut(last + 0.05)  # within the interval: its next edge was not yet due
    assert trust.judge(last + 10.0).state is OK


def test_a_sensor_already_overdue_when_our_relay_cuts_must_prove_itself():
    # it went quiet a moment before the cut (1.5 intervals at 3 km/h): too soon to be suspect,
    # but it may have died just then, and a stopped belt would hide it
    run = steady(3.0, 3.0)
    trust = hall()
    watch_alone(trust, run, until=run[-1])
    last = trust.estimator.last_pulse_t
    assert last is not None and trust.judge(last + 0.28).state is OK
    trust.belt_cut(last + 0.28)
    assert trust.judge(last + 10.0).state is SensorState.UNPROVEN


def test_after_the_coast_pulses_ending_abruptly_are_suspect_again():
    trust = hall()
    trust.belt_cut(T0 - 5.0)
    run = steady(6.0, 3.0)  # restarted long after the cut
    assert first(watch_alone(trust, run, until=run[-1] + 1.0), SUSPECT) is not None


# ---- a reading faster than the treadmill can go --------------------------------------------------


def test_a_three_second_mean_above_max_speed_is_too_fast():
    trust = hall(max_speed_kmh=6.0)
    edges = steady(7.0, 5.0)
    verdicts = watch_alone(trust, edges, until=edges[-1])
    too_fast = first(verdicts, SensorState.TOO_FAST)
    assert too_fast is not None and too_fast > T0 + 2.0  # once the 3 s mean is over 6
    verdict = dict(verdicts)[too_fast]
    assert verdict.channel == "hall" and "max_speed_kmh (6 km/h)" in verdict.detail


def test_a_belt_under_max_speed_is_not_too_fast():
    edges = steady(5.9, 10.0)
    assert states(watch_alone(hall(max_speed_kmh=6.0), edges, until=edges[-1])) == {OK}


def test_a_short_surge_over_max_speed_that_keeps_the_3_s_mean_under_is_not_too_fast():
    first_part = steady(5.5, 5.0)
    surge = steady(7.5, 0.5, start=first_part[-1] + interval_s(7.5))
    last_part = steady(5.5, 5.0, start=surge[-1] + interval_s(5.5))
    edges = first_part + surge + last_part
    assert states(watch_alone(hall(max_speed_kmh=6.0), edges, until=edges[-1])) == {OK}


# ---- a check sensor on the same belt -------------------------------------------------------------


def two_sensors() -> tuple[SensorWatch, PulseTrust, PulseTrust]:
    primary, second = hall(), check()
    return SensorWatch(primary=primary, readings=None, check=second), primary, second


def judged_both(watch: SensorWatch, hall_edges, check_edges, *, until, **kw):
    feeds = [(watch.primary.pulse, hall_edges), (watch.check.pulse, check_edges)]
    return judged(watch.judge, feeds, until=until, **kw)


def start_walk_stop(kmh: float, rate: float, walk_s: float) -> Callable[[float], float]:
    """Speed over time: up from standstill at `rate` to kmh, held until walk_s, then down at
    `rate` to a stand."""
    return lambda s: min(kmh, rate * s) if s < walk_s else kmh - rate * (s - walk_s)


@settings(max_examples=30, deadline=None)
@given(
    kmh=st.floats(0.3, 12.0),
    rate=st.floats(0.5, CONSOLE_RATE),
    offset_m=st.floats(0.0, CHECK_M, exclude_max=True),
    ripple_pct=st.floats(0.0, 7.0),
    seed=st.integers(0, 2**32 - 1),
)
def test_two_sensors_on_one_belt_agree_from_the_start_to_the_stop(
    kmh, rate, offset_m, ripple_pct, seed
):
    speed_at = start_walk_stop(kmh, rate, 10.0)
    seconds = 10.0 + kmh / rate + 1.0
    belt = {"ripple_pct": ripple_pct, "seed": seed}  # one belt: the same foot strikes
    hall_edges = walked(speed_at, seconds, **belt)
    check_edges = walked(speed_at, seconds, meters_per_pulse=CHECK_M, offset_m=offset_m, **belt)
    watch, _, _ = two_sensors()
    verdicts = judged_both(watch, hall_edges, check_edges, until=T0 + seconds + 6.0, tick_s=0.05)
    assert states(verdicts) == {OK}


def test_the_check_sensor_silent_while_the_hall_sensor_reads_the_belt_moving():
    watch, _, _ = two_sensors()
    hall_edges = steady(4.0, 10.0)
    verdicts = judged_both(watch, hall_edges, [], until=T0 + 10.0)
    silent_at = first(verdicts, SensorState.SILENT)
    assert silent_at is not None and silent_at <= T0 + 1.5
    verdict = dict(verdicts)[silent_at]
    assert verdict.channel == "check" and "check sensor is silent" in verdict.detail


def test_a_hall_sensor_silent_from_the_start_while_the_check_sensor_reads_the_belt_moving():
    watch, _, _ = two_sensors()
    check_edges = steady(4.0, 10.0, meters_per_pulse=CHECK_M)
    verdicts = judged_both(watch, [], check_edges, until=T0 + 10.0)
    silent_at = first(verdicts, SensorState.SILENT)
    assert silent_at is not None and silent_at <= T0 + 1.5
    assert dict(verdicts)[silent_at].channel == "hall"


def test_a_hall_sensor_that_dies_on_a_slow_belt_is_told_by_the_check_sensor():
    # at 2 km/h the hall sensor alone cannot tell a dead sensor from a stopped belt
    hall_edges = steady(2.0, 5.0)
    check_edges = steady(2.0, 15.0, start=T0 + 0.1, meters_per_pulse=CHECK_M)
    alone = watch_alone(hall(), hall_edges, until=T0 + 15.0)
    assert states(alone) == {OK}
    watch, _, _ = two_sensors()
    verdicts = judged_both(watch, hall_edges, check_edges, until=T0 + 15.0)
    silent_at = first(verdicts, SensorState.SILENT)
    assert silent_at is not None and hall_edges[-1] < silent_at <= hall_edges[-1] + 1.5
    verdict = dict(verdicts)[silent_at]
    assert verdict.channel == "hall" and "hall sensor is silent" in verdict.detail


def test_two_sensors_apart_beyond_the_tolerance_for_a_second_disagree():
    # the check sensor's meters_per_pulse is off: it reads 6 km/h for the hall's 4
    watch, _, _ = two_sensors()
    hall_edges = steady(4.0, 10.0)
    check_edges = steady(6.0, 10.0, start=T0 + 0.05, meters_per_pulse=CHECK_M)
    verdicts = judged_both(watch, hall_edges, check_edges, until=T0 + 10.0)
    disagree_at = first(verdicts, SensorState.DISAGREE)
    assert disagree_at is not None
    # when the two 3 s means first drifted apart beyond 0.5 km/h + 15 % of the faster
    fresh_primary, fresh_check = hall(), check()
    apart_since = None
    for t, _ in judged_both(
        SensorWatch(primary=fresh_primary, readings=None, check=fresh_check),
        hall_edges,
        check_edges,
        until=T0 + 10.0,
    ):
        a = fresh_primary.estimator.mean_kmh(t, 3.0)
        b = fresh_check.estimator.mean_kmh(t, 3.0)
        if abs(a - b) > agreement_kmh(max(a, b), max(ROLLER_M, CHECK_M)):
            apart_since = t
            break
    assert apart_since is not None
    assert disagree_at == pytest.approx(apart_since + 1.0, abs=TICK_S + 1e-9)
    verdict = dict(verdicts)[disagree_at]
    assert verdict.channel == "check" and "disagree (4.0 against 6.0 km/h)" in verdict.detail


def test_two_sensors_within_the_tolerance_agree():
    watch, _, _ = two_sensors()
    hall_edges = steady(4.0, 10.0)
    check_edges = steady(4.8, 10.0, start=T0 + 0.05, meters_per_pulse=CHECK_M)  # 0.8 apart
    assert states(judged_both(watch, hall_edges, check_edges, until=T0 + 10.0)) == {OK}


def test_a_dead_hall_sensor_at_speed_is_suspect_before_the_check_sensor_is_asked():
    watch, _, _ = two_sensors()
    hall_edges = steady(6.0, 3.0)
    check_edges = steady(6.0, 6.0, start=T0 + 0.03, meters_per_pulse=CHECK_M)
    verdicts = judged_both(watch, hall_edges, check_edges, until=T0 + 6.0)
    assert first(verdicts, SUSPECT) < (first(verdicts, SensorState.SILENT) or math.inf)
    assert dict(verdicts)[first(verdicts, SUSPECT)].channel == "hall"


# ---- a serial source -----------------------------------------------------------------------------


def test_a_serial_source_gone_quiet_is_stale():
    readings = ReadingSpeed(stale_s=2.0)
    watch = SensorWatch(primary=None, readings=readings, channel="serial")
    for n in range(26):  # 5 Hz for 5 s
        readings.reading(T0 + n * 0.2, 3.0)
    last = T0 + 5.0
    assert watch.judge(last + 2.0).state is OK
    verdict = watch.judge(last + 2.01)
    assert (verdict.state, verdict.channel) == (SensorState.STALE, "serial")
    assert "serial speed source" in verdict.detail
    readings.reading(last + 3.0, 3.0)
    assert watch.judge(last + 3.0).state is OK


def test_a_serial_source_with_no_reading_yet_is_stale():
    watch = SensorWatch(primary=None, readings=ReadingSpeed(stale_s=2.0), channel="serial")
    assert watch.judge(T0).state is SensorState.STALE


def serial_and_check(kmh: float, check_edges: list[float], *, until: float):
    """A serial source reading 0 km/h for 5 s before T0 and kmh from then on, every 0.1 s,
    beside a check sensor with these edges."""
    readings, second = ReadingSpeed(stale_s=2.0), check()
    watch = SensorWatch(primary=None, readings=readings, check=second, channel="serial")
    serial = [T0 + n * 0.1 for n in range(-50, round((until - T0) / 0.1) + 1)]

    def reading(t: float) -> None:
        readings.reading(t, 0.0 if t < T0 else kmh)

    feeds = [(reading, serial), (second.pulse, check_edges)]
    return judged(watch.judge, feeds, start=T0 - 5.0, until=until, tick_s=0.1)


def test_a_serial_source_and_a_check_sensor_on_one_belt_agree():
    check_edges = steady(4.0, 15.0, start=T0 + 0.05, meters_per_pulse=CHECK_M)
    assert states(serial_and_check(4.0, check_edges, until=T0 + 15.0)) == {OK}


def test_a_check_sensor_dying_on_a_slow_belt_beside_a_serial_source_is_silent():
    check_edges = steady(2.0, 5.0, start=T0 + 0.05, meters_per_pulse=CHECK_M)
    verdicts = serial_and_check(2.0, check_edges, until=T0 + 10.0)
    silent_at = first(verdicts, SensorState.SILENT)
    assert silent_at is not None and check_edges[-1] + 1.0 < silent_at <= check_edges[-1] + 1.2
    assert states([(t, v) for t, v in verdicts if t < silent_at]) == {OK}
    assert dict(verdicts)[silent_at].channel == "check"


def test_a_check_sensor_that_never_pulses_beside_a_serial_source_is_silent():
    verdicts = serial_and_check(4.0, [], until=T0 + 5.0)
    faults = {(v.state, v.channel) for _, v in verdicts if not v.trusted}
    assert faults == {(SensorState.SILENT, "check")}
