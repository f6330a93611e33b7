"""What each config key may hold, and the checks that span several keys.

One line in RULES per key: a new key in device/config.py gets its rule here and its comment in
config.example.toml. Every message is one sentence a gym operator can act on, naming the file
and the key; the ranges are documented key by key in config.example.toml.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from device.config import Config


class ConfigError(Exception):
    """A config the device cannot run with; str() is one sentence naming the file and key.

    `key` is "table.key" (or "table", or None for a file-level problem) so the dashboard's
    settings page can point at the field.
    """

    def __init__(self, message: str, *, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


class Invalid(Exception):
    """A rule refused a value; args[0], when given, says why beyond the rule's expectation."""


def _num(x: float) -> str:
    """A number the way an operator writes it: 10, 0.5, 2.25 (never 10.0)."""
    return f"{x:g}"


def toml_string(text: str) -> str:
    """`text` as a TOML string: a literal '...' when it holds backslashes (a regex reads best
    as it was typed), else a basic "..." with quotes and control characters escaped."""
    if "\\" in text and "'" not in text and text.isprintable():
        return f"'{text}'"
    return '"' + "".join(_escape(c) for c in text) + '"'


def _escape(c: str) -> str:
    if c in '"\\':
        return "\\" + c
    if c.isprintable():
        return c
    return f"\\u{ord(c):04x}" if ord(c) <= 0xFFFF else f"\\U{ord(c):08x}"


def toml_key(name: str) -> str:
    """A table or key name as TOML writes it: bare when it can be, else quoted."""
    return name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else toml_string(name)


def show(value: object) -> str:
    """A value as it looked in the TOML file, for 'not ...' at the end of a message."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return toml_string(value if len(value) <= 60 else value[:57] + "...")
    if isinstance(value, Mapping):
        return "a table"
    if isinstance(value, list | tuple):
        inner = ", ".join(show(v) for v in value[:6])
        return "[" + inner + (", ...]" if len(value) > 6 else "]")
    return str(value)


def _is_number(value: object) -> bool:
    # TOML's true is not 1 km/h, although Python's bool is an int.
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass(frozen=True)
class Number:
    """A float from lo to hi inclusive, in `unit`; an int is accepted and made a float."""

    lo: float
    hi: float
    unit: str

    @property
    def expects(self) -> str:
        return f"a number from {_num(self.lo)} to {_num(self.hi)} {self.unit}"

    def parse(self, value: object) -> float:
        # `not lo <= x <= hi` also refuses nan, which TOML allows.
        if not _is_number(value) or not self.lo <= value <= self.hi:  # type: ignore[operator]
            raise Invalid
        return float(value)  # type: ignore[arg-type]


@dataclass(frozen=True)
class NumberList:
    """A list of `least` to `most` numbers, each in `item`'s range; becomes a tuple of floats."""

    item: Number
    least: int
    most: int

    @property
    def expects(self) -> str:
        each = self.item
        return (
            f"a list of {self.least} to {self.most} numbers, each from {_num(each.lo)} "
            f"to {_num(each.hi)} {each.unit}"
        )

    def parse(self, value: object) -> tuple[float, ...]:
        if not isinstance(value, list | tuple) or not self.least <= len(value) <= self.most:
            raise Invalid
        return tuple(self.item.parse(v) for v in value)


@dataclass(frozen=True)
class Choice:
    """One of a fixed set of values (strings, or ints such as baud rates)."""

    options: tuple[str | int, ...]

    @property
    def expects(self) -> str:
        shown = [show(o) for o in self.options]
        either = ", ".join(shown[:-1]) + " or " + shown[-1]
        return either if len(shown) == 2 else "one of " + either

    def parse(self, value: object) -> str | int:
        for option in self.options:
            if type(value) is type(option) and value == option:
                return option
        raise Invalid


@dataclass(frozen=True)
class Flag:
    expects: str = "true or false"

    def parse(self, value: object) -> bool:
        if not isinstance(value, bool):
            raise Invalid
        return value


@dataclass(frozen=True)
class Text:
    """A string; `shape` (a regex the whole string must match) narrows it when given."""

    expects: str
    shape: str = ""

    def parse(self, value: object) -> str:
        if not isinstance(value, str) or (self.shape and not re.fullmatch(self.shape, value)):
            raise Invalid
        return value


# GPIO 0 and 1 carry the HAT ID EEPROM bus; 28 and up are not on the 40-pin header.
GPIO_LO, GPIO_HI = 2, 27


@dataclass(frozen=True)
class GpioPin:
    """A BCM GPIO number on the 40-pin header; `optional` outputs also take "none" (not fitted)."""

    optional: bool = False

    @property
    def expects(self) -> str:
        base = f"a BCM GPIO number from {GPIO_LO} to {GPIO_HI} (the 40-pin header's GPIOs)"
        return base + (' or "none" if not fitted' if self.optional else "")

    def parse(self, value: object) -> int | None:
        if self.optional and value == "none":
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not GPIO_LO <= value <= GPIO_HI:
            raise Invalid
        return value


@dataclass(frozen=True)
class SpeedPattern:
    """A regular expression for one serial line, with the named group `speed`."""

    expects: str = "a regular expression with a named group (?P<speed>...) around the number"

    def parse(self, value: object) -> str:
        if not isinstance(value, str):
            raise Invalid
        try:
            compiled = re.compile(value)
        except re.error as exc:
            raise Invalid(f"which does not compile: {exc}") from None
        if "speed" not in compiled.groupindex:
            raise Invalid("which has no group named speed")
        return value


@dataclass(frozen=True)
class Listen:
    """HOST:PORT for the dashboard; an IPv6 host goes in brackets."""

    expects: str = 'HOST:PORT with a port from 1 to 65535, such as "0.0.0.0:8080" or "[::]:8080"'

    def parse(self, value: object) -> str:
        if not isinstance(value, str):
            raise Invalid
        host, colon, port = value.rpartition(":")
        bracketed = host.startswith("[") and host.endswith("]") and len(host) > 2
        if not colon or not host or any(c.isspace() for c in host):
            raise Invalid
        if ":" in host and not bracketed:
            raise Invalid
        if not (port.isascii() and port.isdigit() and 1 <= int(port) <= 65535):
            raise Invalid
        return value


Rule = Number | NumberList | Choice | Flag | Text | GpioPin | SpeedPattern | Listen

_KMH_CAP = Number(0.5, 25, "km/h")

# table -> key -> rule. Ranges and their reasons: config.example.toml.
RULES: dict[str, dict[str, Rule]] = {
    "machine": {
        "id": Text(
            "1 to 64 letters, digits, '-', '_' or '.' (it names MQTT topics and exports)",
            shape=r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}",
        ),
        "name": Text("a name of 1 to 80 characters", shape=r"(?s)(?=.*\S).{1,80}"),
    },
    "sensor": {
        "kind": Choice(("hall", "serial")),
        "pin": GpioPin(),
        "meters_per_pulse": Number(0.01, 5, "m"),
        "max_speed_kmh": Number(1, 30, "km/h"),
        "url": Text('a serial port such as "/dev/ttyUSB0" or a pyserial URL such as "loop://"'),
        "baud": Choice((1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400)),
        "pattern": SpeedPattern(),
        "unit": Choice(("km/h", "mph", "m/s")),
        "stale_s": Number(0.2, 60, "s"),
    },
    "buttons": {
        "start_pin": GpioPin(),
        "direction_pin": GpioPin(),
        "hold_s": Number(0.5, 10, "s"),
    },
    "outputs": {
        "led_pin": GpioPin(optional=True),
        "buzzer_pin": GpioPin(optional=True),
        "relay_pin": GpioPin(optional=True),
        "relay_active_high": Flag(),
    },
    "session": {
        "initial_mode": Choice(("backward", "forward")),
        "auto_start": Flag(),
        "auto_start_after_s": Number(1, 60, "s"),
        "pause_after_stop_s": Number(1, 600, "s"),
        "end_after_pause_s": Number(10, 7200, "s"),
        "moving_kmh": Number(0.1, 2, "km/h"),
    },
    "backward": {
        "start_cap_kmh": Number(0.5, 10, "km/h"),
        "hold_s": Number(0, 3600, "s"),
        "ramp_step_kmh": Number(0.05, 2, "km/h"),
        "ramp_every_s": Number(5, 600, "s"),
        "level_caps_kmh": NumberList(_KMH_CAP, 1, 10),
        "tolerance_kmh": Number(0, 2, "km/h"),
        "grace_s": Number(1, 60, "s"),
        "running_cap_kmh": _KMH_CAP,
    },
    "enforce": {
        "action": Choice(("relay", "none")),
        "mode": Choice(("pulse", "latch")),
        "pulse_s": Number(0.2, 30, "s"),
    },
    "storage": {
        "db": Text("a file path for the SQLite database", shape=r"(?s)(?=.*\S).+"),
    },
    "web": {
        "listen": Listen(),
        "open_controls": Flag(),
    },
}


# ---- checks that span several keys: each returns (message, key) or None --------------------

Check = Callable[["Config"], "tuple[str, str] | None"]


def _pins_in_use(config: Config) -> list[tuple[str, int]]:
    pins: list[tuple[str, int | None]] = [
        ("[buttons] start_pin", config.buttons.start_pin),
        ("[buttons] direction_pin", config.buttons.direction_pin),
        ("[outputs] led_pin", config.outputs.led_pin),
        ("[outputs] buzzer_pin", config.outputs.buzzer_pin),
        ("[outputs] relay_pin", config.outputs.relay_pin),
    ]
    # A serial sensor reads its port, so its pin is free for other functions.
    if config.sensor.kind == "hall":
        pins.insert(0, ("[sensor] pin", config.sensor.pin))
    return [(name, pin) for name, pin in pins if pin is not None]


def _one_function_per_pin(config: Config) -> tuple[str, str] | None:
    owner: dict[int, str] = {}
    for name, pin in _pins_in_use(config):
        if pin in owner:
            return (
                f"{owner[pin]} and {name} both use GPIO {pin}; give each function its own pin",
                name.replace("[", "").replace("] ", "."),
            )
        owner[pin] = name
    return None


def _serial_has_url(config: Config) -> tuple[str, str] | None:
    if config.sensor.kind == "serial" and not config.sensor.url.strip():
        return (
            '[sensor] url must name the serial port (such as "/dev/ttyUSB0" or "loop://") '
            'when kind is "serial"',
            "sensor.url",
        )
    return None


def _caps_in_order(config: Config) -> tuple[str, str] | None:
    b = config.backward
    caps = b.level_caps_kmh
    if b.start_cap_kmh > caps[0]:
        return (
            f"[backward] start_cap_kmh ({_num(b.start_cap_kmh)} km/h) must not be above the "
            f"first of level_caps_kmh ({_num(caps[0])} km/h): the cap ramps up, never down",
            "backward.start_cap_kmh",
        )
    for lower, upper in itertools.pairwise(caps):
        if upper < lower:
            return (
                f"[backward] level_caps_kmh must not fall from one level to the next, but "
                f"{_num(upper)} km/h follows {_num(lower)} km/h",
                "backward.level_caps_kmh",
            )
    if b.running_cap_kmh < caps[-1]:
        return (
            f"[backward] running_cap_kmh ({_num(b.running_cap_kmh)} km/h) must not be below "
            f"the top walking cap in level_caps_kmh ({_num(caps[-1])} km/h)",
            "backward.running_cap_kmh",
        )
    return None


def _caps_measurable(config: Config) -> tuple[str, str] | None:
    b, top = config.backward, config.sensor.max_speed_kmh
    caps = [("start_cap_kmh", b.start_cap_kmh), ("running_cap_kmh", b.running_cap_kmh)]
    caps += [("level_caps_kmh", cap) for cap in b.level_caps_kmh]
    for key, cap in caps:
        if cap > top:
            return (
                f"[backward] {key} ({_num(cap)} km/h) must not be above [sensor] max_speed_kmh "
                f"({_num(top)} km/h), the fastest belt speed the sensor reports",
                f"backward.{key}",
            )
    return None


def _relay_fitted(config: Config) -> tuple[str, str] | None:
    if config.enforce.action == "relay" and config.outputs.relay_pin is None:
        return (
            '[enforce] action is "relay" but [outputs] relay_pin is "none"; set relay_pin to '
            'the relay\'s GPIO, or set action = "none" to warn without enforcing',
            "enforce.action",
        )
    return None


CROSS_CHECKS: tuple[Check, ...] = (
    _one_function_per_pin,
    _serial_has_url,
    _caps_in_order,
    _caps_measurable,
    _relay_fitted,
)


def check_across(config: Config, *, source: str) -> None:
    """Raise ConfigError for the first combination of keys the device cannot run with."""
    for check in CROSS_CHECKS:
        found = check(config)
        if found is not None:
            message, key = found
            raise ConfigError(f"{source}: {message}.", key=key)
