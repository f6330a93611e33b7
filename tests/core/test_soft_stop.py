"""The soft stop on its own (device/core/soft_stop.py): when the grace runs out with [enforce]
soft = "csafe", the console is sent SetSpeed to the cap and has SOFT_WINDOW_S (2 s) to bring
the belt under the cap + tolerance; the relay follows if it has not, at once if the console
refuses or the speed is unknown, and once the belt has been over the line again for
SPED_UP_FOR_S (1 s) in all after a soft stop that worked. Through the guard:
test_soft_stop_guard.py.

It is asked only for a belt that can be under the line within the window: (speed - line) /
rate <= 2 s, at 2 km/h per s (the quickest ordinary stop) where a hall sensor measures the
belt, at 1 km/h per s (the gentlest slowing a console is assumed to make) where the speed is
the console's own word; a belt further over gets the relay at once. And a console's word
under the line is believed only once the belt could have slowed there at that gentle rate:
a console reports the speed it is set to, not the belt. Time and the belt are given by the
test.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from support.soft_stops import (
    CAP,
    FAST,
    HALL,
    LINE,
    MEASURED,
    REPORTED,
    REST_S,
    WORD,
    asked,
    out_of_grace,
    soft_config,
)
from support.ticking import tick_times

from device.config.load import config_from_mapping
from device.config.model import Config
from device.core.console import SpeedAnswer
from device.core.events import EventKind
from device.core.sensor_trust import STOP_RATE_KMH_PER_S
from device.core.soft_stop import (
    IGNORING,
    REPORTED_SLOWING_KMH_PER_S,
    SLOWING_KMH,
    SOFT_WINDOW_S,
    SPED_UP_FOR_S,
    STOPPING,
    SlowDown,
    SoftOutcome,
    SoftStops,
)

# ---- one SetSpeed and what the belt did since ----------------------------------------------------


def test_the_console_has_two_seconds_from_the_setspeed():
    assert asked(10.0).deadline == 10.0 + SOFT_WINDOW_S == 12.0


@pytest.mark.parametrize("speed", [LINE, 2.0, 0.0])
def test_a_belt_at_or_under_the_line_came_down_whatever_else(speed):
    slow = asked()
    slow.answer = SpeedAnswer.REJECTED  # even a console that said no: the belt is down
    for t in (10.0, 10.1, 11.9, 30.0):
        assert slow.outcome(t, speed, guarded=True) is SoftOutcome.CAME_DOWN
        assert slow.outcome(t, speed, guarded=False) is SoftOutcome.CAME_DOWN


def test_a_speed_under_the_line_before_the_belt_could_be_there_is_not_believed():
    slow = asked(down_from=11.7)  # the console's word, asked at 4 km/h: 1.7 s at 1 km/h per s
    for t in (10.0, 11.0, 11.69):
        assert slow.outcome(t, CAP, guarded=True) is SoftOutcome.WAITING
        assert slow.outcome(t, CAP, guarded=False) is SoftOutcome.WAITING
    assert slow.outcome(11.7, CAP, guarded=True) is SoftOutcome.CAME_DOWN
    assert slow.outcome(11.7, LINE + 0.01, guarded=True) is SoftOutcome.WAITING


def test_a_fast_belt_in_forward_mode_waits_even_past_the_window():
    slow = asked()
    slow.answer = SpeedAnswer.REJECTED
    assert slow.outcome(30.0, FAST, guarded=False) is SoftOutcome.WAITING
    assert slow.outcome(30.0, None, guarded=False) is SoftOutcome.WAITING


def test_a_refusal_stops_at_once_even_with_the_speed_unknown():
    slow = asked()
    slow.answer = SpeedAnswer.REJECTED
    assert slow.outcome(10.3, FAST, guarded=True) is SoftOutcome.REFUSED
    assert slow.outcome(10.3, None, guarded=True) is SoftOutcome.REFUSED


def test_a_speed_nobody_can_vouch_for_stops_at_once():
    assert asked().outcome(10.1, None, guarded=True) is SoftOutcome.UNKNOWN


def test_a_belt_still_over_the_line_waits_until_the_deadline():
    slow = asked()
    assert slow.outcome(10.0, FAST, guarded=True) is SoftOutcome.WAITING
    assert slow.outcome(11.999, LINE + 0.01, guarded=True) is SoftOutcome.WAITING
    assert slow.outcome(12.0, FAST, guarded=True) is SoftOutcome.IGNORED


@pytest.mark.parametrize(
    ("from_kmh", "speed", "outcome"),
    [
        (FAST, FAST, SoftOutcome.IGNORED),  # ran on as it was
        (FAST, FAST - SLOWING_KMH + 0.01, SoftOutcome.IGNORED),  # a drift, not obeying
        (FAST, FAST - SLOWING_KMH, SoftOutcome.TOO_SLOW),  # obeying, too slowly
        (6.3, 3.0, SoftOutcome.TOO_SLOW),  # the furthest a hall sensor asks from: not far enough
        (FAST, FAST + 1.0, SoftOutcome.IGNORED),  # sped up meanwhile
        (None, 3.0, SoftOutcome.IGNORED),  # the speed when asked was not known
    ],
)
def test_at_the_deadline_a_belt_that_slowed_half_a_kmh_was_obeying_else_ignoring(
    from_kmh, speed, outcome
):
    assert asked(from_kmh=from_kmh).outcome(12.0, speed, guarded=True) is outcome


def test_which_outcomes_bring_the_relay_and_which_mark_the_console():
    told_no = {SoftOutcome.REFUSED, SoftOutcome.IGNORED}
    assert told_no == IGNORING
    assert told_no | {SoftOutcome.TOO_SLOW, SoftOutcome.UNKNOWN, SoftOutcome.SPED_UP} == STOPPING
    assert not STOPPING & {SoftOutcome.WAITING, SoftOutcome.CAME_DOWN, SoftOutcome.RELEASED}


# ---- whether to ask: near enough the line to come down in the window ---------------------------


@pytest.mark.parametrize(
    ("sensor", "rate"),
    [
        pytest.param(MEASURED, STOP_RATE_KMH_PER_S, id="hall sensor"),
        pytest.param(REPORTED, REPORTED_SLOWING_KMH_PER_S, id="console's word"),
    ],
)
def test_a_soft_stop_is_asked_only_for_a_belt_that_can_be_under_the_line_within_2_s(sensor, rate):
    furthest = LINE + rate * SOFT_WINDOW_S  # 6.3 km/h measured, 4.3 km/h on the console's word
    config = soft_config(sensor)
    for speed in (LINE + 0.01, 3.0, furthest):
        assert SoftStops().may_ask(10.0, config, speed_kmh=speed, cap_kmh=CAP), speed
    for speed in (furthest + 0.01, 8.0, 10.0):
        assert not SoftStops().may_ask(10.0, config, speed_kmh=speed, cap_kmh=CAP), speed


@given(
    speed=st.floats(0.0, 25.0),
    cap=st.sampled_from([1.0, 2.0, 3.5, 6.0]),
    tolerance=st.sampled_from([0.0, 0.3, 1.0]),
    reported=st.booleans(),
)
def test_the_window_decides_at_2_km_h_per_s_measured_and_1_km_h_per_s_on_the_word(
    speed, cap, tolerance, reported
):
    config = config_from_mapping(
        {
            "sensor": REPORTED if reported else MEASURED,
            "backward": {"tolerance_kmh": tolerance},
            "enforce": {"soft": "csafe"},
        }
    )
    rate = REPORTED_SLOWING_KMH_PER_S if reported else STOP_RATE_KMH_PER_S
    under_in_s = max(0.0, speed - cap - tolerance) / rate  # at that rate, under the line in
    asks = SoftStops().may_ask(10.0, config, speed_kmh=speed, cap_kmh=cap)
    if abs(under_in_s - SOFT_WINDOW_S) > 1e-6:  # the boundary itself is the float's to decide
        assert asks is (under_in_s < SOFT_WINDOW_S)


def test_nothing_else_is_asked_for_but_with_soft_on_a_known_speed_and_a_rested_console():
    def may(soft: SoftStops, t: float = 10.0, config: Config = HALL, **speed: Any) -> bool:
        return soft.may_ask(t, config, **{"speed_kmh": FAST, "cap_kmh": CAP, **speed})

    assert may(SoftStops()) and may(SoftStops(), config=WORD)
    assert not may(SoftStops(), config=config_from_mapping({"sensor": MEASURED}))  # soft = none
    assert not may(SoftStops(), speed_kmh=None)
    ignored = SoftStops()
    ignored.ignored = True
    assert not may(ignored)
    busy = SoftStops()
    busy.ask(10.0, out_of_grace(), HALL, speed_kmh=FAST)
    assert not may(busy, 10.5)  # one under way
    busy.follow(11.0, CAP, guarded=True, warning=True)
    assert not may(busy, 11.5)  # one worked, its warning lasts
    busy.cleared()
    assert not may(busy, 10.0 + REST_S - 0.1) and may(busy, 10.0 + REST_S)  # once per refill


# ---- the soft stops of one guard -----------------------------------------------------------------


@pytest.mark.parametrize(("config", "down_from"), [(HALL, 10.0), (WORD, 10.0 + 1.7)])
def test_asking_says_so_and_leaves_a_stop_pending_for_two_seconds(config, down_from):
    soft = SoftStops()
    assert (soft.busy, soft.deadline(), soft.rested(0.0, rest_s=REST_S)) == (False, None, True)
    event = soft.ask(10.0, out_of_grace(), config, speed_kmh=FAST)
    assert event.kind is EventKind.SLOWDOWN_ASKED
    assert event.details == {
        "speed_kmh": FAST,
        "cap_kmh": CAP,
        "reason": "over the cap",
        "scope": "session",
        "within_s": SOFT_WINDOW_S,
    }
    assert soft.busy and soft.deadline() == 12.0
    # a hall sensor's speed under the line is believed at once; the console's word only
    # (4.0 - 2.3) / 1 km/h per s = 1.7 s after the ask
    assert soft.pending == SlowDown(10.0, CAP, LINE, FAST, down_from)


def test_the_consoles_word_under_the_line_is_believed_once_the_belt_could_have_slowed_there():
    soft = SoftStops()
    soft.ask(10.0, out_of_grace(), WORD, speed_kmh=FAST)
    # it says the cap at its next answer; the belt is still on its way down
    for t in tick_times(10.2, 11.6):
        assert soft.follow(t, CAP, guarded=True, warning=True) == (SoftOutcome.WAITING, [])
    outcome, events = soft.follow(11.7, CAP, guarded=True, warning=True)
    assert outcome is SoftOutcome.CAME_DOWN
    assert [(e.kind, e.details["after_s"]) for e in events] == [(EventKind.SLOWED, 1.7)]


def test_a_hall_sensor_under_the_line_is_believed_at_once():
    soft = SoftStops()
    soft.ask(10.0, out_of_grace(), HALL, speed_kmh=FAST)
    assert soft.follow(10.1, LINE, guarded=True, warning=True)[0] is SoftOutcome.CAME_DOWN


def test_a_soft_stop_is_granted_once_per_refill_of_the_budget():
    soft = SoftStops()
    soft.ask(10.0, out_of_grace(), HALL, speed_kmh=FAST)
    assert not soft.rested(10.0 + REST_S - 0.1, rest_s=REST_S)
    assert soft.rested(10.0 + REST_S, rest_s=REST_S)


@pytest.mark.parametrize("answer", [SpeedAnswer.ACCEPTED, SpeedAnswer.UNANSWERED])
def test_an_accepted_or_unanswered_setspeed_lets_the_window_run_on(answer):
    soft = SoftStops()
    soft.ask(10.0, out_of_grace(), HALL, speed_kmh=FAST)
    soft.answered(answer)
    assert soft.last_answer is answer
    assert soft.follow(10.4, FAST, guarded=True, warning=True) == (SoftOutcome.WAITING, [])


def test_the_belt_coming_down_is_said_once_and_watched_while_the_warning_lasts():
    soft = SoftStops()
    soft.ask(10.0, out_of_grace(), HALL, speed_kmh=FAST)
    outcome, events = soft.follow(11.2, 2.2, guarded=True, warning=True)
    assert outcome is SoftOutcome.CAME_DOWN
    assert [(e.kind, e.details) for e in events] == [
        (EventKind.SLOWED, {"speed_kmh": 2.2, "cap_kmh": CAP, "after_s": 1.2})
    ]
    assert soft.pending is None and soft.busy  # no second soft stop while its warning lasts
    assert soft.follow(11.3, 2.2, guarded=True, warning=True) == (None, [])
    assert soft.follow(14.0, 2.0, guarded=True, warning=False) == (SoftOutcome.RELEASED, [])
    assert not soft.busy and not soft.ignored


@pytest.mark.parametrize(
    ("guarded", "warning"),
    [(True, False), (False, True), (False, False)],
    ids=["the warning cleared", "nothing guarded stops the belt", "both"],
)
def test_the_watch_after_a_soft_stop_that_worked_is_released_once(guarded, warning):
    soft = SoftStops()
    came_down(soft)
    assert soft.follow(12.0, 2.2, guarded=guarded, warning=warning) == (SoftOutcome.RELEASED, [])
    assert not soft.busy
    assert soft.follow(12.1, FAST, guarded=True, warning=True) == (None, [])  # nothing left


@pytest.mark.parametrize(
    ("answer", "speed", "outcome", "why"),
    [
        (SpeedAnswer.REJECTED, FAST, SoftOutcome.REFUSED, "it refused SetSpeed"),
        (None, FAST, SoftOutcome.IGNORED, "the belt ran on"),
    ],
)
def test_a_console_that_refused_or_ignored_setspeed_is_remembered_once(answer, speed, outcome, why):
    soft = SoftStops()
    for ask_t in (10.0, 200.0):
        soft.ask(ask_t, out_of_grace(), WORD, speed_kmh=FAST)
        if answer is not None:
            soft.answered(answer)
        got, events = soft.follow(ask_t + SOFT_WINDOW_S, speed, guarded=True, warning=True)
        assert got is outcome and soft.pending is None and soft.ignored
        said = [e.details for e in events if e.kind is EventKind.CONSOLE_IGNORES_SPEED]
        assert said == ([{"why": why}] if ask_t == 10.0 else [])  # once, not at each stop


@pytest.mark.parametrize(
    ("speed", "outcome"), [(FAST - SLOWING_KMH, SoftOutcome.TOO_SLOW), (None, SoftOutcome.UNKNOWN)]
)
def test_a_belt_too_slow_or_unseen_brings_the_relay_but_the_console_is_not_blamed(speed, outcome):
    soft = SoftStops()
    soft.ask(10.0, out_of_grace(), HALL, speed_kmh=FAST)
    assert soft.follow(12.0, speed, guarded=True, warning=True) == (outcome, [])
    assert soft.pending is None and not soft.busy and not soft.ignored


def came_down(soft: SoftStops, at: float = 11.0) -> None:
    soft.ask(10.0, out_of_grace(), HALL, speed_kmh=FAST)
    assert soft.follow(at, 2.0, guarded=True, warning=True)[0] is SoftOutcome.CAME_DOWN


def display(soft: SoftStops, start: float, end: float, kmh: float) -> list[SoftOutcome | None]:
    return [soft.follow(t, kmh, guarded=True, warning=True)[0] for t in tick_times(start, end)]


def test_pushed_back_up_for_a_second_after_a_soft_stop_is_stopped():
    soft = SoftStops()
    came_down(soft)
    outcomes = display(soft, 11.1, 13.0, 2.5)
    # over from 11.0: the look at 11.1 counts the tenth since the last look, as over
    assert outcomes.index(SoftOutcome.SPED_UP) == round(SPED_UP_FOR_S / 0.1) - 1
    assert not soft.busy  # said once: the relay does the rest


def test_the_seconds_over_after_a_soft_stop_add_up_with_memory():
    soft = SoftStops()
    came_down(soft)
    # 0.5 s over, 20 s under the line (over the cap: the warning lasts), 0.5 s over again
    assert set(display(soft, 11.1, 11.5, 2.5)) == {None}
    assert set(display(soft, 11.6, 31.5, 2.2)) == {None}
    assert display(soft, 31.6, 32.0, 2.5)[-1] is SoftOutcome.SPED_UP


def test_a_flicker_over_the_line_after_a_soft_stop_is_no_speed_up():
    soft = SoftStops()
    came_down(soft)
    for n in range(9):  # a foot strike over the line for a tick, every second: 0.9 s in all
        start = 11.0 + n
        assert display(soft, start + 0.1, start + 0.1, 2.4) == [None]
        assert set(display(soft, start + 0.2, start + 1.0, 2.2)) == {None}
    assert soft.busy
    assert display(soft, 20.1, 20.1, 2.4) == [SoftOutcome.SPED_UP]


def test_the_speed_lost_after_a_soft_stop_brings_the_relay():
    soft = SoftStops()
    came_down(soft)
    assert soft.follow(11.5, None, guarded=True, warning=True) == (SoftOutcome.UNKNOWN, [])


def test_the_relay_cutting_the_belt_clears_whatever_soft_was_under_way():
    soft = SoftStops()
    soft.ask(10.0, out_of_grace(), HALL, speed_kmh=FAST)
    soft.cleared()
    assert (soft.pending, soft.busy, soft.deadline()) == (None, False, None)
    came_down(soft)
    soft.cleared()
    assert not soft.busy
    assert soft.follow(12.0, FAST, guarded=True, warning=True) == (None, [])
