"""The safety invariant, on the simulated belt's truth (tests/support/invariant.py says how it is
judged): whatever a walker presses, commands, unplugs or reloads, the belt never runs over the
limit in backward mode for longer than the grace allows, and a walker who keeps under the cap
is never stopped.

First the attacks the invariant names, one quick story each; then what a property test found
(each a minimal story, failing until the device is fixed); then the two properties.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, note, settings
from hypothesis import strategies as st
from support.hypothesis_draws import PHASES, SLOW_DRAWS, HypothesisDraw
from support.invariant import over_the_cap_rows, shown_kmh
from support.stories import HOLD_TO_END_S, attack, legit_walk
from support.story_runs import Run, as_toml, run_story

SESSION_AT_START_CAP = [
    {"at": 1, "belt_kmh": 1.5},
    {"at": 4, "press": "start"},
]


def story(*steps: dict[str, Any], config: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"config": config or {}, "step": [*SESSION_AT_START_CAP, *steps]}


def assert_holds(run: Run, data: dict[str, Any]) -> None:
    judged = run.judgement
    assert judged.holds, (
        f"{'; '.join(judged.breaches())}; enforced stops at {judged.stops}\n{as_toml(data)}"
    )


def attacked(data: dict[str, Any]) -> Run:
    """Run an attack and check the invariant; the attack must have got over the line."""
    run = run_story(data)
    assert_holds(run, data)
    assert run.judgement.longest is not None, "the attack never got over the line"
    return run


# ---- the attacks the invariant names ------------------------------------------------------------


def test_pausing_during_a_warning_does_not_refill_the_grace():
    attacked(
        story({"at": 10, "belt_kmh": 4.0}, {"at": 13, "press": "start"}, {"at": 60, "end": True})
    )


def test_pausing_from_the_dashboard_during_a_warning_does_not_refill_the_grace():
    attacked(
        story({"at": 10, "belt_kmh": 4.0}, {"at": 13, "command": "pause"}, {"at": 60, "end": True})
    )


def test_holding_start_to_end_during_a_warning_does_not_lift_the_cap():
    attacked(
        story(
            {"at": 10, "belt_kmh": 4.0},
            {"at": 12, "press": "start", "hold": HOLD_TO_END_S},
            {"at": 60, "end": True},
        )
    )


def test_a_restart_at_6_kmh_after_an_enforced_stop_is_stopped_again():
    restarts = [{"at": 20 + 6 * n, "belt_kmh": 6.0, "abrupt": True} for n in range(10)]
    run = attacked(story({"at": 10, "belt_kmh": 6.0}, *restarts, {"at": 90, "end": True}))
    assert len(run.judgement.stops) >= 2


def test_a_restart_after_a_latched_stop_is_stopped_again():
    restarts = [
        step
        for n in range(6)
        for step in ({"at": 20 + 8 * n, "press": "start"}, {"at": 21 + 8 * n, "belt_kmh": 6.0})
    ]
    config = {"enforce": {"mode": "latch"}}
    attacked(story({"at": 10, "belt_kmh": 6.0}, *restarts, {"at": 90, "end": True}, config=config))


def test_double_tapping_direction_every_4_s_does_not_refill_the_grace():
    taps = [
        {"at": round(12 + 4.5 * n + dt, 1), "press": "direction"}
        for n in range(20)
        for dt in (0.0, 0.4)
    ]
    attacked(story({"at": 10, "belt_kmh": 4.0}, *taps, {"at": 110, "end": True}))


def test_a_square_wave_over_and_under_the_line_is_stopped_within_the_budget():
    wave = [
        {"at": 10 + 6 * n + dt, "belt_kmh": kmh, "abrupt": True}
        for n in range(15)
        for dt, kmh in ((0, 3.5), (4, 1.0))
    ]
    run = attacked(story(*wave, {"at": 110, "end": True}))
    assert run.judgement.stops


def test_reloading_during_a_warning_does_not_refill_the_grace():
    reloads = [{"at": 11 + 2 * n, "reload": True} for n in range(10)]
    attacked(story({"at": 10, "belt_kmh": 4.0}, *reloads, {"at": 60, "end": True}))


def test_a_hall_sensor_dying_at_6_kmh_stops_the_belt():
    run = attacked(
        story(
            {"at": 10, "belt_kmh": 6.0, "abrupt": True},
            {"at": 10.5, "sensor": "lost"},
            {"at": 40, "end": True},
        )
    )
    assert run.judgement.stops


# ---- found by the property test below: minimal stories ------------------------------------------


def test_a_hall_sensor_dying_just_after_the_belt_sped_up_stops_the_belt():
    """From the start cap's crawl straight to 4.8 km/h, and the sensor dies 0.3 s later (two
    intervals at the new speed): its edges showed the speed, so the silence is no stop."""
    run = attacked(
        story(
            {"at": 10, "belt_kmh": 4.8, "abrupt": True},
            {"at": 10.3, "sensor": "lost"},
            {"at": 40, "end": True},
        )
    )
    assert run.judgement.stops


def test_a_sensor_that_dies_as_the_belt_jumps_from_a_stand_is_blind_not_a_breach():
    """A CI run's story, at its core: the belt stood after an enforced stop, jumped to 4.8 km/h
    the moment the relay closed, and the sensor died before one magnet passed. Its edges said
    "stopped" and nothing else can see the belt, so from the death on the run is not judged
    (tests/support/invariant.py), as for a sensor that dies on a slow belt."""

    def jump_and_die(after_s: float) -> Run:
        return run_story(
            story(
                {"at": 10, "belt_kmh": 0.0, "abrupt": True},
                {"at": 14, "belt_kmh": 4.8, "abrupt": True},
                {"at": 14 + after_s, "sensor": "lost"},
                {"at": 40, "end": True},
            )
        )

    unseen = jump_and_die(0.05)
    # its edges: 1.5 km/h, then four seconds of nothing; not one interval at 4.8
    assert shown_kmh(unseen.report["trace"], 14.05, 0.157) < 0.2
    assert unseen.judgement.holds and not unseen.judgement.stops
    # half a second later its edges had shown 4.8 km/h: judged on, and the belt is stopped
    seen = jump_and_die(0.5)
    assert shown_kmh(seen.report["trace"], 14.5, 0.157) == pytest.approx(4.8, rel=0.05)
    assert seen.judgement.holds and seen.judgement.stops
    assert seen.judgement.judged_s > unseen.judgement.judged_s + 20


def test_a_belt_restarted_with_the_hall_sensor_that_died_is_still_guarded():
    """The sensor died at 6 km/h and the guard stopped the belt for it; the console then
    restarts the belt with the sensor still dead."""
    attacked(
        story(
            {"at": 10, "belt_kmh": 6.0, "abrupt": True},
            {"at": 10.5, "sensor": "lost"},
            {"at": 20, "belt_kmh": 6.0},
            {"at": 80, "end": True},
        )
    )


def test_a_refused_start_after_a_warning_nobody_was_stopped_for_is_enforced():
    """No session, without_session = "warn": the warning runs out of budget and only warns;
    START is then refused at 5 km/h, and the refused start's cap must be enforced."""
    data = {
        "step": [{"at": 1, "belt_kmh": 5.0}, {"at": 20, "press": "start"}, {"at": 60, "end": True}]
    }
    run = run_story(data)
    assert_holds(run, data)
    # the budget was spent while only warning: the stop it owes comes with the refusal
    assert run.judgement.stops and run.judgement.stops[0] <= 20.2 + 0.1


def test_a_session_started_during_a_warning_nobody_was_stopped_for_is_enforced():
    """The same warning, then the belt slows to 2.2 km/h (over the cap, under the line), a
    session starts, and the walker speeds up to 4 km/h in it."""
    data = {
        "step": [
            {"at": 1, "belt_kmh": 4.0},
            {"at": 15, "belt_kmh": 2.2},
            {"at": 25, "press": "start"},
            {"at": 27, "belt_kmh": 4.0},
            {"at": 70, "end": True},
        ]
    }
    attacked(data)


# ---- the properties -----------------------------------------------------------------------------


@settings(max_examples=60, deadline=None, suppress_health_check=SLOW_DRAWS, phases=PHASES)
@given(st.data())
def test_no_walker_outruns_the_grace_budget_whatever_they_press(data):
    """2-4 minutes of belt speeds (some abrupt), START short and long, dashboard commands,
    DIRECTION taps and double taps, square waves, console restarts, sensor dropouts (the
    check sensor's too when one is fitted), reloads with another grace or tolerance, under
    without_session "warn" or "stop" and enforce mode pulse or latch.

    "warn" is judged by the same numbers, not left to "stop" alone: leaving it out would miss
    what a warn-only warning leaves behind when a session or a refused start takes over (two
    of the stories above), and starting every story with a session would not help, since an
    ended session lets go of its cap once the belt came down. Only the rows where the rules
    owe no stop are left out (idle, no stop in the last 2 minutes, no held cap: see
    tests/support/invariant.py), and there a warning must sound within a second instead."""
    attack_story = attack(HypothesisDraw(data))
    note(as_toml(attack_story))
    run = run_story(attack_story)
    assert_holds(run, attack_story)
    late = run.judgement.late_warnings
    assert not late, f"run-over with no warning within a second from t = {late}"


@settings(max_examples=40, deadline=None, suppress_health_check=SLOW_DRAWS, phases=PHASES)
@given(st.data())
def test_a_walker_who_keeps_under_the_cap_is_never_stopped(data):
    """10-30 minutes at 50-100 % of the cap as it ramps, with foot-strike ripple (up to 7 % at
    1.5-2 Hz) and jitter (up to 5 %), pauses on the belt and on START, and forward stretches
    at any speed, turning back to backward only with the belt slow."""
    walk = legit_walk(HypothesisDraw(data))
    note(as_toml(walk))
    run = run_story(walk)
    over = over_the_cap_rows(run.trace)
    assert not over, f"the walker went over the cap the device showed, from t = {over[0]}"
    assert run.kinds("enforced_stop") == []
    assert run.kinds("not_enforced") == []
