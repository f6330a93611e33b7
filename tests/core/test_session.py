"""The session machine on its own: presses, the belt and the clock, all given by argument."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.ticking import tick_times

from device.config.model import SessionConfig
from device.core.events import EventKind
from device.core.modes import EndReason, Mode, SessionState
from device.core.session import SessionMachine

# The daemon's monotonic clock is far from zero; the clock-origin tests below cover t = 0.
T0 = 1000.0
HOLD_S = 2.0


def machine(**session) -> SessionMachine:
    return SessionMachine(SessionConfig(**session), hold_s=HOLD_S)


def short_press(walker: SessionMachine, t: float) -> list:
    """A finger down and up 0.2 s later; the action the press asks for is carried out, as the
    controller does when the governor has nothing against it."""
    walker.start_down(t)
    action = walker.start_up(t + 0.2)
    return act(walker, t + 0.2, action)


def act(walker: SessionMachine, t: float, action: str | None) -> list:
    if action == "end":
        return walker.end(t, EndReason.BUTTON)
    if action is None:
        return []
    return {"start": walker.start, "pause": walker.pause, "resume": walker.resume}[action](t)


def walk(walker: SessionMachine, start: float, until: float, kmh: float | None, *, every=0.1):
    """Tick the machine every `every` seconds from `start` up to and including `until`;
    returns the events the belt caused."""
    events = []
    for t in tick_times(start, until, every_s=every):
        events += walker.tick(t, kmh)
    return events


def kinds(events) -> list[EventKind]:
    return [event.kind for event in events]


# ---- the START button --------------------------------------------------------------------


def test_short_press_starts_pauses_and_resumes_the_session():
    walker = machine()
    assert walker.state is SessionState.IDLE

    started = short_press(walker, T0)
    assert kinds(started) == [EventKind.SESSION_STARTED]
    assert started[0].details == {"mode": "backward", "reason": "button"}
    assert walker.state is SessionState.RUNNING

    assert kinds(short_press(walker, T0 + 10)) == [EventKind.SESSION_PAUSED]
    assert walker.state is SessionState.PAUSED

    assert kinds(short_press(walker, T0 + 20)) == [EventKind.SESSION_RESUMED]
    assert walker.state is SessionState.RUNNING


def test_press_released_just_before_hold_time_is_a_short_press():
    walker = machine()
    short_press(walker, T0)
    walker.start_down(T0 + 10)
    assert walker.start_held(T0 + 11.9) is False
    assert walker.start_up(T0 + 11.99) == "pause"


def test_start_held_for_hold_time_ends_the_session_while_still_held():
    walker = machine()
    short_press(walker, T0)
    walker.start_down(T0 + 30)
    assert walker.start_held(T0 + 31.9) is False
    assert walker.start_held(T0 + 32.0) is True  # the walker hears the end tune, finger down
    ended = walker.end(T0 + 32.0, EndReason.BUTTON)
    assert kinds(ended) == [EventKind.SESSION_ENDED]
    assert ended[0].details["reason"] == "button"
    assert walker.state is SessionState.IDLE
    # the hold fires once, and letting go afterwards asks for nothing more
    assert walker.start_held(T0 + 33.0) is False
    assert walker.start_up(T0 + 34.0) is None
    assert walker.state is SessionState.IDLE


def test_hold_released_before_any_tick_saw_it_still_ends_the_session():
    walker = machine()
    short_press(walker, T0)
    walker.start_down(T0 + 30)
    assert walker.start_up(T0 + 32.5) == "end"
    assert kinds(walker.end(T0 + 32.5, EndReason.BUTTON)) == [EventKind.SESSION_ENDED]
    assert walker.last_totals is not None
    assert walker.last_totals.ended_at == T0 + 32.5


def test_release_without_a_press_asks_for_nothing():
    walker = machine()
    assert walker.start_up(T0) is None
    assert walker.state is SessionState.IDLE


# ---- the DIRECTION button ----------------------------------------------------------------


def test_direction_toggles_the_mode_while_idle_without_opening_a_session():
    walker = machine()
    assert walker.mode is Mode.BACKWARD  # the shipped initial mode
    changed = walker.set_mode(T0, walker.mode.toggled())
    assert kinds(changed) == [EventKind.MODE_CHANGED]
    assert changed[0].details == {"mode": "forward", "from": "backward", "reason": "button"}
    assert walker.mode is Mode.FORWARD
    assert walker.totals is None
    walker.set_mode(T0 + 1, walker.mode.toggled())
    assert walker.mode is Mode.BACKWARD


def test_setting_the_mode_it_already_has_changes_nothing():
    walker = machine()
    assert walker.set_mode(T0, Mode.BACKWARD) == []


def test_direction_inside_a_session_opens_a_new_segment():
    walker = machine()
    walker.start(T0)
    walker.set_mode(T0 + 60, Mode.FORWARD)
    walker.set_mode(T0 + 90, Mode.BACKWARD)
    segments = walker.totals.segments
    assert [s.mode for s in segments] == [Mode.BACKWARD, Mode.FORWARD, Mode.BACKWARD]
    assert [(s.started_at, s.ended_at) for s in segments] == [
        (T0, T0 + 60),
        (T0 + 60, T0 + 90),
        (T0 + 90, None),
    ]
    assert walker.segment is segments[-1]


def test_initial_mode_forward_from_config():
    assert machine(initial_mode="forward").mode is Mode.FORWARD


# ---- the belt ----------------------------------------------------------------------------


def test_belt_stopped_for_five_seconds_pauses_and_not_before():
    walker = machine()
    walker.start(T0)
    assert walk(walker, T0, T0 + 10, 1.0) == []
    assert walk(walker, T0 + 10.1, T0 + 15.0, 0.0) == []  # stopped since 10.1: 4.9 s
    assert walker.state is SessionState.RUNNING
    paused = walker.tick(T0 + 15.1, 0.0)
    assert kinds(paused) == [EventKind.SESSION_PAUSED]
    assert paused[0].details == {"reason": "belt stopped"}
    assert walker.paused_by_belt


def test_a_short_stop_does_not_pause():
    walker = machine()
    walker.start(T0)
    walk(walker, T0, T0 + 10, 1.0)
    walk(walker, T0 + 10.1, T0 + 14, 0.0)
    walk(walker, T0 + 14.1, T0 + 20, 1.0)
    assert walk(walker, T0 + 20.1, T0 + 24, 0.0) == []  # two stops of 4 s never add up
    assert walker.state is SessionState.RUNNING


def test_belt_below_moving_threshold_counts_as_stopped():
    walker = machine()
    walker.start(T0)
    assert kinds(walk(walker, T0, T0 + 5, 0.2)) == [EventKind.SESSION_PAUSED]


def test_belt_stopped_from_clock_zero_pauses_after_five_seconds():
    # The simulator's clock starts at 0: a belt standing still from t = 0 is stopped since 0.
    walker = machine()
    walker.start(0.0)
    events = walk(walker, 0.0, 5.0, 0.0, every=1.0)
    assert kinds(events) == [EventKind.SESSION_PAUSED]
    assert events[0].t == 5.0


def test_unknown_speed_never_pauses():
    walker = machine()
    walker.start(T0)
    walk(walker, T0, T0 + 10, 1.0)
    assert walk(walker, T0 + 10.1, T0 + 400, None, every=1.0) == []
    assert walker.state is SessionState.RUNNING


def test_unknown_speed_does_not_count_as_the_belt_running():
    walker = machine(auto_start=True)
    walk(walker, T0, T0 + 10, None)
    assert walker.belt_running_for(T0 + 10) == 0.0
    assert not walker.wants_auto_start(T0 + 10)


def test_belt_running_again_resumes_a_pause_the_belt_caused():
    walker = machine()
    walker.start(T0)
    walk(walker, T0, T0 + 10, 0.0)
    assert walker.state is SessionState.PAUSED
    walk(walker, T0 + 10.1, T0 + 10.9, 1.0)
    assert not walker.wants_auto_resume(T0 + 10.9)  # it has run for 0.8 s only
    walker.tick(T0 + 11.1, 1.0)
    assert walker.wants_auto_resume(T0 + 11.1)
    assert kinds(walker.resume(T0 + 11.1, reason="belt running")) == [EventKind.SESSION_RESUMED]


def test_a_pause_from_the_button_waits_for_the_button():
    walker = machine()
    walker.start(T0)
    walk(walker, T0, T0 + 10, 1.0)
    short_press(walker, T0 + 10)
    assert walker.state is SessionState.PAUSED
    walk(walker, T0 + 10.3, T0 + 60, 1.0)  # the belt keeps running while the walker drinks
    assert not walker.wants_auto_resume(T0 + 60)
    walk(walker, T0 + 60.1, T0 + 70, 0.0)
    walk(walker, T0 + 70.1, T0 + 80, 1.0)
    assert not walker.wants_auto_resume(T0 + 80)
    assert walker.state is SessionState.PAUSED


def test_a_pause_longer_than_five_minutes_ends_the_session():
    walker = machine()
    walker.start(T0)
    walker.pause(T0 + 10)
    assert walk(walker, T0 + 10, T0 + 309, 0.0, every=1.0) == []
    ended = walker.tick(T0 + 310, 0.0)
    assert kinds(ended) == [EventKind.SESSION_ENDED]
    assert ended[0].details["reason"] == EndReason.PAUSE_TIMEOUT.value
    assert walker.state is SessionState.IDLE
    assert walker.last_totals.ended_at == T0 + 310


def test_auto_start_after_the_belt_runs_three_seconds_when_configured():
    walker = machine(auto_start=True)
    walk(walker, T0, T0 + 2.9, 1.0)
    assert not walker.wants_auto_start(T0 + 2.9)
    walker.tick(T0 + 3.0, 1.0)
    assert walker.wants_auto_start(T0 + 3.0)


def test_auto_start_from_clock_zero():
    walker = machine(auto_start=True)
    walk(walker, 0.0, 3.0, 1.0)
    assert walker.belt_running_for(3.0) == pytest.approx(3.0)
    assert walker.wants_auto_start(3.0)


def test_no_auto_start_unless_configured():
    walker = machine()
    walk(walker, T0, T0 + 60, 1.0)
    assert not walker.wants_auto_start(T0 + 60)
    assert walker.state is SessionState.IDLE


def test_no_auto_start_inside_a_session():
    walker = machine(auto_start=True)
    walker.start(T0)
    walk(walker, T0, T0 + 10, 1.0)
    assert not walker.wants_auto_start(T0 + 10)


# ---- what a session adds up to -----------------------------------------------------------


def test_distance_and_minutes_per_mode_add_up_by_segment():
    walker = machine()
    walker.start(T0)
    walk(walker, T0, T0 + 100, 3.6, every=1.0)  # 1 m/s backward for 100 s
    walker.set_mode(T0 + 100, Mode.FORWARD)
    walk(walker, T0 + 101, T0 + 150, 7.2, every=1.0)  # 2 m/s forward for 50 s
    ended = walker.end(T0 + 150, EndReason.BUTTON)
    totals = walker.last_totals
    assert totals.backward_s == pytest.approx(100)
    assert totals.forward_s == pytest.approx(50)
    assert totals.distance_m == pytest.approx(200)
    assert totals.backward_distance_m == pytest.approx(100)
    assert totals.top_speed_kmh == pytest.approx(7.2)
    assert [s.distance_m for s in totals.segments] == pytest.approx([100, 100])
    assert [s.active_s for s in totals.segments] == pytest.approx([100, 50])
    assert ended[0].details == {
        "reason": "button",
        "distance_m": 200.0,
        "backward_s": 100.0,
        "forward_s": 50.0,
    }


def test_time_paused_is_not_counted_as_walking():
    walker = machine()
    walker.start(T0)
    walk(walker, T0, T0 + 10, 3.6, every=1.0)
    walker.pause(T0 + 10)
    walker.resume(T0 + 70)  # a minute at the water bottle, no tick in between
    walker.tick(T0 + 71, 3.6)
    assert walker.totals.backward_s == pytest.approx(11)
    assert walker.totals.distance_m == pytest.approx(11)


def test_nothing_is_counted_while_paused():
    walker = machine()
    walker.start(T0)
    walk(walker, T0, T0 + 10, 3.6, every=1.0)
    walker.pause(T0 + 10)
    walk(walker, T0 + 11, T0 + 60, 3.6, every=1.0)
    assert walker.totals.backward_s == pytest.approx(10)
    assert walker.totals.distance_m == pytest.approx(10)


def test_unknown_speed_counts_time_but_no_distance():
    walker = machine()
    walker.start(T0)
    walk(walker, T0, T0 + 10, None, every=1.0)
    assert walker.totals.backward_s == pytest.approx(10)
    assert walker.totals.distance_m == 0.0


def test_a_new_session_starts_from_zero():
    walker = machine()
    walker.start(T0)
    walk(walker, T0, T0 + 10, 3.6, every=1.0)
    walker.end(T0 + 10, EndReason.BUTTON)
    walker.start(T0 + 20)
    walk(walker, T0 + 20, T0 + 25, 3.6, every=1.0)
    assert walker.totals.backward_s == pytest.approx(5)
    assert walker.last_totals.backward_s == pytest.approx(10)


def test_end_while_idle_does_nothing():
    assert machine().end(T0, EndReason.COMMAND) == []


# ---- properties: any sequence of presses and belt readings ------------------------------

speeds = st.one_of(st.none(), st.sampled_from([0.0, 0.2, 1.0, 2.5, 6.0]))
actions = st.one_of(
    st.tuples(st.just("tick"), speeds),
    st.tuples(st.just("press"), st.sampled_from([0.2, 2.5])),  # down and up between ticks
    st.tuples(st.just("down"), st.none()),  # a hold the ticks see
    st.tuples(st.just("up"), st.none()),
    st.tuples(st.just("direction"), st.none()),
)
steps = st.lists(st.tuples(st.floats(0.0, 8.0), actions), max_size=60)


@settings(max_examples=300, deadline=None)
@given(steps=steps, auto_start=st.booleans())
def test_walking_seconds_never_exceed_the_time_spent_running(steps, auto_start):
    walker = machine(auto_start=auto_start, end_after_pause_s=20.0)
    t = T0
    running_s = 0.0  # seconds in RUNNING since the current session began

    def check(totals, running):
        assert totals.backward_s + totals.forward_s <= running + 1e-6
        assert totals.backward_s >= 0 and totals.forward_s >= 0

    for dt, (kind, arg) in steps:
        if walker.state is SessionState.RUNNING:
            running_s += dt
        t += dt
        was_in_session = walker.in_session
        events = []
        if kind == "tick":
            events += walker.tick(t, arg)
            if walker.start_held(t) and walker.in_session:
                events += walker.end(t, EndReason.BUTTON)
            if walker.wants_auto_start(t):
                events += walker.start(t, reason="belt running")
            elif walker.wants_auto_resume(t):
                events += walker.resume(t, reason="belt running")
        elif kind == "press":
            walker.start_down(t)  # down and up again with no tick in between
            running_s += arg if walker.state is SessionState.RUNNING else 0.0
            t += arg
            events += act(walker, t, walker.start_up(t))
        elif kind == "down":
            walker.start_down(t)
        elif kind == "up":
            events += act(walker, t, walker.start_up(t))
        else:
            events += walker.set_mode(t, walker.mode.toggled())

        assert walker.state in set(SessionState)
        if EventKind.SESSION_ENDED in kinds(events):
            check(walker.last_totals, running_s)
        if EventKind.SESSION_STARTED in kinds(events) or not was_in_session:
            running_s = 0.0
        if walker.totals is not None:
            check(walker.totals, running_s)
            assert walker.segment.mode is walker.mode
        assert (walker.totals is None) == (walker.state is SessionState.IDLE)
