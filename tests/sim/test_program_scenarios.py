"""Levels and the running unlock, told as scenarios and run through `retrotread simulate`
with a real history file, so the walker's progress is what the store keeps."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

from support.scenarios import SCENARIOS, cli

from device.config.load import config_from_mapping
from device.history.store import Store
from device.sim.scenario import load_scenario
from device.sim.simulate import Simulation


def simulate(name: str, db: Path) -> dict:
    done = cli(str(SCENARIOS / f"{name}.toml"), "--db", str(db))
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def kinds(report: dict, *wanted: str) -> list[dict]:
    return [e for e in report["events"] if e["kind"] in wanted]


def stored_profile(db: Path, name: str) -> dict:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as history:
        history.row_factory = sqlite3.Row
        row = history.execute("SELECT * FROM profiles WHERE name = ?", (name,)).fetchone()
    return dict(row)


def test_the_home_walker_levels_up_at_the_end_of_the_fourth_ten_minute_session(tmp_path):
    db = tmp_path / "history.db"
    report = simulate("rule_level_up", db)
    story = kinds(report, "session_ended", "level_up", "session_started")
    ended = [e for e in story if e["kind"] == "session_ended"]
    (level_up,) = [e for e in story if e["kind"] == "level_up"]
    assert level_up["t"] == ended[3]["t"]  # the fourth session's end, not the third's
    assert level_up == {**level_up, "profile": "home", "level": 2, "cap_kmh": 4.0}
    started = [e for e in story if e["kind"] == "session_started"]
    assert [e["level"] for e in started] == [1, 1, 1, 1, 2]
    assert stored_profile(db, "home")["level"] == 2


def test_progress_is_kept_in_the_history_file_for_the_next_run(tmp_path):
    db = tmp_path / "history.db"
    simulate("rule_level_up", db)
    # the same walker comes back the week after: four more qualifying days, now at level 2
    # (the same days again would count for nothing: one qualifying session a day)
    scenario = load_scenario(str(SCENARIOS / "rule_level_up.toml"))
    store = Store(str(db))
    week_later = time.time() + 7 * 86400
    simulation = Simulation(scenario, store, config=config_from_mapping(scenario.config),
                            wall0=week_later)  # fmt: skip
    again = simulation.run().as_dict()
    (level_up,) = kinds(again, "level_up")
    assert level_up["level"] == 3
    assert [e["level"] for e in kinds(again, "session_started")] == [2, 2, 2, 2, 3]
    profile = stored_profile(db, "home")
    assert (profile["level"], profile["qualifying_total"]) == (3, 8)


def test_running_unlocks_only_after_the_sessions_and_five_fast_minutes(tmp_path):
    db = tmp_path / "history.db"
    report = simulate("rule_running_unlock", db)
    ended = kinds(report, "session_ended")
    (unlocked,) = kinds(report, "running_unlocked")
    # not after session 2 (enough sessions but no fast one), but after session 3
    assert unlocked["t"] == ended[2]["t"]
    assert unlocked["cap_kmh"] == 6.0
    assert not kinds(report, "overspeed_warning", "enforced_stop")  # the walker kept to the cap
    profile = stored_profile(db, "home")
    assert profile["running_unlocked"] == 1
    assert profile["fast_session_done"] == 1


def test_a_gym_guest_starts_every_session_as_a_beginner(tmp_path):
    # The same four sessions on a gym treadmill (no single_user): nobody levels up.
    scenario = (SCENARIOS / "rule_level_up.toml").read_text()
    gym = scenario.replace("single_user = true", "single_user = false")
    (tmp_path / "scenarios").mkdir()
    path = tmp_path / "scenarios" / "gym.toml"
    path.write_text(gym)
    done = cli(str(path))
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert not kinds(report, "level_up")
    started = kinds(report, "session_started")
    assert {(e["profile"], e["level"]) for e in started} == {("guest", 1)}
