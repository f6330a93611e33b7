"""Soft enforcement through a gym console, in the real daemon on mock pins: with [enforce]
soft = "csafe", a backward walker over the cap when the grace runs out gets the console asked
to slow the belt (SetSpeed) before the relay would cut it. The console emulator plays a
console that listens, one that takes the command and leaves the belt running (it is
remembered, across a restart), and one that refuses it."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from gpiozero.pins.mock import MockFactory
from support.console_daemon import SEE_WITHIN_S, ConsoleTreadmill, Treadmills, start_backward
from support.waiting import wait_until

from device.core.soft_stop import SOFT_WINDOW_S
from device.sim.console import ConsoleQuirks
from device.sim.console_serve import ConsoleEmulator

StartConsole = Callable[..., ConsoleEmulator]

START_CAP_KMH = 2.0  # the built-in backward start cap: a new session's cap
FAST_KMH = 3.5  # what the walker speeds the belt up to, well over the cap + 0.3 tolerance
SOFT = {
    "enforce": {"soft": "csafe", "pulse_s": 1.0},
    "backward": {"grace_s": 1.0},
}
A_DAY_S = 86400.0


@pytest.fixture
def runs(socket_dir: Path, tmp_path: Path, mock_factory: MockFactory) -> Iterator[Treadmills]:
    treadmills = Treadmills(socket_dir, tmp_path, mock_factory)
    try:
        yield treadmills
    finally:
        treadmills.close()


def belt_kmh(console: ConsoleEmulator) -> tuple[float, float]:
    """The emulated belt: (its speed now, the speed it was set to)."""
    with console.treadmill_now() as treadmill:
        return treadmill.belt_kmh, treadmill.target_kmh


def walks_backward_too_fast(mill: ConsoleTreadmill, console: ConsoleEmulator) -> float:
    """A backward session begun at 1 km/h, then the walker presses the console's speed-up
    to FAST_KMH (the belt gets there at the console's pace). Returns the epoch before."""
    since = start_backward(mill, console)
    console.set_target_kmh(FAST_KMH)
    return since


def kinds(mill: ConsoleTreadmill, since: float) -> list[str]:
    """The enforcement's events of this run since `since`, in order."""
    wanted = ("overspeed_warning", "slowdown_asked", "slowed", "console_ignores_speed",
              "enforced_stop")  # fmt: skip
    return [kind for kind, _, _ in mill.events(*wanted, since=since)]


def test_a_console_that_listens_slows_the_belt_to_the_cap_and_the_relay_stays_closed(
    console_emulator: StartConsole, runs: Treadmills
) -> None:
    console = console_emulator()
    mill = runs.start(console, SOFT)
    since = walks_backward_too_fast(mill, console)
    asking = mill.statuses_until(lambda s: s["slowing"], what="the console asked to slow")
    assert any(s["warning"] and s["warning"]["reason"] == "over the cap" for s in asking)
    # the console takes SetSpeed: the belt comes down to the cap at its own pace
    seen = mill.statuses_until(lambda s: s["speed_kmh"] == START_CAP_KMH and not s["slowing"],
                               what="the belt at the cap")  # fmt: skip
    assert belt_kmh(console)[1] == START_CAP_KMH  # SetSpeed to the cap, taken
    wait_until(lambda: belt_kmh(console)[0] == START_CAP_KMH, within_s=SEE_WITHIN_S,
               what="the belt at the cap")  # fmt: skip
    assert seen[-1]["console"]["speed_answer"] == "accepted"
    assert seen[-1]["state"] == "running"  # the walk goes on, at the cap
    # the warning ends once the 3 s mean is under the line; the relay never opened
    seen += mill.statuses_until(lambda s: s["warning"] is None, what="the warning over")
    assert not any(s["relay_pin_open"] or s["relay"] == "open" for s in asking + seen)
    runs.stop(mill)  # the history is all written
    assert kinds(mill, since) == ["overspeed_warning", "slowdown_asked", "slowed"]
    ((_, _, asked),) = mill.events("slowdown_asked")
    ((_, _, slowed),) = mill.events("slowed")
    assert asked["cap_kmh"] == slowed["cap_kmh"] == START_CAP_KMH
    assert slowed["after_s"] <= SOFT_WINDOW_S
    assert mill.key.pulled == 0


def test_a_console_that_ignores_set_speed_gets_the_relay_and_is_remembered_after_a_restart(
    console_emulator: StartConsole, runs: Treadmills
) -> None:
    console = console_emulator(quirks=ConsoleQuirks(ignores_set_speed=True))
    mill = runs.start(console, SOFT)
    since = walks_backward_too_fast(mill, console)
    mill.wait_status(lambda s: s["slowing"], what="the console asked to slow")
    stopped = mill.wait_stopped()
    assert stopped["console_ignores_speed"] is True
    assert stopped["console"]["speed_answer"] == "accepted"  # it said yes, and did nothing
    runs.stop(mill)
    assert kinds(mill, since) == ["overspeed_warning", "slowdown_asked", "console_ignores_speed",
                                  "enforced_stop"]  # fmt: skip
    ((_, asked_t, _),) = mill.events("slowdown_asked")
    ((_, stop_t, stop),) = mill.events("enforced_stop")
    ((_, _, ignores),) = mill.events("console_ignores_speed")
    assert stop["soft"] == "ignored" and ignores["why"] == "the belt ran on"
    # the relay waited out the console's whole window, and no more than the next tick
    assert SOFT_WINDOW_S <= stop_t - asked_t < SOFT_WINDOW_S + 1.0

    # The next day: the device restarts on the same history (long after that stop, so the
    # restart watch is over) and the next stop goes straight to the relay.
    history_moved_back(runs.db_path, A_DAY_S)
    again = runs.start(console, SOFT)
    assert again.wait_status(lambda s: s["speed_kmh"] is not None, what="a speed")[
        "console_ignores_speed"
    ]
    since = walks_backward_too_fast(again, console)
    again.wait_stopped()
    runs.stop(again)
    assert kinds(again, since) == ["overspeed_warning", "enforced_stop"]
    ((_, _, stop),) = again.events("enforced_stop")
    assert "soft" not in stop and stop["scope"] == "session"


def history_moved_back(db_path: Path, seconds: float) -> None:
    """Every time in the history file `seconds` earlier, as if it had all happened then."""
    db = sqlite3.connect(db_path)
    try:
        with db:
            db.execute("UPDATE events SET t = t - ?", (seconds,))
            db.execute("UPDATE samples SET t = t - ?", (seconds,))
            db.execute(
                "UPDATE sessions SET started_at = started_at - ?, ended_at = ended_at - ?, "
                "last_sample_at = last_sample_at - ?",
                (seconds, seconds, seconds),
            )
            db.execute(
                "UPDATE segments SET started_at = started_at - ?, ended_at = ended_at - ?",
                (seconds, seconds),
            )
    finally:
        db.close()


def test_a_console_that_refuses_set_speed_gets_the_relay_at_its_answer(
    console_emulator: StartConsole, runs: Treadmills
) -> None:
    console = console_emulator(quirks=ConsoleQuirks(rejects_set_speed=True))
    mill = runs.start(console, SOFT)
    since = walks_backward_too_fast(mill, console)
    stopped = mill.wait_stopped()
    assert stopped["console"]["speed_answer"] == "rejected"
    assert stopped["console_ignores_speed"] is True
    assert belt_kmh(console)[1] == 0.0  # the safety key stopped it; SetSpeed never did
    runs.stop(mill)
    assert kinds(mill, since) == ["overspeed_warning", "slowdown_asked", "console_ignores_speed",
                                  "enforced_stop"]  # fmt: skip
    ((_, asked_t, _),) = mill.events("slowdown_asked")
    ((_, stop_t, stop),) = mill.events("enforced_stop")
    assert stop["soft"] == "refused"
    assert mill.events("console_ignores_speed")[0][2]["why"] == "it refused SetSpeed"
    assert stop_t - asked_t < SOFT_WINDOW_S  # at the console's answer, not the window's end
