"""The soft stop on its own (device/core/soft_stop.py), then through the guard: when the grace
runs out with [enforce] soft = "csafe", the console is sent SetSpeed to the cap and has
SOFT_WINDOW_S (2 s) to bring the belt under the cap + tolerance; the relay follows if it has
not, at once if the console refuses or the speed is unknown, and once the belt has been over
the line again for SPED_UP_FOR_S (1 s) in all after a soft stop that worked.

It is asked only for a belt that can be under the line within the window: (speed - line) /
rate <= 2 s, at 2 km/h per s (the quickest ordinary stop) where a hall sensor measures the
belt, at 1 km/h per s (the gentlest slowing a console is assumed to make) where the speed is
the console's own word; a belt further over gets the relay at once. And a console's word
under the line is believed only once the belt could have slowed there at that gentle rate:
a console reports the speed it is set to, not the belt. Time and the belt are given by the
test; ticks come at 10 Hz unless a test says otherwise.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from support.ticking import tick_times

from device.config.load import config_from_mapping
from device.config.model import Config
from device.core.console import SpeedAnswer
from device.core.events import EventKind
from device.core.guard import RELEASE_AFTER_S, RESTART_WATCH_S, Actions, Belt, Guard
from device.core.modes import Mode, SessionState
from device.core.overspeed import REFILL_PER_S, Decision, Verdict
from device.core.sensor_trust import STOP_RATE_KMH_PER_S
from device.core.signals import RelayState
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

CAP, LINE, GRACE_S = 2.0, 2.3, 5.0  # the built-in start cap, + tolerance, and grace
FAST = 4.0  # over the line, near enough it for either speed source to be asked
REST_S = GRACE_S / REFILL_PER_S  # a soft stop is granted once per refill: 150 s
CONSOLE = {"kind": "csafe", "url": "loop://"}
# The speed the guard sees: measured on the belt by a hall sensor (the console checks it), or
# the console's own word (the console is the speed source: it says the speed it is set to).
MEASURED, REPORTED = {"check": CONSOLE}, CONSOLE


def soft_config(sensor: dict[str, Any] = MEASURED, **enforce: Any) -> Config:
    return config_from_mapping({"sensor": sensor, "enforce": {"soft": "csafe", **enforce}})


HALL, WORD = soft_config(MEASURED), soft_config(REPORTED)


def asked(at: float = 10.0, *, from_kmh: float | None = FAST, down_from: float | None = None):
    """SetSpeed sent at `at`; a speed under the line believed from `down_from` (a hall
    sensor's at once)."""
    return SlowDown(at, CAP, LINE, from_kmh, at if down_from is None else down_from)


def out_of_grace(speed_kmh: float = FAST) -> Decision:
    """The watch's word at the tick the budget ran out."""
    return Decision(
        Verdict.ENFORCED, speed_kmh, CAP, seconds_left=0.0, reason="over the cap", over=True,
        scope="session", enforce=True,
    )  # fmt: skip


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


# ---- through the guard -------------------------------------------------------------------------


def soft_guard(sensor: dict[str, Any] = REPORTED, **enforce: Any) -> Guard:
    return Guard(soft_config(sensor, **enforce))


def belt(
    speed: float | None, mode: Mode = Mode.BACKWARD, state: SessionState = SessionState.RUNNING
) -> Belt:
    """A session at the start cap (None: no session), the display and the 3 s mean both at
    `speed`."""
    cap = CAP if mode is Mode.BACKWARD and state is not SessionState.IDLE else None
    return Belt(mode, state, cap, speed, speed)


def steps(guard: Guard, start: float, end: float, speed: float | None, **told) -> list[Actions]:
    return [guard.step(t, belt(speed, **told)) for t in tick_times(start, end)]


def kinds(actions: list[Actions]) -> list[tuple[float, EventKind]]:
    return [(e.t, e.kind) for a in actions for e in a.events]


def relays(actions: list[Actions]) -> list[RelayState]:
    return [a.relay for a in actions if a.relay is not None]


def over_the_grace(guard: Guard, start: float = 0.0, speed: float = FAST) -> list[Actions]:
    """The belt at `speed` from `start` until the tick the budget runs out (5 s later)."""
    return steps(guard, start, start + GRACE_S, speed)


def test_the_grace_running_out_asks_the_console_for_the_cap_not_the_relay():
    guard = soft_guard()
    actions = over_the_grace(guard)
    assert kinds(actions) == [(0.0, EventKind.OVERSPEED_WARNING), (5.0, EventKind.SLOWDOWN_ASKED)]
    assert [a.console_speed_kmh for a in actions if a.console_speed_kmh is not None] == [CAP]
    assert relays(actions) == []
    assert guard.next_deadline() == 5.0 + SOFT_WINDOW_S  # a tick must run when the window ends
    assert guard.status()["slowing"] is True


@pytest.mark.parametrize(
    ("sensor", "speed", "asks"),
    [
        (MEASURED, 6.3, True),  # (6.3 - 2.3) / 2 km/h per s: 2 s
        (MEASURED, 6.4, False),
        (REPORTED, 4.3, True),  # (4.3 - 2.3) / 1 km/h per s: 2 s
        (REPORTED, 4.4, False),
    ],
)
def test_a_belt_too_far_over_to_come_down_in_the_window_gets_the_relay_when_the_grace_ends(
    sensor, speed, asks
):
    guard = soft_guard(sensor)
    at_end = over_the_grace(guard, speed=speed)[-1]
    said = [e.kind for e in at_end.events]
    assert (EventKind.SLOWDOWN_ASKED in said, EventKind.ENFORCED_STOP in said) == (asks, not asks)
    assert at_end.relay is (None if asks else RelayState.OPEN)


@pytest.mark.parametrize(("sensor", "slowed_at"), [(MEASURED, 6.1), (REPORTED, 5.0 + 1.7)])
def test_a_console_that_slows_the_belt_in_time_keeps_the_relay_closed(sensor, slowed_at):
    guard = soft_guard(sensor)
    over_the_grace(guard)
    after = steps(guard, 5.1, 6.0, 3.0) + steps(guard, 6.1, 30.0, 2.0)
    # under the line from 6.1 s; the console's word only from (4.0 - 2.3) / 1 s after the ask
    assert [t for t, k in kinds(after) if k is EventKind.SLOWED] == [slowed_at]
    assert EventKind.ENFORCED_STOP not in [k for _, k in kinds(after)]
    assert relays(after) == [] and not any(a.pause for a in after)  # the session walks on
    assert guard.status()["slowing"] is False and not guard.soft.busy  # the warning cleared


def test_a_console_that_leaves_the_belt_running_is_cut_by_the_relay_at_the_deadline():
    guard = soft_guard()
    over_the_grace(guard)
    after = steps(guard, 5.1, 8.0, FAST)
    stop = [e for a in after for e in a.events if e.kind is EventKind.ENFORCED_STOP]
    assert [(e.t, e.details["soft"]) for e in stop] == [(7.0, "ignored")]
    assert (7.0, EventKind.CONSOLE_IGNORES_SPEED) in kinds(after)
    assert relays(after) == [RelayState.OPEN]
    assert guard.status()["console_ignores_speed"] is True


def test_a_belt_slowing_too_slowly_is_cut_at_the_deadline_without_blaming_the_console():
    guard = soft_guard()
    over_the_grace(guard)
    after = steps(guard, 5.1, 8.0, 3.0)
    stop = [e for a in after for e in a.events if e.kind is EventKind.ENFORCED_STOP]
    assert [(e.t, e.details["soft"]) for e in stop] == [(7.0, "too slow")]
    assert not guard.soft.ignored


def test_a_refusal_brings_the_relay_at_the_next_tick():
    guard = soft_guard()
    over_the_grace(guard)
    guard.soft.answered(SpeedAnswer.REJECTED)  # the answer to the frame after SetSpeed
    actions = guard.step(5.3, belt(FAST))
    assert actions.relay is RelayState.OPEN
    (stop,) = [e for e in actions.events if e.kind is EventKind.ENFORCED_STOP]
    assert stop.details["soft"] == "refused"


def test_turning_forward_during_the_window_stops_nothing_and_back_again_stops_at_once():
    guard = soft_guard()
    over_the_grace(guard)
    forward = steps(guard, 5.1, 9.0, FAST, mode=Mode.FORWARD)
    assert relays(forward) == [] and guard.soft.busy
    back = guard.step(9.1, belt(FAST))
    assert back.relay is RelayState.OPEN


def test_a_soft_stop_whose_watch_ends_with_the_warning_on_leaves_the_stop_owed():
    """The soft stop stood in for this warning's stop. Its watch ends when nothing guarded
    would stop the belt (here the session ended and its cap let go: no session, and
    without_session = "warn"), with the warning still on (2.2 km/h: over the cap, under the
    line). The stop is owed again: the next run over with the budget spent is stopped when
    the little the budget refilled meanwhile is gone, by the relay (no second soft stop
    within a refill)."""
    guard = soft_guard(MEASURED)
    over_the_grace(guard)
    steps(guard, 5.1, 10.0, 2.2)  # came down at 5.1 s; the warning stays on
    assert guard.soft.busy and guard.watch.warning
    guard.session_ended(10.0, belt(2.2), CAP)
    back_at = 10.0 + RELEASE_AFTER_S + 2.0  # the ended session's cap let go meanwhile
    idle = steps(guard, 10.1, back_at - 0.1, 2.2, state=SessionState.IDLE)
    assert guard.status()["guard"] == "no session"
    assert not guard.soft.busy and guard.watch.warning
    guard.session_started()
    back = steps(guard, back_at, back_at + 2.0, 8.0)
    refilled_s = (back_at - 5.1) * REFILL_PER_S  # under the line since the budget ran out
    (stop,) = [e for a in back for e in a.events if e.kind is EventKind.ENFORCED_STOP]
    assert stop.t <= back_at + refilled_s + 0.1 and "soft" not in stop.details
    assert relays(back) == [RelayState.OPEN]
    assert EventKind.SLOWDOWN_ASKED not in [k for _, k in kinds(idle + back)]


def stopped_after_ignoring(guard: Guard) -> None:
    over_the_grace(guard)
    steps(guard, 5.1, 7.0, FAST)
    assert guard.soft.ignored and guard.relay is RelayState.OPEN


@pytest.mark.parametrize(
    "why",
    [
        "speed unknown",
        "too far over",
        "ignored before",
        "remembered",
        "restart watch",
        "within a refill",
        "none",
    ],
)
def test_when_the_relay_stops_the_belt_without_asking_the_console(why):
    guard = Guard(config_from_mapping({"sensor": CONSOLE})) if why == "none" else soft_guard()
    start = 0.0
    if why == "ignored before":
        stopped_after_ignoring(guard)
        start = 7.0 + max(RESTART_WATCH_S, REST_S)  # long after: the watch and the rest over
        steps(guard, 7.1, start - 0.1, 1.0)
    elif why == "remembered":
        guard.remember_console_ignores_speed()  # the store says it ignored SetSpeed once
    elif why == "restart watch":
        guard.remember_stop(-10.0)
    elif why == "within a refill":
        over_the_grace(guard)
        steps(guard, 5.1, 30.0, 1.0)  # it worked; the warning cleared
        start = 30.1 + GRACE_S / REFILL_PER_S / 2  # the budget refilled, the rest not over
        steps(guard, 30.1, start - 0.1, 1.0)
    speed = {"speed unknown": None, "too far over": 8.0}.get(why, FAST)
    actions = steps(guard, start, start + 10.0, speed)
    said = [k for _, k in kinds(actions)]
    assert EventKind.SLOWDOWN_ASKED not in said
    assert EventKind.ENFORCED_STOP in said
    assert all(a.console_speed_kmh is None for a in actions)
