"""The soft stop through the guard (device/core/guard.py): the grace running out asks the
console for the cap instead of the relay where it may, and the relay does what the console
does not (test_soft_stop.py: the soft stop on its own). Ticks come at 10 Hz unless a test
says otherwise.
"""

from __future__ import annotations

from typing import Any

import pytest
from support.soft_stops import (
    CAP,
    CONSOLE,
    FAST,
    GRACE_S,
    MEASURED,
    REPORTED,
    REST_S,
    soft_config,
)
from support.ticking import tick_times

from device.config.load import config_from_mapping
from device.core.console import SpeedAnswer
from device.core.events import EventKind
from device.core.guard import RELEASE_AFTER_S, RESTART_WATCH_S, Actions, Belt, Guard
from device.core.modes import Mode, SessionState
from device.core.overspeed import REFILL_PER_S
from device.core.signals import RelayState
from device.core.soft_stop import (
    SOFT_WINDOW_S,
)

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
