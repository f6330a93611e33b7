"""What calibration touches at the treadmill: the terminal (prompts and a countdown), the hall
sensor's pin and the serial bridge. Each is swapped in tests through `Rig`.

Counting holds the LED, the buzzer and the safety-key relay in their rest states (loop
closed): the daemon that normally drives them is stopped while calibrating, and a treadmill
wired fail-safe (hardware.md) runs only while the relay is held.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import serial

from device.calibrate.arithmetic import BeltCount, CalibrationError, bounce_gap_s, count_edges
from device.config.model import Config

TICK_S = 0.25  # how often the countdown line is redrawn


class Terminal(Protocol):
    """How calibrate talks to the person at the treadmill; tests pass a scripted one."""

    def say(self, text: str) -> None: ...
    def error(self, text: str) -> None: ...
    def ask(self, prompt: str) -> str: ...
    def progress(self, text: str) -> None: ...


class ConsoleTerminal:
    """stdout and stdin; the countdown rewrites one line when stdout is a terminal."""

    def __init__(self, *, out=None, err=None, read_line: Callable[[str], str] = input):
        self._out = out or sys.stdout
        self._err = err or sys.stderr
        self._read_line = read_line
        self._mid_line = False

    def _end_progress(self) -> None:
        if self._mid_line:
            self._out.write("\n")
            self._mid_line = False

    def say(self, text: str) -> None:
        self._end_progress()
        print(text, file=self._out, flush=True)

    def error(self, text: str) -> None:
        self._end_progress()
        print(text, file=self._err, flush=True)

    def ask(self, prompt: str) -> str:
        self._end_progress()
        try:
            return self._read_line(prompt)
        except EOFError:
            self._out.write("\n")  # end the prompt's line before the error
            raise CalibrationError(
                "calibrate waits for Enter at the treadmill; run it in a terminal, not with "
                "its input from a pipe or /dev/null."
            ) from None

    def progress(self, text: str) -> None:
        if self._out.isatty():
            self._out.write("\r" + text + "\x1b[K")
            self._out.flush()
            self._mid_line = True


@dataclass
class Rig:
    """What calibration touches, swapped in tests: the terminal, gpiozero's pin factory (None:
    the default one), the clock and sleep the countdown runs on, and pyserial's opener."""

    terminal: Terminal = field(default_factory=ConsoleTerminal)
    pin_factory: Any = None
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    serial_for_url: Callable[..., Any] = serial.serial_for_url


def _count_down(seconds: float, rig: Rig, status: Callable[[], str]) -> float:
    """Wait `seconds` on rig's clock with a countdown; returns the seconds really waited."""
    started = rig.clock()
    end = started + seconds
    while (left := end - rig.clock()) > 0:
        rig.terminal.progress(f"  {left:4.0f} s left, {status()}")
        rig.sleep(min(left, TICK_S))
    return rig.clock() - started


def count_belt(config: Config, *, seconds: float, console_kmh: float, rig: Rig) -> BeltCount:
    """Magnet passes on the hall sensor's pin for `seconds`, with the belt near
    `console_kmh` km/h (which sets the bounce filter). Holds the safety-key relay, LED and
    buzzer in their rest states meanwhile."""
    from device.hardware.hall import HallSensor
    from device.hardware.outputs import Outputs
    from device.hardware.pins import PinError, default_pin_factory
    from device.hardware.source import SourceError

    pin = config.sensor.pin
    edges: list[float] = []  # appended on gpiozero's thread; list.append is atomic
    try:
        factory = rig.pin_factory
        if factory is None:
            factory = default_pin_factory(pin, what="the hall sensor", key="[sensor] pin")
        with (
            Outputs(config.outputs, pin_factory=factory),
            HallSensor(pin, on_pulse=edges.append, pin_factory=factory, clock=rig.clock),
        ):
            waited = _count_down(seconds, rig, lambda: f"{len(edges)} pulses")
    except (PinError, SourceError) as exc:
        raise CalibrationError(str(exc)) from None
    count = count_edges(list(edges), window_s=waited, bounce_s=bounce_gap_s(console_kmh))
    if count.intervals < 1:
        raise CalibrationError(
            f"{count.edges} pulse(s) from the hall sensor on GPIO {pin} in {seconds:g} s, too "
            "few to time the belt; check that it runs, that the magnet passes within 3 mm of "
            "the sensor (turned over: a hall switch sees one pole only) and the wiring "
            "(hardware.md)."
        )
    return count


@dataclass(frozen=True)
class BridgeReading:
    """What a serial bridge sent in a window: the mean speed (km/h, scale applied), how many
    readings, and how many lines did not hold a speed."""

    mean_kmh: float
    readings: int
    rejected: int


def read_bridge(config: Config, *, seconds: float, rig: Rig) -> BridgeReading:
    """The serial bridge's speed readings over `seconds`, averaged, as the daemon would see
    them: with this config's [sensor] serial_scale applied (by the source, once)."""
    from device.hardware.serial_speed import SerialSpeedSource
    from device.hardware.source import SourceError

    sensor = config.sensor
    speeds: list[float] = []
    try:
        source = SerialSpeedSource.from_config(
            sensor,
            on_speed=lambda _t, kmh: speeds.append(kmh),
            clock=rig.clock,
            serial_for_url=rig.serial_for_url,
        )
    except SourceError as exc:
        raise CalibrationError(str(exc)) from None
    with source:
        _count_down(seconds, rig, lambda: f"{len(speeds)} readings")
    if not speeds:
        raise CalibrationError(
            source.last_error
            or f"no speed from serial port {sensor.url} in {seconds:g} s "
            f"({source.rejected_lines} line(s) held none); check that the bridge sends, and "
            "[sensor] baud, pattern and unit."
        )
    return BridgeReading(sum(speeds) / len(speeds), len(speeds), source.rejected_lines)
