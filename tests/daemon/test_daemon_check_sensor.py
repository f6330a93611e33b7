"""The daemon with a second hall sensor ([sensor.check]) on gpiozero's mock pins: it opens
both pins, feeds both channels to the guard, and says which one fell silent."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from gpiozero.pins.mock import MockFactory
from support.daemon_thread import daemon_running
from support.waiting import wait_until

from device.config.load import config_from_mapping
from device.daemon import Daemon

CHECK_PIN = 27
# 1.6 km/h at 0.157 m per pulse: slow enough that a channel ending its pulses may be a belt
# that stopped, so only the other channel, still pulsing, shows it is silent
EDGE_EVERY_S = 0.35


class Magnets(threading.Thread):
    """Pulls the sensor pins low once per magnet pass, each channel while it is `alive`."""

    def __init__(self, pins: dict[str, Any]):
        super().__init__(daemon=True)
        self.pins, self.alive = pins, set(pins)
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(EDGE_EVERY_S):
            for name, pin in self.pins.items():
                if name in self.alive:
                    pin.drive_low()
                    pin.drive_high()


@pytest.fixture
def running(tmp_path) -> Iterator[tuple[Daemon, Magnets]]:
    config = config_from_mapping({"sensor": {"check": {"pin": CHECK_PIN}}})
    factory = MockFactory()
    magnets = Magnets({"hall": factory.pin(17), "check": factory.pin(CHECK_PIN)})
    try:
        with daemon_running(
            config, socket_path=tmp_path / "d.sock", db_path=tmp_path / "h.db",
            pin_factory=factory,
        ) as daemon:  # fmt: skip
            magnets.start()
            try:
                yield daemon, magnets
            finally:
                magnets.stop.set()
    finally:
        factory.reset()
        factory.close()


def test_the_daemon_reads_both_sensors_and_they_agree(running) -> None:
    daemon, _ = running
    status = wait_until(lambda: (s := daemon.status()).get("speed_kmh") and s, within_s=5,
                        what="a speed")  # fmt: skip
    assert status["sensor"]["checked"] is True
    controller = daemon.controller
    check = controller.sensor.check if controller is not None else None
    assert check is not None
    wait_until(lambda: check.estimator.pulses >= 5, within_s=5, what="check pulses")
    assert daemon.status()["sensor"]["ok"] is True


def test_a_check_sensor_that_falls_silent_is_named(running) -> None:
    daemon, magnets = running
    wait_until(lambda: daemon.status().get("speed_kmh"), within_s=5, what="a speed")
    magnets.alive.discard("check")  # its wire is cut; the hall sensor goes on pulsing
    sensor = wait_until(
        lambda: (s := daemon.status()["sensor"])["state"] == "silent" and s,
        within_s=5,
        what="the silent check sensor",
    )
    assert (sensor["channel"], sensor["ok"]) == ("check", False)
    assert daemon.status()["speed_kmh"] is None  # the device no longer vouches for a speed
