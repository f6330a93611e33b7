"""The real daemon, as a subprocess, while its history file misbehaves: another process holds
SQLite's write lock, the filesystem fills up, or the file is not one it may write. The belt
comes from a serial bridge on a pty, so the test sets its speed; every stop is judged by the
status the dashboard reads, against the grace the config gives."""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from support.device_process import Device, assert_one_sentence, read_history
from support.serial_belt import SerialBelt, serial_belt
from support.waiting import wait_until

pytestmark = pytest.mark.e2e

GRACE_S = 2.0
# the status is polled every 50 ms and the bridge writes 10 lines a second
ON_TIME_S = 0.5


@pytest.fixture
def belt() -> Iterator[SerialBelt]:
    with serial_belt() as bridge:
        yield bridge


def config_for(belt: SerialBelt) -> str:
    return (
        f'[sensor]\nkind = "serial"\nurl = "{belt.url}"\n'
        f"[backward]\ngrace_s = {GRACE_S}\n[session]\npause_after_stop_s = 600\n"
    )


def walk_over_the_cap(device: Device, belt: SerialBelt) -> float:
    """A backward session at 0.5 km/h, then the belt at 4 km/h, twice the start cap. Returns
    how long after the first warning the relay opened."""
    wait_until(lambda: device.request("status")["speed_kmh"] == 0.5, within_s=5, what="0.5 km/h")
    assert device.request("start")["status"]["state"] == "running"
    belt.kmh = 4.0
    warned_at = None
    deadline = time.monotonic() + GRACE_S + 5
    while time.monotonic() < deadline:
        status = device.request("status")
        now = time.monotonic()
        if warned_at is None and status["warning"] is not None:
            warned_at = now
        if status["relay"] == "open":
            assert warned_at is not None, "the relay opened without a warning first"
            belt.kmh = 0.0  # the loop is open: the treadmill stops
            return now - warned_at
        time.sleep(0.05)
    raise AssertionError("the relay never opened")


def history_health(device: Device) -> dict[str, Any]:
    return device.request("status")["health"]["history"]


def rows(db_path: Path, table: str) -> int:
    return read_history(db_path, f"SELECT COUNT(*) FROM {table}")[0][0]


def event_kinds(db_path: Path) -> list[str]:
    return [kind for (kind,) in read_history(db_path, "SELECT kind FROM events ORDER BY id")]


def test_a_write_lock_held_elsewhere_never_delays_the_stop_and_loses_nothing(
    launch: Callable[..., Device], belt: SerialBelt, tmp_path: Path
) -> None:
    device = launch(config_for(belt))
    device.wait_ready()
    # a backup tool, or a sqlite3 shell left open in a transaction, holds the write lock
    holder = sqlite3.connect(device.db_path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        late = walk_over_the_cap(device, belt)
        assert late <= GRACE_S + ON_TIME_S, f"the relay opened {late:.2f} s after the warning"
        health = history_health(device)
        assert health["ok"] is False and "locked" in health["error"]
        assert health["unsaved_rows"] > 0
        assert "locked" in device.request("status")["history_error"]
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    wait_until(lambda: history_health(device)["ok"], within_s=5, what="history saved again")
    assert device.request("status")["history_error"] is None
    assert history_health(device)["lost_rows"] == 0
    kinds = event_kinds(device.db_path)
    assert {"session_started", "overspeed_warning", "enforced_stop"} <= set(kinds)
    # every second walked while the lock was held, up to the stop
    ((first, last),) = read_history(device.db_path, "SELECT MIN(t), MAX(t) FROM samples")
    ((started,),) = read_history(device.db_path, "SELECT started_at FROM sessions")
    ((stopped,),) = read_history(
        device.db_path, "SELECT t FROM events WHERE kind = 'enforced_stop'"
    )
    assert first - started <= 1.0 and stopped - last <= 1.0
    assert rows(device.db_path, "samples") >= int(last - first)
    assert device.process.poll() is None


@pytest.fixture
def small_filesystem(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs of its own, where the test runs as root with CAP_SYS_ADMIN (CI does)."""
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.strip()}); the write-lock "
                    "test and tests/sim/test_safety_scenarios.py cover the same "
                    "writer")  # fmt: skip
    yield mount_point
    subprocess.run(["umount", "-l", str(mount_point)], check=False)


def fill(directory: Path) -> Path:
    """Write a file until the filesystem is full."""
    filler = directory / "filler"
    with open(filler, "wb") as out, contextlib.suppress(OSError):
        while True:
            out.write(b"\0" * 65536)
            out.flush()
    return filler


def test_a_full_disk_never_delays_the_stop_and_writing_resumes_when_space_returns(
    launch: Callable[..., Device], belt: SerialBelt, small_filesystem: Path
) -> None:
    device = launch(config_for(belt), db_path=small_filesystem / "history.db")
    device.wait_ready()
    filler = fill(small_filesystem)
    late = walk_over_the_cap(device, belt)
    assert late <= GRACE_S + ON_TIME_S, f"the relay opened {late:.2f} s after the warning"
    wait_until(lambda: not history_health(device)["ok"], within_s=5, what="the disk to refuse")
    assert "full" in history_health(device)["error"]
    filler.unlink()
    wait_until(lambda: history_health(device)["ok"], within_s=5, what="history saved again")
    assert {"overspeed_warning", "enforced_stop"} <= set(event_kinds(device.db_path))
    assert history_health(device)["lost_rows"] == 0
    assert device.process.poll() is None


def test_a_history_file_on_a_read_only_filesystem_is_refused_at_start(
    launch: Callable[..., Device], small_filesystem: Path
) -> None:
    first = launch(db_path=small_filesystem / "history.db")
    first.wait_ready()
    first.process.terminate()
    assert first.exit_code() == 0
    subprocess.run(["mount", "-o", "remount,ro", str(small_filesystem)], check=True)
    device = launch(db_path=small_filesystem / "history.db")
    assert device.exit_code() == 2  # systemd does not restart it: a remount will not come
    (error,) = [line for line in device.stderr.splitlines() if "ERROR" in line]
    assert "history.db" in error and "writable" in error
    assert_one_sentence(error.split(": ", 1)[1])


def fingerprint(path: Path) -> tuple[str, int]:
    return hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mode


def test_another_programs_database_is_refused_and_left_exactly_as_it_was(
    launch: Callable[..., Device], tmp_path: Path
) -> None:
    notes = tmp_path / "notes.db"
    db = sqlite3.connect(notes)
    db.execute("CREATE TABLE groceries (item TEXT)")
    db.execute("INSERT INTO groceries VALUES ('milk')")
    db.commit()
    db.close()
    notes.chmod(0o600)
    before = fingerprint(notes)
    device = launch(db_path=notes)
    assert device.exit_code() == 2
    (error,) = [line for line in device.stderr.splitlines() if "ERROR" in line]
    assert "another program's SQLite database" in error and str(notes) in error
    assert_one_sentence(error.split(": ", 1)[1])
    assert fingerprint(notes) == before  # no tables added, not switched to WAL, mode kept
    assert not Path(f"{notes}-wal").exists()


def test_a_damaged_history_file_is_refused_at_start(
    launch: Callable[..., Device], tmp_path: Path
) -> None:
    first = launch("[session]\npause_after_stop_s = 600\n")
    first.wait_ready()
    for _ in range(3):
        first.request("start")
        first.request("end")
    first.process.terminate()
    assert first.exit_code() == 0
    with open(first.db_path, "r+b") as file:  # a bad block on the SD card, in the tables
        file.seek(3 * 4096)
        file.write(b"\xff" * 2048)
    device = launch()
    assert device.exit_code() == 2
    (error,) = [line for line in device.stderr.splitlines() if "ERROR" in line]
    assert "is damaged" in error and "move it away" in error
    assert_one_sentence(error.split(": ", 1)[1])


def test_the_status_counts_rejected_lines_and_names_a_lost_bridge(
    launch: Callable[..., Device], belt: SerialBelt
) -> None:
    device = launch(config_for(belt))
    device.wait_ready()
    # the bridge's lines read: the port is open (lines sent before it opens are never seen)
    wait_until(lambda: device.request("status")["speed_kmh"] == 0.5, within_s=5, what="0.5 km/h")
    for _ in range(4):
        os.write(belt.master, b"ERR belt sensor fault\n")
    health = wait_until(
        lambda: (h := device.request("status")["health"])["sensor_rejected"] >= 4 and h,
        within_s=3,
        what="four rejected lines in the status",
    )
    assert health["sensor_error"] is None and health["inputs_dropped"] == 0
    history = health["history"]
    assert history["ok"] is True and history["error"] is None and history["lost_rows"] == 0
    belt.close()  # the bridge's cable pulled: its pty is gone
    error = wait_until(
        lambda: device.request("status")["health"]["sensor_error"],
        within_s=5,
        what="the lost bridge named in the status",
    )
    assert belt.url in error and error.endswith(".")
