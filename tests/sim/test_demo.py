"""`retrotread demo` as a newcomer runs it: the real daemon on mock pins with a simulated
walker, watched through the socket like the dashboard watches it."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from support.demo_process import REPO, Status, follow, start_demo
from support.ports import free_port

pytestmark = pytest.mark.e2e


# The routine starts the belt at 2 s and presses START at 5 s; 8 s leaves room to see both.
DURATION_S = 8.0


def test_demo_walker_moves_the_belt_starts_a_session_and_the_demo_stops_cleanly(
    socket_dir: Path, tmp_path: Path
) -> None:
    sock, db = socket_dir / "device.sock", tmp_path / "demo.db"
    port = free_port()
    out_path, err_path = tmp_path / "demo.out", tmp_path / "demo.err"
    demo = start_demo(tmp_path, sock, "--duration", str(DURATION_S), port=port)
    try:
        seen = follow(sock, demo, until=moved_in_a_session, within_s=DURATION_S)
        assert moved_in_a_session(seen), seen[-1:]
        # the dashboard serves the same treadmill
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status", timeout=2) as reply:
            assert json.load(reply)["state"] in ("running", "paused")
        assert demo.wait(timeout=DURATION_S + 5) == 0, err_path.read_text()
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait(timeout=5)

    said = out_path.read_text()
    assert f"dashboard: http://127.0.0.1:{port}/" in said
    assert re.search(r"admin password \(settings\): \S{8,}", said)
    printed = re.findall(r"(\d+\.\d+|--) km/h", said)  # a status line every 5 s
    assert len(printed) >= 1, said
    assert any(speed != "--" and float(speed) > 0 for speed in printed)
    assert "Traceback" not in err_path.read_text()
    assert not sock.exists()

    history = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
    try:
        ((session_id, mode, end_reason),) = history.execute(
            "SELECT sessions.id, segments.mode, end_reason FROM sessions JOIN segments"
            " ON segments.session_id = sessions.id"
        ).fetchall()
        (moving,) = history.execute(
            "SELECT COUNT(*) FROM samples WHERE session_id = ? AND speed_kmh > 0", (session_id,)
        ).fetchone()
    finally:
        history.close()
    assert (mode, end_reason) == ("backward", "shutdown")
    assert moving >= 1  # the walker's belt, sampled once a second, is in the history


def moved_in_a_session(statuses: list[Status]) -> bool:
    """The belt has moved and a session has started (not necessarily at the same moment)."""
    return any(s["speed_kmh"] for s in statuses) and any(s["state"] == "running" for s in statuses)


def test_demo_with_a_history_path_it_cannot_create_exits_with_one_sentence(
    socket_dir: Path, tmp_path: Path
) -> None:
    regular_file = tmp_path / "file"
    regular_file.write_text("not a directory")
    argv = [sys.executable, "-m", "device.cli", "demo", "--db", str(regular_file / "demo.db")]
    argv += ["--socket", str(socket_dir / "device.sock")]
    done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=15)
    assert done.returncode != 0
    assert "Traceback" not in done.stderr, done.stderr
    naming = [line for line in done.stderr.splitlines() if str(regular_file) in line]
    assert len(naming) == 1, done.stderr
    assert naming[0].rstrip().endswith("."), done.stderr


def test_the_demo_routine_tells_a_whole_session_with_a_warning_that_clears() -> None:
    # The walker's routine, run through the simulator's virtual time (the same core the
    # demo's daemon ticks): a newcomer sees every part of the story without touching a thing.
    from device.history.store import Store
    from device.sim.demo import ROUTINE
    from device.sim.scenario import parse_scenario
    from device.sim.simulate import Simulation

    report = Simulation(parse_scenario(ROUTINE, source="demo"), Store(":memory:")).run()
    kinds = [event["kind"] for event in report.events]
    assert kinds[0] == "session_started"
    assert "mode_changed" in kinds and "session_paused" in kinds
    assert kinds.index("overspeed_warning") < kinds.index("overspeed_cleared")
    assert "enforced_stop" not in kinds  # the walker slows down in time
    (ended,) = [event for event in report.events if event["kind"] == "session_ended"]
    assert ended["reason"] == "button"
    assert ended["backward_s"] > 300 and ended["forward_s"] > 60


def test_the_demo_leaves_no_temporary_folder_behind(tmp_path: Path) -> None:
    # its socket's folder is its own: gone after the demo, whichever way it ends
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    regular_file = tmp_path / "file"
    regular_file.write_text("not a directory")
    argv = [sys.executable, "-m", "device.cli", "demo", "--db", str(regular_file / "demo.db")]
    env = {**os.environ, "TMPDIR": str(scratch)}
    done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=15, env=env)
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert list(scratch.iterdir()) == []
