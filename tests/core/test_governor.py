"""The backward cap over a segment: 2.0 km/h for two minutes, then +0.1 km/h every 30 s up to
the level's cap. Forward walking has no backward cap."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from device.config.load import config_from_mapping
from device.config.model import BackwardConfig
from device.core.governor import CapSchedule, Governor
from device.core.modes import Mode

SHIPPED = Governor(BackwardConfig())


@pytest.mark.parametrize(
    ("segment_s", "cap_kmh"),
    [
        (0, 2.0),
        (119, 2.0),
        (119.99, 2.0),
        (120, 2.1),
        (121, 2.1),
        (150, 2.2),
        (389, 2.9),
        (390, 3.0),
        (600, 3.0),
        (36000, 3.0),
    ],
)
def test_level_one_cap_holds_two_minutes_then_ramps_to_three(segment_s, cap_kmh):
    assert SHIPPED.cap_kmh(segment_s, level=1) == cap_kmh


@pytest.mark.parametrize(("level", "cap_kmh"), [(1, 3.0), (2, 4.0), (3, 5.0), (4, 5.5)])
def test_each_level_ramps_up_to_its_own_cap(level, cap_kmh):
    assert SHIPPED.level_cap_kmh(level) == cap_kmh
    assert SHIPPED.cap_kmh(3600, level) == cap_kmh
    assert SHIPPED.cap_kmh(0, level) == 2.0  # every level starts a segment at the start cap


def test_levels_past_the_table_keep_the_top_cap_and_below_it_the_first():
    assert SHIPPED.level_cap_kmh(9) == 5.5
    assert SHIPPED.level_cap_kmh(0) == 3.0


def test_level_four_reaches_five_and_a_half_after_seventeen_minutes():
    # 2.0 -> 5.5 is 35 steps: the first at 120 s, the 35th at 120 + 34 * 30 = 1140 s
    assert SHIPPED.cap_kmh(1139, 4) == 5.4
    assert SHIPPED.cap_kmh(1140, 4) == 5.5


def test_schedule_counts_down_to_the_next_rise():
    assert SHIPPED.schedule(Mode.BACKWARD, 0, 1) == CapSchedule(2.0, 2.1, 120)
    assert SHIPPED.schedule(Mode.BACKWARD, 100, 1) == CapSchedule(2.0, 2.1, 20)
    assert SHIPPED.schedule(Mode.BACKWARD, 121, 1) == CapSchedule(2.1, 2.2, 29)
    assert SHIPPED.schedule(Mode.BACKWARD, 150, 1) == CapSchedule(2.2, 2.3, 30)
    assert SHIPPED.schedule(Mode.BACKWARD, 389, 1) == CapSchedule(2.9, 3.0, 1)


def test_schedule_at_the_level_cap_has_no_next_rise():
    assert SHIPPED.schedule(Mode.BACKWARD, 390, 1) == CapSchedule(3.0, None, None)
    assert SHIPPED.schedule(Mode.BACKWARD, 600, 1) == CapSchedule(3.0, None, None)


@pytest.mark.parametrize("segment_s", [0, 119, 600])
def test_forward_walking_has_no_backward_cap(segment_s):
    assert SHIPPED.schedule(Mode.FORWARD, segment_s, 1) is None


def test_start_cap_above_a_level_cap_is_held_down_to_it():
    # config validation refuses this, but the governor must never allow more than the level
    governor = Governor(BackwardConfig(start_cap_kmh=3.5))
    assert governor.cap_kmh(0, 1) == 3.0


def test_an_operator_config_changes_the_schedule():
    config = config_from_mapping(
        {"backward": {"start_cap_kmh": 1.5, "hold_s": 60, "ramp_step_kmh": 0.25}}
    )
    governor = Governor(config.backward)
    assert governor.cap_kmh(59, 1) == 1.5
    assert governor.cap_kmh(60, 1) == 1.75
    assert governor.schedule(Mode.BACKWARD, 60, 1) == CapSchedule(1.75, 2.0, 30)


def test_cap_never_rounds_above_an_oddly_precise_level_cap():
    # config accepts a cap with three decimals; rounding to 0.01 must not lift the cap past it
    config = config_from_mapping({"backward": {"level_caps_kmh": [3.006]}})
    assert Governor(config.backward).cap_kmh(3600, 1) <= 3.006


# ---- properties over any valid config ----------------------------------------------------

kmh = st.integers(50, 1000).map(lambda centi: centi / 100)  # 0.5-10 km/h as typed, 0.01 steps


@st.composite
def backward_configs(draw) -> BackwardConfig:
    caps = sorted(draw(st.lists(kmh, min_size=1, max_size=6)))
    start = draw(kmh.filter(lambda c: c <= caps[0]))
    return BackwardConfig(
        start_cap_kmh=start,
        hold_s=draw(st.sampled_from([0, 30, 60, 120, 300])),
        ramp_step_kmh=draw(st.integers(5, 200).map(lambda c: c / 100)),
        ramp_every_s=draw(st.sampled_from([5, 15, 30, 60, 120])),
        level_caps_kmh=tuple(caps),
    )


moments = st.lists(st.floats(0, 7200, allow_nan=False), min_size=2, max_size=30)


@settings(max_examples=200, deadline=None)
@given(config=backward_configs(), level=st.integers(1, 6), times=moments)
def test_cap_never_falls_never_passes_the_level_cap_and_holds_the_start_cap(config, level, times):
    governor = Governor(config)
    ceiling = governor.level_cap_kmh(level)
    caps = [governor.cap_kmh(t, level) for t in sorted(times)]
    assert caps == sorted(caps)  # within one segment the cap only rises
    assert all(cap <= ceiling for cap in caps)
    for t in times:
        if t < config.hold_s:
            assert governor.cap_kmh(t, level) <= config.start_cap_kmh


@settings(max_examples=100, deadline=None)
@given(config=backward_configs(), level=st.integers(1, 6), t=st.floats(0, 7200))
def test_next_cap_is_the_cap_when_the_countdown_runs_out(config, level, t):
    governor = Governor(config)
    schedule = governor.schedule(Mode.BACKWARD, t, level)
    assert schedule.cap_kmh == governor.cap_kmh(t, level)
    assert governor.schedule(Mode.FORWARD, t, level) is None
    if schedule.next_cap_kmh is None:
        assert schedule.cap_kmh == governor.level_cap_kmh(level)
    else:
        assert 0 < schedule.next_cap_in_s <= max(config.hold_s, config.ramp_every_s)
        assert schedule.next_cap_kmh > schedule.cap_kmh
        assert governor.cap_kmh(t + schedule.next_cap_in_s, level) == schedule.next_cap_kmh
