"""Gym treadmills with a CSAFE console, one story each in tests/scenarios/csafe_*.toml, run
through the real `retrotread simulate FILE --trace` and judged on the simulated belt's truth
(tests/support/invariant.py): its true speed (belt_kmh) and distance (belt_m) at every tick,
beside what the device believed and, in the `console_kmh` column, what the console said.

The simulated console (device/sim/simulate.py) is polled at 5 Hz and reports the speed it is
set to, not the belt's: a belt that is still getting there is already at its new speed in the
console's word. It honours, ignores or refuses SetSpeed, its answer comes with the next poll,
and it can be unplugged. With [enforce] soft = "csafe" the grace running out sends it
SetSpeed to the cap first, if the belt can be under the line within SOFT_WINDOW_S (2 s) at
2 km/h per s measured by a hall sensor, at 1 km/h per s on the console's word (which is
believed under the line only that long after the ask); else the relay at once. The relay
follows within the window if the belt has not come down, at once if the console refuses.
"""

from __future__ import annotations

import functools
import json
from typing import Any

import pytest
from support.invariant import RUN_SLACK_S, Judgement, true_means_kmh
from support.scenarios import SCENARIOS, cli, events, outputs, status_at, story, the
from support.story_runs import judge_report, run_story

from device.config.load import config_from_mapping
from device.core.soft_stop import REPORTED_SLOWING_KMH_PER_S, SOFT_WINDOW_S, SPED_UP_FOR_S
from device.sim.scenario import load_scenario
from device.sim.simulate import ANSWER_AFTER_S, CONSOLE_EVERY_S, simulate_main

GRACE_S = 5.0  # the built-in grace
CAP, LINE = 2.0, 2.3  # the built-in start cap, and + the 0.3 km/h tolerance
TICK_S = 0.1
STORIES = sorted(path.stem for path in SCENARIOS.glob("csafe_*.toml"))
# What every trace row had before consoles were simulated: a story without one keeps it.
TRACE_KEYS = {"t", "belt_kmh", "belt_m", "speed_kmh", "mode", "state", "cap_kmh", "relay", "sensor"}


@functools.cache
def judged(name: str) -> Judgement:
    scenario = load_scenario(str(SCENARIOS / f"{name}.toml"))
    return judge_report(scenario, config_from_mapping(scenario.config), story(name))


def rows(name: str, start: float = 0.0, end: float = 1e9) -> list[dict[str, Any]]:
    """The trace rows from `start` up to, not including, `end`."""
    return [row for row in story(name)["trace"] if start - 1e-6 <= row["t"] < end - 1e-6]


def at(name: str, t: float) -> dict[str, Any]:
    (row,) = [row for row in story(name)["trace"] if row["t"] == pytest.approx(t)]
    return row


# ---- every console story ------------------------------------------------------------------------


def test_there_are_console_stories():
    assert len(STORIES) >= 8, STORIES


@pytest.mark.parametrize("name", STORIES)
def test_every_console_story_keeps_the_invariant_on_the_truth(name):
    judgement = judged(name)
    assert judgement.holds, judgement.breaches()
    running_while_open = [
        row["t"] for row in rows(name) if row["relay"] == "open" and row["belt_kmh"]
    ]
    assert running_while_open == []
    assert all("console_kmh" in row for row in rows(name))


def test_a_story_without_a_console_has_the_trace_it_always_had():
    done = cli(str(SCENARIOS / "beginner_backward_start.toml"), "--trace")
    trace = json.loads(done.stdout)["trace"]
    assert {frozenset(row) for row in trace} == {frozenset(TRACE_KEYS)}


# ---- a console-only treadmill --------------------------------------------------------------------


def test_a_console_only_treadmill_walks_a_beginners_session_on_the_consoles_word():
    name = "csafe_console_only_beginner"
    rep = story(name)
    assert events(rep, "console_state") == [{"t": 0.0, "kind": "console_state", "state": "ready"}]
    started, ended = the(rep, "session_started"), the(rep, "session_ended")
    assert (started["t"], started["mode"], ended["t"], ended["reason"]) == (
        5.2,
        "backward",
        184.0,
        "button",
    )
    for kind in ("sensor_lost", "overspeed_warning", "enforced_stop", "start_refused"):
        assert events(rep, kind) == []
    assert {row["sensor"] for row in rows(name)} == {"ok"}
    # the console's word is the speed it is set to: the display has the new speed within a
    # poll, while the belt is still getting there at 1.5 km/h per second
    assert at(name, 60.0)["speed_kmh"] == 1.0
    assert at(name, 60.0 + CONSOLE_EVERY_S)["speed_kmh"] == 1.8
    assert at(name, 60.0 + CONSOLE_EVERY_S)["belt_kmh"] == pytest.approx(1.3)
    # the session's distance, from the console's speeds, is the belt's within a poll a change
    (session,) = rep["sessions"]
    walked_m = at(name, 184.0)["belt_m"] - at(name, 5.2)["belt_m"]
    assert session["distance_m"] == pytest.approx(walked_m, rel=0.01)


# ---- the soft stop ----------------------------------------------------------------------------


def test_a_console_that_honours_setspeed_slows_the_belt_and_the_session_walks_on():
    name = "csafe_soft_stop_honoured"
    rep = story(name)
    warning, asked, slowed = (
        the(rep, k) for k in ("overspeed_warning", "slowdown_asked", "slowed")
    )
    assert asked["t"] == pytest.approx(warning["t"] + GRACE_S, abs=TICK_S)
    assert (asked["cap_kmh"], asked["within_s"]) == (CAP, SOFT_WINDOW_S)
    assert [(o["t"], o["state"]) for o in rep["outputs"] if o["name"] == "console_speed"] == [
        (asked["t"], CAP)
    ]
    assert asked["t"] < slowed["t"] <= asked["t"] + SOFT_WINDOW_S
    # on the truth: the belt (measured by the hall sensor) is under the line when the device
    # says so, and at the cap a second later
    assert at(name, slowed["t"])["belt_kmh"] <= LINE
    assert {row["belt_kmh"] for row in rows(name, slowed["t"] + 1.0)} == {CAP}
    # no relay, no pause: the session keeps running, and the warning clears at the cap
    assert outputs(rep, "relay") == [] and events(rep, "enforced_stop") == []
    assert {row["state"] for row in rows(name, 5.3)} == {"running"}
    assert the(rep, "overspeed_cleared")["t"] > slowed["t"]
    assert status_at(name, 37.5)["slowing"] is True
    assert status_at(name, 40.0)["slowing"] is False
    # the bound it is judged by: the grace, the console's 2 s, 1 s pushed back up, the slack
    (run,) = judged(name).runs
    assert run.allowed_s == GRACE_S + SOFT_WINDOW_S + SPED_UP_FOR_S + RUN_SLACK_S == 9.5
    assert run.seconds <= GRACE_S + SOFT_WINDOW_S  # it used less than the window


def test_a_console_that_ignores_setspeed_is_stopped_by_the_relay_2_s_later_and_remembered():
    name = "csafe_soft_stop_ignored"
    rep = story(name)
    warning = events(rep, "overspeed_warning")[0]
    asked, ignores = the(rep, "slowdown_asked"), the(rep, "console_ignores_speed")
    stop = events(rep, "enforced_stop")[0]
    assert stop["t"] == pytest.approx(asked["t"] + SOFT_WINDOW_S, abs=TICK_S)
    assert stop["t"] - warning["t"] <= GRACE_S + SOFT_WINDOW_S + TICK_S
    assert (stop["soft"], ignores["t"], ignores["why"]) == ("ignored", stop["t"], "the belt ran on")
    # the console took the command, and the belt truly ran on at 3.5 km/h until the relay
    assert {row["belt_kmh"] for row in rows(name, asked["t"], stop["t"])} == {3.5}
    assert at(name, stop["t"])["belt_kmh"] == 0.0
    assert status_at(name, 60.0)["console_ignores_speed"] is True


def test_after_a_console_ignored_setspeed_later_stops_go_straight_to_the_relay():
    rep = story("csafe_soft_stop_ignored")
    _, second = events(rep, "overspeed_warning")
    stops = events(rep, "enforced_stop")
    assert len(stops) == 2 and "soft" not in stops[1]
    assert stops[1]["t"] == pytest.approx(second["t"] + second["grace_s"], abs=TICK_S)
    assert len(events(rep, "slowdown_asked")) == 1  # the one before the console was known
    assert [o["t"] for o in rep["outputs"] if o["name"] == "console_speed"] == [36.5]


def test_a_console_that_refuses_setspeed_is_stopped_when_the_refusal_comes_back():
    rep = story("csafe_soft_stop_rejected")
    asked, stop = the(rep, "slowdown_asked"), the(rep, "enforced_stop")
    assert stop["t"] == pytest.approx(asked["t"] + ANSWER_AFTER_S, abs=TICK_S)
    assert stop["t"] < asked["t"] + SOFT_WINDOW_S  # not the whole window
    assert stop["soft"] == "refused"
    assert the(rep, "console_ignores_speed") == {
        "t": stop["t"],
        "kind": "console_ignores_speed",
        "why": "it refused SetSpeed",
    }
    assert status_at("csafe_soft_stop_rejected", 50.0)["console"]["speed_answer"] == "rejected"


def test_a_console_only_treadmill_is_asked_near_the_line_and_relayed_far_over_it():
    name = "csafe_console_only_soft_stop"
    rep = story(name)
    (asked,), (slowed,) = events(rep, "slowdown_asked"), events(rep, "slowed")
    # 3.0 km/h: (3.0 - 2.3) / 1 km/h per s = 0.7 s from the line, within the window
    assert (asked["speed_kmh"], asked["cap_kmh"]) == (3.0, CAP)
    assert slowed["after_s"] == pytest.approx((3.0 - LINE) / REPORTED_SLOWING_KMH_PER_S)
    # the console says the cap at once; the device believes it only when the belt can be
    # there, and by then it is, on the truth
    said = [row["t"] for row in rows(name, asked["t"], slowed["t"]) if row["speed_kmh"] == CAP]
    assert said and said[0] < slowed["t"]
    assert at(name, slowed["t"])["belt_kmh"] <= LINE
    # 6.0 km/h under a 2.3 km/h cap: 3.4 s from its line, too far: the relay, no SetSpeed
    stop = the(rep, "enforced_stop")
    second = events(rep, "overspeed_warning")[1]
    assert stop["t"] == pytest.approx(second["t"] + GRACE_S, abs=TICK_S) and "soft" not in stop
    assert (stop["speed_kmh"], stop["cap_kmh"]) == (6.0, 2.3)
    assert [o["t"] for o in rep["outputs"] if o["name"] == "console_speed"] == [asked["t"]]
    assert at(name, stop["t"])["belt_kmh"] == 0.0


# ---- the console as the check sensor ------------------------------------------------------------


def test_the_console_catches_a_hall_sensor_that_dies_at_a_slow_walk():
    name = "csafe_check_catches_a_dead_hall"
    rep = story(name)
    lost, warning, stop = (
        the(rep, k) for k in ("sensor_lost", "overspeed_warning", "enforced_stop")
    )
    assert (lost["sensor"], lost["state"]) == ("hall", "silent")
    # 2.5 intervals of 0.57 s at 1 km/h overdue: silent about 1.4 s after the last edge
    assert 30.0 < lost["t"] <= 32.0
    assert (warning["t"], warning["reason"]) == (lost["t"], "speed unknown")
    assert stop["t"] == pytest.approx(warning["t"] + GRACE_S, abs=TICK_S)
    assert stop["reason"] == "speed unknown" and "soft" not in stop
    # a speed nobody can vouch for cannot be watched coming down: no SetSpeed first
    assert events(rep, "slowdown_asked") == [] and outputs(rep, "console_speed") == []
    # the console went on reading the belt the dead sensor no longer saw
    assert {row["console_kmh"] for row in rows(name, 30.0, stop["t"])} == {1.0}


def test_a_console_reading_5_percent_fast_against_a_calibrated_hall_sensor_is_no_fault():
    name = "csafe_console_reads_fast"
    rep = story(name)
    for kind in ("sensor_lost", "overspeed_warning", "enforced_stop", "slowdown_asked"):
        assert events(rep, kind) == []
    assert {row["sensor"] for row in rows(name)} == {"ok"}
    assert (at(name, 100.0)["console_kmh"], at(name, 500.0)["console_kmh"]) == (2.1, 3.15)
    # the walker was at or under the line on the truth all along (and the hall sensor saw it)
    trace = rows(name)
    lines = [row["cap_kmh"] + 0.3 for row in trace if row["state"] == "running"]
    means = [
        m for m, row in zip(true_means_kmh(trace), trace, strict=True) if row["state"] == "running"
    ]
    assert all(mean <= line for mean, line in zip(means, lines, strict=True))
    assert the(rep, "session_ended")["reason"] == "command"


# ---- following the console's workout ------------------------------------------------------------


def test_the_consoles_workout_starts_pauses_resumes_and_ends_the_session():
    name = "csafe_follow_console"
    rep = story(name)
    said = [
        (e["t"], e["kind"], e.get("reason"))
        for e in rep["events"]
        if e["kind"].startswith("session_")
    ]
    assert said == [
        (5.2, "session_started", "console"),
        (60.2, "session_paused", "console"),
        (90.2, "session_resumed", "console"),
        (150.2, "session_ended", "console"),
    ]
    assert rep["sessions"][0]["end_reason"] == "console"
    assert status_at(name, 100.0)["console"] == {
        "state": "in use",
        "follows": True,
        "speed_answer": None,
    }


def test_go_on_the_console_at_speed_is_refused_and_start_still_works():
    rep = story("csafe_follow_console_fast_go_refused")
    refused, held = the(rep, "start_refused"), the(rep, "still_guarded")
    assert (refused["t"], refused["speed_kmh"], refused["limit_kmh"]) == (2.2, 3.5, 2.3)
    assert (held["t"], held["why"]) == (2.2, "the start was refused")
    assert the(rep, "overspeed_warning")["scope"] == "refused"
    assert events(rep, "enforced_stop") == []  # slowed within the grace
    started = the(rep, "session_started")
    assert (started["t"], started["reason"]) == (12.2, "button")


# ---- the simulated console itself --------------------------------------------------------------

CONSOLE_ONLY = {"sensor": {"kind": "csafe", "url": "loop://"}}


def test_an_unplugged_console_says_nothing_and_its_speed_goes_stale():
    run = run_story(
        {
            "config": CONSOLE_ONLY,
            "step": [
                {"at": 1, "belt_kmh": 1.5},
                {"at": 4, "press": "start"},
                {"at": 20, "console": "unplugged"},
                {"at": 20, "console_state": "paused"},  # nobody hears it
                {"at": 40, "end": True},
            ],
        }
    )
    lost = run.kinds("sensor_lost")[0]
    assert (lost["sensor"], lost["state"]) == ("csafe", "stale")
    assert 22.0 < lost["t"] <= 22.5  # no reading for stale_s (2 s)
    assert run.kinds("enforced_stop")[0]["reason"] == "speed unknown"
    assert [e["state"] for e in run.kinds("console_state")] == ["ready"]
    assert {row["console_kmh"] for row in run.trace if row["t"] >= 20.0} == {None}


def test_a_console_plugged_back_in_mid_workout_starts_the_session_it_is_in():
    """The member pressed Go while the console's cable was out; plugged back in, the console
    says InUse at a walking pace. Its first answer carries the state and the speed, and the
    link (device/hardware/csafe.py, like this simulator) reports the state first, with the
    speed still stale. A start the console asks for while the speed is not known waits for
    it (up to stale_s, as the belt's own auto start does): the session starts at that very
    poll, when the speed comes. Found as a hole: the start gate refused at once ("The console
    has sent no speed"), and since InUse never changes again the session never started."""
    run = run_story(
        {
            "config": {**CONSOLE_ONLY, "session": {"follow_console": True}},
            "step": [
                {"at": 1, "belt_kmh": 1.5},
                {"at": 4, "console": "unplugged"},
                {"at": 5, "console_state": "in use"},
                {"at": 6, "console": "honours"},
                {"at": 30, "end": True},
            ],
        }
    )
    # plugged in at 6 s, after that tick's poll: its next poll tells the state it is in
    assert [(e["t"], e["state"]) for e in run.kinds("console_state")] == [
        (0.0, "ready"),
        (6.0 + TICK_S, "in use"),
    ]
    assert run.kinds("start_refused") == []
    assert [(e["t"], e["reason"]) for e in run.kinds("session_started")] == [
        (6.0 + TICK_S, "console")
    ]


@pytest.mark.parametrize(
    ("step", "says"),
    [
        ('console = "honours"', "step at 5 s: console needs a CSAFE console; set [sensor] kind"),
        ("console_fast_pct = 5", "step at 5 s: console_fast_pct needs a CSAFE console"),
        ('console = "deaf"', 'step 1: console must be one of "honours", "ignores", "rejects"'),
        ('console_state = "busy"', 'step 1: console_state must be one of "error", "ready"'),
        ("console_fast_pct = 50", "step 1: `console_fast_pct` must be a number from -20 to 20"),
    ],
)
def test_a_console_step_that_cannot_be_is_one_sentence(tmp_path, capsys, step, says):
    path = tmp_path / "gym.toml"
    path.write_text(f"[[step]]\nat = 5\n{step}\n")
    assert simulate_main(str(path)) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and says in err and err.endswith(".")
