"""What calibration touches at the treadmill: the terminal (prompts and a countdown), the hall
sensor's pin, the serial bridge and the CSAFE console. Each is swapped in tests through `Rig`.

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

from device.calibrate.arithmetic import (
    BeltCount,
    CalibrationError,
    ConsoleSpeeds,
    bounce_gap_s,
    console_speeds,
    count_edges,
)
from device.config.model import Config

TICK_S = 0.25  # how often the countdown line is redrawn
# The console's first speed comes within this, or calibrate says why not before anyone
# starts the belt. Consoles answer a poll in milliseconds; telling one that gives no speed
# over CSAFE takes four polls.
CONSOLE_ANSWERS_WITHIN_S = 5.0
# A count in which the console gave no new speed for this long (its link's stale_s) is not
# one: its last speed would stand in for a belt nobody heard about.
CONSOLE_STALE_S = 2.0
STOP_DAEMON = "sudo systemctl stop retrotread-device"


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
    edges, waited = _watch_pin(config, seconds, rig, lambda n: f"{n} pulses")
    return _counted(config, edges, waited, seconds=seconds, console_kmh=console_kmh)


def _watch_pin(
    config: Config, seconds: float, rig: Rig, status: Callable[[int], str]
) -> tuple[list[float], float]:
    """The hall sensor's edge times over `seconds` (and the seconds really waited), the
    outputs held at rest; `status(pulses so far)` goes on the countdown line."""
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
            waited = _count_down(seconds, rig, lambda: status(len(edges)))
    except (PinError, SourceError) as exc:
        raise CalibrationError(str(exc)) from None
    return list(edges), waited


def _counted(
    config: Config, edges: list[float], waited: float, *, seconds: float, console_kmh: float
) -> BeltCount:
    pin = config.sensor.pin
    count = count_edges(edges, window_s=waited, bounce_s=bounce_gap_s(console_kmh))
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


class ConsoleReader:
    """The speeds a CSAFE console reports, polled by the daemon's own ConsoleLink while
    calibrating: `readings` are (t on rig's clock, km/h). A context manager: entering opens
    the port and waits for the first speed, so a console that is off, unplugged or gives no
    speed over CSAFE is one sentence before anyone starts the belt."""

    def __init__(self, url: str, baud: int, *, rig: Rig, what: str = "[sensor.check]"):
        from device.hardware.csafe import ConsoleLink

        self.url = url
        self.readings: list[tuple[float, float]] = []  # appended on the link's thread
        self._rig = rig
        self.link = ConsoleLink(
            url,
            baud=baud,
            stale_s=CONSOLE_STALE_S,
            on_speed=lambda t, kmh: self.readings.append((t, kmh)),
            clock=rig.clock,
            serial_for_url=rig.serial_for_url,
            what=what,
        )

    def __enter__(self) -> ConsoleReader:
        self.link.start()
        try:
            self._first_speed()
        except BaseException:
            self.link.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.link.close()

    @property
    def speed_kmh(self) -> float:
        """The last speed the console reported."""
        return self.readings[-1][1]

    @property
    def step_kmh(self) -> float | None:
        """How finely the console counts its speed (its CSAFE unit), km/h; None before a
        speed."""
        from device.hardware.csafe_codec import KMH_PER_SPEED_UNIT

        unit = self.link.speed_unit
        return None if unit is None else KMH_PER_SPEED_UNIT.get(unit)

    def _first_speed(self) -> None:
        started = self._rig.clock()
        while not self.readings:
            if self.link.last_error is not None:
                raise CalibrationError(self.link.last_error)
            if self.link.unsupported is not None:
                raise CalibrationError(
                    f"the console on {self.url} answers GetSpeed with its status only: it "
                    "does not give its speed over CSAFE; type the speed it shows instead "
                    "(--console-kmh V)."
                )
            if self._rig.clock() - started > CONSOLE_ANSWERS_WITHIN_S:
                raise CalibrationError(
                    f"no speed from the console on {self.url} in "
                    f"{CONSOLE_ANSWERS_WITHIN_S:g} s; check that it is on, that the cable is "
                    f"in its CSAFE jack and that the daemon is stopped ({STOP_DAEMON})."
                )
            self._rig.sleep(0.05)


@dataclass(frozen=True)
class ConsoleCount:
    """Magnet passes counted while the console reported its speed, and what it reported over
    the span from the first pass to the last."""

    count: BeltCount
    speeds: ConsoleSpeeds


def count_against_console(
    config: Config, console: ConsoleReader, *, seconds: float, rig: Rig
) -> ConsoleCount:
    """Magnet passes on the hall sensor's pin for `seconds`, beside the console's speeds.
    The outputs are held at rest as in count_belt."""
    started = rig.clock()
    edges, waited = _watch_pin(
        config, seconds, rig, lambda n: f"{n} pulses, console {console.speed_kmh:.1f} km/h"
    )
    ended = rig.clock()
    during = console_speeds(console.readings, start_s=started, end_s=ended)
    if during.longest_gap_s > CONSOLE_STALE_S:
        raise CalibrationError(
            f"the console on {console.url} gave no speed for {during.longest_gap_s:.0f} s "
            "during the count; check its cable and count again."
        )
    if during.highest_kmh <= 0:
        raise CalibrationError(
            f"the console on {console.url} reported a standing belt the whole count; start "
            "the belt on the console and count again."
        )
    count = _counted(config, edges, waited, seconds=seconds, console_kmh=during.highest_kmh)
    assert count.first_s is not None  # _counted refuses a count without intervals
    span = console_speeds(
        console.readings, start_s=count.first_s, end_s=count.first_s + count.span_s
    )
    return ConsoleCount(count, span)
