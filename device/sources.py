"""The speed sources the [sensor] table describes, opened for the daemon: the primary (a hall
sensor, a serial bridge or a CSAFE console) and the optional check channel (a second hall
sensor, or the console), each reporting onto the tick thread's inbox.

The console, whichever role it has, is also the one to ask for SetSpeed, and its link's
health (answers, timeouts, what it does not support) goes into the status.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass

from device.config.model import SensorConfig, SensorKind
from device.core.status import ConsoleLinkStatus
from device.hardware.csafe import ConsoleLink
from device.hardware.hall import HallSensor
from device.hardware.serial_speed import SerialSpeedSource
from device.inputs import Input, InputKind, InputQueue

Source = HallSensor | SerialSpeedSource | ConsoleLink


@dataclass
class Sensors:
    """What the daemon opened to read the belt."""

    primary: Source
    check: HallSensor | ConsoleLink | None = None

    @property
    def console(self) -> ConsoleLink | None:
        """The CSAFE console, whichever role it has."""
        for source in (self.primary, self.check):
            if isinstance(source, ConsoleLink):
                return source
        return None

    def close(self) -> None:
        for source in (self.check, self.primary):
            if source is not None:
                source.close()

    def rejected(self, bounces: int) -> int:
        """What the primary refused: lines, frames, or (a hall sensor) `bounces`, the edges
        its estimator took for bounces."""
        primary = self.primary
        if isinstance(primary, SerialSpeedSource):
            return primary.rejected_lines
        if isinstance(primary, ConsoleLink):
            return primary.rejected_frames
        return bounces

    @property
    def error(self) -> str | None:
        """Why the primary cannot read the belt, as one sentence; None while it can."""
        primary = self.primary
        if isinstance(primary, SerialSpeedSource):
            return primary.last_error
        if isinstance(primary, ConsoleLink):
            return primary.last_error or primary.unsupported
        return None

    @property
    def skipped(self) -> int:
        """Readings let go before they were matched (a serial flood)."""
        primary = self.primary
        return primary.skipped_lines if isinstance(primary, SerialSpeedSource) else 0

    def console_health(self) -> ConsoleLinkStatus | None:
        console = self.console
        if console is None:
            return None
        return {
            "connected": console.connected,
            "error": console.last_error,
            "unsupported": console.unsupported,
            "answers": console.polls,
            "timeouts": console.timeouts,
            "rejected_frames": console.rejected_frames,
            "distance_m": None if console.distance_m is None else round(console.distance_m, 1),
        }


def open_sensors(
    sensor: SensorConfig,
    inputs: InputQueue,
    *,
    pin_factory=None,
    clock: Callable[[], float] = time.monotonic,
) -> Sensors:
    """Open the primary and the check channel; on an error opening the second, the first is
    closed again before the error goes on."""
    primary = _open_primary(sensor, inputs, pin_factory=pin_factory, clock=clock)
    try:
        return Sensors(primary, _open_check(sensor, inputs, pin_factory=pin_factory, clock=clock))
    except BaseException:
        with contextlib.suppress(Exception):
            primary.close()
        raise


def _console(
    url: str, baud: int, inputs: InputQueue, *, speed: InputKind, stale_s: float, what: str,
    clock: Callable[[], float],
) -> ConsoleLink:  # fmt: skip
    link = ConsoleLink(
        url,
        baud=baud,
        stale_s=stale_s,
        on_speed=lambda t, kmh: inputs.put(Input(speed, t, kmh)),
        on_state=lambda t, state: inputs.put(Input(InputKind.CONSOLE_STATE, t, state)),
        on_answer=lambda t, answer: inputs.put(Input(InputKind.CONSOLE_ANSWER, t, answer)),
        clock=clock,
        what=what,
    )
    link.start()
    return link


def _open_primary(
    sensor: SensorConfig, inputs: InputQueue, *, pin_factory, clock: Callable[[], float]
) -> Source:
    if sensor.kind == SensorKind.HALL:
        return HallSensor(
            sensor.pin,
            on_pulse=lambda t: inputs.put(Input(InputKind.PULSE, t)),
            pin_factory=pin_factory,
            clock=clock,
        )
    if sensor.kind == SensorKind.CSAFE:
        return _console(sensor.url, sensor.baud, inputs, speed=InputKind.SPEED,
                        stale_s=sensor.stale_s, what="[sensor]", clock=clock)  # fmt: skip
    source = SerialSpeedSource.from_config(
        sensor, on_speed=lambda t, kmh: inputs.put(Input(InputKind.SPEED, t, kmh)), clock=clock
    )
    source.start()
    return source


def _open_check(
    sensor: SensorConfig, inputs: InputQueue, *, pin_factory, clock: Callable[[], float]
) -> HallSensor | ConsoleLink | None:
    check = sensor.check
    if check is None:
        return None
    if check.kind == SensorKind.CSAFE:
        return _console(check.url, check.baud, inputs, speed=InputKind.CHECK_SPEED,
                        stale_s=sensor.stale_s, what="[sensor.check]", clock=clock)  # fmt: skip
    return HallSensor(
        check.pin,
        on_pulse=lambda t: inputs.put(Input(InputKind.CHECK_PULSE, t)),
        pin_factory=pin_factory,
        clock=clock,
        what="the check sensor",
        key="[sensor.check] pin",
    )
