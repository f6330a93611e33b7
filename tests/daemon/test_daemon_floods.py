"""The real Daemon (socket, SQLite, mock pins) under a flood of sensor readings: the tick
takes the newest, counts the rest, says so once, and its status stays current."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from gpiozero.pins.mock import MockFactory
from support.daemon_thread import daemon_running
from support.waiting import wait_until

from device.config.load import config_from_mapping
from device.daemon import Daemon
from device.inputs import READINGS_LIMIT, Input, InputKind
from device.ipc.client import DeviceClient


@pytest.fixture
def daemon(socket_dir, tmp_path) -> Iterator[Daemon]:
    factory = MockFactory()
    try:
        with daemon_running(
            config_from_mapping({}),
            socket_path=socket_dir / "d.sock",
            db_path=tmp_path / "h.db",
            pin_factory=factory,
        ) as running:
            yield running
    finally:
        factory.reset()
        factory.close()


def test_a_burst_of_readings_keeps_the_newest_and_is_said_once(daemon, caplog) -> None:
    caplog.set_level(logging.INFO, logger="retrotread.device")
    burst = 3 * READINGS_LIMIT
    now = daemon.clock()
    for i in range(burst):  # far more than a tick takes: a chattering wire, all at once
        daemon.inputs.put(Input(InputKind.PULSE, now + i * 1e-6))
    client = DeviceClient(daemon.socket_path, timeout=2.0)
    wait_until(lambda: daemon.inputs.dropped, within_s=5, what="the tick to take the burst")
    assert daemon.inputs.dropped == burst - READINGS_LIMIT
    # edges a microsecond apart are bounces, not a belt: the kept ones but the first ignored
    health = wait_until(
        lambda: (h := client.request({"cmd": "status"})["health"])["sensor_rejected"] and h,
        within_s=2,
        what="the bounces counted",
    )
    assert health["inputs_dropped"] == burst - READINGS_LIMIT
    assert health["sensor_rejected"] == READINGS_LIMIT - 1

    def flood_lines() -> list[str]:
        return [r.getMessage() for r in caplog.records if "flood" in r.getMessage()
                or "faster than the tick" in r.getMessage()]  # fmt: skip

    wait_until(lambda: len(flood_lines()) >= 2, within_s=5, what="the flood's end said")
    said = flood_lines()
    assert len(said) == 2, said  # it began, it ended: once each
    assert "keeping the newest" in said[0] and f"{burst - READINGS_LIMIT} let go" in said[1]
