"""The guard on its own: the warning, the grace budget, enforcement, the caps that hold outside a
running session, and the sensor's word, with time and the belt given by the test.

Over means the 3 s mean above the cap in force plus the tolerance, or a speed the device cannot
vouch for. Time over draws on one budget (device/core/overspeed.py); the configured action follows
when it runs out. Ticks come at 10 Hz unless a test says otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.ticking import tick_times

from device.config.load import config_from_mapping
from device.config.model import Config
from device.core.events import EventKind
from device.core.guard import RESTART_GRACE_S, RESTART_WATCH_S, WARNING_LIGHT, Actions, Belt, Guard
from device.core.modes import Mode, SessionState
from device.core.overspeed import REFILL_PER_S, Limit, Verdict
from device.core.sensor_trust import TRUSTED, SensorState, SensorVerdict
from device.core.signals import LedPattern, RelayState, Tune

CAP = 2.0  # the built-in start cap
LINE = 2.3  # ... plus the built-in tolerance
GRACE_S = 5.0
FAST = 3.0
SLOW = 1.0
RUNNING, PAUSED, IDLE = SessionState.RUNNING, SessionState.PAUSED, SessionState.IDLE
SERIAL_GONE = SensorVerdict(
    SensorState.STALE,
    "serial",
    "The serial speed source has sent no reading; check its cable and port.",
)
_DEFAULT = object()  # belt(): what the controller would tell in that state


def config_for(
    *,
    action: str = "relay",
    mode: str = "pulse",
    pulse_s: float = 2.0,
    grace_s: float = GRACE_S,
    without_session: str = "warn",
    tolerance_kmh: float = 0.3,
) -> Config:
    """The built-in config but for these keys of [enforce] and [backward]."""
    enforce = {"action": action, "mode": mode, "pulse_s": pulse_s}
    enforce["without_session"] = without_session
    backward = {"grace_s": grace_s, "tolerance_kmh": tolerance_kmh}
    return config_from_mapping({"backward": backward, "enforce": enforce})


def make_guard(**keys: Any) -> Guard:
    return Guard(config_for(**keys))


def belt(
    mean: float | None,
    *,
    state: SessionState = RUNNING,
    cap: Any = _DEFAULT,
    mode: Mode = Mode.BACKWARD,
    speed: Any = _DEFAULT,
    sensor: SensorVerdict = TRUSTED,
) -> Belt:
    """The belt as the controller tells it: a session's cap while one runs or is paused in
    backward mode (CAP unless given), the display reading the mean unless given."""
    if cap is _DEFAULT:
        cap = CAP if state is not IDLE and mode is Mode.BACKWARD else None
    return Belt(mode, state, cap, mean, mean if speed is _DEFAULT else speed, sensor)


def walk(guard: Guard, start: float, end: float, mean: float | None, **told) -> list[Actions]:
    """Ticks from `start` to `end`, the belt's mean held at `mean` (and the rest as told)."""
    return [guard.step(t, belt(mean, **told)) for t in tick_times(start, end)]


def kinds(actions: list[Actions]) -> list[EventKind]:
    return [event.kind for step in actions for event in step.events]


def events(actions: list[Actions], kind: EventKind) -> list:
    return [event for step in actions for event in step.events if event.kind is kind]


def tunes(actions: list[Actions]) -> list[Tune]:
    return [step.tune for step in actions if step.tune is not None]


ENFORCING = (EventKind.ENFORCED_STOP, EventKind.NOT_ENFORCED)


def enforced_at(guard: Guard, start: float, end: float, mean: float | None, **told) -> float:
    """Walk until the budget is enforced; the tick it was."""
    for t in tick_times(start, end):
        step = guard.step(t, belt(mean, **told))
        if any(e.kind in ENFORCING for e in step.events):
            return t
    raise AssertionError(f"nothing enforced by {end} s")


# ---- the warning ---------------------------------------------------------------------------------


def test_the_warning_event_says_speed_cap_budget_reason_and_scope_and_flashes_the_led():
    guard = make_guard()
    first = guard.step(60.0, belt(2.456))
    (warning,) = first.events
    assert (warning.t, warning.kind) == (60.0, EventKind.OVERSPEED_WARNING)
    assert warning.details == {
        "speed_kmh": 2.46,
        "cap_kmh": CAP,
        "grace_s": GRACE_S,
        "reason": "over the cap",
        "scope": "session",
        "stop_coming": True,
    }
    assert (first.warning_light, first.tune, first.relay, first.pause) == (
        True, Tune.WARN_SLOW, None, False
    )  # fmt: skip
    assert WARNING_LIGHT is LedPattern.FAST_BLINK  # what the controller shows for it


def test_a_mean_right_on_the_line_does_not_warn():
    guard = make_guard()
    assert walk(guard, 0.0, 10.0, LINE) == [Actions()] * 101
    assert guard.step(10.1, belt(LINE + 0.01)).warning_light is True


def test_the_warning_beeps_slow_then_fast_then_urgent_then_the_stop_tune():
    guard = make_guard()
    steps = walk(guard, 0.0, GRACE_S, FAST)
    assert tunes(steps) == [Tune.WARN_SLOW, Tune.WARN_FAST, Tune.WARN_URGENT, Tune.STOPPED]
    changed_at = [
        t for t, step in zip(tick_times(0.0, GRACE_S), steps, strict=True) if step.tune is not None
    ]
    # slow for the first half of the grace, fast until its last fifth, then urgent
    assert changed_at == [0.0, 2.5, 4.0, 5.0]


def test_the_status_counts_the_budget_down():
    guard = make_guard()
    walk(guard, 0.0, 1.5, FAST)
    status = guard.status()
    warning = status["warning"]
    assert warning["seconds_left"] == 3.5
    assert (warning["reason"], warning["cap_kmh"], warning["enforced"]) == (
        "over the cap", CAP, False
    )  # fmt: skip
    assert (warning["stop_coming"], warning["scope"]) == (True, "session")
    assert (status["limit_kmh"], status["guard"], status["grace_left_s"]) == (LINE, "session", 3.5)
    walk(guard, 1.6, 3.0, FAST)
    assert guard.status()["warning"]["seconds_left"] == 2.0


def test_slowing_to_the_cap_clears_the_warning_after_a_second_and_silences_the_buzzer():
    guard = make_guard()
    walk(guard, 0.0, 2.0, FAST)
    settling = walk(guard, 2.1, 3.0, CAP)
    assert kinds(settling) == [] and guard.status()["warning"] is not None
    back = guard.step(3.1, belt(CAP))
    assert [e.kind for e in back.events] == [EventKind.OVERSPEED_CLEARED]
    assert back.events[0].details == {"speed_kmh": CAP, "cap_kmh": CAP}
    assert (back.tune, back.warning_light, back.relay) == (Tune.SILENT, False, None)
    assert guard.next_deadline() is None
    assert guard.status()["warning"] is None


def test_slowing_only_under_the_line_keeps_the_warning_but_stops_the_countdown():
    guard = make_guard()
    walk(guard, 0.0, 1.9, FAST)  # over until the next tick: 2 s
    band = walk(guard, 2.0, 60.0, 2.2)  # over the cap, under the line
    assert kinds(band) == [] and not any(step.relay for step in band)
    warning = guard.status()["warning"]
    assert warning is not None and warning["seconds_left"] >= 3.0
    assert guard.next_deadline() is None  # no stop is coming


# ---- enforcement ---------------------------------------------------------------------------------


def test_relay_pulse_opens_the_loop_at_the_budgets_end_and_closes_it_pulse_s_later():
    guard = make_guard(pulse_s=2.0)
    walk(guard, 10.0, 14.9, FAST)
    assert guard.next_deadline() == pytest.approx(15.0)
    stop = guard.step(15.0, belt(FAST))
    (event,) = stop.events
    assert event.kind is EventKind.ENFORCED_STOP
    said = {"speed_kmh": FAST, "cap_kmh": CAP, "reason": "over the cap", "scope": "session"}
    assert event.details == {**said, "action": "relay", "mode": "pulse"}
    assert (stop.relay, stop.pause, stop.belt_cut, stop.warning_light, stop.tune) == (
        RelayState.OPEN, True, True, False, Tune.STOPPED
    )  # fmt: skip
    assert guard.next_deadline() == pytest.approx(17.0)  # the pulse's end
    # the session is paused now, its segment restarted at the start cap; the belt stands
    assert guard.step(16.9, belt(0.0, state=PAUSED)).relay is None
    closing = guard.step(17.0, belt(0.0, state=PAUSED))
    assert (closing.relay, closing.events) == (RelayState.CLOSED, [])
    assert guard.next_deadline() is None


def test_relay_latch_keeps_the_loop_open_until_start_releases_it():
    guard = make_guard(mode="latch")
    steps = walk(guard, 0.0, GRACE_S, FAST)
    assert steps[-1].relay is RelayState.OPEN
    assert guard.next_deadline() is None  # nothing falls due: only START closes it
    standing = walk(guard, 5.1, 600.0, 0.0, state=PAUSED)
    assert [s.relay for s in standing if s.relay is not None] == []
    assert guard.status()["latched"] is True
    released = guard.release_latch(600.1)
    assert released.relay is RelayState.CLOSED
    assert guard.status()["relay"] == "closed" and guard.status()["latched"] is False
    assert guard.release_latch(601.0).relay is None  # a second press changes nothing


def test_action_none_records_not_enforced_once_and_keeps_warning():
    guard = make_guard(action="none")
    steps = walk(guard, 0.0, 60.0, FAST)
    assert kinds(steps) == [EventKind.OVERSPEED_WARNING, EventKind.NOT_ENFORCED]
    assert steps[0].events[0].details["stop_coming"] is False
    (not_enforced,) = events(steps, EventKind.NOT_ENFORCED)
    assert not_enforced.t == pytest.approx(GRACE_S)
    assert not_enforced.details["action"] == "none"
    assert not_enforced.details["why"] == "this machine has no enforcement action"
    assert [s for s in steps if s.relay is not None or s.pause or s.belt_cut] == []
    assert tunes(steps) == [Tune.WARN_SLOW]  # a steady reminder, beeping on until slower
    status = guard.status()
    said = (status["enforcement"], status["cap_enforced"], status["relay"])
    assert said == ("none", False, "closed")
    assert (status["warning"]["enforced"], status["warning"]["stop_coming"]) == (True, False)
    assert guard.next_deadline() is None


def test_safe_closes_a_latched_loop():
    guard = make_guard(mode="latch")
    walk(guard, 0.0, GRACE_S, FAST)
    actions = Actions()
    guard.safe(actions)
    assert actions.relay is RelayState.CLOSED
    assert guard.status()["latched"] is False and guard.next_deadline() is None


def test_safe_silences_a_beeping_warning():
    guard = make_guard()
    walk(guard, 0.0, 2.0, FAST)
    actions = Actions()
    guard.safe(actions)
    assert (actions.relay, actions.tune) == (None, Tune.SILENT)  # the loop was closed already


# ---- the speed sensor ----------------------------------------------------------------------------


def test_a_lost_sensor_is_said_once_and_its_return_once():
    guard = make_guard()
    lost = walk(guard, 0.0, 1.0, None, sensor=SERIAL_GONE)
    assert kinds(lost)[:2] == [EventKind.SENSOR_LOST, EventKind.OVERSPEED_WARNING]
    assert kinds(lost).count(EventKind.SENSOR_LOST) == 1
    assert lost[0].events[0].details == {
        "sensor": "serial",
        "state": "stale",
        "why": SERIAL_GONE.detail,
    }
    assert lost[0].events[1].details["reason"] == "speed unknown"
    assert guard.status()["sensor_lost"] is True
    back = guard.step(1.1, belt(SLOW))
    assert kinds([back]) == [EventKind.SENSOR_RESTORED]
    assert back.events[0].details == {"sensor": "serial"}
    assert guard.status()["sensor_lost"] is False
    settled = walk(guard, 1.2, 3.0, SLOW)
    assert kinds(settled) == [EventKind.OVERSPEED_CLEARED]  # a second at the cap


def test_a_sensor_still_lost_after_the_grace_is_enforced():
    guard = make_guard()
    steps = walk(guard, 0.0, GRACE_S, None, sensor=SERIAL_GONE)
    said = [EventKind.SENSOR_LOST, EventKind.OVERSPEED_WARNING, EventKind.ENFORCED_STOP]
    assert kinds(steps) == said
    assert steps[-1].events[0].details["reason"] == "speed unknown"
    assert steps[-1].relay is RelayState.OPEN


@pytest.mark.parametrize(
    ("mode", "state"),
    [(Mode.FORWARD, IDLE), (Mode.FORWARD, RUNNING), (Mode.BACKWARD, IDLE)],
)
def test_sensor_trust_is_judged_in_every_state(mode, state):
    guard = make_guard()
    lost = walk(guard, 0.0, 1.0, None, mode=mode, state=state, sensor=SERIAL_GONE)
    assert kinds(lost)[0] is EventKind.SENSOR_LOST
    assert kinds(lost).count(EventKind.SENSOR_LOST) == 1
    back = walk(guard, 1.1, 1.2, 0.0, mode=mode, state=state)
    assert kinds(back)[0] is EventKind.SENSOR_RESTORED


def test_forward_walking_with_a_lost_sensor_is_never_warned():
    guard = make_guard()
    steps = walk(guard, 0.0, 60.0, None, mode=Mode.FORWARD, sensor=SERIAL_GONE)
    assert kinds(steps) == [EventKind.SENSOR_LOST]
    assert guard.limit is None and tunes(steps) == []


def test_a_sensor_that_goes_from_suspect_to_dropout_is_said_again():
    guard = make_guard()
    suspect = SensorVerdict(SensorState.SUSPECT, "hall", "ended abruptly")
    dropout = SensorVerdict(SensorState.DROPOUT, "hall", "lost pulses at speed")
    first = guard.step(0.0, belt(None, sensor=suspect))
    then = guard.step(0.1, belt(None, sensor=dropout))
    assert [e.details["state"] for e in events([first, then], EventKind.SENSOR_LOST)] == [
        "suspect",
        "dropout",
    ]


# ---- the caps in force outside a running session -------------------------------------------------


def test_a_paused_session_keeps_its_cap():
    guard = make_guard()
    quiet = walk(guard, 0.0, 10.0, 2.7, state=PAUSED, cap=2.5)
    assert kinds(quiet) == []
    assert (guard.limit.cap_kmh, guard.limit.scope, guard.limit.enforcing) == (2.5, "paused", True)
    steps = walk(guard, 10.1, 15.1, FAST, state=PAUSED, cap=2.5)
    warning, stop = events(steps, EventKind.OVERSPEED_WARNING)[0], steps[-1]
    assert (warning.details["scope"], warning.details["cap_kmh"]) == ("paused", 2.5)
    assert stop.events[0].kind is EventKind.ENFORCED_STOP
    assert stop.events[0].details["scope"] == "paused"
    assert (stop.relay, stop.pause) == (RelayState.OPEN, False)  # paused already


def test_a_session_ended_at_speed_holds_its_cap_and_says_the_belt_is_still_guarded():
    guard = make_guard()
    walk(guard, 0.0, 5.0, 3.2, cap=3.0)  # under its 3.3 km/h line
    said = guard.session_ended(5.05, belt(3.2, state=IDLE), 3.0)
    assert [(e.kind, e.details) for e in said] == [
        (
            EventKind.STILL_GUARDED,
            {"why": "the session ended", "speed_kmh": 3.2, "start_cap_kmh": CAP, "cap_kmh": 3.0},
        )
    ]
    held = walk(guard, 5.1, 30.0, 3.2, state=IDLE)
    assert kinds(held) == []
    assert (guard.limit.cap_kmh, guard.limit.scope, guard.limit.enforcing) == (3.0, "ended", True)
    # the walker speeds up with no session: the held cap is enforced, whatever without_session
    faster = walk(guard, 30.1, 35.1, 3.6, state=IDLE)
    assert kinds(faster) == [EventKind.OVERSPEED_WARNING, EventKind.ENFORCED_STOP]
    warning, stop = events(faster, EventKind.OVERSPEED_WARNING)[0], faster[-1]
    assert (warning.details["scope"], warning.details["stop_coming"]) == ("ended", True)
    assert (stop.events[0].details["scope"], stop.relay) == ("ended", RelayState.OPEN)


def test_a_held_cap_lets_go_after_two_seconds_at_the_start_line():
    guard = make_guard()
    walk(guard, 0.0, 5.0, 3.2, cap=3.0)
    guard.session_ended(5.0, belt(3.2, state=IDLE), 3.0)
    walk(guard, 5.1, 9.9, 3.2, state=IDLE)
    slowing = walk(guard, 10.0, 11.9, LINE, state=IDLE)  # at the start cap + tolerance
    assert kinds(slowing) == [] and guard.limit.scope == "ended"
    released = guard.step(12.0, belt(LINE, state=IDLE))
    assert [(e.kind, e.details) for e in released.events] == [
        (EventKind.GUARD_RELEASED, {"speed_kmh": LINE, "cap_kmh": 3.0})
    ]
    assert (guard.limit.cap_kmh, guard.limit.scope) == (CAP, "no session")


def test_a_held_cap_counts_its_two_seconds_afresh_after_the_belt_speeds_up_again():
    guard = make_guard()
    guard.session_ended(0.0, belt(3.2, state=IDLE), 3.0)
    walk(guard, 0.0, 1.5, SLOW, state=IDLE)
    walk(guard, 1.6, 1.6, 2.8, state=IDLE)  # over the start line, under the held one
    walk(guard, 1.7, 3.6, SLOW, state=IDLE)
    assert guard.limit.scope == "ended"
    assert kinds(walk(guard, 3.7, 3.7, SLOW, state=IDLE)) == [EventKind.GUARD_RELEASED]


def test_a_held_cap_never_lets_go_while_the_speed_is_unknown():
    guard = make_guard()
    guard.session_ended(0.0, belt(3.2, state=IDLE), 3.0)
    steps = walk(guard, 0.1, 4.0, None, state=IDLE, sensor=SERIAL_GONE)
    assert EventKind.GUARD_RELEASED not in kinds(steps)
    assert guard.limit.scope == "ended"


def test_a_session_ended_with_the_belt_slow_is_released_quietly():
    guard = make_guard()
    assert guard.session_ended(0.0, belt(SLOW, state=IDLE), 3.0) == []
    assert guard.step(0.1, belt(SLOW, state=IDLE)) == Actions()
    assert guard.limit.scope == "ended"
    steps = walk(guard, 0.2, 2.2, SLOW, state=IDLE)
    assert kinds(steps) == []  # let go without a word: nothing was said when it held
    assert guard.limit.scope == "no session"


def test_a_session_ended_while_walking_forward_says_nothing_of_a_guard():
    guard = make_guard()
    assert guard.session_ended(0.0, belt(8.0, state=IDLE, mode=Mode.FORWARD), None) == []


def test_a_refused_backward_start_with_the_belt_fast_is_guarded_at_the_start_cap():
    guard = make_guard()  # without_session "warn": but this walker pressed START
    said = guard.start_refused(0.0, belt(FAST, state=IDLE))
    assert [(e.kind, e.details) for e in said] == [
        (
            EventKind.STILL_GUARDED,
            {
                "why": "the start was refused",
                "speed_kmh": FAST,
                "start_cap_kmh": CAP,
                "cap_kmh": CAP,
            },
        )
    ]
    steps = walk(guard, 0.0, GRACE_S, FAST, state=IDLE)
    assert kinds(steps) == [EventKind.OVERSPEED_WARNING, EventKind.ENFORCED_STOP]
    assert steps[0].events[0].details["scope"] == "refused"
    assert (steps[-1].events[0].details["scope"], steps[-1].relay) == ("refused", RelayState.OPEN)


def test_a_refused_start_is_told_by_the_faster_of_mean_and_display():
    guard = make_guard()
    (said,) = guard.start_refused(0.0, belt(1.5, speed=4.0, state=IDLE))
    assert said.details["speed_kmh"] == 4.0


def test_no_session_warns_but_never_stops_by_default():
    guard = make_guard()
    steps = walk(guard, 0.0, 60.0, FAST, state=IDLE)
    assert kinds(steps) == [EventKind.OVERSPEED_WARNING, EventKind.NOT_ENFORCED]
    warning = steps[0].events[0]
    assert (warning.details["scope"], warning.details["stop_coming"]) == ("no session", False)
    (not_enforced,) = events(steps, EventKind.NOT_ENFORCED)
    assert not_enforced.t == pytest.approx(GRACE_S)
    assert not_enforced.details["action"] == "warn"
    assert "without_session" in not_enforced.details["why"]
    assert [s for s in steps if s.relay is not None or s.pause or s.belt_cut] == []
    assert tunes(steps) == [Tune.WARN_SLOW]  # no countdown: no stop is coming
    assert guard.status()["warning"]["stop_coming"] is False


def test_no_session_stops_the_belt_with_without_session_stop():
    guard = make_guard(without_session="stop")
    steps = walk(guard, 0.0, GRACE_S, FAST, state=IDLE)
    assert kinds(steps) == [EventKind.OVERSPEED_WARNING, EventKind.ENFORCED_STOP]
    assert steps[0].events[0].details["stop_coming"] is True
    stop = steps[-1]
    assert stop.events[0].details["scope"] == "no session"
    assert (stop.relay, stop.pause, stop.belt_cut) == (RelayState.OPEN, False, True)


def test_no_session_watches_the_start_cap():
    guard = make_guard()
    assert kinds(walk(guard, 0.0, 10.0, LINE, state=IDLE)) == []
    assert (guard.limit.cap_kmh, guard.limit.scope, guard.limit.enforcing) == (
        CAP, "no session", False
    )  # fmt: skip


def test_forward_mode_has_no_limit():
    guard = make_guard()
    assert kinds(walk(guard, 0.0, 30.0, 12.0, mode=Mode.FORWARD)) == []
    assert guard.limit is None and guard.status()["limit_kmh"] is None


# ---- after an enforced stop: the restart watch ---------------------------------------------------


def stopped_at_five(guard: Guard) -> None:
    """Over from 0 s: the relay opens at 5 s, the session pauses and its segment restarts at
    the start cap; the belt stands until the loop closes at 7 s."""
    walk(guard, 0.0, GRACE_S, FAST)
    walk(guard, 5.1, 7.0, 0.0, state=PAUSED)


def test_a_fast_restart_after_an_enforced_stop_is_stopped_again_at_once():
    guard = make_guard()
    stopped_at_five(guard)
    restart = guard.step(7.1, belt(FAST, state=PAUSED))  # from the console, at speed
    (warning,) = restart.events
    assert warning.details["scope"] == "after a stop"
    assert warning.details["grace_s"] == pytest.approx(2.1 * REFILL_PER_S, abs=0.05)
    stop = guard.step(7.2, belt(FAST, state=PAUSED))
    assert [e.kind for e in stop.events] == [EventKind.ENFORCED_STOP]
    assert stop.events[0].details["scope"] == "after a stop"
    assert stop.relay is RelayState.OPEN


def test_the_restart_watch_holds_the_start_cap_with_a_two_second_budget():
    guard = make_guard()
    stopped_at_five(guard)
    # resumed into a session whose cap is higher: the start cap holds all the same
    walk(guard, 7.1, 65.0, SLOW, cap=3.0)
    limit = guard.limit
    assert (limit.cap_kmh, limit.grace_s, limit.scope, limit.enforcing) == (
        CAP, RESTART_GRACE_S, "after a stop", True
    )  # fmt: skip
    assert guard.watch.budget_s == pytest.approx(RESTART_GRACE_S)  # refilled to 2 s, no more
    assert enforced_at(guard, 65.1, 70.0, 2.5, cap=3.0) == pytest.approx(67.1)


def test_the_restart_watch_enforces_even_without_a_session():
    guard = make_guard()  # without_session "warn"
    stopped_at_five(guard)
    walk(guard, 7.1, 40.0, 0.0, state=IDLE)
    steps = walk(guard, 40.1, 42.0, FAST, state=IDLE)  # 35 s under: 1.17 s of budget
    assert kinds(steps) == [EventKind.OVERSPEED_WARNING, EventKind.ENFORCED_STOP]
    assert steps[0].events[0].details["stop_coming"] is True
    assert events(steps, EventKind.ENFORCED_STOP)[0].details["scope"] == "after a stop"


def test_the_restart_watch_ends_120_s_after_the_stop_and_the_grace_comes_back_slowly():
    guard = make_guard()
    stopped_at_five(guard)
    walk(guard, 7.1, 5.0 + RESTART_WATCH_S - 0.1, SLOW, cap=3.0)
    assert guard.restart_watched(124.9) and guard.limit.scope == "after a stop"
    guard.step(125.0, belt(SLOW, cap=3.0))
    assert not guard.restart_watched(125.0)
    assert (guard.limit.cap_kmh, guard.limit.grace_s, guard.limit.scope) == (3.0, 5.0, "session")
    assert guard.status()["grace_left_s"] == RESTART_GRACE_S
    walk(guard, 125.1, 155.0, SLOW, cap=3.0)
    assert guard.status()["grace_left_s"] == pytest.approx(RESTART_GRACE_S + 1.0)


# ---- a reload ------------------------------------------------------------------------------------


def test_a_reload_never_lengthens_a_running_grace():
    guard = make_guard(grace_s=5.0)
    walk(guard, 0.0, 1.9, FAST)  # over until the next tick: 2 s, so 3 s left
    guard.reconfigure(config_for(grace_s=10.0))
    assert enforced_at(guard, 2.0, 20.0, FAST) == pytest.approx(5.0)
    assert guard.limit.grace_s == 10.0  # the new ceiling, refilled only slowly


def test_a_reload_never_raises_the_budget_even_between_warnings():
    guard = make_guard(grace_s=5.0)
    walk(guard, 0.0, 3.9, FAST)  # 1 s left
    walk(guard, 4.0, 10.0, SLOW)
    before = guard.watch.budget_s
    guard.reconfigure(config_for(grace_s=20.0))
    guard.step(10.1, belt(SLOW))
    assert guard.watch.budget_s == pytest.approx(before + 0.1 * REFILL_PER_S)


def test_a_reload_with_a_shorter_grace_shortens_the_budget_at_once():
    guard = make_guard(grace_s=5.0)
    walk(guard, 0.0, 1.9, FAST)
    guard.reconfigure(config_for(grace_s=2.0))
    assert enforced_at(guard, 2.0, 20.0, FAST) == pytest.approx(4.0)


def test_a_reload_applies_the_new_action_at_once():
    guard = make_guard(action="relay")
    walk(guard, 0.0, 1.9, FAST)
    guard.reconfigure(config_for(action="none"))
    steps = walk(guard, 2.0, 10.0, FAST)
    assert kinds(steps) == [EventKind.NOT_ENFORCED]
    assert events(steps, EventKind.NOT_ENFORCED)[0].t == pytest.approx(5.0)


# ---- properties: any tick timing, any speeds -----------------------------------------------------

caps = st.sampled_from([0.5, 2.0, 2.1, 2.5, 3.0, 5.5])
graces = st.sampled_from([1.0, 2.5, 5.0, 7.3, 20.0])
tolerances = st.sampled_from([0.0, 0.3, 0.45, 1.0])
gaps = st.floats(0.001, 2.0, allow_nan=False)  # seconds between ticks, late or early
# a clock that has run for up to a year: large monotonic readings lose float precision
clock_starts = st.floats(0.0, 3.2e7, allow_nan=False)
states = st.sampled_from([RUNNING, PAUSED, IDLE])


@settings(max_examples=200, deadline=None)
@given(
    cap=caps,
    tolerance=tolerances,
    t0=clock_starts,
    ticks_=st.lists(st.tuples(gaps, st.floats(0.0, 1.0), states), min_size=1, max_size=200),
)
def test_a_mean_never_above_the_line_never_warns(cap, tolerance, t0, ticks_):
    guard = make_guard(tolerance_kmh=tolerance, without_session="stop")
    t = t0
    for gap, share, state in ticks_:
        t += gap
        in_force = CAP if state is IDLE else cap  # no session: the start cap
        mean = (in_force + tolerance) * share  # at most the line itself
        actions = guard.step(t, belt(mean, state=state, cap=None if state is IDLE else cap))
        assert actions == Actions()
        assert guard.decision.verdict is Verdict.OK


@dataclass
class Tick:
    """One guard step of a walk, as the test saw it."""

    t: float
    kinds: list[EventKind]
    mean: float | None
    limit: Limit | None
    over: bool  # judged over the limit at this tick
    relay_at_judge: RelayState
    relay: RelayState  # after the step
    verdict: Verdict
    budget_s: float
    deadline: float | None


# A walker's ticks: a gap, the 3 s mean (None: unknown), whether the mode is backward, and
# whether the walker resumes a paused session at it.
speeds = st.one_of(st.none(), st.floats(0.0, 8.0, allow_nan=False))
ticks_of_a_walk = st.lists(
    st.tuples(gaps, speeds, st.booleans(), st.booleans()), min_size=1, max_size=120
)


def play_walk(guard: Guard, t0: float, walk_: list, *, cap: float, wake: bool) -> list[Tick]:
    """Step the guard as the controller would (an enforced stop pauses the session and restarts
    its segment at the start cap; `wake`: the daemon also wakes at the next deadline). Then
    hold the last speed for the grace and a bit, and stand the belt for 1.5 s, so every
    warning has had its chance to end."""
    grace = guard.config.backward.grace_s
    start_cap = guard.config.backward.start_cap_kmh
    state, session_cap = RUNNING, cap
    t, last_mean = t0, None
    tail = [(0.1, "last", True, False)] * (int(grace * 10) + 5) + [(0.1, 0.0, True, False)] * 15
    played = []
    for gap, mean, backward, resume in [*walk_, *tail]:
        if mean == "last":
            mean = last_mean
        last_mean = mean
        due = guard.next_deadline()
        t = min(t + gap, due) if wake and due is not None and due > t else t + gap
        if state is PAUSED and resume:
            state = RUNNING
        mode = Mode.BACKWARD if backward else Mode.FORWARD
        relay_before = guard.relay
        actions = guard.step(t, belt(mean, state=state, mode=mode, cap=session_cap))
        said = [e.kind for e in actions.events]
        stopped = EventKind.ENFORCED_STOP in said
        relay_at_judge = RelayState.CLOSED if actions.relay is not None else relay_before
        if actions.pause:
            state = PAUSED
        if actions.belt_cut:
            session_cap = start_cap
        played.append(
            Tick(
                t=t,
                kinds=said,
                mean=mean,
                limit=guard.limit,
                over=stopped or guard.decision.over,
                relay_at_judge=relay_at_judge,
                relay=guard.relay,
                verdict=guard.decision.verdict,
                budget_s=guard.watch.budget_s,
                deadline=guard.next_deadline(),
            )
        )
    return played


walks = {
    "action": st.sampled_from(["relay", "none"]),
    "mode": st.sampled_from(["pulse", "latch"]),
    "grace": graces,
    "cap": caps,
    "t0": clock_starts,
    "walk_": ticks_of_a_walk,
    "wake": st.booleans(),
}


def episodes(played: list[Tick]) -> list[list[Tick]]:
    """The ticks from each overspeed_warning up to the next one."""
    found: list[list[Tick]] = []
    for tick in played:
        if EventKind.OVERSPEED_WARNING in tick.kinds:
            found.append([])
        if found:
            found[-1].append(tick)
    return found


@settings(max_examples=150, deadline=None)
@given(**walks)
def test_a_warning_always_clears_or_is_enforced_and_never_twice(
    action, mode, grace, cap, t0, walk_, wake
):
    guard = make_guard(action=action, mode=mode, grace_s=grace)
    for episode in episodes(play_walk(guard, t0, walk_, cap=cap, wake=wake)):
        said = [kind for tick in episode for kind in tick.kinds]
        enforced = sum(said.count(kind) for kind in ENFORCING)
        cleared = said.count(EventKind.OVERSPEED_CLEARED)
        assert said.count(EventKind.OVERSPEED_WARNING) == 1
        assert enforced <= 1 and cleared <= 1
        if action == "relay":
            assert enforced + cleared == 1  # a stop ends the warning; nothing clears it after
        else:
            assert cleared == 1  # a new warning only after this one cleared
            if enforced:
                assert said.index(EventKind.NOT_ENFORCED) < said.index(EventKind.OVERSPEED_CLEARED)


@settings(max_examples=150, deadline=None)
@given(**walks)
def test_enforcement_comes_at_the_first_tick_once_the_budget_is_spent_never_before(
    action, mode, grace, cap, t0, walk_, wake
):
    # The budget, kept by the test from what each tick judged: time over drains it, time not
    # over refills it at 1/30 s per s up to the ceiling (the limit's grace: the short one
    # after a stop). The guard must enforce exactly when it is spent while over.
    guard = make_guard(action=action, mode=mode, grace_s=grace)
    budget, ceiling, over_before, t_before = grace, grace, False, None
    enforced_in_warning = False
    for tick in play_walk(guard, t0, walk_, cap=cap, wake=wake):
        if tick.relay_at_judge is RelayState.CLOSED:
            line_over = tick.limit is not None and (
                tick.mean is None or tick.mean > tick.limit.cap_kmh + tick.limit.tolerance_kmh
            )
            assert tick.over == line_over
        if t_before is not None and tick.t > t_before:
            dt = tick.t - t_before
            budget = max(0.0, budget - dt) if over_before else min(ceiling, budget + dt / 30)
        if tick.limit is not None:
            ceiling = tick.limit.grace_s
        budget = min(budget, ceiling)
        if EventKind.OVERSPEED_WARNING in tick.kinds or EventKind.OVERSPEED_CLEARED in tick.kinds:
            enforced_in_warning = False
        enforces = any(kind in ENFORCING for kind in tick.kinds)
        assert enforces == (tick.over and budget <= 1e-6 and not enforced_in_warning), tick
        enforced_in_warning = enforced_in_warning or enforces
        stopped = EventKind.ENFORCED_STOP in tick.kinds
        if stopped:
            ceiling = min(grace, RESTART_GRACE_S)
        assert tick.budget_s == pytest.approx(budget, abs=1e-6)
        over_before, t_before = tick.over and not stopped, tick.t


@settings(max_examples=150, deadline=None)
@given(**walks)
def test_next_deadline_is_the_budgets_end_or_the_pulses(action, mode, grace, cap, t0, walk_, wake):
    guard = make_guard(action=action, mode=mode, grace_s=grace)
    pulse_ends = None
    for tick in play_walk(guard, t0, walk_, cap=cap, wake=wake):
        if EventKind.ENFORCED_STOP in tick.kinds and mode == "pulse":
            pulse_ends = tick.t + guard.config.enforce.pulse_s
        if tick.relay is RelayState.CLOSED or EventKind.STOP_HELD in tick.kinds:
            pulse_ends = None  # closed, or held open: the speed was still unknown
        due = [pulse_ends] if pulse_ends is not None else []
        if tick.verdict is Verdict.WARNING and tick.over:
            due.append(tick.t + tick.budget_s)  # the budget's end, if the belt stays over
        if due:
            assert tick.deadline == pytest.approx(min(due), abs=1e-6)
        else:
            assert tick.deadline is None


@settings(max_examples=300, deadline=None)
@given(
    grace=graces,
    t0=clock_starts,
    first_gap=gaps,
    under_s=st.floats(0.0, 60.0),
    mean=st.one_of(st.none(), st.floats(2.31, 8.0)),
    state=states,
)
def test_a_tick_woken_at_the_deadline_enforces(grace, t0, first_gap, under_s, mean, state):
    # The daemon sleeps until next_deadline() and ticks then; float sums must not leave that
    # tick a hair short of the budget, whatever the budget remembers.
    guard = make_guard(grace_s=grace, without_session="stop")
    told = {"state": state, "sensor": TRUSTED if mean is not None else SERIAL_GONE}
    guard.step(t0, belt(mean, **told))
    t = t0 + min(first_gap, grace / 2)
    guard.step(t, belt(mean, **told))
    guard.step(t + 0.01, belt(SLOW, state=state))
    guard.step(t + 0.01 + under_s, belt(mean, **told))
    deadline = guard.next_deadline()
    assert deadline is not None
    woken = guard.step(deadline, belt(mean, **told))
    assert [e.kind for e in woken.events] == [EventKind.ENFORCED_STOP]
