"""Belt speed read as text lines from a serial port (a DIY Arduino/ESP32 bridge, a console tap).

Such bridges send newline-ended ASCII like `3.20 km/h` or `SPD:3.2`, with no checksum and debug
text mixed in. A configurable pattern with a named group `speed` picks the number; every
other line is counted and skipped, never fatal. The port is opened with pyserial's
`serial_for_url`, so `/dev/ttyUSB0`, a pty path and `loop://` all work, and a port that is
missing at start or vanishes later (cable pulled, USB re-enumerated) is reopened with
exponential backoff while the rest of the device keeps running.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import serial
from regex import Pattern

from device.config.line_pattern import PatternError, compile_speed_pattern
from device.hardware.serial_port import ReconnectingPort
from device.hardware.source import SourceError
from device.hardware.speed_line import (
    MAX_LINE_BYTES,
    MAX_PLAUSIBLE_KMH,
    UNIT_FACTORS,
    LineSplitter,
    parse_speed,
)

if TYPE_CHECKING:
    from device.config.model import SensorConfig

log = logging.getLogger("retrotread.serial")

# Of the lines one read brings, only the newest are matched: an honest bridge sends 1-50 lines
# a second, one or two per read (a few dozen after a USB hiccup); a read of hundreds is a
# bridge gone wrong, and matching every line would take the CPU the tick needs. The rest are
# counted, never read.
MAX_LINES_PER_READ = 32


class SerialSpeedSource(ReconnectingPort):
    """Reads speed lines from `url` on a background thread.

    Each accepted reading calls `on_speed(t, kmh)` on the reader thread (t monotonic seconds
    on `clock` when the line arrived; hand it to the tick thread through a queue) and is
    kept for `speed_kmh(t)`, which returns None once the reading is older than `stale_s`
    seconds: a silent bridge means the speed is unknown, not constant.

    `pattern` is a regular expression with a named group `speed`, searched in each line,
    whose text is read only when it is a plain ASCII decimal ("3.2", "1,5", ".5");
    `unit` is "km/h", "mph" or "m/s", and `scale` a factor on every reading ([sensor]
    serial_scale, for a bridge that reads fast or slow). Readings below zero or above
    `max_kmh` km/h once scaled are rejected like garbage. Reconnect delays start at
    `backoff_s[0]` seconds and double up to `backoff_s[1]`; `read_timeout_s` bounds how long
    `close()` waits for the reader.
    """

    def __init__(
        self,
        url: str,
        *,
        baud: int = 9600,
        pattern: str = r"(?<![0-9.,])(?P<speed>[-+]?(?:[0-9]+(?:[.,][0-9]+)?|\.[0-9]+))",
        unit: str = "km/h",
        scale: float = 1.0,
        stale_s: float = 2.0,
        on_speed: Callable[[float, float], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        serial_for_url: Callable[..., serial.Serial] = serial.serial_for_url,
        backoff_s: tuple[float, float] = (0.5, 10.0),
        read_timeout_s: float = 0.2,
        max_kmh: float = MAX_PLAUSIBLE_KMH,
    ):
        self._regex = _compile_pattern(pattern)
        if unit not in UNIT_FACTORS:
            choices = ", ".join(UNIT_FACTORS)
            raise SourceError(f"[sensor] unit {unit!r} is not one of {choices}; fix the config.")
        if not (math.isfinite(scale) and scale > 0):
            raise SourceError(
                f"[sensor] serial_scale {scale!r} must be a positive factor; fix the config."
            )
        self._factor = UNIT_FACTORS[unit] * scale
        self._stale_s = stale_s
        self._on_speed = on_speed
        self._clock = clock
        self._max_kmh = max_kmh
        super().__init__(
            url,
            baud=baud,
            read_timeout_s=read_timeout_s,
            serial_for_url=serial_for_url,
            backoff_s=backoff_s,
            log=log,
            thread_name=f"serial-speed {url}",
        )
        self._last: tuple[float, float] | None = None
        self._rejected = 0
        self._skipped = 0
        self._rejects_said: set[str] = set()  # the causes the journal has been told

    @classmethod
    def from_config(
        cls,
        sensor: SensorConfig,
        *,
        on_speed: Callable[[float, float], None] | None,
        clock: Callable[[], float] = time.monotonic,
        serial_for_url: Callable[..., serial.Serial] = serial.serial_for_url,
    ) -> SerialSpeedSource:
        """The source the [sensor] table describes (SensorConfig.serial_settings), not yet
        started; the daemon and calibrate both build it here, so a reading is scaled the same
        way, exactly once, in both."""
        settings = sensor.serial_settings()
        return cls(
            settings.pop("url"),
            **settings,
            stale_s=sensor.stale_s,
            on_speed=on_speed,
            clock=clock,
            serial_for_url=serial_for_url,
        )

    # -- what the daemon reads -------------------------------------------------------------

    def speed_kmh(self, t: float) -> float | None:
        """The last reading in km/h, or None when there is none or it is older than stale_s
        seconds at time t."""
        with self._lock:
            last = self._last
        if last is None:
            return None
        reading_t, kmh = last
        if t - reading_t > self._stale_s:
            return None
        return kmh

    def is_stale(self, t: float) -> bool:
        """True when the speed is unknown at time t (no reading within stale_s seconds)."""
        return self.speed_kmh(t) is None

    @property
    def skipped_lines(self) -> int:
        """Lines never matched: older ones of a read that brought more than a bridge sends."""
        with self._lock:
            return self._skipped

    @property
    def rejected_lines(self) -> int:
        """Lines that held no acceptable speed (garbage, noise, overlong, implausible)."""
        with self._lock:
            return self._rejected

    def __repr__(self) -> str:
        state = "connected" if self.connected else "disconnected"
        return f"<SerialSpeedSource {self._url!r} {state}>"

    # -- reader thread ---------------------------------------------------------------------

    def _say_opened(self) -> None:
        if self._outage_logged:
            log.info("serial port %s is back; reading speed again", self._url)
            self._outage_logged = False
        else:
            log.info("reading belt speed from serial port %s", self._url)

    def _use_port(self, port: serial.Serial) -> None:
        lines = LineSplitter(MAX_LINE_BYTES)
        while not self._stop.is_set():
            try:
                data = port.read(1)  # blocks up to read_timeout_s
                if data:
                    waiting = port.in_waiting
                    if waiting:
                        data += port.read(waiting)
                else:
                    self._check_device_file()
            except (serial.SerialException, OSError) as exc:
                self._broke(
                    f"serial port {self._url} stopped answering ({exc}); check the cable, "
                    "retrotread keeps reconnecting."
                )
                return
            complete, overlong = lines.feed(data)
            if overlong:
                self._reject(
                    overlong,
                    f"{overlong} line(s) longer than {MAX_LINE_BYTES} bytes",
                    cause="too long",
                )
            if len(complete) > MAX_LINES_PER_READ:
                with self._lock:
                    self._skipped += len(complete) - MAX_LINES_PER_READ
                complete = complete[-MAX_LINES_PER_READ:]
            for line in complete:
                self._take(line)

    def _take(self, line: bytes) -> None:
        t = self._clock()
        kmh = parse_speed(line, self._regex, factor=self._factor, max_kmh=self._max_kmh)
        if kmh is None:
            self._reject(1, repr(line[:80]))
            return
        with self._lock:
            self._last = (t, kmh)
        if self._on_speed is not None:
            try:
                self._on_speed(t, kmh)
            except Exception:
                # A bug downstream must not silence the sensor; the journal gets the trace.
                log.exception("on_speed failed for a reading from %s", self._url)

    def _reject(self, count: int, what: str, *, cause: str = "not a speed") -> None:
        with self._lock:
            self._rejected += count
            first = cause not in self._rejects_said
            self._rejects_said.add(cause)
        if first:  # once per cause in the journal; the status counts every one
            log.info(
                "serial port %s: rejecting lines (%s), first %s; the dashboard counts them",
                self._url, cause, what,
            )  # fmt: skip
        else:
            log.debug("serial port %s: rejected %s", self._url, what)


def _compile_pattern(pattern: str) -> Pattern[str]:
    try:
        return compile_speed_pattern(pattern)
    except PatternError as exc:
        raise SourceError(
            f"[sensor] pattern {pattern!r} is not usable, {exc}; fix it in the config."
        ) from None
