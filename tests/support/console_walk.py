"""A walker on a treadmill whose only sensor is a CSAFE console, as the real Controller reports
it in virtual time: the statuses the dashboard's console tests (Flask and browser) show."""

from __future__ import annotations

from typing import Any

from device.config.model import Config, EnforceConfig, SensorConfig, SensorKind, SessionConfig
from device.core.console import ConsoleState
from device.core.controller import Controller
from device.core.status import ConsoleLinkStatus
from device.health import health_status

CONSOLE_PORT = "socket://10.0.0.21:4001"
CONSOLE_CONFIG = Config(
    sensor=SensorConfig(kind=SensorKind.CSAFE, url=CONSOLE_PORT),
    enforce=EnforceConfig(soft="csafe"),
    session=SessionConfig(follow_console=True),
)
LINK_WELL: ConsoleLinkStatus = {"connected": True, "error": None, "unsupported": None,
                                "answers": 420, "timeouts": 0, "rejected_frames": 0,
                                "distance_m": 812.4}  # fmt: skip


def with_health(
    status: dict[str, Any], console: ConsoleLinkStatus | None, **sensor: Any
) -> dict[str, Any]:
    """The controller's status with the daemon's health part, the console link's as given;
    `sensor` may give the primary's `rejected` count and `error`."""
    report = health_status(
        None,
        sensor_rejected=sensor.get("rejected", 0),
        sensor_error=sensor.get("error"),
        inputs_dropped=0,
        console=console,
    )
    return {**status, "health": report}


def console_walk(*, over_kmh: float | None = None) -> dict[str, Any]:
    """The console In Use before its first speed, so the session it asks for (follow_console)
    starts once the speed is known, at 1.5 km/h; with `over_kmh`, the belt then over the
    2 km/h start cap until the grace runs out and the console is sent SetSpeed. The
    controller's status at that moment (5 s in, without `over_kmh`)."""
    controller = Controller(CONSOLE_CONFIG, t=0.0)
    controller.console_changed(0.05, ConsoleState.IN_USE)
    for tick in range(400):
        t = round(tick * 0.1, 6)
        controller.speed_reading(t, 1.5 if over_kmh is None or t < 10 else over_kmh)
        controller.tick(t)
        assert controller.session.in_session or t < 0.2, "the console's start waited for speed"
        status = dict(controller.status(t))
        if (over_kmh is None and t >= 5) or status["slowing"]:
            return status
    raise AssertionError("the console was never asked to slow the belt")
