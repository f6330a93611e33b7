"""The LED, the buzzer and the safety-key relay on gpiozero devices: a thin adapter that plays
the patterns the controller picks (device/core/signals.py).

Every output starts and ends in its safe state: LED dark, buzzer quiet, relay resting with the
treadmill's safety-key loop closed, so a Pi that stops or reboots leaves the treadmill working
exactly as it would without us.
"""

from __future__ import annotations

import logging

from gpiozero import LED, Buzzer, DigitalOutputDevice

from device.config.model import OutputsConfig
from device.core.signals import LED_BLINKS, TUNES, LedPattern, RelayState, Tune
from device.hardware.pins import SETUP_ERRORS, PinError, explain_pin_error

log = logging.getLogger("retrotread.outputs")


class Outputs:
    """The Pi's LED, buzzer and relay. Pins set to None in the config are not fitted and are
    skipped. `pin_factory` is gpiozero's (MockFactory in tests and the demo)."""

    def __init__(self, config: OutputsConfig, *, pin_factory=None):
        self.led = self.buzzer = self.relay = None
        self.led = self._open(LED, config.led_pin, "the LED", "led_pin", pin_factory)
        self.buzzer = self._open(Buzzer, config.buzzer_pin, "the buzzer", "buzzer_pin", pin_factory)
        # "active" means the loop is cut; relay_active_high says which level does that
        self.relay = self._open(
            DigitalOutputDevice,
            config.relay_pin,
            "the safety-key relay",
            "relay_pin",
            pin_factory,
            active_high=config.relay_active_high,
            initial_value=False,
        )

    def _open(self, kind, pin, what: str, key: str, pin_factory, **options):
        if pin is None:
            return None  # not fitted
        try:
            return kind(pin, pin_factory=pin_factory, **options)
        except SETUP_ERRORS as exc:
            self.close()
            message = explain_pin_error(exc, pin, what=what, key=f"[outputs] {key}")
            raise PinError(message) from exc

    def apply(self, name: str, state: str) -> None:
        if name == "led":
            self.show(LedPattern(state))
        elif name == "buzzer":
            self.play(Tune(state))
        elif name == "relay":
            self.set_relay(RelayState(state))
        else:
            raise ValueError(f"no output called {name!r}")

    def show(self, pattern: LedPattern) -> None:
        if self.led is None:
            return
        if pattern is LedPattern.OFF:
            self.led.off()
        elif pattern is LedPattern.STEADY:
            self.led.on()
        else:
            blink = LED_BLINKS[pattern]
            self.led.blink(on_time=blink.on_s, off_time=blink.off_s, background=True)

    def play(self, tune: Tune) -> None:
        if self.buzzer is None:
            return
        if tune is Tune.SILENT:
            self.buzzer.off()
            return
        beeps = TUNES[tune]
        self.buzzer.beep(
            on_time=beeps.on_s,
            off_time=beeps.off_s or 0.01,
            n=None if beeps.endless else beeps.count,
            background=True,
        )

    def set_relay(self, state: RelayState) -> None:
        if self.relay is None:
            return
        if state is RelayState.OPEN:
            self.relay.on()
        else:
            self.relay.off()

    def safe(self) -> None:
        """LED dark, buzzer quiet, safety-key loop closed."""
        for device in (self.led, self.buzzer, self.relay):
            if device is not None:
                device.off()

    def close(self) -> None:
        self.safe()
        for device in (self.led, self.buzzer, self.relay):
            if device is not None:
                device.close()
        self.led = self.buzzer = self.relay = None

    def __enter__(self) -> Outputs:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
