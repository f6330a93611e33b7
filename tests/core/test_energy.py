"""The energy estimate: the reference's MET figures, and kcal that behave like energy."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from device.core.energy import EnergyMeter, kcal_per_min, met, vo2_ml_kg_min
from device.core.modes import Mode

RUN_FROM_KMH = 96 * 60 / 1000  # 96 m/min, where the running equations take over


@pytest.mark.parametrize(("kmh", "mets"), [(2, 2.8), (3, 3.7), (4, 4.6), (5, 5.5)])
def test_backward_walking_costs_the_reference_mets(kmh: float, mets: float) -> None:
    assert met(kmh, Mode.BACKWARD) == pytest.approx(mets, abs=0.05)


def test_backward_walking_at_93_8_m_per_min_is_the_compendiums_6_met() -> None:
    # 0.187 is the fit rounded to three digits: 6.01 MET
    assert vo2_ml_kg_min(93.8 * 60 / 1000, Mode.BACKWARD) / 3.5 == pytest.approx(6.0, abs=0.02)


def test_forward_walking_at_5_6_kmh_is_the_acsm_walking_equation() -> None:
    s = 5.6 * 1000 / 60  # m/min
    assert vo2_ml_kg_min(5.6, Mode.FORWARD) == pytest.approx(3.5 + 0.1 * s)
    assert met(5.6, Mode.FORWARD) == pytest.approx(3.67, abs=0.01)


def test_running_uses_the_acsm_running_equation_and_backward_costs_35_percent_more() -> None:
    s = 8.0 * 1000 / 60
    assert vo2_ml_kg_min(8.0, Mode.FORWARD) == pytest.approx(3.5 + 0.2 * s)
    assert vo2_ml_kg_min(8.0, Mode.BACKWARD) == pytest.approx(3.5 + 1.35 * 0.2 * s)


def test_grade_adds_the_acsm_vertical_term() -> None:
    s = 4.0 * 1000 / 60
    assert vo2_ml_kg_min(4.0, Mode.BACKWARD, 0.05) == pytest.approx(3.5 + 0.187 * s + 0.09 * s)
    assert vo2_ml_kg_min(8.0, Mode.FORWARD, 0.05) == pytest.approx(
        3.5 + 0.2 * (8000 / 60) + 0.9 * (8000 / 60) * 0.05
    )


@pytest.mark.parametrize("kmh", [1.0, 3.0, 5.5])
def test_backward_walking_costs_more_than_forward_at_the_same_speed(kmh: float) -> None:
    assert kcal_per_min(kmh, Mode.BACKWARD, 70) > kcal_per_min(kmh, Mode.FORWARD, 70)


def test_kcal_per_min_is_vo2_times_weight_times_5_kcal_per_litre() -> None:
    assert kcal_per_min(3.0, Mode.BACKWARD, 80) == pytest.approx(
        vo2_ml_kg_min(3.0, Mode.BACKWARD) * 80 / 1000 * 5
    )


@pytest.mark.parametrize("kmh", [0, 0.0, None, -1.0, float("nan")])
def test_standing_on_a_stopped_belt_counts_nothing(kmh: float | None) -> None:
    assert vo2_ml_kg_min(kmh, Mode.BACKWARD) == 0.0
    assert kcal_per_min(kmh, Mode.FORWARD, 70) == 0.0
    meter = EnergyMeter(70)
    meter.add(600, kmh, Mode.BACKWARD)
    assert meter.kcal == 0.0


def test_meter_adds_up_a_session_tick_by_tick() -> None:
    meter = EnergyMeter(70)
    for _ in range(6000):  # ten minutes of 0.1 s ticks at 3 km/h backward
        meter.add(0.1, 3.0, Mode.BACKWARD)
    assert meter.kcal == pytest.approx(10 * kcal_per_min(3.0, Mode.BACKWARD, 70))
    assert meter.kcal == pytest.approx(45.0, abs=0.5)  # 3.67 MET x 70 kg x 10 min


def test_meter_counts_each_mode_at_its_own_cost() -> None:
    meter = EnergyMeter(70)
    meter.add(60, 4.0, Mode.BACKWARD)
    meter.add(60, 4.0, "forward")  # the mode's value as stored works too
    assert meter.kcal == pytest.approx(
        kcal_per_min(4.0, Mode.BACKWARD, 70) + kcal_per_min(4.0, Mode.FORWARD, 70)
    )


def test_meter_ignores_a_tick_without_length() -> None:
    meter = EnergyMeter(70)
    assert meter.add(0, 3.0, Mode.BACKWARD) == 0.0
    assert meter.add(-0.1, 3.0, Mode.BACKWARD) == 0.0
    assert meter.kcal == 0.0


@pytest.mark.parametrize("kg", [0, -70, float("nan")])
def test_meter_refuses_a_body_without_weight(kg: float) -> None:
    with pytest.raises(ValueError, match="body weight"):
        EnergyMeter(kg)


modes = st.sampled_from([Mode.BACKWARD, Mode.FORWARD])
walking_kmh = st.floats(min_value=0.1, max_value=RUN_FROM_KMH - 1e-6)
running_kmh = st.floats(min_value=RUN_FROM_KMH, max_value=25.0)
weights = st.floats(min_value=30, max_value=250)


@given(st.one_of(st.none(), st.floats(allow_nan=True)), modes, weights)
def test_kcal_are_never_negative(kmh: float | None, mode: Mode, kg: float) -> None:
    assert kcal_per_min(kmh, mode, kg) >= 0.0


@given(st.sampled_from([walking_kmh, running_kmh]).flatmap(lambda s: st.tuples(s, s)), modes)
def test_kcal_rise_with_speed_while_walking_and_while_running(
    speeds: tuple[float, float], mode: Mode
) -> None:
    slow, fast = sorted(speeds)
    assert kcal_per_min(slow, mode, 70) <= kcal_per_min(fast, mode, 70)


@given(walking_kmh, running_kmh, modes)
def test_running_never_costs_less_than_walking(walk: float, run: float, mode: Mode) -> None:
    assert kcal_per_min(walk, mode, 70) < kcal_per_min(run, mode, 70)


@given(st.floats(min_value=0.1, max_value=25), modes, weights, st.floats(0.1, 4))
def test_kcal_are_proportional_to_body_weight(
    kmh: float, mode: Mode, kg: float, factor: float
) -> None:
    assert kcal_per_min(kmh, mode, kg * factor) == pytest.approx(
        factor * kcal_per_min(kmh, mode, kg)
    )


@given(
    st.floats(min_value=0.1, max_value=25),
    modes,
    st.lists(st.floats(min_value=0.01, max_value=60), min_size=1, max_size=50),
)
def test_meter_kcal_are_proportional_to_time_however_it_is_ticked(
    kmh: float, mode: Mode, ticks: list[float]
) -> None:
    meter = EnergyMeter(70)
    for seconds in ticks:
        meter.add(seconds, kmh, mode)
    assert meter.kcal == pytest.approx(kcal_per_min(kmh, mode, 70) * sum(ticks) / 60)


def test_an_absurd_speed_reading_counts_as_no_exercise_rather_than_nan() -> None:
    # found by hypothesis: 1.8e305 km/h overflowed to inf in m/min, and inf x 0 grade to nan
    assert kcal_per_min(1.797693134862316e305, Mode.BACKWARD, 30.0) == 0.0
