"""`retrotread simulate`: the scenario stories in tests/scenarios run through the same
Controller and Recorder as the daemon, in virtual time. A few go through the real command line
in a subprocess; the rest run in-process, which is faster and gives the same report."""

from __future__ import annotations

import functools
import json
import sqlite3
from typing import Any

import pytest
from support.scenarios import SCENARIOS, cli, events, outputs, sample_at

from device.config.load import config_from_mapping
from device.history.store import Store
from device.sim.scenario import load_scenario
from device.sim.simulate import Simulation, simulate_main

KMH = 1 / 3.6  # m/s per km/h


def simulate(name: str) -> dict[str, Any]:
    """The report `retrotread simulate` would print for tests/scenarios/<name>.toml."""
    scenario = load_scenario(str(SCENARIOS / f"{name}.toml"))
    config = config_from_mapping(scenario.config, source=name)
    report = Simulation(scenario, Store(":memory:"), config=config).run()
    return json.loads(json.dumps(report.as_dict()))  # as printed: enums become strings


@functools.cache
def report(name: str) -> dict[str, Any]:
    """simulate(name), run once per test session (tests only read it)."""
    return simulate(name)


# ---- through the real command line ---------------------------------------------------------


def test_cli_prints_one_json_report_for_a_beginners_walk():
    done = cli(str(SCENARIOS / "beginner_backward_start.toml"))
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    rep = json.loads(done.stdout)
    assert set(rep) == {"samples", "events", "sessions", "outputs"}
    assert set(rep["samples"][0]) == {"t", "speed_kmh", "mode", "state", "cap_kmh"}
    assert set(rep["sessions"][0]) == {
        "id",
        "started",
        "ended",
        "end_reason",
        "distance_m",
        "backward_s",
        "forward_s",
    }
    assert rep == report("beginner_backward_start")  # in-process runs print the same


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("bad_unknown_action", "step 2: unknown key `jump`"),
        ("bad_steps_out_of_order", "step 2 is at 5.0 s, before the step above it"),
        ("bad_press_value", 'press must be "start" or "direction"'),
        ("bad_config_override", "[backward] start_cap_kmh must be a number"),
    ],
)
def test_bad_scenario_exits_2_with_one_sentence_and_no_traceback(name, says):
    path = str(SCENARIOS / f"{name}.toml")
    done = cli(path)
    assert done.returncode == 2
    assert done.stdout == ""
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(path)  # names the file
    assert says in lines[0]
    assert lines[0].endswith(".")


def test_missing_scenario_file_exits_2_naming_it(tmp_path, capsys):
    path = str(tmp_path / "nowhere.toml")
    assert simulate_main(path) == 2
    err = capsys.readouterr().err
    assert err.strip() == f"{path}: no such scenario file."


def test_db_option_keeps_the_sessions_in_that_sqlite_file(tmp_path):
    db = tmp_path / "history.db"
    done = cli(str(SCENARIOS / "beginner_backward_start.toml"), "--db", str(db))
    assert done.returncode == 0, done.stderr
    (printed,) = json.loads(done.stdout)["sessions"]

    with sqlite3.connect(db) as history:
        rows = history.execute(
            "SELECT id, end_reason, distance_m, backward_s, forward_s, ended_at - started_at"
            " FROM sessions"
        ).fetchall()
        samples = history.execute(
            "SELECT COUNT(*), MIN(cap_kmh), MAX(cap_kmh) FROM samples WHERE session_id = 1"
        ).fetchone()
        kinds = [k for (k,) in history.execute("SELECT kind FROM events ORDER BY t, id")]
        (segment_modes,) = history.execute("SELECT group_concat(mode) FROM segments").fetchone()

    (session_id, end_reason, distance_m, backward_s, forward_s, length_s) = rows[0]
    assert len(rows) == 1
    assert (session_id, end_reason) == (printed["id"], "button")
    assert distance_m == pytest.approx(printed["distance_m"], abs=0.05)
    assert backward_s == pytest.approx(61.8, abs=0.05)
    assert forward_s == 0.0
    assert length_s == pytest.approx(61.8, abs=0.01)
    # one a second from 6 s to 66 s (the tick at 67 s ended it), all at the start cap
    assert samples == (61, 2.0, 2.0)
    assert kinds == ["session_started", "session_ended"]
    assert segment_modes == "backward"


# ---- the stories, in-process -------------------------------------------------------------


def test_beginners_backward_start_runs_at_the_start_cap():
    rep = report("beginner_backward_start")
    (started,) = events(rep, "session_started")
    assert started == {
        "t": 5.2,
        "kind": "session_started",
        "mode": "backward",
        "reason": "button",
        "profile": "guest",
        "level": 1,
    }
    walking = [s for s in rep["samples"] if s["state"] == "running"]
    assert len(walking) == 61  # 6 s to 66 s; the tick at 67 s ended the session
    assert {(s["mode"], s["cap_kmh"]) for s in walking} == {("backward", 2.0)}
    assert all(s["speed_kmh"] == pytest.approx(1.0, abs=0.05) for s in walking)
    assert outputs(rep, "buzzer") == ["start", "end"]
    assert outputs(rep, "led") == ["slow_blink", "off"]


def test_long_press_ends_the_session_with_the_totals_the_belt_implies():
    rep = report("beginner_backward_start")
    (session,) = rep["sessions"]
    assert session["end_reason"] == "button"
    assert (session["started"], session["ended"]) == (5.2, 67.0)  # ended at 2 s of holding
    assert session["backward_s"] == pytest.approx(61.8, rel=0.03)
    assert session["forward_s"] == 0.0
    assert session["distance_m"] == pytest.approx(1.0 * KMH * 61.8, rel=0.03)


def test_backward_then_forward_splits_the_minutes_and_the_distance_adds_up():
    rep = report("backward_then_forward")
    (session,) = rep["sessions"]
    assert session["end_reason"] == "button"
    assert session["backward_s"] == pytest.approx(305 - 5.2, rel=0.03)
    assert session["forward_s"] == pytest.approx(607 - 305, rel=0.03)
    belt_m = 1.5 * KMH * (306 - 5.2) + 4.5 * KMH * (607 - 306)
    assert session["distance_m"] == pytest.approx(belt_m, rel=0.03)


def test_forward_segment_has_no_cap():
    rep = report("backward_then_forward")
    assert sample_at(rep, 304.0)["cap_kmh"] == 2.6
    forward = [s for s in rep["samples"] if 305 <= s["t"] <= 606]
    assert {(s["mode"], s["cap_kmh"]) for s in forward} == {("forward", None)}
    assert outputs(rep, "led") == ["slow_blink", "steady", "off"]


def test_start_at_four_kmh_backward_is_refused_and_forward_goes_ahead():
    rep = report("fast_start_refused")
    (refused,) = events(rep, "start_refused")
    assert refused["t"] == 5.2
    assert refused["speed_kmh"] == pytest.approx(4.0, abs=0.1)
    assert refused["limit_kmh"] == pytest.approx(2.3)
    assert "km/h" in refused["reason"]
    (started,) = events(rep, "session_started")
    assert (started["t"], started["mode"]) == (12.2, "forward")
    # backward mode at 4 km/h warned before the press; turning forward ended the warning
    # before any stop: forward has no backward cap
    buzzer = outputs(rep, "buzzer")
    assert buzzer == ["warn_slow", "refused", "warn_fast", "mode", "start", "end"]
    assert events(rep, "enforced_stop") == []
    assert events(rep, "overspeed_cleared")[0]["t"] == 6.0
    assert {s["state"] for s in rep["samples"] if s["t"] < 12} == {"idle"}


def test_end_step_ends_an_open_session_as_shutdown():
    rep = report("fast_start_refused")
    (session,) = rep["sessions"]
    assert (session["end_reason"], session["ended"]) == ("shutdown", 40.0)
    assert session["forward_s"] == pytest.approx(40 - 12.2, rel=0.03)
    assert events(rep, "session_ended")[-1]["reason"] == "shutdown"
    assert rep["outputs"][-1] == {"t": 40.0, "name": "led", "state": "off"}


@pytest.mark.parametrize(
    ("segment_s", "cap_kmh"), [(0, 2.0), (119, 2.0), (121, 2.1), (150, 2.2), (600, 3.0)]
)
def test_samples_show_the_cap_over_the_segment(segment_s, cap_kmh):
    rep = report("cap_ramp")  # the segment begins at exactly 5 s
    sample = sample_at(rep, 5.0 + segment_s)
    assert (sample["mode"], sample["state"], sample["cap_kmh"]) == ("backward", "running", cap_kmh)


def test_cap_never_falls_during_a_segment():
    caps = [s["cap_kmh"] for s in report("cap_ramp")["samples"] if s["state"] == "running"]
    assert caps == sorted(caps)


def test_belt_stop_pauses_and_restart_resumes():
    rep = report("belt_stop_and_restart")
    (paused,) = events(rep, "session_paused")
    (resumed,) = events(rep, "session_resumed")
    assert paused["reason"] == "belt stopped"
    # the belt stops at 60 s, reads 0 about a second later, and stays so for 5 s
    assert 65.0 <= paused["t"] <= 67.5
    assert sample_at(rep, 65.0)["state"] == "running"
    assert resumed["reason"] == "belt running"
    assert 90.5 <= resumed["t"] <= 93.0  # the belt runs again at 90 s
    assert {sample_at(rep, t)["state"] for t in (70.0, 80.0, 90.0)} == {"paused"}
    assert sample_at(rep, 100.0)["state"] == "running"
    assert outputs(rep, "buzzer") == ["start", "pause", "resume", "end"]
    (session,) = rep["sessions"]
    walked_s = (paused["t"] - 3.2) + (122.0 - resumed["t"])
    assert session["backward_s"] == pytest.approx(walked_s, rel=0.03)


def test_a_pause_longer_than_five_minutes_ends_the_session():
    rep = report("pause_timeout")
    (paused,) = events(rep, "session_paused")
    assert paused["reason"] == "button"
    assert events(rep, "session_resumed") == []  # the belt ran on, but the button paused it
    (ended,) = events(rep, "session_ended")
    assert ended["reason"] == "pause_timeout"
    assert ended["t"] == pytest.approx(paused["t"] + 300)
    (session,) = rep["sessions"]
    assert session["end_reason"] == "pause_timeout"
    assert session["backward_s"] == pytest.approx(60.2 - 3.2, rel=0.03)
    assert sample_at(rep, 361.0)["state"] == "idle"


def test_thirty_minute_walk_has_a_sample_every_second():
    rep = report("thirty_minutes")
    assert len(rep["samples"]) == 1801
    assert [s["t"] for s in rep["samples"]] == [float(n) for n in range(1801)]
    (session,) = rep["sessions"]
    assert session["end_reason"] == "shutdown"
    assert session["forward_s"] == pytest.approx(1505 - 1200, rel=0.03)
    assert session["backward_s"] == pytest.approx(1800 - 10.2 - 305, rel=0.03)
    belt_m = KMH * (1.2 * (600 - 10.2) + 1.8 * 600 + 4.0 * 299 + 1.5 * 300 + 1.8 * 1)
    assert session["distance_m"] == pytest.approx(belt_m, rel=0.03)
    # the second backward segment starts its cap again from 2.0 km/h
    assert sample_at(rep, 1506.0)["cap_kmh"] == 2.0


def test_the_same_scenario_gives_the_same_report_every_time():
    first, second = simulate("thirty_minutes"), simulate("thirty_minutes")
    assert first["samples"] == second["samples"]
    assert first["events"] == second["events"]
    assert first["outputs"] == second["outputs"]
    assert first["sessions"] == second["sessions"]
