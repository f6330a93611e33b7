"""The belt's hall (or reed) sensor on a GPIO pin, through gpiozero.

Wiring: the sensor's open-collector output goes between the GPIO and ground and pulls the line
low each time a magnet passes, so one falling edge is one pulse, one `meters_per_pulse` of
belt. The rising edge as the magnet leaves is not a pulse: counting both would double the
speed, and the time a magnet spends in front of the sensor depends on the gap, not the belt.

Each pulse is stamped with the time of the edge, not the time our callback runs. gpiozero
passes the pin factory's ticks of the edge to `Pin.when_changed(ticks, state)`; the lgpio
factory fills them from the kernel's edge timestamp, so thread wake-up latency (milliseconds,
more under load) stays out of the pulse intervals the estimator divides by.

No debouncing here: gpiozero's bounce_time differs between pin factories (the mock factory
ignores it), so the estimator debounces every source the same way.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from gpiozero import GPIODevice

from device.hardware.pins import SETUP_ERRORS, PinError, default_pin_factory, explain_pin_error
from device.hardware.source import SourceError

log = logging.getLogger("retrotread.hall")

# An edge older than this when its callback runs means the factory's tick clock is not ours
# (kernels before 5.7 stamp GPIO events with CLOCK_REALTIME): fall back to callback time.
MAX_EDGE_AGE_S = 5.0
WHAT, KEY = "the hall sensor", "[sensor] pin"


class HallSensor:
    """Calls `on_pulse(t)` once per magnet pass, t the falling edge's time in seconds on
    `clock` (monotonic by default).

    `pin` is the BCM number (or any gpiozero pin name). `pull_up=True` enables the internal
    pull-up the open-collector sensor needs; pass False only when the sensor module has its
    own pull-up resistor (the pin is then left floating, never pulled down, because the line
    must idle high for falling edges to mean anything).

    `on_pulse` runs on the pin factory's thread: keep it short and hand the time to the tick
    thread (the daemon puts it on a queue). gpiozero keeps only a weak reference to this
    object's handler, so keep the sensor referenced for as long as it should count.
    """

    def __init__(
        self,
        pin: int | str,
        *,
        on_pulse: Callable[[float], None],
        pin_factory=None,
        pull_up: bool = True,
        clock: Callable[[], float] = time.monotonic,
        what: str = WHAT,
        key: str = KEY,
    ):
        """`what` and `key` name the sensor in error sentences (the check sensor has its
        own: "the check sensor", "[sensor.check] pin")."""
        self._pin_name = pin
        self._what, self._key = what, key
        self._on_pulse = on_pulse
        self._clock = clock
        self._device: GPIODevice | None = None
        self._clock_mismatch_logged = False
        self.pulse_count = 0
        if pin_factory is None:
            try:
                pin_factory = default_pin_factory(pin, what=what, key=key)
            except PinError as exc:
                raise SourceError(str(exc)) from exc
        factory = pin_factory
        self._factory = factory
        try:
            # A plain GPIODevice reserves the pin (so a button configured on the same pin
            # fails loudly); the Pin API below does the edge work.
            self._device = GPIODevice(pin, pin_factory=factory)
            gpio = self._device.pin
            gpio.function = "input"
            gpio.pull = "up" if pull_up else "floating"
            gpio.edges = "falling"
            gpio.when_changed = self._edge
        except SETUP_ERRORS as exc:
            self.close()
            raise SourceError(explain_pin_error(exc, pin, what=what, key=key)) from exc

    @property
    def pin(self) -> int | str:
        """The pin as given (BCM number)."""
        return self._pin_name

    @property
    def closed(self) -> bool:
        return self._device is None

    def close(self) -> None:
        """Stop counting and release the pin for other devices. Safe to call twice."""
        device, self._device = self._device, None
        if device is None:
            return
        gpio = device.pin
        if gpio is not None:
            gpio.when_changed = None
        device.close()

    def __enter__(self) -> HallSensor:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"{self.pulse_count} pulses"
        return f"<HallSensor pin={self._pin_name!r} {state}>"

    def _edge(self, ticks, state) -> None:
        # `state` is ignored on purpose: some factories read the level after the interrupt,
        # by which time a short magnet pass may already be high again.
        if self._device is None:
            return
        # Read both clocks back to back so the conversion costs microseconds, not the
        # callback's latency.
        now_ticks = self._factory.ticks()
        now = self._clock()
        age = self._factory.ticks_diff(now_ticks, ticks)
        if not -0.001 <= age <= MAX_EDGE_AGE_S:
            if not self._clock_mismatch_logged:
                self._clock_mismatch_logged = True
                log.warning(
                    "%s on pin %s: edge ticks are %.1f s away from now, so the pin "
                    "factory's clock is not monotonic time; using callback times instead",
                    self._what,
                    self._pin_name,
                    age,
                )
            age = 0.0
        self.pulse_count += 1
        self._on_pulse(now - max(age, 0.0))
