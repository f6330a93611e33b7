"""The belt's hall sensor on gpiozero's mock pins: one pulse per magnet pass, stamped with the
time of the edge."""

from __future__ import annotations

import errno
import sys

import gpiozero.pins.mock as mock_pins
import pytest
from gpiozero import Button, Device
from gpiozero.pins.mock import MockFactory, MockPin
from support.virtual_clock import VirtualClock

from device.hardware.hall import HallSensor
from device.hardware.source import SourceError

HALL_PIN = 17


@pytest.fixture
def factory():
    factory = MockFactory()
    yield factory
    factory.reset()
    factory.close()


@pytest.fixture
def pulses():
    return []


def magnet_pass(pin: MockPin) -> None:
    """The magnet arrives (the sensor pulls the line low) and leaves (the pull-up wins)."""
    pin.drive_low()
    pin.drive_high()


def test_each_magnet_pass_is_one_pulse(factory, pulses):
    with HallSensor(HALL_PIN, on_pulse=pulses.append, pin_factory=factory) as sensor:
        pin = factory.pin(HALL_PIN)
        for _ in range(3):
            magnet_pass(pin)
        assert len(pulses) == 3
        assert pulses == sorted(pulses)
        assert sensor.pulse_count == 3


def test_line_idles_high_on_the_internal_pull_up(factory, pulses):
    with HallSensor(HALL_PIN, on_pulse=pulses.append, pin_factory=factory):
        pin = factory.pin(HALL_PIN)
        assert pin.pull == "up"
        assert pin.state == 1
        assert pin.edges == "falling"


def test_magnet_leaving_the_sensor_is_not_a_pulse(factory, pulses):
    with HallSensor(HALL_PIN, on_pulse=pulses.append, pin_factory=factory):
        pin = factory.pin(HALL_PIN)
        pin.drive_low()
        assert len(pulses) == 1
        pin.drive_high()
        assert len(pulses) == 1


def test_sensor_module_with_its_own_pull_up_leaves_the_pin_floating(factory, pulses):
    with HallSensor(HALL_PIN, on_pulse=pulses.append, pin_factory=factory, pull_up=False):
        pin = factory.pin(HALL_PIN)
        assert pin.pull == "floating"
        pin.drive_high()  # the module's resistor
        magnet_pass(pin)
        assert len(pulses) == 1


def test_pulse_carries_the_edge_time_not_the_time_the_callback_runs(monkeypatch, pulses):
    # The mock pins stamp edges and tell ticks with gpiozero.pins.mock.monotonic: put that on
    # a virtual clock, and make every callback run 250 ms after its edge, as a loaded Pi's
    # callback thread might.
    ticks = VirtualClock(100.0)
    monkeypatch.setattr(mock_pins, "monotonic", ticks)

    class LateCallbackPin(MockPin):
        def _call_when_changed(self):
            ticks.advance(0.25)
            super()._call_when_changed()

    factory = MockFactory(pin_class=LateCallbackPin)
    # Our clock runs in another epoch than the factory's ticks, like time.monotonic() versus
    # the kernel's event stamps would if they differed: the conversion must bridge that.
    ours = 5000.0

    def our_clock() -> float:
        return ticks() + ours

    try:
        with HallSensor(HALL_PIN, on_pulse=pulses.append, pin_factory=factory, clock=our_clock):
            pin = factory.pin(HALL_PIN)
            ticks.advance(1.0)  # edge at ticks 101.0, callback at 101.25
            pin.drive_low()
            ticks.advance(0.5)
            pin.drive_high()
            ticks.advance(0.5)  # edge at ticks 102.25, callback at 102.5
            pin.drive_low()
    finally:
        factory.reset()
        factory.close()

    assert pulses == [pytest.approx(5101.0), pytest.approx(5102.25)]


def test_edge_ticks_from_a_foreign_clock_fall_back_to_callback_time(monkeypatch, caplog, pulses):
    # Old kernels stamp GPIO events with wall-clock time: an "edge" decades away from now
    # must not reach the estimator.
    ticks = VirtualClock(100.0)
    monkeypatch.setattr(mock_pins, "monotonic", ticks)

    class WallClockStampPin(MockPin):
        def _call_when_changed(self):
            super(MockPin, self)._call_when_changed(1.7e9, self._state)

    factory = MockFactory(pin_class=WallClockStampPin)
    try:
        with HallSensor(HALL_PIN, on_pulse=pulses.append, pin_factory=factory, clock=ticks):
            pin = factory.pin(HALL_PIN)
            magnet_pass(pin)
            ticks.advance(1.0)
            magnet_pass(pin)
    finally:
        factory.reset()
        factory.close()

    assert pulses == [pytest.approx(100.0), pytest.approx(101.0)]
    warnings = [
        r for r in caplog.records if r.name == "retrotread.hall" and r.levelname == "WARNING"
    ]
    assert len(warnings) == 1
    assert "pin 17" in warnings[0].getMessage()


def test_closed_sensor_stops_counting_and_frees_the_pin(factory, pulses):
    sensor = HallSensor(HALL_PIN, on_pulse=pulses.append, pin_factory=factory)
    pin = factory.pin(HALL_PIN)
    magnet_pass(pin)
    sensor.close()
    sensor.close()  # twice is harmless
    magnet_pass(pin)
    assert len(pulses) == 1
    assert sensor.closed

    with HallSensor(HALL_PIN, on_pulse=pulses.append, pin_factory=factory):
        magnet_pass(pin)
    assert len(pulses) == 2


def test_pin_not_on_the_board_names_the_pin_and_the_config_key(factory, pulses):
    with pytest.raises(SourceError) as caught:
        HallSensor(99, on_pulse=pulses.append, pin_factory=factory)
    message = str(caught.value)
    assert "99" in message
    assert "[sensor] pin" in message
    assert "\n" not in message
    assert message.endswith(".")


def test_pin_already_used_by_a_button_is_refused(factory, pulses):
    button = Button(HALL_PIN, pin_factory=factory)
    try:
        with pytest.raises(SourceError) as caught:
            HallSensor(HALL_PIN, on_pulse=pulses.append, pin_factory=factory)
        assert "GPIO pin 17" in str(caught.value)
        assert "already used" in str(caught.value)
        assert "\n" not in str(caught.value)
    finally:
        button.close()


def test_machine_without_gpio_asks_for_the_pi_extra(monkeypatch, pulses):
    # Block every GPIO driver gpiozero knows, so this holds on a Pi as well as on a laptop.
    for module in ("lgpio", "RPi", "RPi.GPIO", "pigpio", "gpiozero.pins.native"):
        monkeypatch.setitem(sys.modules, module, None)
    monkeypatch.delenv("GPIOZERO_PIN_FACTORY", raising=False)
    monkeypatch.setattr(Device, "pin_factory", None)

    with pytest.raises(SourceError) as caught:
        HallSensor(HALL_PIN, on_pulse=pulses.append)
    message = str(caught.value)
    assert "pin 17" in message
    assert "retrotread[pi]" in message
    assert "\n" not in message


def test_unknown_pin_factory_in_the_environment_is_named(monkeypatch, pulses):
    monkeypatch.setenv("GPIOZERO_PIN_FACTORY", "nosuchfactory")
    monkeypatch.setattr(Device, "pin_factory", None)

    with pytest.raises(SourceError) as caught:
        HallSensor(HALL_PIN, on_pulse=pulses.append)
    assert "GPIOZERO_PIN_FACTORY='nosuchfactory'" in str(caught.value)
    assert "pin 17" in str(caught.value)


class RefusingFactory(MockFactory):
    """A mock board whose pins fail to open the way a real driver's do."""

    def __init__(self, error: OSError):
        super().__init__()
        self.error = error

    def pin(self, name, pin_class=None, **kwargs):
        raise self.error


def test_gpio_chip_without_permission_asks_for_the_gpio_group(pulses):
    denied = PermissionError(errno.EACCES, "Permission denied", "/dev/gpiochip0")
    with pytest.raises(SourceError) as caught:
        HallSensor(HALL_PIN, on_pulse=pulses.append, pin_factory=RefusingFactory(denied))
    assert "pin 17" in str(caught.value)
    assert "gpio group" in str(caught.value)


def test_pin_held_by_another_program_is_reported_busy(pulses):
    busy = OSError(errno.EBUSY, "Device or resource busy")
    with pytest.raises(SourceError) as caught:
        HallSensor(HALL_PIN, on_pulse=pulses.append, pin_factory=RefusingFactory(busy))
    assert "GPIO pin 17 is busy" in str(caught.value)
