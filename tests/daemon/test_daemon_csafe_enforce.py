"""Soft enforcement through a gym console, in the real daemon on mock pins: with [enforce]
soft = "csafe", a backward walker over the cap when the grace runs out gets the console asked
to slow the belt (SetSpeed) before the relay would cut it. The console emulator plays a
console that listens, one that takes the command and leaves the belt running (it is
remembered, across a restart), and one that refuses it."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from support import console_daemon
from support.console_daemon import SEE_WITHIN_S, ConsoleTreadmill, Treadmills, start_backward
from support.waiting import wait_until

from device.core.soft_stop import SOFT_WINDOW_S
from device.sim.console import ConsoleQuirks
from device.sim.console_serve import ConsoleEmulator

runs = console_daemon.runs  # the fixture, here until tests/conftest.py offers it
StartConsole = Callable[..., ConsoleEmulator]

START_CAP_KMH = 2.0  # the built-in backward start cap: a new session's cap
FAST_KMH = 3.5  # what the walker speeds the belt up to, well over the cap + 0.3 tolerance
SOFT = {
    "enforce": {"soft": "csafe", "pulse_s": 1.0},
    "backward": {"grace_s": 1.0},
}
A_DAY_S = 86400.0


def belt_kmh(console: ConsoleEmulator) -> tuple[float, float]:
    """The emulated belt: (its speed now, the speed it was set to)."""
    with console.treadmill_now() as treadmill:
        return treadmill.belt_kmh, treadmill.target_kmh


def walks_backward_too_fast(
    runs: Treadmills, console: ConsoleEmulator
) -> tuple[ConsoleTreadmill, float]:
    """A run of the daemon with soft stops through `console`: a backward session begun at
    1 km/h, then the walker presses the console's speed-up to FAST_KMH (the belt gets there
    at the console's pace). Returns the run and the epoch before the session."""
    mill = runs.start(console, SOFT)
    since = start_backward(mill, console)
    console.set_target_kmh(FAST_KMH)
    return mill, since


def kinds(mill: ConsoleTreadmill, since: float) -> list[str]:
    """The enforcement's events of this run since `since`, in order."""
    wanted = ("overspeed_warning", "slowdown_asked", "slowed", "console_ignores_speed",
              "enforced_stop")  # fmt: skip
    return [kind for kind, _, _ in mill.events(*wanted, since=since)]


@dataclass(frozen=True)
class RelayAfterAsking:
    """How a console that would not slow the belt ended in the relay's stop, from the
    history: the stop's `soft` ("ignored", "refused"), why the console is now marked as
    ignoring SetSpeed, and the seconds from asking it to the stop."""

    soft: str
    why: str
    asked_to_stop_s: float


def relay_after_asking(mill: ConsoleTreadmill, since: float) -> RelayAfterAsking:
    """Once `mill` is stopped: its enforcement since epoch `since` went warning, SetSpeed
    asked, the console marked as ignoring it, the relay's stop, each once."""
    assert kinds(mill, since) == ["overspeed_warning", "slowdown_asked", "console_ignores_speed",
                                  "enforced_stop"]  # fmt: skip
    ((_, asked_t, _),) = mill.events("slowdown_asked")
    ((_, stop_t, stop),) = mill.events("enforced_stop")
    ((_, _, ignores),) = mill.events("console_ignores_speed")
    return RelayAfterAsking(stop["soft"], ignores["why"], stop_t - asked_t)


def test_a_console_that_listens_slows_the_belt_to_the_cap_and_the_relay_stays_closed(
    console_emulator: StartConsole, runs: Treadmills
) -> None:
    console = console_emulator()
    mill, since = walks_backward_too_fast(runs, console)
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
    mill, since = walks_backward_too_fast(runs, console)
    mill.wait_status(lambda s: s["slowing"], what="the console asked to slow")
    stopped = mill.wait_stopped()
    assert stopped["console_ignores_speed"] is True
    assert stopped["console"]["speed_answer"] == "accepted"  # it said yes, and did nothing
    runs.stop(mill)
    relay = relay_after_asking(mill, since)
    assert (relay.soft, relay.why) == ("ignored", "the belt ran on")
    # the relay waited out the console's whole window, and no more than the next tick
    assert SOFT_WINDOW_S <= relay.asked_to_stop_s < SOFT_WINDOW_S + 1.0

    # The next day: the device restarts on the same history (long after that stop, so the
    # restart watch is over) and the next stop goes straight to the relay.
    history_moved_back(runs.db_path, A_DAY_S)
    again, since = walks_backward_too_fast(runs, console)
    assert again.status()["console_ignores_speed"]  # read back from the history at start
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
    mill, since = walks_backward_too_fast(runs, console)
    stopped = mill.wait_stopped()
    assert stopped["console"]["speed_answer"] == "rejected"
    assert stopped["console_ignores_speed"] is True
    assert belt_kmh(console)[1] == 0.0  # the safety key stopped it; SetSpeed never did
    runs.stop(mill)
    relay = relay_after_asking(mill, since)
    assert (relay.soft, relay.why) == ("refused", "it refused SetSpeed")
    assert relay.asked_to_stop_s < SOFT_WINDOW_S  # at the console's answer, not the window's end
