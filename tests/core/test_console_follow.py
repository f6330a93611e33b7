"""[session] follow_console: the console's own workout starts, pauses and ends the session
(device/core/console.py `followed`), every transition of it; a start it asks for while the
belt's speed is not known yet waits up to stale_s for the speed (`ConsoleFollower`) rather
than being refused for good; then through the Controller with a console as the speed source:
a member pressing Go on the console with the belt fast in backward mode is refused by the
start gate like START would be, and START still works.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from support.ticking import TICK_S, tick_time

from device.config.load import config_from_mapping
from device.core.console import ConsoleFollower, ConsoleState, followed
from device.core.controller import Controller
from device.core.events import EventKind
from device.core.modes import EndReason, SessionState
from device.core.session import SessionAction

S = ConsoleState
# The console at rest: after a workout (IN_USE or PAUSED) it ends the session.
RESTING = {S.READY, S.IDLE, S.FINISHED}
# Where the session is: (in_session, running); running without a session cannot be.
SESSIONS = [(False, False), (True, False), (True, True)]


def expected(before: S | None, now: S, in_session: bool, running: bool) -> SessionAction | None:
    """The rule as the docs say it: InUse starts a session (or resumes a paused one), Paused
    pauses a running one, Finished or back at rest after a workout ends one; a state that
    did not change, and every other state, does nothing."""
    if now is before:
        return None
    if now is S.IN_USE:
        return SessionAction.START if not in_session else None if running else SessionAction.RESUME
    if now is S.PAUSED:
        return SessionAction.PAUSE if running else None
    if now in RESTING and in_session and before in (S.IN_USE, S.PAUSED):
        return SessionAction.END
    return None


@pytest.mark.parametrize(
    ("before", "now", "session"), list(itertools.product([None, *S], list(S), SESSIONS))
)
def test_every_console_transition_asks_for_the_session_step_the_rule_says(before, now, session):
    in_session, running = session
    got = followed(before, now, in_session=in_session, running=running)
    assert got is expected(before, now, in_session, running)


@pytest.mark.parametrize(
    ("before", "now", "in_session", "running", "action"),
    [
        (S.READY, S.IN_USE, False, False, SessionAction.START),  # Go on the console
        (None, S.IN_USE, False, False, SessionAction.START),  # first seen mid-workout
        (S.IN_USE, S.PAUSED, True, True, SessionAction.PAUSE),
        (S.PAUSED, S.IN_USE, True, False, SessionAction.RESUME),
        (S.IN_USE, S.FINISHED, True, True, SessionAction.END),
        (S.PAUSED, S.READY, True, False, SessionAction.END),  # reset while paused
        (S.IN_USE, S.IDLE, True, True, SessionAction.END),
        (S.IN_USE, S.IN_USE, True, True, None),  # each poll says it again: nothing
        (S.PAUSED, S.IN_USE, True, True, None),  # START resumed it first
        (S.HAVE_ID, S.FINISHED, True, True, None),  # never in a workout: a START session
        (S.READY, S.IDLE, True, True, None),  # ... is not ended by a console at rest
        (None, S.FINISHED, True, True, None),  # first seen finished: nothing to end
        (S.IN_USE, S.OFFLINE, True, True, None),  # unreachable is not an end
        (S.IN_USE, S.ERROR, True, True, None),
        (S.IN_USE, S.MANUAL, True, True, None),
        (S.IN_USE, S.PAUSED, True, False, None),  # already paused by START
    ],
)
def test_the_steps_a_member_takes_on_the_console(before, now, in_session, running, action):
    assert followed(before, now, in_session=in_session, running=running) is action


# ---- a start that waits for the speed ------------------------------------------------------------

WAIT_S = 2.0  # [sensor] stale_s, the default


def heard(follower: ConsoleFollower, t: float, state: S, *, known: bool, **session: Any):
    """The step `follower` takes for the console's change to `state` at t, in a session
    given as in_session/running (none by default), the belt's speed known or not."""
    where = {"in_session": False, "running": False, **session}
    return follower.changed(t, state, follow=True, speed_known=known, **where)


@pytest.mark.parametrize(
    ("before", "session", "action"),
    [
        (S.READY, {}, SessionAction.START),
        (S.PAUSED, {"in_session": True}, SessionAction.RESUME),
    ],
)
def test_a_start_asked_while_the_speed_is_unknown_waits_for_the_speed(before, session, action):
    follower = ConsoleFollower()
    heard(follower, 0.0, before, known=True, **session)
    assert heard(follower, 1.0, S.IN_USE, known=False, **session) is None
    assert follower.state is S.IN_USE
    assert follower.due(1.5, speed_known=False, wait_s=WAIT_S) is None
    assert follower.due(1.6, speed_known=True, wait_s=WAIT_S) is action  # the speed came
    assert follower.due(1.7, speed_known=True, wait_s=WAIT_S) is None  # once


def test_a_start_waits_no_longer_than_stale_s_then_the_start_gate_says_why_not():
    follower = ConsoleFollower()
    assert heard(follower, 1.0, S.IN_USE, known=False) is None
    assert follower.due(1.0 + WAIT_S - 0.1, speed_known=False, wait_s=WAIT_S) is None
    assert follower.due(1.0 + WAIT_S, speed_known=False, wait_s=WAIT_S) is SessionAction.START
    assert follower.due(10.0, speed_known=True, wait_s=WAIT_S) is None


def test_a_start_with_the_speed_known_goes_at_once_and_nothing_waits():
    follower = ConsoleFollower()
    assert heard(follower, 1.0, S.IN_USE, known=True) is SessionAction.START
    assert follower.due(1.1, speed_known=True, wait_s=WAIT_S) is None


@pytest.mark.parametrize("then", [S.PAUSED, S.FINISHED, S.READY, S.OFFLINE])
def test_the_console_moving_on_drops_a_start_still_waiting(then):
    follower = ConsoleFollower()
    heard(follower, 1.0, S.IN_USE, known=False)
    heard(follower, 1.5, then, known=False)
    assert follower.due(1.6, speed_known=True, wait_s=WAIT_S) is None
    assert follower.due(10.0, speed_known=False, wait_s=WAIT_S) is None


@pytest.mark.parametrize(
    ("before", "now", "session", "action"),
    [
        (S.IN_USE, S.PAUSED, {"in_session": True, "running": True}, SessionAction.PAUSE),
        (S.IN_USE, S.FINISHED, {"in_session": True, "running": True}, SessionAction.END),
    ],
)
def test_a_pause_or_an_end_does_not_wait_for_the_speed(before, now, session, action):
    follower = ConsoleFollower()
    heard(follower, 0.0, before, known=True, **session)
    assert heard(follower, 1.0, now, known=False, **session) is action


def test_without_follow_console_nothing_is_asked_or_waits():
    follower = ConsoleFollower()
    assert (
        follower.changed(
            1.0, S.IN_USE, follow=False, in_session=False, running=False, speed_known=False
        )
        is None
    )
    assert follower.state is S.IN_USE
    assert follower.due(1.1, speed_known=True, wait_s=WAIT_S) is None


# ---- through the Controller ---------------------------------------------------------------------

CONSOLE = {"kind": "csafe", "url": "loop://"}
POLL_S = 0.2  # the link polls the console at 5 Hz


class ConsoleTreadmill:
    """A console-only treadmill (no hall sensor) in virtual time: the console reports the
    speed it is set to every POLL_S, the device ticks at 10 Hz."""

    def __init__(self, **session: Any):
        config = config_from_mapping({"sensor": CONSOLE, "session": session})
        self.device = Controller(config, t=0.0)
        self.kmh = 0.0
        self.reads = True  # the console's answers carry its speed
        self.ticks = 0
        self.events: list = []

    @property
    def now(self) -> float:
        return tick_time(self.ticks - 1) if self.ticks else 0.0

    def run(self, seconds: float) -> None:
        for _ in range(round(seconds / TICK_S)):
            t = tick_time(self.ticks)
            if self.reads and self.ticks % round(POLL_S / TICK_S) == 0:
                self.device.speed_reading(t, self.kmh)
            self.events += self.device.tick(t).events
            self.ticks += 1

    def console(self, state: ConsoleState) -> None:
        self.device.console_changed(self.now, state)
        self.run(TICK_S)

    def press_start(self, hold: float = 0.2) -> None:
        self.device.start_down(self.now)
        self.run(hold)
        self.device.start_up(self.now)
        self.run(TICK_S)

    def said(self, kind: EventKind) -> list[dict[str, Any]]:
        return [e.details for e in self.events if e.kind is kind]

    @property
    def state(self) -> SessionState:
        return self.device.session.state


def walking(kmh: float, **session: Any) -> ConsoleTreadmill:
    mill = ConsoleTreadmill(follow_console=True, **session)
    mill.kmh = kmh
    mill.run(5.0)
    return mill


def test_go_on_the_console_starts_a_backward_session_at_a_walking_pace():
    mill = walking(1.5)
    mill.console(S.IN_USE)
    assert mill.state is SessionState.RUNNING
    (started,) = mill.said(EventKind.SESSION_STARTED)
    assert (started["mode"], started["reason"]) == ("backward", "console")
    assert mill.said(EventKind.CONSOLE_STATE) == [{"state": "in use"}]


def test_go_on_the_console_with_the_belt_fast_backward_is_refused_by_the_start_gate():
    mill = walking(4.0)
    mill.console(S.IN_USE)
    assert mill.state is SessionState.IDLE
    (refused,) = mill.said(EventKind.START_REFUSED)
    assert refused["speed_kmh"] == pytest.approx(4.0) and refused["limit_kmh"] == 2.3
    assert "4.0 km/h" in refused["reason"]
    # the refused start's cap holds, and the 5 s at 4 km/h before Go (warned of only: no
    # session) spent the budget: the relay stops the belt at once
    (stop,) = [e for e in mill.events if e.kind is EventKind.ENFORCED_STOP]
    assert stop.details["scope"] == "refused"
    (refused_at,) = [e.t for e in mill.events if e.kind is EventKind.START_REFUSED]
    assert stop.t - refused_at <= TICK_S


def test_start_still_works_beside_the_console_it_follows():
    mill = walking(4.0)
    mill.console(S.IN_USE)  # refused at 4 km/h
    mill.kmh = 1.5  # the walker slows the belt on the console
    mill.run(4.0)
    mill.press_start()  # the console says IN_USE again only on a change: START it is
    assert mill.state is SessionState.RUNNING
    (started,) = mill.said(EventKind.SESSION_STARTED)
    assert started["reason"] == "button"
    mill.press_start()  # and pauses it, with the console still in use
    assert mill.state is SessionState.PAUSED


def test_the_consoles_pause_resume_and_finish_pause_resume_and_end_the_session():
    mill = walking(1.5)
    mill.console(S.IN_USE)
    mill.run(10.0)
    mill.console(S.PAUSED)
    assert mill.state is SessionState.PAUSED
    mill.console(S.IN_USE)
    assert mill.state is SessionState.RUNNING
    mill.run(10.0)
    mill.console(S.FINISHED)
    assert mill.state is SessionState.IDLE
    assert [e["reason"] for e in mill.said(EventKind.SESSION_PAUSED)] == ["console"]
    assert [e["reason"] for e in mill.said(EventKind.SESSION_RESUMED)] == ["console"]
    (ended,) = mill.said(EventKind.SESSION_ENDED)
    assert ended["reason"] == EndReason.CONSOLE == "console"


def test_resuming_on_the_console_with_the_belt_fast_backward_is_refused():
    mill = walking(1.5)
    mill.console(S.IN_USE)
    mill.console(S.PAUSED)
    mill.kmh = 4.0
    mill.run(4.0)
    mill.console(S.IN_USE)
    assert mill.state is SessionState.PAUSED
    assert len(mill.said(EventKind.START_REFUSED)) == 1


def test_a_console_at_rest_does_not_end_a_session_started_with_start():
    mill = walking(1.5)
    mill.press_start()
    for state in (S.IDLE, S.HAVE_ID, S.READY, S.FINISHED):
        mill.console(state)
    assert mill.state is SessionState.RUNNING


def test_without_follow_console_the_state_is_only_said():
    mill = ConsoleTreadmill()
    mill.kmh = 1.5
    mill.run(5.0)
    for state in (S.IN_USE, S.PAUSED, S.FINISHED):
        mill.console(state)
    assert mill.state is SessionState.IDLE and mill.said(EventKind.SESSION_STARTED) == []
    assert [e["state"] for e in mill.said(EventKind.CONSOLE_STATE)] == [
        "in use",
        "paused",
        "finished",
    ]
    assert mill.device.status(mill.now)["console"] == {
        "state": "finished",
        "follows": False,
        "speed_answer": None,
    }


def test_go_heard_before_the_consoles_first_speed_starts_the_session_when_the_speed_comes():
    """The link reports a new state before the speed of the same answer (after the cable was
    out, or at start-up): the start waits for the speed instead of being refused."""
    mill = ConsoleTreadmill(follow_console=True)
    mill.kmh = 1.5
    mill.device.console_changed(0.0, S.IN_USE)  # its first answer: the state, then the speed
    mill.run(1.0)
    assert mill.said(EventKind.START_REFUSED) == []
    (started,) = [e for e in mill.events if e.kind is EventKind.SESSION_STARTED]
    assert (started.t, started.details["reason"]) == (0.0, "console")
    assert mill.state is SessionState.RUNNING


def test_go_with_no_speed_coming_is_refused_by_the_start_gate_once_stale_s_is_over():
    mill = ConsoleTreadmill(follow_console=True)
    mill.reads = False  # the console answers with its state alone
    mill.device.console_changed(0.0, S.IN_USE)
    mill.run(5.0)
    assert mill.state is SessionState.IDLE
    (refused,) = [e for e in mill.events if e.kind is EventKind.START_REFUSED]
    assert refused.t == pytest.approx(mill.device.config.sensor.stale_s)
    assert refused.details["speed_kmh"] is None
    assert refused.details["reason"].startswith("The console has sent no speed")


def test_go_then_pause_on_the_console_before_its_speed_came_starts_nothing():
    mill = ConsoleTreadmill(follow_console=True)
    mill.kmh = 1.5
    mill.reads = False
    mill.device.console_changed(0.0, S.IN_USE)
    mill.run(0.5)
    mill.console(S.PAUSED)
    mill.reads = True
    mill.run(5.0)
    assert mill.state is SessionState.IDLE
    assert mill.said(EventKind.SESSION_STARTED) == [] and mill.said(EventKind.START_REFUSED) == []
