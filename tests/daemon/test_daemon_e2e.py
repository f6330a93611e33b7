"""The real `retrotread device` as a subprocess on gpiozero's mock pins: what the dashboard and
systemd see from outside, through the socket, the exit code and the SQLite file."""

from __future__ import annotations

import json
import signal
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from support.device_process import (
    START_WITHIN_S,
    STEADY_CONFIG,
    Device,
    assert_one_sentence,
    history_shows,
    read_history,
    segments,
    sessions,
)
from support.waiting import wait_until

pytestmark = pytest.mark.e2e


@pytest.fixture
def device(launch: Callable[..., Device]) -> Device:
    running = launch(STEADY_CONFIG)
    running.wait_ready()
    return running


class RawLine:
    """A bare socket connection, for lines DeviceClient would never send."""

    def __init__(self, path: Path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(3.0)
        self.sock.connect(str(path))
        self.reader = self.sock.makefile("rb")

    def ask(self, line: bytes) -> dict[str, Any]:
        self.sock.sendall(line)
        return json.loads(self.reader.readline())

    def close(self) -> None:
        self.reader.close()
        self.sock.close()


# -- talking to a running device --------------------------------------------------------------


def test_status_tells_the_belt_speed_mode_state_and_cap(device: Device) -> None:
    status = device.request("status")
    assert status["ok"] is True
    assert status["speed_kmh"] == 0.0  # nothing drives the hall pin: the belt stands still
    assert status["mode"] == "backward"  # the built-in initial mode
    assert status["state"] == "idle"
    assert status["cap_kmh"] == 2.0  # the backward start cap


def test_a_session_started_turned_paused_resumed_and_ended_is_in_the_history(
    device: Device,
) -> None:
    reply = device.request("start")
    assert reply["ok"] is True
    assert reply["status"]["state"] == "running"
    history_shows(device.db_path, sessions, [(1, None, None)])
    history_shows(device.db_path, lambda db: segments(db, 1), [("backward", 0)])

    assert device.request("mode", mode="forward")["status"]["mode"] == "forward"
    history_shows(device.db_path, lambda db: segments(db, 1), [("backward", 1), ("forward", 0)])

    assert device.request("pause")["status"]["state"] == "paused"
    assert device.request("resume")["status"]["state"] == "running"
    assert device.request("end")["status"]["state"] == "idle"
    history_shows(device.db_path, lambda db: [row[2] for row in sessions(db)], ["command"])
    ((_, ended_at, _),) = sessions(device.db_path)
    assert ended_at == pytest.approx(time.time(), abs=30)
    assert segments(device.db_path, 1) == [("backward", 1), ("forward", 1)]


def test_status_right_after_a_command_shows_what_it_did(device: Device) -> None:
    # the dashboard presses START, then asks for the status to redraw its page
    assert device.request("start")["status"]["state"] == "running"
    assert device.request("status")["state"] == "running"


def test_a_refused_command_says_why(device: Device) -> None:
    reply = device.request("pause")
    assert reply["ok"] is False
    assert reply["error"] == "Cannot pause while the session is idle."


@pytest.mark.parametrize(
    ("line", "words"),
    [
        (b"hello treadmill\n", "not valid JSON"),
        (b'{"cmd": "jump"}\n', "unknown cmd"),
        (b'{"cmd": "mode", "mode": "sideways"}\n', "unknown mode"),
        (b'{"cmd": "status", "pad": "' + b"x" * 5000 + b'"}\n', "longer than 4096 bytes"),
    ],
    ids=["not-json", "unknown-cmd", "bad-mode", "oversized"],
)
def test_a_bad_request_gets_one_sentence_and_the_device_keeps_answering(
    device: Device, line: bytes, words: str
) -> None:
    raw = RawLine(device.socket_path)
    try:
        reply = raw.ask(line)
        assert reply["ok"] is False
        assert words in reply["error"]
        assert_one_sentence(reply["error"])
        # the same connection is still served, and so is a new one
        assert raw.ask(b'{"cmd": "status"}\n')["ok"] is True
    finally:
        raw.close()
    assert device.request("status")["state"] == "idle"


def test_subscribe_streams_a_status_line_every_quarter_second(device: Device) -> None:
    with device.client.subscribe() as stream:
        first = next(stream)
        assert first["ok"] is True
        assert first["state"] == "idle"
        began = time.monotonic()
        lines = [next(stream) for _ in range(4)]
        took = time.monotonic() - began
        assert all(line["ok"] is True and "speed_kmh" in line for line in lines)
        assert 0.75 <= took <= 2.0, f"4 lines took {took:.2f} s, not about 1 s"
        device.request("start")
        wait_until(lambda: next(stream)["state"] == "running", within_s=2, what="running")


# -- crashes, stops and mistakes ----------------------------------------------------------------


def test_after_kill_9_the_restarted_device_closes_the_session_as_interrupted(
    launch: Callable[..., Device],
) -> None:
    first = launch(STEADY_CONFIG + 'initial_mode = "forward"\n')
    assert first.wait_ready()["mode"] == "forward"  # the config file was read
    first.request("start")
    history_shows(first.db_path, sessions, [(1, None, None)])
    session_id = 1
    # samples are written in batches at most 5 s apart: wait for the first batch
    first_batch = "SELECT 1 FROM samples WHERE session_id = ?"
    wait_until(
        lambda: read_history(first.db_path, first_batch, session_id),
        within_s=8,
        what="the first batch of samples",
    )
    first.process.send_signal(signal.SIGKILL)
    assert first.exit_code() == -signal.SIGKILL
    assert first.socket_path.is_socket()  # left behind: nobody closed it

    second = launch(STEADY_CONFIG)
    assert second.wait_ready()["state"] == "idle"
    # the socket may answer a moment before the history is repaired
    history_shows(second.db_path, lambda db: [row[2] for row in sessions(db)], ["interrupted"])
    ((_, ended_at, end_reason),) = sessions(second.db_path)
    ((last_sample_t,),) = read_history(
        second.db_path, "SELECT MAX(t) FROM samples WHERE session_id = ?", session_id
    )
    assert end_reason == "interrupted"
    assert ended_at == last_sample_t
    ended = read_history(
        second.db_path,
        "SELECT t, details FROM events WHERE session_id = ? AND kind = 'session_ended'",
        session_id,
    )
    assert [(t, json.loads(details)["reason"]) for t, details in ended] == [
        (last_sample_t, "interrupted")
    ]
    assert segments(second.db_path, session_id) == [("forward", 1)]


def test_sigterm_ends_the_session_as_shutdown_and_removes_the_socket(device: Device) -> None:
    device.request("start")
    history_shows(device.db_path, sessions, [(1, None, None)])
    device.process.send_signal(signal.SIGTERM)
    assert device.exit_code(within_s=5) == 0
    assert not device.socket_path.exists()
    ((_, ended_at, end_reason),) = sessions(device.db_path)
    assert end_reason == "shutdown"
    assert ended_at is not None
    assert "Traceback" not in device.stderr


def test_a_bad_config_file_exits_2_with_one_sentence(launch: Callable[..., Device]) -> None:
    device = launch("[backward]\nstart_cap = 2.0\n")
    assert device.exit_code() == 2
    lines = device.stderr.strip().splitlines()
    assert len(lines) == 1, device.stderr
    assert "config.toml" in lines[0] and "start_cap" in lines[0]
    assert_one_sentence(lines[0])
    assert not device.socket_path.exists()


def test_a_history_file_that_cannot_be_created_exits_with_one_sentence(
    launch: Callable[..., Device], tmp_path: Path
) -> None:
    regular_file = tmp_path / "file"
    regular_file.write_text("not a directory")
    device = launch(STEADY_CONFIG, db_path=regular_file / "history.db")
    assert device.exit_code() != 0
    errors = [line for line in device.stderr.splitlines() if "INFO" not in line]
    assert len(errors) == 1, device.stderr
    assert str(regular_file) in errors[0]
    assert_one_sentence(errors[0])


def test_a_second_device_on_the_same_socket_refuses_and_leaves_the_session_open(
    launch: Callable[..., Device], device: Device
) -> None:
    device.request("start")
    history_shows(device.db_path, sessions, [(1, None, None)])
    second = launch(STEADY_CONFIG)
    assert second.exit_code() != 0
    # the first device is untouched: still answering, its session still open in the history
    assert device.request("status")["state"] == "running"
    assert sessions(device.db_path) == [(1, None, None)], second.stderr
    errors = [line for line in second.stderr.splitlines() if "INFO" not in line]
    assert len(errors) == 1, second.stderr
    assert "already running" in errors[0]
    assert_one_sentence(errors[0])


def test_under_systemd_the_device_says_ready_pets_the_watchdog_and_says_stopping(
    launch: Callable[..., Device], socket_dir: Path
) -> None:
    # systemd's side of sd_notify: a datagram socket named by NOTIFY_SOCKET
    notify_path = socket_dir / "notify"
    systemd = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    systemd.bind(str(notify_path))
    systemd.settimeout(START_WITHIN_S)
    heard: list[str] = []

    def hear(message: str) -> None:
        while message not in heard:
            heard.extend(systemd.recv(4096).decode().split("\n"))

    try:
        running = launch(STEADY_CONFIG, extra_env={"NOTIFY_SOCKET": str(notify_path)})
        hear("READY=1")
        running.wait_ready()
        hear("WATCHDOG=1")
        heard.clear()
        hear("WATCHDOG=1")  # and again: the tick loop keeps petting it
        running.process.send_signal(signal.SIGTERM)
        hear("STOPPING=1")
        assert running.exit_code() == 0
    finally:
        systemd.close()
