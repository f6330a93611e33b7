"""`retrotread calibrate` with a serial bridge: its speed against the console, over a real
pty and on loop:// in virtual time, and the serial_scale that makes them agree, written once
and never compounded."""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path

import pytest
import serial
from support.calibrating import EXAMPLE, ScriptedTerminal, parse
from support.virtual_clock import VirtualClock
from support.waiting import wait_until

from device.calibrate.arithmetic import CalibrationError, rounded, scale_for_console
from device.calibrate.command import calibrate_main
from device.calibrate.rig import Rig
from device.config.load import load_config

# -- a serial bridge ---------------------------------------------------------------------


@pytest.fixture
def bridge(tmp_path):
    """A speed bridge on a pty: `send(line)` writes to it every 50 ms while it runs."""
    master, slave = os.openpty()
    stop = threading.Event()
    lines: list[bytes] = []

    def run():
        while not stop.wait(0.05):
            for line in lines:
                os.write(master, line)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    yield os.ttyname(slave), lines
    stop.set()
    thread.join(timeout=2)
    os.close(master)
    os.close(slave)


def serial_config(tmp_path, url: str) -> Path:
    path = tmp_path / "bridge.toml"
    path.write_text(f'[sensor]\nkind = "serial"\nurl = "{url}"\n')
    return path


def test_serial_bridge_reading_high_gets_the_serial_scale_that_fixes_it(tmp_path, bridge):
    url, lines = bridge
    lines.append(b"SPD:5.20 km/h\r\n")
    terminal = ScriptedTerminal()
    args = parse("--config", str(serial_config(tmp_path, url)), "--console-kmh", "5",
                 "--seconds", "1")  # fmt: skip
    assert calibrate_main(args, rig=Rig(terminal=terminal)) == 0, terminal.errors
    assert re.search(
        r"The bridge reported 5\.20 km/h on average \(\d+ readings, 0 lines without a speed\) "
        r"at 5 km/h on the console \(\+4\.0 %\)\.",
        terminal.text,
    )
    assert "serial_scale = 0.9615 (now 1)." in terminal.lines
    assert terminal.lines[-1].startswith("Nothing written; add --write")


class LoopBridge:
    """A speed bridge on pyserial's loop:// in virtual time. The bridge reads `fast` times the
    console's speed; each time the port opens it holds 20 such lines, and `sleep(dt)` waits
    (in real time) until the reader has taken them all before it moves the clock on, so every
    reading lands in the countdown however slow the machine."""

    LINES_PER_READ = 20

    def __init__(self, *, fast: float):
        self.fast = fast
        self.clock = VirtualClock(100.0)
        self.console_kmh = 0.0
        self.ports: list[serial.SerialBase] = []

    def set_console(self, kmh: float) -> None:
        self.console_kmh = kmh

    def open(self, url, **kwargs):
        port = serial.serial_for_url(url, **kwargs)
        port.write(f"{self.console_kmh * self.fast:.3f}\r\n".encode() * self.LINES_PER_READ)
        self.ports.append(port)
        return port

    def sleep(self, seconds: float) -> None:
        assert wait_until(
            lambda: self.ports and self.ports[-1].is_open and not self.ports[-1].in_waiting,
            within_s=5.0,
            what="the reader to take the bridge's lines",
        )
        self.clock.advance(seconds)

    def rig(self) -> tuple[Rig, ScriptedTerminal]:
        terminal = ScriptedTerminal(on_ask=self.set_console)
        rig = Rig(terminal=terminal, clock=self.clock, sleep=self.sleep, serial_for_url=self.open)
        return rig, terminal


def serial_example(tmp_path) -> Path:
    """The example config, every comment in it, reading a bridge on loop://."""
    path = tmp_path / "config.toml"
    text = EXAMPLE.read_text().replace('\nkind = "hall"\n', '\nkind = "serial"\n')
    path.write_text(text.replace('url = ""', 'url = "loop://"'))
    return path


def test_serial_check_compares_the_bridge_with_the_console_at_two_speeds(tmp_path):
    rig, terminal = LoopBridge(fast=1.03).rig()  # this bridge reads 3 % high at every speed
    args = parse("--config", str(serial_config(tmp_path, "loop://")), "--check", "2", "5")
    assert calibrate_main(args, rig=rig) == 0, terminal.errors
    assert "At 2 km/h on the console retrotread reads 2.06 km/h (+3.0 %)." in terminal.lines
    assert "At 5 km/h on the console retrotread reads 5.15 km/h (+3.0 %)." in terminal.lines
    assert terminal.lines[-1] == (
        "retrotread reads 3.0 % above the console at every speed checked: [sensor] "
        "serial_scale is off; 0.9709 would match the console."
    )


def test_serial_scale_is_found_on_top_of_the_scale_in_use():
    # a bridge sending 3.15 at 3 km/h on the console reads 5 % fast
    assert rounded(scale_for_console(3.15, console_kmh=3.0, current=1.0)) == 0.9524
    # with that scale in place the same bridge reads 3.15 x 0.9524: the scale stays
    in_place = scale_for_console(3.15 * 0.9524, console_kmh=3.0, current=0.9524)
    assert rounded(in_place) == 0.9524
    # a scale of 1.1 on a bridge now reading 10 % fast means the bridge itself is right
    assert scale_for_console(3.3, console_kmh=3.0, current=1.1) == pytest.approx(1.0)
    with pytest.raises(CalibrationError, match="standing belt"):
        scale_for_console(0.0, console_kmh=3.0, current=1.0)


def test_serial_write_saves_the_scale_for_a_bridge_reading_5_percent_fast(tmp_path):
    path = serial_example(tmp_path)
    before = path.read_text().splitlines()
    rig, terminal = LoopBridge(fast=1.05).rig()
    args = parse("--config", str(path), "--console-kmh", "3", "--write")
    assert calibrate_main(args, rig=rig) == 0, terminal.errors
    assert (
        "The bridge reported 3.15 km/h on average (20 readings, 0 lines without a speed) at "
        "3 km/h on the console (+5.0 %)." in terminal.lines
    )
    assert "serial_scale = 0.9524 (now 1)." in terminal.lines
    assert f"Wrote [sensor] serial_scale = 0.9524 into {path}, comments kept." in terminal.lines
    after = path.read_text().splitlines()
    changed = [(a, b) for a, b in zip(before, after, strict=True) if a != b]
    assert changed == [("serial_scale = 1.0", "serial_scale = 0.9524")]
    assert load_config(path)[0].sensor.serial_scale == 0.9524


def test_calibrating_again_with_the_scale_in_place_does_not_compound_it(tmp_path):
    path = serial_example(tmp_path)
    bridge = LoopBridge(fast=1.05)
    args = parse("--config", str(path), "--console-kmh", "3", "--write")
    rig, terminal = bridge.rig()
    assert calibrate_main(args, rig=rig) == 0, terminal.errors
    rig, terminal = bridge.rig()
    assert calibrate_main(args, rig=rig) == 0, terminal.errors
    # the source applied 0.9524 once: the bridge now reads the console's speed
    assert (
        "The bridge reported 3.00 km/h on average (20 readings, 0 lines without a speed) at "
        "3 km/h on the console (+0.0 %)." in terminal.lines
    )
    assert "serial_scale = 0.9524 (now 0.9524)." in terminal.lines
    assert load_config(path)[0].sensor.serial_scale == 0.9524  # not 0.9524 x 0.9524


def test_serial_check_after_calibrating_reads_with_the_new_scale(tmp_path):
    path = serial_example(tmp_path)
    rig, terminal = LoopBridge(fast=1.05).rig()
    args = parse("--config", str(path), "--console-kmh", "3", "--check", "2", "5")
    assert calibrate_main(args, rig=rig) == 0, terminal.errors
    assert "At 2 km/h on the console retrotread reads 2.00 km/h (+0.0 %)." in terminal.lines
    assert "At 5 km/h on the console retrotread reads 5.00 km/h (+0.0 %)." in terminal.lines
    assert "retrotread agrees with the console within 1 % at these speeds." in terminal.lines
    assert load_config(path)[0].sensor.serial_scale == 1.0  # no --write


def test_serial_scale_out_of_range_is_refused_and_the_file_is_untouched(tmp_path):
    # [sensor] unit says km/h but the bridge sends m/s: 0.833 at 3 km/h on the console
    path = serial_example(tmp_path)
    before = path.read_bytes()
    rig, terminal = LoopBridge(fast=1 / 3.6).rig()
    args = parse("--config", str(path), "--console-kmh", "3", "--write")
    assert calibrate_main(args, rig=rig) == 2
    assert "serial_scale = 3.601 (now 1)." in terminal.lines
    assert "wrong [sensor] unit" in terminal.text
    assert terminal.errors == [
        "the calibrated value: [sensor] serial_scale must be a number from 0.5 to 2 (a factor "
        f"on the bridge's speed), not 3.601, so {path} is unchanged; check the console speed "
        "and the bridge's unit."
    ]
    assert path.read_bytes() == before
