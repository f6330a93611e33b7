"""The real `retrotread device` as a subprocess on gpiozero's mock pins, and readers of the
history file it writes: shared by the tests that watch the daemon from outside."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from device.ipc.client import DeviceClient, DeviceOffline

from .waiting import wait_until

REPO = Path(__file__).resolve().parents[2]
START_WITHIN_S = 10.0
# the belt stands still in these tests; without this the session would pause itself after 5 s
STEADY_CONFIG = "[session]\npause_after_stop_s = 600\n"


class Device:
    """One run of `python -m device.cli device`, its output kept in files (a pipe nobody
    reads would stall the daemon's logging)."""

    def __init__(
        self,
        workdir: Path,
        socket_path: Path,
        db_path: Path,
        config: Path | None,
        extra_env: dict[str, str] | None = None,
    ):
        self.socket_path = socket_path
        self.db_path = db_path
        runs = len(list(workdir.glob("run-*.err")))
        self.stdout_path = workdir / f"run-{runs}.out"
        self.stderr_path = workdir / f"run-{runs}.err"
        argv = [sys.executable, "-m", "device.cli", "device"]
        argv += ["--socket", str(socket_path), "--db", str(db_path)]
        if config is not None:
            argv += ["--config", str(config)]
        env = {**os.environ, "GPIOZERO_PIN_FACTORY": "mock", "PYTHONUNBUFFERED": "1"}
        for systemd_var in ("NOTIFY_SOCKET", "RUNTIME_DIRECTORY", "JOURNAL_STREAM"):
            env.pop(systemd_var, None)
        env.update(extra_env or {})
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.process = subprocess.Popen(argv, cwd=REPO, env=env, stdout=out, stderr=err)
        self.client = DeviceClient(socket_path, timeout=2.0)

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text()

    def wait_ready(self) -> dict[str, Any]:
        def answers() -> dict[str, Any] | None:
            if self.process.poll() is not None:
                raise AssertionError(f"the device exited {self.process.returncode}:\n{self.stderr}")
            try:
                return self.client.request({"cmd": "status"})
            except DeviceOffline:
                return None

        return wait_until(answers, within_s=START_WITHIN_S, what="the device socket to answer")

    def request(self, cmd: str, **args: Any) -> dict[str, Any]:
        return self.client.request({"cmd": cmd, **args})

    def exit_code(self, *, within_s: float = 5.0) -> int:
        return self.process.wait(timeout=within_s)


@pytest.fixture
def launch(socket_dir: Path, tmp_path: Path) -> Iterator[Callable[..., Device]]:
    """Start devices on one socket and db path; every one still running is killed at the end."""
    started: list[Device] = []

    def start(
        config: str | None = None,
        *,
        db_path: Path | None = None,
        extra_env: dict[str, str] | None = None,
    ) -> Device:
        config_path = None
        if config is not None:
            config_path = tmp_path / "config.toml"
            config_path.write_text(config)
        device = Device(
            tmp_path,
            socket_dir / "device.sock",
            db_path or tmp_path / "history.db",
            config_path,
            extra_env,
        )
        started.append(device)
        return device

    yield start
    for device in started:
        if device.process.poll() is None:
            device.process.kill()
            device.process.wait(timeout=5)


def read_history(db_path: Path, sql: str, *args: Any) -> list[tuple]:
    """Rows from the history file opened read-only, as the web opens it."""
    db = sqlite3.connect(f"{db_path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return db.execute(sql, args).fetchall()
    finally:
        db.close()


def sessions(db_path: Path) -> list[tuple]:
    return read_history(db_path, "SELECT id, ended_at, end_reason FROM sessions ORDER BY id")


def segments(db_path: Path, session_id: int) -> list[tuple]:
    return read_history(
        db_path,
        "SELECT mode, ended_at IS NOT NULL FROM segments WHERE session_id = ? ORDER BY id",
        session_id,
    )


def assert_one_sentence(text: str) -> None:
    assert "Traceback" not in text
    assert "\n" not in text.strip()
    assert text.strip().endswith((".", "?"))


def history_shows(db_path: Path, query: Callable[[Path], Any], expected: Any) -> None:
    """The daemon answers a command before the tick that writes it ends: wait for the row."""
    wait_until(lambda: query(db_path) == expected, within_s=2, what=f"{expected} in the history")
