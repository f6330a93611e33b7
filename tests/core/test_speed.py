"""The belt speed estimator: what the display and the safety rules read from the sensor's edges.

Belts here are exact pulse trains (optionally with edge jitter and reed bounce); times start
at 100 s, as a monotonic clock would.
"""

from __future__ import annotations

import math
import random
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from device.core.speed import DEBOUNCE_FRACTION, SpeedEstimator

T0 = 100.0
ROLLER_M = 0.157  # one magnet on a 50 mm roller, the default config

speeds = st.floats(min_value=0.5, max_value=20.0)
pulse_lengths = st.floats(min_value=0.08, max_value=0.16)
seeds = st.integers(min_value=0, max_value=2**32 - 1)
few = settings(max_examples=40, deadline=None)


def interval_s(kmh: float, meters_per_pulse: float) -> float:
    return meters_per_pulse / (kmh / 3.6)


def belt(kmh: float, meters_per_pulse: float, seconds: float, *, start: float = T0) -> list[float]:
    """Edge times of a belt running steadily at kmh from `start` for `seconds`."""
    step = interval_s(kmh, meters_per_pulse)
    return [start + k * step for k in range(int(seconds / step) + 1)]


def fed(meters_per_pulse: float, edges: list[float], **kwargs) -> SpeedEstimator:
    estimator = SpeedEstimator(meters_per_pulse, **kwargs)
    for t in edges:
        estimator.pulse(t)
    return estimator


# -- steady belts ---------------------------------------------------------------------------


@few
@given(kmh=speeds, meters_per_pulse=pulse_lengths, seed=seeds)
def test_steady_belt_reads_its_speed_within_one_percent(kmh, meters_per_pulse, seed):
    rng = random.Random(seed)
    edges = [t + rng.uniform(-0.0005, 0.0005) for t in belt(kmh, meters_per_pulse, 4.5)]
    estimator = fed(meters_per_pulse, edges)
    now = edges[-1] + 0.3 * interval_s(kmh, meters_per_pulse)
    assert estimator.speed_kmh(now) == pytest.approx(kmh, rel=0.01)
    assert estimator.mean_kmh(now, 3.0) == pytest.approx(kmh, rel=0.01)


@few
@given(kmh=speeds, meters_per_pulse=pulse_lengths)
def test_display_reads_the_belt_from_the_second_pulse(kmh, meters_per_pulse):
    edges = [T0, T0 + interval_s(kmh, meters_per_pulse)]
    estimator = fed(meters_per_pulse, edges)
    assert estimator.speed_kmh(edges[-1]) == pytest.approx(kmh, rel=1e-9)


def test_slow_belt_three_second_mean_counts_part_intervals_exactly():
    # 0.5 km/h at 0.157 m: an edge every 1.13 s, so a 3 s window holds two or three of them
    edges = belt(0.5, ROLLER_M, 12.0)
    estimator = fed(ROLLER_M, edges)
    for offset in (0.0, 0.2, 0.55, 0.9, 1.1):
        assert estimator.mean_kmh(edges[-1] + offset, 3.0) == pytest.approx(0.5, rel=1e-9)


def test_three_second_mean_weighs_each_speed_by_its_time_in_the_window():
    # 2 s at 1.8 km/h (0.5 m/s), then 2 s at 3.6 km/h (1 m/s), 0.1 m per pulse
    first = [T0 + k * 0.2 for k in range(11)]
    edges = first + [first[-1] + k * 0.1 for k in range(1, 21)]
    estimator = fed(0.1, edges)
    # window [T0 + 1, T0 + 4]: 1 s at 0.5 m/s and 2 s at 1 m/s = 2.5 m in 3 s
    assert estimator.mean_kmh(T0 + 4.0, 3.0) == pytest.approx(2.5 / 3 * 3.6, rel=1e-9)


# -- first pulse and standstill ---------------------------------------------------------------


def test_first_pulse_after_standstill_reads_zero_until_the_second():
    estimator = SpeedEstimator(ROLLER_M)
    assert estimator.speed_kmh(T0) == 0.0
    estimator.pulse(T0)
    assert estimator.speed_kmh(T0 + 0.5) == 0.0
    assert estimator.mean_kmh(T0 + 0.5, 3.0) == 0.0
    estimator.pulse(T0 + 1.0)
    assert estimator.speed_kmh(T0 + 1.0) == pytest.approx(ROLLER_M / 1.0 * 3.6)


def test_belt_restarting_after_a_standstill_takes_two_pulses_again():
    edges = belt(3.0, ROLLER_M, 5.0)
    estimator = fed(ROLLER_M, edges)
    restart = edges[-1] + 20.0  # stood still for 20 s
    estimator.pulse(restart)
    assert estimator.speed_kmh(restart + 0.1) == 0.0
    estimator.pulse(restart + interval_s(2.0, ROLLER_M))
    assert estimator.speed_kmh(restart + interval_s(2.0, ROLLER_M)) == pytest.approx(2.0)


def test_lone_pulses_far_apart_never_make_a_speed():
    estimator = SpeedEstimator(ROLLER_M)
    for k in range(5):
        estimator.pulse(T0 + 10.0 * k)  # 0.06 km/h: a belt nudged by hand, not walked on
        assert estimator.speed_kmh(T0 + 10.0 * k) == 0.0


# -- stopping ---------------------------------------------------------------------------------


def test_stopping_slow_belt_reads_lower_at_once_and_zero_after_two_intervals():
    edges = belt(0.5, ROLLER_M, 6.0)
    estimator = fed(ROLLER_M, edges)
    last, step = edges[-1], interval_s(0.5, ROLLER_M)
    assert estimator.speed_kmh(last + 0.9 * step) == pytest.approx(0.5)
    assert estimator.speed_kmh(last + 1.2 * step) < 0.5 / 1.15
    assert estimator.speed_kmh(last + 1.9 * step) < 0.5 / 1.8
    assert estimator.speed_kmh(last + 2.1 * step) == 0.0


def test_belt_stopped_from_walking_speed_reads_zero_within_a_second():
    edges = belt(5.0, ROLLER_M, 3.0)
    estimator = fed(ROLLER_M, edges)
    assert estimator.speed_kmh(edges[-1] + 1.0) == 0.0


def test_one_missed_pulse_at_speed_dips_the_display_but_never_zeroes_it():
    edges = belt(12.0, ROLLER_M, 3.0)
    step = interval_s(12.0, ROLLER_M)
    estimator = fed(ROLLER_M, edges)
    late = edges[-1] + 2.2 * step  # one magnet pass missed, the next on a foot strike's dip
    assert 0.0 < estimator.speed_kmh(late - 0.001) < 12.0
    estimator.pulse(late)
    assert estimator.speed_kmh(late) > 10.0


def test_edge_stamped_a_millisecond_late_does_not_flicker_the_display():
    edges = belt(20.0, 0.08, 3.0)  # an edge every 14.4 ms
    estimator = fed(0.08, edges)
    next_due = edges[-1] + interval_s(20.0, 0.08)
    assert estimator.speed_kmh(next_due + 0.001) == pytest.approx(20.0)


def test_stopped_belt_three_second_mean_counts_at_most_one_more_pulse():
    edges = belt(3.6, 0.1, 6.0)  # 1 m/s, an edge every 0.1 s
    estimator = fed(0.1, edges)
    # 1.5 s of edges in the window, then at most one pulse's travel since the last edge
    assert estimator.mean_kmh(edges[-1] + 1.5, 3.0) == pytest.approx((1.5 + 0.1) / 3 * 3.6)


@few
@given(kmh=speeds, meters_per_pulse=pulse_lengths)
def test_stopped_belt_reads_zero_within_a_second_or_two_and_a_half_intervals(kmh, meters_per_pulse):
    edges = belt(kmh, meters_per_pulse, 4.0)
    estimator = fed(meters_per_pulse, edges)
    soon = max(1.0, 2.5 * interval_s(kmh, meters_per_pulse))
    assert estimator.speed_kmh(edges[-1] + soon) == 0.0


intervals = st.lists(st.floats(min_value=0.012, max_value=2.0), min_size=1, max_size=30)


@few
@given(gaps=intervals, meters_per_pulse=pulse_lengths, waits=st.lists(st.floats(0, 5), max_size=20))
def test_after_the_last_pulse_the_display_never_rises(gaps, meters_per_pulse, waits):
    estimator = SpeedEstimator(meters_per_pulse)
    t = T0
    estimator.pulse(t)
    for gap in gaps:
        t += gap
        estimator.pulse(t)
    readings = [estimator.speed_kmh(t + wait) for wait in [0.0, *sorted(waits)]]
    assert all(later <= earlier for earlier, later in pairwise(readings))


# -- steps ------------------------------------------------------------------------------------


def settled_after(estimator: SpeedEstimator, edges: list[float], target_kmh: float) -> float:
    """Feed edges; return the first edge time after which the display stays within 3 %."""
    settled = math.inf
    for t in edges:
        estimator.pulse(t)
        if abs(estimator.speed_kmh(t) - target_kmh) <= 0.03 * target_kmh:
            settled = min(settled, t)
        else:
            settled = math.inf
    return settled


def test_slow_belt_doubling_its_speed_shows_in_two_intervals():
    before = belt(1.0, ROLLER_M, 5.0)
    step_at = before[-1] + 0.3  # between edges, as a real step would be
    covered = (0.3 / interval_s(1.0, ROLLER_M)) * ROLLER_M
    first = step_at + (ROLLER_M - covered) / (2.0 / 3.6)
    after = belt(2.0, ROLLER_M, 4.0, start=first)
    estimator = fed(ROLLER_M, before)
    settled = settled_after(estimator, after, 2.0)
    assert settled - step_at <= 2.5 * interval_s(2.0, ROLLER_M)


def test_fast_belt_halving_its_speed_shows_within_half_a_second():
    before = belt(16.0, 0.08, 5.0)
    after = belt(8.0, 0.08, 3.0, start=before[-1] + interval_s(8.0, 0.08))
    estimator = fed(0.08, before)
    settled = settled_after(estimator, after, 8.0)
    assert settled - before[-1] <= 0.5


# -- bounce -----------------------------------------------------------------------------------


def test_reed_bounce_after_an_edge_is_ignored():
    estimator = fed(ROLLER_M, belt(2.0, ROLLER_M, 3.0))
    last = estimator.last_pulse_t
    reading = estimator.speed_kmh(last + 0.01)
    for delay in (0.001, 0.002, 0.003):
        assert estimator.pulse(last + delay) is False
    assert estimator.bounces == 3
    assert estimator.last_pulse_t == last
    assert estimator.speed_kmh(last + 0.01) == reading


def test_edge_stamped_before_the_last_one_is_ignored():
    estimator = fed(ROLLER_M, belt(2.0, ROLLER_M, 3.0))
    last = estimator.last_pulse_t
    assert estimator.pulse(last - 0.5) is False
    assert estimator.last_pulse_t == last


@few
@given(kmh=speeds, meters_per_pulse=pulse_lengths, seed=seeds)
def test_reed_bounce_never_changes_a_reading(kmh, meters_per_pulse, seed):
    rng = random.Random(seed)
    clean = belt(kmh, meters_per_pulse, 5.0)
    bouncy = sorted(
        clean + [t + rng.uniform(0.001, 0.003) for t in clean for _ in range(rng.randint(0, 3))]
    )
    a, b = SpeedEstimator(meters_per_pulse), SpeedEstimator(meters_per_pulse)
    for t in clean:
        a.pulse(t)
    for t in bouncy:
        b.pulse(t)
    for wait in (0.0, 0.004, 0.3, 1.0, 2.5):
        now = clean[-1] + wait
        assert b.speed_kmh(now) == a.speed_kmh(now)
        assert b.mean_kmh(now, 3.0) == a.mean_kmh(now, 3.0)
    assert b.pulses == a.pulses


# -- anything at all --------------------------------------------------------------------------


@few
@given(
    steps=st.lists(st.floats(min_value=-0.5, max_value=12.0), max_size=40),
    waits=st.lists(st.floats(min_value=-1.0, max_value=15.0), max_size=10),
    meters_per_pulse=pulse_lengths,
)
def test_readings_are_never_negative_nor_faster_than_debounced_edges_allow(
    steps, waits, meters_per_pulse
):
    estimator = SpeedEstimator(meters_per_pulse, max_speed_kmh=25.0)
    t = T0
    for step in steps:
        t += step
        estimator.pulse(t)
    for wait in waits:
        for reading in (estimator.speed_kmh(t + wait), estimator.mean_kmh(t + wait, 3.0)):
            assert 0.0 <= reading <= 25.0 / DEBOUNCE_FRACTION + 1e-9


def test_a_belt_faster_than_max_speed_reads_faster_than_max_not_half_its_speed():
    # 9 km/h on a sensor trusted up to 6 km/h: every edge still counts, so the guard sees a
    # reading over max_speed_kmh (a fault), not 4.5 km/h
    for kmh in (6.5, 9.0, 13.0, 20.0):
        estimator = fed(0.157, belt(kmh, 0.157, 10.0), max_speed_kmh=6.0)
        assert estimator.mean_kmh(estimator.last_pulse_t, 3.0) > 6.0, kmh


def test_a_lone_edge_after_a_standstill_does_not_vouch_for_the_speed():
    # a magnet on the belt: 3.16 m per pulse, so at 6 km/h the edges come 1.9 s apart
    estimator = SpeedEstimator(3.16, max_speed_kmh=25.0)
    assert estimator.speed_known(T0)  # nothing seen: the belt stands
    estimator.pulse(T0)
    assert estimator.speed_kmh(T0 + 1.0) == 0.0 and not estimator.speed_known(T0 + 1.0)
    estimator.pulse(T0 + 1.9)
    assert not estimator.speed_known(T0 + 2.0)  # one interval
    estimator.pulse(T0 + 3.8)
    assert estimator.speed_known(T0 + 3.9)
    assert estimator.speed_kmh(T0 + 3.9) == pytest.approx(6.0, rel=0.01)


# -- bookkeeping ------------------------------------------------------------------------------


def test_memory_stays_bounded_on_a_long_fast_run():
    estimator = fed(0.08, belt(25.0, 0.08, 120.0))
    assert estimator.stored_pulses <= 10.0 / estimator.debounce_s + 40
    assert estimator.mean_kmh(estimator.last_pulse_t, 10.0) == pytest.approx(25.0)


def test_counts_pulses_and_distance_and_forgets_on_reset():
    estimator = fed(ROLLER_M, belt(3.0, ROLLER_M, 10.0))
    assert estimator.pulses == 54
    assert estimator.distance_m == pytest.approx(54 * ROLLER_M)
    estimator.reset()
    assert (estimator.pulses, estimator.last_pulse_t) == (0, None)
    assert estimator.speed_kmh(T0 + 10.0) == 0.0


def test_window_longer_than_the_kept_history_is_refused():
    with pytest.raises(ValueError, match="window_s"):
        SpeedEstimator(ROLLER_M).mean_kmh(T0, 11.0)


@pytest.mark.parametrize("bad", [0, -0.157, math.nan, math.inf])
def test_meters_per_pulse_must_be_a_positive_length(bad):
    with pytest.raises(ValueError, match=r"\[sensor\] meters_per_pulse .* config\.toml"):
        SpeedEstimator(bad)
