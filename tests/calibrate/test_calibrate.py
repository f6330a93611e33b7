"""`retrotread calibrate`: the arithmetic, counting magnet passes on gpiozero's mock pins (in
virtual time, and once from a thread in real time), reading a serial bridge over a pty and on
loop://, the check at two console speeds, and writing the result into a config file with its
comments."""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
import threading
import time
import tomllib
from dataclasses import replace
from pathlib import Path

import gpiozero.pins.mock as mock_pins
import pytest
from gpiozero import Button, DigitalOutputDevice
from hypothesis import given
from hypothesis import strategies as st
from support.calibrating import EXAMPLE, REPO, ScriptedTerminal, parse
from support.virtual_clock import VirtualClock

from device.calibrate.arithmetic import (
    BOUNCE_S,
    MIN_METERS_PER_PULSE,
    CalibrationError,
    SpeedCheck,
    bounce_gap_s,
    check_verdict,
    count_edges,
    mpp_from_belt,
    mpp_from_count,
    mpp_from_roller,
    rounded,
    save_setting,
)
from device.calibrate.command import calibrate_main
from device.calibrate.rig import ConsoleTerminal, Rig
from device.config.load import load_config
from device.config.model import Config, SensorConfig

HALL_PIN, RELAY_PIN = 17, 26


class VirtualBelt:
    """A belt carrying a magnet past the hall sensor in virtual time: `sleep(dt)` moves the
    clock on and drives the pin low and high at each pass. The belt really runs at
    `true_kmh(console_kmh)` with `meters_per_pulse` m between passes; `extra_every` adds a
    spurious pulse within every so many intervals above `extra_above_kmh` (motor noise on the
    sensor's cable)."""

    def __init__(self, pin, clock: VirtualClock, *, meters_per_pulse: float):
        self.pin, self.clock, self.mpp = pin, clock, meters_per_pulse
        self.true_kmh = lambda console_kmh: console_kmh
        self.extra_every, self.extra_above_kmh = 0, math.inf
        self.kmh = 0.0
        self._next: float | None = None
        self._passes = 0

    def set_console(self, console_kmh: float) -> None:
        self.kmh = self.true_kmh(console_kmh)
        self._next = self.clock() + 0.37 * self.mpp / (self.kmh / 3.6)  # any phase

    def sleep(self, seconds: float) -> None:
        end = self.clock() + seconds
        while self._next is not None and self._next <= end:
            self.clock.now = self._next
            self._pass()
            self._next += self.mpp / (self.kmh / 3.6)
        self.clock.now = end

    def _pass(self) -> None:
        self.pin.drive_low()
        self.pin.drive_high()
        self._passes += 1
        fast = self.kmh > self.extra_above_kmh
        if fast and self.extra_every and self._passes % self.extra_every == 0:
            self.clock.now += 0.4 * self.mpp / (self.kmh / 3.6)
            self.pin.drive_low()
            self.pin.drive_high()


@pytest.fixture
def clock(monkeypatch) -> VirtualClock:
    """One virtual clock for the mock pins' edge ticks and the calibration's countdown."""
    clock = VirtualClock(100.0)
    monkeypatch.setattr(mock_pins, "monotonic", clock)
    return clock


@pytest.fixture
def config_file(tmp_path) -> Path:
    """The example config, every comment in it, with one magnet on a 0.2 m pitch."""
    path = tmp_path / "config.toml"
    text = EXAMPLE.read_text().replace("meters_per_pulse = 0.157", "meters_per_pulse = 0.2")
    path.write_text(text)
    return path


def rig_on_belt(mock_factory, clock, *, meters_per_pulse: float, on_ask=None):
    belt = VirtualBelt(mock_factory.pin(HALL_PIN), clock, meters_per_pulse=meters_per_pulse)
    terminal = ScriptedTerminal(on_ask=on_ask or belt.set_console)
    rig = Rig(terminal=terminal, pin_factory=mock_factory, clock=clock, sleep=belt.sleep)
    return rig, belt, terminal


# -- the arithmetic ----------------------------------------------------------------------


def test_one_magnet_pass_every_144_ms_at_5_kmh_is_a_fifth_of_a_metre_per_pulse():
    edges = [10.0 + 0.144 * k for k in range(70)]
    count = count_edges(edges, window_s=10.0, bounce_s=BOUNCE_S)
    assert (count.edges, count.intervals) == (70, 69)
    assert mpp_from_count(count, console_kmh=5.0) == pytest.approx(0.2)


def test_a_window_that_cuts_intervals_still_times_the_slow_belt_exactly():
    # 1 km/h with 0.25 m per pulse: a pass every 0.9 s. A 4 s window holds 5 passes, and
    # 5 x 0.25 m / 4 s reads 1.125 km/h (+12.5 %); edge to edge it is exact.
    edges = [0.3 + 0.9 * k for k in range(5)]
    count = count_edges(edges, window_s=4.0, bounce_s=BOUNCE_S)
    assert len(edges) * 0.25 / 4.0 * 3.6 == pytest.approx(1.125)
    assert mpp_from_count(count, console_kmh=1.0) == pytest.approx(0.25)


@given(
    meters_per_pulse=st.floats(MIN_METERS_PER_PULSE, 5.0),
    console_kmh=st.floats(0.5, 25.0),
    window_s=st.floats(5.0, 60.0),
    phase=st.floats(0.0, 0.999),
)
def test_calibrated_meters_per_pulse_reads_back_the_console_speed(
    meters_per_pulse, console_kmh, window_s, phase
):
    interval = meters_per_pulse / (console_kmh / 3.6)
    edges, t = [], phase * interval
    while t < window_s:
        edges.append(t)
        t += interval
    count = count_edges(edges, window_s=window_s, bounce_s=bounce_gap_s(console_kmh))
    if count.intervals < 1:
        with pytest.raises(CalibrationError, match="too few to time the belt"):
            mpp_from_count(count, console_kmh=console_kmh)
        return
    assert count.bounces == 0  # no real pulse is ever taken for a bounce
    mpp = mpp_from_count(count, console_kmh=console_kmh)
    assert mpp == pytest.approx(meters_per_pulse, rel=1e-9)
    assert count.speed_kmh(mpp) == pytest.approx(console_kmh, rel=1e-9)


def test_reed_switch_bounce_is_dropped_and_counted():
    clean = [0.2 * k for k in range(30)]
    chatter = [t + 0.002 for t in clean[::3]]  # every third closing bounces 2 ms later
    count = count_edges(clean + chatter, window_s=6.0, bounce_s=bounce_gap_s(3.6))
    assert count.bounces == 10
    assert mpp_from_count(count, console_kmh=3.6) == pytest.approx(0.2)


def test_belt_length_over_the_magnets_on_the_belt():
    assert mpp_from_belt(3.162, magnets=1) == pytest.approx(3.162)
    assert mpp_from_belt(3.162, magnets=2) == pytest.approx(1.581)


def test_roller_circumference_counts_the_belt_thickness_over_the_magnets_on_it():
    assert mpp_from_roller(50, magnets=1) == pytest.approx(math.pi * 0.050)
    assert mpp_from_roller(50, magnets=2, belt_thickness_mm=1.6) == pytest.approx(
        math.pi * 0.0516 / 2
    )
    with pytest.raises(CalibrationError, match="--magnets must be 1 or more"):
        mpp_from_roller(50, magnets=0)


def test_calibrated_values_keep_four_significant_digits():
    assert rounded(math.pi * 0.050) == 0.1571
    assert rounded(3.16249) == 3.162


def test_same_small_shortfall_at_both_speeds_may_be_the_console_reading_fast():
    checks = [SpeedCheck(2.0, 1.94), SpeedCheck(5.0, 4.85)]
    assert [round(c.error_pct, 1) for c in checks] == [-3.0, -3.0]
    verdict = check_verdict(checks, setting="[sensor] meters_per_pulse", current=0.2)
    assert "3.0 % below the console" in verdict[0]
    assert "2.5-6 % fast" in verdict[0]
    assert verdict[1] == "To match the console instead, set [sensor] meters_per_pulse to 0.2062."


def test_same_large_error_at_both_speeds_is_a_wrong_meters_per_pulse():
    checks = [SpeedCheck(2.0, 2.2), SpeedCheck(5.0, 5.5)]
    verdict = check_verdict(checks, setting="[sensor] meters_per_pulse", current=0.2)
    assert verdict == [
        "retrotread reads 10.0 % above the console at every speed checked: "
        "[sensor] meters_per_pulse is off; 0.1818 would match the console."
    ]


def test_error_that_changes_with_speed_is_not_fixed_by_any_scale():
    checks = [SpeedCheck(2.0, 2.0), SpeedCheck(5.0, 5.5)]
    (verdict,) = check_verdict(checks, setting="[sensor] meters_per_pulse", current=0.2)
    assert verdict.startswith("The error changes with speed (10.0 points apart)")
    assert "at most 3 mm" in verdict


def test_readings_within_one_percent_agree_with_the_console():
    checks = [SpeedCheck(2.0, 2.01), SpeedCheck(5.0, 4.98)]
    assert check_verdict(checks, setting="x", current=0.2) == [
        "retrotread agrees with the console within 1 % at these speeds."
    ]


# -- writing the config ------------------------------------------------------------------


def test_writing_the_result_changes_one_line_and_keeps_every_comment(config_file):
    before = config_file.read_text().splitlines()
    config, _ = load_config(config_file)
    new = save_setting(config_file, "meters_per_pulse", 0.1934, config=config, hint="re-measure")
    after = config_file.read_text().splitlines()
    changed = [(a, b) for a, b in zip(before, after, strict=True) if a != b]
    assert changed == [("meters_per_pulse = 0.2", "meters_per_pulse = 0.1934")]
    assert new.sensor.meters_per_pulse == 0.1934
    assert load_config(config_file)[0].sensor.meters_per_pulse == 0.1934


def test_result_out_of_range_is_refused_in_one_sentence_and_the_file_is_untouched(config_file):
    before = config_file.read_bytes()
    config, _ = load_config(config_file)
    with pytest.raises(CalibrationError) as refused:
        save_setting(
            config_file, "meters_per_pulse", 12.0, config=config, hint="check the belt length"
        )
    message = str(refused.value)
    assert message == (
        "the calibrated value: [sensor] meters_per_pulse must be a number from 0.01 to 5 m, "
        f"not 12.0, so {config_file} is unchanged; check the belt length."
    )
    assert config_file.read_bytes() == before


# -- counting on the pin -----------------------------------------------------------------


def test_console_count_on_the_mock_pin_finds_the_belt_travel_per_pulse(
    mock_factory, clock, config_file
):
    rig, _, terminal = rig_on_belt(mock_factory, clock, meters_per_pulse=0.1934)
    code = calibrate_main(
        parse("--config", str(config_file), "--console-kmh", "5", "--seconds", "20"), rig=rig
    )
    assert code == 0, terminal.errors
    assert terminal.prompts == ["Press Enter when the belt runs steadily at 5 km/h: "]
    assert "meters_per_pulse = 0.1934 m (at 5 km/h on the console)." in terminal.lines
    # the current 0.2 m reads the belt 3.4 % fast: that is the difference from the console
    assert "With the current 0.2 m retrotread reads 5.17 km/h at 5 km/h on the console" in (
        terminal.text
    )
    assert "Nothing written" in terminal.lines[-1]
    assert load_config(config_file)[0].sensor.meters_per_pulse == 0.2


def test_counting_holds_the_safety_loop_closed_so_a_fail_safe_treadmill_can_run(
    mock_factory, clock, config_file
):
    relay = mock_factory.pin(RELAY_PIN)
    relay_levels = []
    rig, belt, _ = rig_on_belt(mock_factory, clock, meters_per_pulse=0.2)

    def sleep(seconds):
        relay_levels.append((relay.function, relay.state))
        belt.sleep(seconds)

    rig.sleep = sleep
    assert calibrate_main(parse("--config", str(config_file), "--console-kmh", "4"), rig=rig) == 0
    # relay_active_high = false: the loop is closed (relay at rest) while the GPIO is high
    assert relay_levels and set(relay_levels) == {("output", 1)}
    DigitalOutputDevice(RELAY_PIN, pin_factory=mock_factory).close()  # released afterwards


def test_console_count_with_write_saves_the_value_keeping_comments(
    mock_factory, clock, config_file
):
    rig, _, terminal = rig_on_belt(mock_factory, clock, meters_per_pulse=0.25)
    args = parse("--config", str(config_file), "--console-kmh", "3", "--write")
    assert calibrate_main(args, rig=rig) == 0, terminal.errors
    assert f"Wrote [sensor] meters_per_pulse = 0.25 into {config_file}, comments kept." in (
        terminal.lines
    )
    text = config_file.read_text()
    assert "meters_per_pulse = 0.25\n" in text
    assert "# Belt travel per pulse, metres" in text


def test_check_reports_the_error_at_each_console_speed(mock_factory, clock, config_file):
    rig, belt, terminal = rig_on_belt(mock_factory, clock, meters_per_pulse=0.2)
    belt.true_kmh = lambda console_kmh: console_kmh * 0.97  # the console reads 3 % fast
    args = parse("--config", str(config_file), "--check", "2", "5", "--seconds", "20")
    assert calibrate_main(args, rig=rig) == 0, terminal.errors
    assert terminal.prompts == [
        "Press Enter when the belt runs steadily at 2 km/h: ",
        "Press Enter when the belt runs steadily at 5 km/h: ",
    ]
    assert "At 2 km/h on the console retrotread reads 1.94 km/h (-3.0 %)." in terminal.lines
    assert "At 5 km/h on the console retrotread reads 4.85 km/h (-3.0 %)." in terminal.lines
    assert "commonly read 2.5-6 % fast" in terminal.text
    assert not any(line.startswith("Wrote") for line in terminal.lines)


def test_check_tells_extra_pulses_at_speed_from_a_wrong_scale(mock_factory, clock, config_file):
    rig, belt, terminal = rig_on_belt(mock_factory, clock, meters_per_pulse=0.2)
    belt.extra_every, belt.extra_above_kmh = 10, 4.0  # one extra pulse in ten, fast only
    args = parse("--config", str(config_file), "--check", "2", "5", "--seconds", "20")
    assert calibrate_main(args, rig=rig) == 0, terminal.errors
    assert "At 2 km/h on the console retrotread reads 2.00 km/h (+0.0 %)." in terminal.lines
    # 152 intervals where the belt made 138: 10 % more belt than really ran
    assert "Counted 153 pulses: 152 intervals in 19.87 s." in terminal.lines
    assert "At 5 km/h on the console retrotread reads 5.51 km/h (+10.1 %)." in terminal.lines
    assert "The error changes with speed" in terminal.text


def test_no_magnet_passing_is_one_sentence_naming_the_pin_and_the_gap(
    mock_factory, clock, config_file
):
    belt_stands_still = lambda _kmh: None  # noqa: E731
    rig, _, terminal = rig_on_belt(
        mock_factory, clock, meters_per_pulse=0.2, on_ask=belt_stands_still
    )
    args = parse("--config", str(config_file), "--console-kmh", "5", "--write")
    before = config_file.read_bytes()
    assert calibrate_main(args, rig=rig) == 2
    (error,) = terminal.errors
    assert error.startswith("0 pulse(s) from the hall sensor on GPIO 17 in 30 s")
    assert "within 3 mm" in error
    assert config_file.read_bytes() == before


def test_sensor_pin_held_by_another_device_is_refused_in_one_sentence(
    mock_factory, clock, config_file
):
    holder = Button(HALL_PIN, pin_factory=mock_factory)  # as a running daemon would hold it
    rig, _, terminal = rig_on_belt(mock_factory, clock, meters_per_pulse=0.2)
    try:
        code = calibrate_main(parse("--config", str(config_file), "--console-kmh", "5"), rig=rig)
    finally:
        holder.close()
    assert code == 2
    assert terminal.errors == [
        "GPIO pin 17 for the hall sensor is already used by another device; give [sensor] pin "
        "a free pin in the config."
    ]


def test_pin_driven_by_a_thread_in_real_time_is_counted(mock_factory, config_file):
    # 1 m/s past a magnet every 50 ms: 0.05 m per pulse. Real time and threads, so the
    # tolerance covers a loaded machine's sleep jitter.
    pin = mock_factory.pin(HALL_PIN)
    stop = threading.Event()

    def belt():
        next_pass = time.monotonic()
        while not stop.is_set():
            next_pass += 0.05
            time.sleep(max(0.0, next_pass - time.monotonic()))
            pin.drive_low()
            pin.drive_high()

    driver = threading.Thread(target=belt, daemon=True)
    terminal = ScriptedTerminal(on_ask=lambda _kmh: driver.start())
    args = parse("--config", str(config_file), "--console-kmh", "3.6", "--seconds", "1.5")
    try:
        code = calibrate_main(args, rig=Rig(terminal=terminal, pin_factory=mock_factory))
    finally:
        stop.set()
        driver.join(timeout=2)
    assert code == 0, terminal.errors
    (line,) = [line for line in terminal.lines if line.startswith("meters_per_pulse = ")]
    measured = float(line.split()[2])
    assert measured == pytest.approx(0.05, rel=0.1)


# -- the command line --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "start"),
    [
        ((), "say how to calibrate:"),
        (("--belt-length-m", "3.1"), "add --magnets N:"),
        (("--console-kmh", "5", "--magnets", "2"), "--magnets goes with --belt-length-m"),
        (("--check", "2", "5", "--write"), "--write saves a calibrated value:"),
        (("--belt-length-m", "3", "--magnets", "1", "--belt-thickness-mm", "2"),
         "--belt-thickness-mm goes with --roller-diameter-mm."),
    ],
)  # fmt: skip
def test_options_that_do_not_go_together_get_one_sentence(argv, start):
    terminal = ScriptedTerminal()
    assert calibrate_main(parse(*argv), rig=Rig(terminal=terminal)) == 2
    (error,) = terminal.errors
    assert error.startswith(start)
    assert error.endswith(".")


def test_enter_from_a_pipe_that_closed_is_one_sentence():
    def closed_stdin(prompt):
        raise EOFError

    terminal = ConsoleTerminal(read_line=closed_stdin)
    with pytest.raises(CalibrationError, match="run it in a terminal"):
        terminal.ask("Press Enter ")


def run_cli(*argv: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "device.cli", "calibrate", *argv],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=30,
    )


def test_cli_belt_length_method_writes_the_config(tmp_path):
    path = tmp_path / "config.toml"
    shutil.copy(EXAMPLE, path)
    done = run_cli("--config", str(path), "--belt-length-m", "3.162", "--magnets", "1", "--write")
    assert done.returncode == 0, done.stderr
    assert "meters_per_pulse = 3.162 m (belt 3.162 m / 1 magnet on the belt)." in done.stdout
    assert "Every speed reads 20.1 times higher than with the current 0.157 m." in done.stdout
    with path.open("rb") as fh:
        assert tomllib.load(fh)["sensor"]["meters_per_pulse"] == 3.162
    assert path.read_text().count("#") == EXAMPLE.read_text().count("#")
    config, _ = load_config(path)
    assert replace(config, sensor=SensorConfig()) == Config()  # the rest is the example's
    assert replace(config.sensor, meters_per_pulse=0.157) == SensorConfig()


def test_cli_refuses_a_belt_result_out_of_range_and_leaves_the_file(tmp_path):
    path = tmp_path / "config.toml"
    shutil.copy(EXAMPLE, path)
    done = run_cli("--config", str(path), "--belt-length-m", "12", "--magnets", "1", "--write")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == (
        "the calibrated value: [sensor] meters_per_pulse must be a number from 0.01 to 5 m, "
        f"not 12.0, so {path} is unchanged; check the belt length (metres) and the magnet count."
    )
    assert path.read_bytes() == EXAMPLE.read_bytes()
