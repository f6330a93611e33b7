"""The status line ties the device to the dashboard: what the real Controller and the daemon
produce has exactly the keys, in the order, and the value types that DeviceStatus (the
protocol's status type, which the web reads) declares, in the states the live page must show:
idle, walking backward over the cap with a warning, and a sensor the device cannot vouch for."""

from __future__ import annotations

import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints, is_typeddict

import pytest
from gpiozero.pins.mock import MockFactory
from support.daemon_thread import daemon_running
from support.ticking import Treadmill, walking

from device.config.model import Config, SensorConfig, SensorKind
from device.core.controller import Controller
from device.core.status import ControllerStatus
from device.daemon import Daemon
from device.health import health_status
from device.history.writer import HistoryHealth
from device.ipc.protocol import DeviceStatus, device_status


def mismatches(value: Any, hint: Any, where: str = "status") -> list[str]:
    """Where `value` is not of type `hint`, walking TypedDicts, unions and lists; a TypedDict
    must hold exactly its declared keys, in their declared order (the wire's order)."""
    if is_typeddict(hint):
        if not isinstance(value, dict):
            return [f"{where}: {value!r} is not an object"]
        declared = get_type_hints(hint)
        if list(value) != list(declared):
            return [f"{where}: keys {list(value)} instead of {list(declared)}"]
        return [
            m for key, h in declared.items() for m in mismatches(value[key], h, f"{where}.{key}")
        ]
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        arms = [mismatches(value, arm, where) for arm in get_args(hint)]
        return [] if any(not arm for arm in arms) else [m for arm in arms for m in arm]
    if origin is list:
        if not isinstance(value, list):
            return [f"{where}: {value!r} is not a list"]
        (item,) = get_args(hint)
        return [m for i, v in enumerate(value) for m in mismatches(v, item, f"{where}[{i}]")]
    if hint is type(None):
        return [] if value is None else [f"{where}: {value!r} is not None"]
    wanted = (int, float) if hint is float else hint  # an int is a float in JSON and typing
    if (isinstance(value, bool) and hint is not bool) or not isinstance(value, wanted):
        return [f"{where}: {value!r} is not {getattr(hint, '__name__', hint)}"]
    return []


def with_health(status: ControllerStatus) -> DeviceStatus:
    """The daemon's line for a Controller's status: its health part as the daemon builds it."""
    history = HistoryHealth(ok=True, error=None, unsaved_rows=3, lost_rows=0)
    health = health_status(history, sensor_rejected=0, sensor_error=None, inputs_dropped=0)
    return device_status(status, history_error=None, health=health)


def idle() -> ControllerStatus:
    return Controller(Config(), t=0.0).status(0.0)


def backward_over_the_cap() -> ControllerStatus:
    mill = walking(1.0)
    mill.press_start()
    mill.belt_kmh(3.5)  # over the 2.0 km/h start cap and its tolerance
    mill.run(4.0)  # the 3 s mean is over: warned, the grace running out
    return mill.device.status(mill.now)


def hall_sensor_gone_at_speed() -> ControllerStatus:
    mill = walking(6.0)
    mill.belt.set_speed(0.0)
    mill.belt = type(mill.belt)(mill.config.sensor.meters_per_pulse)  # the edges end at once
    mill.run(1.0)
    return mill.device.status(mill.now)


def serial_bridge_gone_quiet() -> ControllerStatus:
    config = Config(sensor=SensorConfig(kind=SensorKind.SERIAL, url="loop://"))
    mill = Treadmill(config)
    mill.device.speed_reading(0.0, 1.0)
    mill.run(5.0)  # no reading since: stale
    return mill.device.status(mill.now)


@pytest.mark.parametrize(
    "status",
    [idle, backward_over_the_cap, hall_sensor_gone_at_speed, serial_bridge_gone_quiet],
)
def test_the_status_has_exactly_the_keys_and_types_the_protocol_declares(status) -> None:
    line = with_health(status())
    assert mismatches(line, DeviceStatus) == []


def test_the_states_checked_are_the_ones_the_live_page_must_show() -> None:
    assert idle()["state"] == "idle" and idle()["warning"] is None
    warned = backward_over_the_cap()
    assert (warned["mode"], warned["state"]) == ("backward", "running")
    assert warned["warning"] is not None and warned["warning"]["reason"] == "over the cap"
    gone = hall_sensor_gone_at_speed()
    assert gone["sensor"]["ok"] is False and gone["speed_kmh"] is None
    assert serial_bridge_gone_quiet()["sensor"]["state"] == "stale"


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    factory = MockFactory()
    try:
        with daemon_running(
            Config(), socket_path=tmp_path / "d.sock", db_path=tmp_path / "h.db",
            pin_factory=factory,
        ) as running:  # fmt: skip
            yield running
    finally:
        factory.reset()
        factory.close()


def test_the_running_daemons_own_status_has_the_declared_shape(daemon: Daemon) -> None:
    line = daemon.status()
    assert line is not None
    assert mismatches(line, DeviceStatus) == []
    assert line["health"]["history"] is not None  # its writer runs: the health says so
