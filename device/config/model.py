"""The device's configuration as values: one frozen dataclass per TOML table.

The table and key names are a contract with users' files and the docs; add keys freely,
never rename one. Every default below has its reason in config.example.toml. This module is
all the core may know of configuration: no file, no parsing, no rules.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

# A pin value of None means "not fitted" (written as "none" in the TOML file).
Pin = int | None


class SensorKind(StrEnum):
    HALL = "hall"  # edges from a hall or reed sensor on a roller
    SERIAL = "serial"  # speed lines from a DIY serial bridge
    CSAFE = "csafe"  # a gym console's CSAFE port, polled for speed and machine state

    @property
    def reads_port(self) -> bool:
        """Whether this kind reads a serial port (a url), not a GPIO pin."""
        return self is not SensorKind.HALL


@dataclass(frozen=True)
class MachineConfig:
    id: str = "treadmill-1"
    name: str = "Treadmill 1"


@dataclass(frozen=True)
class CheckSensorConfig:
    """A second, independent speed channel ([sensor.check]) that checks the first: a hall
    sensor on a second magnet (the roller, or the motor pulley), or the gym console's CSAFE
    port (kind "csafe": url and baud)."""

    kind: SensorKind = SensorKind.HALL  # "hall" | "csafe"
    pin: int = 27
    meters_per_pulse: float = 0.157
    url: str = ""
    baud: int = 9600


@dataclass(frozen=True)
class SensorConfig:
    kind: SensorKind = SensorKind.HALL
    pin: int = 17
    # one magnet on a 50 mm front roller: pi * 0.050 m; calibrate for the real machine
    meters_per_pulse: float = 0.157
    max_speed_kmh: float = 25.0
    url: str = ""
    baud: int = 9600
    pattern: str = r"(?<![0-9.,])(?P<speed>[-+]?(?:[0-9]+(?:[.,][0-9]+)?|\.[0-9]+))"
    unit: str = "km/h"  # "km/h" | "mph" | "m/s"
    stale_s: float = 2.0
    # factor on every serial reading: 1.0 trusts the bridge; calibrate finds it at a console speed
    serial_scale: float = 1.0
    # [sensor.check]: None when no second sensor is fitted
    check: CheckSensorConfig | None = None

    def opened_with(self) -> tuple[Any, ...]:
        """What the daemon's sensor adapter is opened with: a reload that changes any of it
        needs a restart, and says so. Serial: exactly what SerialSpeedSource.from_config
        passes on, so a setting added there cannot be forgotten here."""
        if self.kind == SensorKind.SERIAL:
            return (self.kind, *self.serial_settings().items())
        if self.kind == SensorKind.CSAFE:
            return (self.kind, self.url, self.baud)
        return (self.kind, self.pin)

    @property
    def console(self) -> tuple[str, int] | None:
        """The CSAFE console's (url, baud), as the primary sensor or the check one; None when
        no console is read."""
        if self.kind == SensorKind.CSAFE:
            return (self.url, self.baud)
        check = self.check
        if check is not None and check.kind == SensorKind.CSAFE:
            return (check.url, check.baud)
        return None

    def serial_settings(self) -> dict[str, Any]:
        """The serial source's settings, as SerialSpeedSource takes them (the url first).
        stale_s is not one: the controller judges staleness, and a reload changes it there."""
        return {"url": self.url, "baud": self.baud, "pattern": self.pattern, "unit": self.unit,
                "scale": self.serial_scale}  # fmt: skip


@dataclass(frozen=True)
class ButtonsConfig:
    start_pin: int = 5
    direction_pin: int = 6
    hold_s: float = 2.0


@dataclass(frozen=True)
class OutputsConfig:
    led_pin: Pin = 13
    buzzer_pin: Pin = 19
    relay_pin: Pin = 26
    relay_active_high: bool = False


@dataclass(frozen=True)
class SessionConfig:
    initial_mode: str = "backward"  # "backward" | "forward"
    auto_start: bool = False
    auto_start_after_s: float = 3.0
    pause_after_stop_s: float = 5.0
    end_after_pause_s: float = 300.0
    # below this the belt counts as stopped (km/h); a walker is never this slow
    moving_kmh: float = 0.3
    # a CSAFE console's InUse / Paused / Finished start, pause and end sessions
    follow_console: bool = False


@dataclass(frozen=True)
class BackwardConfig:
    start_cap_kmh: float = 2.0
    hold_s: float = 120.0
    ramp_step_kmh: float = 0.1
    ramp_every_s: float = 30.0
    level_caps_kmh: tuple[float, ...] = (3.0, 4.0, 5.0, 5.5)
    tolerance_kmh: float = 0.3
    grace_s: float = 5.0
    running_cap_kmh: float = 6.0


@dataclass(frozen=True)
class EnforceConfig:
    action: str = "relay"  # "relay" | "none"
    mode: str = "pulse"  # "pulse" | "latch"
    pulse_s: float = 2.0
    # backward mode, belt over the start cap, and nobody started a session: "warn" or "stop"
    without_session: str = "warn"
    # "csafe": when the grace runs out, first ask the console to slow the belt to the cap
    # (SetSpeed); the action above follows if the belt has not come down within 2 s
    soft: str = "none"  # "none" | "csafe"


@dataclass(frozen=True)
class StorageConfig:
    db: str = "/var/lib/retrotread/retrotread.db"


@dataclass(frozen=True)
class WebConfig:
    listen: str = "0.0.0.0:8080"
    open_controls: bool = False


@dataclass(frozen=True)
class ProgramConfig:
    """Levels, the unlock of backward running and the 4-week program (device/program.py)."""

    single_user: bool = False  # false: a gym; every walk-up user is `guest`, a beginner
    profile: str = "home"  # the one user's profile when single_user
    weight_kg: float = 70.0  # body weight for the energy estimate
    level_up_sessions: int = 4
    qualifying_backward_s: float = 600.0
    # a second of backward walking counts toward qualifying_backward_s at this share of the cap
    qualifying_share: float = 0.8
    running_unlock_sessions: int = 12
    running_unlock_kmh: float = 5.0
    running_unlock_s: float = 300.0
    weeks: int = 4
    sessions_per_week: int = 4
    session_min_s: float = 600.0
    session_max_s: float = 900.0


@dataclass(frozen=True)
class FleetConfig:
    """The gym's MQTT broker (device/fleet): off while `broker` is empty."""

    broker: str = ""  # "" | "mqtt://host:1883" | "mqtts://host:8883"
    site: str = "gym"
    username: str = ""
    password_file: str = ""  # a file only the service user may read
    ca_file: str = ""  # the broker's CA (mqtts), else the system's CAs
    # the fleet service's links to each treadmill's own dashboard
    dashboards: str = "http://{machine_id}.local:8080/"


@dataclass(frozen=True)
class Config:
    machine: MachineConfig = field(default_factory=MachineConfig)
    sensor: SensorConfig = field(default_factory=SensorConfig)
    buttons: ButtonsConfig = field(default_factory=ButtonsConfig)
    outputs: OutputsConfig = field(default_factory=OutputsConfig)
    session: SessionConfig = field(default_factory=SessionConfig)
    backward: BackwardConfig = field(default_factory=BackwardConfig)
    enforce: EnforceConfig = field(default_factory=EnforceConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    web: WebConfig = field(default_factory=WebConfig)
    program: ProgramConfig = field(default_factory=ProgramConfig)
    fleet: FleetConfig = field(default_factory=FleetConfig)
