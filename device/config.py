"""The device's configuration: one TOML file, resolved into frozen dataclasses.

The table and key names are a contract with users' files and the docs; add keys freely,
never rename one. Every default below has its reason in config.example.toml.
"""

from __future__ import annotations

import difflib
import logging
import os
import re
import sys
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from device.config_rules import RULES, check_across
from device.config_types import ConfigError, GpioPin, Invalid, show, toml_key, toml_string

__all__ = [
    "DEFAULT_PATH",
    "BackwardConfig",
    "ButtonsConfig",
    "CheckSensorConfig",
    "Config",
    "ConfigError",
    "EnforceConfig",
    "MachineConfig",
    "OutputsConfig",
    "ProgramConfig",
    "SensorConfig",
    "SessionConfig",
    "StorageConfig",
    "WebConfig",
    "check_config_main",
    "config_from_mapping",
    "config_to_dict",
    "format_config",
    "load_config",
    "merge_overrides",
]

DEFAULT_PATH = "/etc/retrotread/config.toml"

# A pin value of None means "not fitted" (written as "none" in the TOML file).
Pin = int | None


@dataclass(frozen=True)
class MachineConfig:
    id: str = "treadmill-1"
    name: str = "Treadmill 1"


@dataclass(frozen=True)
class CheckSensorConfig:
    """A second, independent hall sensor ([sensor.check]) that checks the first: a second
    magnet on the roller, or one on the motor pulley."""

    pin: int = 27
    meters_per_pulse: float = 0.157


@dataclass(frozen=True)
class SensorConfig:
    kind: str = "hall"  # "hall" | "serial"
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
        if self.kind == "serial":
            return (self.kind, *self.serial_settings().items())
        return (self.kind, self.pin)

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


# ---- loading, validation and printing ----------------------------------------------------

log = logging.getLogger("retrotread.config")

BUILT_IN = "built-in defaults"


def _tables() -> dict[str, type]:
    """Table name -> its dataclass, in the order of Config's fields."""
    return {f.name: f.default_factory for f in fields(Config)}  # type: ignore[misc]


def _did_you_mean(name: str, known: Iterable[str], *, brackets: bool = False) -> str:
    known = list(known)
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    wrap = "[{}]" if brackets else "{}"
    if close:
        return "did you mean " + wrap.format(close[0]) + "?"
    return "the known ones are " + ", ".join(wrap.format(k) for k in known) + "."


def _parse_tables(data: Mapping[str, Any], *, source: str) -> dict[str, dict[str, Any]]:
    """Check every key against RULES; return the parsed values, table by table.

    Keys that are absent are absent from the result too (the dataclass default applies).
    """
    parsed: dict[str, dict[str, Any]] = {}
    for table, entries in data.items():
        if table not in RULES:
            hint = _did_you_mean(table, RULES, brackets=True)
            raise ConfigError(
                f"{source}: [{toml_key(table)}] is not a known table; {hint}", key=table
            )
        if not isinstance(entries, Mapping):
            raise ConfigError(
                f"{source}: {table} must be a table ([{table}] with its keys below), "
                f"not {show(entries)}.",
                key=table,
            )
        rules = RULES[table]
        parsed[table] = {}
        for key, value in entries.items():
            sub = f"{table}.{key}"
            if sub in RULES:  # a table inside a table: [sensor.check]
                parsed.update(_parse_tables({sub: value}, source=source))
                continue
            if key not in rules:
                hint = _did_you_mean(key, rules)
                raise ConfigError(
                    f"{source}: [{table}] {toml_key(key)} is not a known key; {hint}",
                    key=f"{table}.{key}",
                )
            rule = rules[key]
            try:
                parsed[table][key] = rule.parse(value)
            except Invalid as exc:
                why = f", {exc.args[0]}" if exc.args else ""
                raise ConfigError(
                    f"{source}: [{table}] {key} must be {rule.expects}, not {show(value)}{why}.",
                    key=f"{table}.{key}",
                ) from None
    return parsed


def config_from_mapping(data: Mapping[str, Any], *, source: str = "config") -> Config:
    """Validate a parsed TOML document (or a scenario's [config] table) into a Config.

    Keys that are absent keep their defaults. `source` starts every error message: the file
    path, or e.g. "walk.toml [config]" for a simulator scenario.
    """
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: the config must be a table of tables, not {show(data)}.")
    parsed = _parse_tables(data, source=source)
    if "sensor.check" in parsed:
        parsed.setdefault("sensor", {})["check"] = CheckSensorConfig(**parsed["sensor.check"])
    config = Config(**{name: cls(**parsed.get(name, {})) for name, cls in _tables().items()})
    check_across(config, source=source)
    return config


def config_to_dict(config: Config) -> dict[str, dict[str, Any]]:
    """The config as plain TOML/JSON values: tuples become lists, a pin of None is "none"."""
    out: dict[str, dict[str, Any]] = {}
    for name in _tables():
        table = getattr(config, name)
        out[name] = {}
        for f in fields(table):
            value = getattr(table, f.name)
            if isinstance(value, CheckSensorConfig):
                value = {c.name: getattr(value, c.name) for c in fields(value)}
            elif value is None and f.name == "check":
                continue  # no second sensor: no [sensor.check] table
            elif value is None and isinstance(RULES[name].get(f.name), GpioPin):
                value = "none"
            elif isinstance(value, tuple):
                value = list(value)
            out[name][f.name] = value
    return out


def merge_overrides(
    config: Config, overrides: Mapping[str, Any], *, source: str = "overrides"
) -> Config:
    """`config` with the keys in `overrides` ({table: {key: value}}) replaced, re-validated.

    The simulator passes a scenario's [config] table here, so a scenario can never run with a
    config the daemon would refuse.
    """
    merged: dict[str, Any] = config_to_dict(config)
    if not isinstance(overrides, Mapping):
        raise ConfigError(f"{source}: overrides must be a table of tables, not {show(overrides)}.")
    for table, entries in overrides.items():
        if isinstance(entries, Mapping) and isinstance(merged.get(table), dict):
            merged[table] = {**merged[table], **entries}
        else:
            merged[table] = entries  # validation names what is wrong with it
    return config_from_mapping(merged, source=source)


def _read_error(path: str, exc: OSError) -> ConfigError:
    if isinstance(exc, FileNotFoundError):
        fix = f"check the path, or leave it out to use {DEFAULT_PATH} (or the built-in defaults)"
        return ConfigError(f"{path}: no such config file; {fix}.")
    if isinstance(exc, IsADirectoryError):
        return ConfigError(f"{path}: is a directory; give the path of the config.toml file.")
    if isinstance(exc, PermissionError):
        return ConfigError(
            f"{path}: permission denied reading the config file; make it readable by the user "
            "the daemon runs as (for example chmod 640 and group retrotread)."
        )
    reason = exc.strerror or exc.__class__.__name__
    return ConfigError(f"{path}: cannot read the config file ({reason}).")


# A config file is a few kilobytes (the commented example is 16); anything past this is not
# one, and reading it whole would only cost the Pi memory.
MAX_CONFIG_BYTES = 1024 * 1024


def _parse_toml(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise _read_error(path, exc) from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(
            f"{path}: is over {MAX_CONFIG_BYTES // 1024} KiB, which no config file is; check "
            "the path, or start again from config.example.toml."
        )
    return parse_toml_text(raw, source=path)


def parse_toml_text(raw: bytes, *, source: str) -> dict[str, Any]:
    """A config file's bytes as TOML, or ConfigError with one sentence naming `source`. A
    UTF-8 byte order mark (Windows editors write one) is fine; nesting deeper than Python's
    parser can follow is one sentence too, never a RecursionError."""
    path = source
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}: byte {exc.start} is not UTF-8 text; save the file as UTF-8."
        ) from None
    if "\x00" in text:
        raise ConfigError(f"{path}: holds NUL bytes, so it is not a text file; check the path.")
    try:
        return tomllib.loads(text)
    except RecursionError:
        raise ConfigError(
            f"{path}: nests arrays or tables deeper than a config file ever needs; fix the "
            "file by hand (retrotread check-config shows the result)."
        ) from None
    except tomllib.TOMLDecodeError as exc:
        # tomllib says e.g. "Expected '=' after a key in a key/value pair (at line 3, column 5)"
        reason = str(exc)
        where = re.search(r"\(at line (\d+), column (\d+)\)", reason)
        reason = re.sub(r"\s*\(at (line \d+, column \d+|end of document)\)", "", reason)
        reason = " ".join((reason[:1].lower() + reason[1:]).split()) or "syntax error"
        place = f"line {where.group(1)}" if where else "the end of the file"
        raise ConfigError(f"{path}: {place} is not valid TOML: {reason}.") from None
    except ValueError:
        # tomllib leaves int()'s refusal of a number past sys.get_int_max_str_digits() as is
        raise ConfigError(
            f"{path}: holds a whole number thousands of digits long, which no setting needs; "
            "fix the file by hand (retrotread check-config shows the result)."
        ) from None


def load_config(path: str | os.PathLike[str] | None = None) -> tuple[Config, str]:
    """Read and validate the config file; return the Config and where it came from.

    With no path, DEFAULT_PATH is read, and if it does not exist the built-in defaults are
    used (logged at INFO) so a fresh install runs. A path given explicitly must exist.
    """
    if path is None:
        default = DEFAULT_PATH
        if not os.path.lexists(default):
            log.info("no config file at %s; using the built-in defaults", default)
            return Config(), BUILT_IN
        path = default
    path = os.fspath(path)
    return config_from_mapping(_parse_toml(path), source=path), path


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return toml_string(str(value))


def format_config(config: Config, *, source: str) -> str:
    """The resolved config as TOML text (it loads back to the same Config)."""
    lines = [f"# retrotread config resolved from {source}; keys not in the file are defaults"]
    for table, entries in config_to_dict(config).items():
        inner = {key: value for key, value in entries.items() if isinstance(value, dict)}
        lines += ["", f"[{table}]"]
        lines += [
            f"{key} = {_toml_value(value)}" for key, value in entries.items() if key not in inner
        ]
        for key, values in inner.items():  # [sensor.check] after the keys of [sensor]
            lines += ["", f"[{table}.{key}]"]
            lines += [f"{k} = {_toml_value(v)}" for k, v in values.items()]
    return "\n".join(lines) + "\n"


def check_config_main(argv_path: str | None = None) -> int:
    """`retrotread check-config [PATH]`: print the resolved config and return 0, or print the
    one-sentence error on stderr and return 2."""
    try:
        config, source = load_config(argv_path)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    sys.stdout.write(format_config(config, source=source))
    return 0
