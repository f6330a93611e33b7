"""The device's configuration: one TOML file, resolved into frozen dataclasses.

The table and key names are a contract with users' files and the docs; add keys freely,
never rename one. Every default below has its reason in config.example.toml.
"""

from __future__ import annotations

from dataclasses import dataclass, field

DEFAULT_PATH = "/etc/retrotread/config.toml"

# A pin value of None means "not fitted" (written as "none" in the TOML file).
Pin = int | None


@dataclass(frozen=True)
class MachineConfig:
    id: str = "treadmill-1"
    name: str = "Treadmill 1"


@dataclass(frozen=True)
class SensorConfig:
    kind: str = "hall"  # "hall" | "serial"
    pin: int = 17
    # one magnet on a 50 mm front roller: pi * 0.050 m; calibrate for the real machine
    meters_per_pulse: float = 0.157
    max_speed_kmh: float = 25.0
    url: str = ""
    baud: int = 9600
    pattern: str = r"(?P<speed>[-+]?\d+(?:\.\d+)?)"
    unit: str = "km/h"  # "km/h" | "mph" | "m/s"
    stale_s: float = 2.0


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


@dataclass(frozen=True)
class StorageConfig:
    db: str = "/var/lib/retrotread/retrotread.db"


@dataclass(frozen=True)
class WebConfig:
    listen: str = "0.0.0.0:8080"
    open_controls: bool = False


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
