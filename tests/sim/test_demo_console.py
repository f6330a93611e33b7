"""`retrotread demo --console csafe`: the real daemon reading the belt from the CSAFE console
emulator on a pty, the walker working the console's speed buttons; with --soft the console
slows the belt when the grace runs out, and the relay stays closed."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest
from support.console import CsafeHost
from support.demo_process import REPO, follow, start_demo

from device.core.console import ConsoleState
from device.hardware.csafe_codec import set_speed
from device.sim.console_serve import ConsoleEmulator
from device.sim.demo import ROUTINE
from device.sim.demo_console import SOFT_STOP_STEPS, ConsoleBelt, with_soft_stop

# The routine sets the console to 1 km/h at 2 s and presses START at 5 s.
DURATION_S = 8.0
# With --soft the walker goes over the cap at 12 s; 5 s of grace and the belt's slowing
# later the console has slowed it. A deadline for a slow machine, not a measure.
SOFT_WITHIN_S = 60.0


def stop(demo: subprocess.Popen, tmp_path: Path) -> None:
    if demo.poll() is None:
        demo.kill()
        demo.wait(timeout=5)
    assert "Traceback" not in (tmp_path / "demo.err").read_text()


@pytest.mark.e2e
def test_the_daemon_reads_the_emulated_console_belt_and_its_state(
    socket_dir: Path, tmp_path: Path
) -> None:
    sock = socket_dir / "device.sock"
    demo = start_demo(tmp_path, sock, "--console", "csafe", "--duration", str(DURATION_S))
    try:
        statuses = follow(
            sock,
            demo,
            until=lambda seen: any(s["state"] == "running" and s["speed_kmh"] for s in seen),
            within_s=DURATION_S,
        )
        assert demo.wait(timeout=DURATION_S + 10) == 0, (tmp_path / "demo.err").read_text()
    finally:
        stop(demo, tmp_path)

    assert statuses and {s["sensor"]["kind"] for s in statuses} == {"csafe"}
    speeds = [s["speed_kmh"] for s in statuses if s["speed_kmh"] is not None]
    # the walker set the console to 1 km/h; it answers in 0.1 km/h, and that is what shows
    assert max(speeds) == pytest.approx(1.0)
    last = statuses[-1]
    assert last["state"] == "running" and last["mode"] == "backward"
    assert last["console"]["state"] == ConsoleState.IN_USE
    assert last["health"]["console"]["connected"] and last["health"]["console"]["answers"] > 0

    said = (tmp_path / "demo.out").read_text()
    (port_line,) = [line for line in said.splitlines() if "an emulated CSAFE treadmill" in line]
    pty = port_line.split(" on ")[1].split()[0]
    assert pty.startswith("/dev/pts/")
    assert "(console: in use)" in said  # the status line every 5 s says the console's state
    # the settings page's file says what the daemon ran, the pty of this run included
    config_file = tmp_path / "demo-csafe-config.toml"
    sensor = tomllib.loads(config_file.read_text())["sensor"]
    assert (sensor["kind"], sensor["url"]) == ("csafe", pty)
    assert not (tmp_path / "demo-config.toml").exists()  # the hall demo's is left alone

    history = sqlite3.connect(f"{(tmp_path / 'demo.db').as_uri()}?mode=ro", uri=True)
    try:
        (top,) = history.execute("SELECT MAX(speed_kmh) FROM samples").fetchone()
    finally:
        history.close()
    assert top == pytest.approx(1.0)


@pytest.mark.e2e
def test_with_soft_the_console_slows_the_belt_and_the_relay_stays_closed(
    socket_dir: Path, tmp_path: Path
) -> None:
    sock = socket_dir / "device.sock"
    demo = start_demo(
        tmp_path, sock, "--console", "csafe", "--soft", "--duration", str(SOFT_WITHIN_S)
    )

    def slowed(seen: list[dict]) -> bool:
        asked = [i for i, s in enumerate(seen) if s["slowing"]]
        return bool(asked) and not seen[-1]["slowing"]

    try:
        statuses = follow(sock, demo, until=slowed, within_s=SOFT_WITHIN_S)
        demo.send_signal(signal.SIGINT)  # Ctrl-C, as a newcomer stops it
        assert demo.wait(timeout=10) == 0, (tmp_path / "demo.err").read_text()
    finally:
        stop(demo, tmp_path)

    assert slowed(statuses), statuses[-1]
    assert {s["soft"] for s in statuses} == {"csafe"}
    assert {s["relay"] for s in statuses} == {statuses[0]["relay"]}  # never opened
    history = sqlite3.connect(f"{(tmp_path / 'demo.db').as_uri()}?mode=ro", uri=True)
    try:
        kinds = [kind for (kind,) in history.execute("SELECT kind FROM events ORDER BY t, id")]
    finally:
        history.close()
    assert kinds.index("overspeed_warning") < kinds.index("slowdown_asked") < kinds.index("slowed")
    assert "enforced_stop" not in kinds
    assert 'soft stop ([enforce] soft = "csafe")' in (tmp_path / "demo.out").read_text()


def test_soft_without_the_console_is_one_sentence(socket_dir: Path, tmp_path: Path) -> None:
    argv = [sys.executable, "-m", "device.cli", "demo", "--soft"]
    argv += ["--db", str(tmp_path / "demo.db"), "--socket", str(socket_dir / "device.sock")]
    done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=15)
    assert done.returncode == 2
    assert done.stderr.strip().endswith(
        "--soft asks the emulated CSAFE console to slow the belt; add --console csafe."
    )
    assert not (tmp_path / "demo.db").exists()


def test_the_soft_routine_is_the_demo_routine_with_a_moment_over_the_cap() -> None:
    soft = with_soft_stop(ROUTINE)["step"]
    assert [step for step in soft if step not in SOFT_STOP_STEPS] == ROUTINE["step"]
    assert [step["at"] for step in soft] == sorted(step["at"] for step in soft)
    (over,) = SOFT_STOP_STEPS
    start_at = next(step["at"] for step in ROUTINE["step"] if step.get("press") == "start")
    next_speed_at = next(
        step["at"] for step in ROUTINE["step"] if "belt_kmh" in step and step["at"] > over["at"]
    )
    # in the session, over the 2 km/h start cap and its 0.3 km/h tolerance, for longer than
    # the belt's ramp up (under 2 s) and the 5 s grace before the routine sets a new speed
    assert start_at < over["at"] and over["belt_kmh"] > 2.3
    assert next_speed_at - over["at"] > 2 + 5


# -- the console belt the walker works -------------------------------------------------------


def test_the_pulled_key_stops_the_console_belt_and_a_speed_asked_meanwhile_waits(
    console_emulator: Callable[..., ConsoleEmulator],
) -> None:
    console = console_emulator()
    belt = ConsoleBelt(console)
    belt.set_speed(3.0, ripple_pct=5.0)
    with console.treadmill_now() as treadmill:
        treadmill.belt_kmh = 3.0  # got there
        assert treadmill.state is ConsoleState.IN_USE
    belt.key_pulled()
    with console.treadmill_now() as treadmill:
        assert (treadmill.belt_kmh, treadmill.target_kmh) == (0.0, 0.0)  # at once
        assert treadmill.state is ConsoleState.FINISHED
    belt.set_speed(1.5)  # the walker presses the speed buttons with the key out
    assert belt.set_kmh == 0.0 and belt.stopped_by_key
    belt.key_back()
    assert belt.set_kmh == 1.5 and not belt.stopped_by_key
    with console.treadmill_now() as treadmill:
        assert treadmill.state is ConsoleState.IN_USE  # a new workout on the console
    assert belt.advance(100.0) == []  # no magnet: the console reports the speed itself


def test_the_panel_shows_the_speed_the_console_was_set_to_by_setspeed(
    console_emulator: Callable[..., ConsoleEmulator],
) -> None:
    console = console_emulator()
    belt = ConsoleBelt(console)
    belt.set_speed(2.8)
    with CsafeHost(console.url) as host:
        host.ask(set_speed(2.0))  # the daemon's soft stop
    assert belt.set_kmh == pytest.approx(2.0)
