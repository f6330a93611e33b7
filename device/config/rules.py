"""Which kind of value each config key holds, and the checks that span several keys.

One line in RULES per key: a new key in device/config/model.py gets its rule here (the kinds
are in device/config/kinds.py) and its comment in config.example.toml. Every message is one sentence
a gym operator can act on, naming the file and the key.

The ranges are defined here and nowhere else: the settings page's help texts take them from
these rules (each kind's range_words, "0.5-25 km/h"), and a test checks that every range
config.example.toml states for a key is its rule's, so the example cannot drift.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

from device.config.kinds import (
    Choice,
    ConfigError,
    Count,
    Flag,
    GpioPin,
    Listen,
    Number,
    NumberList,
    Rule,
    SpeedPattern,
    Text,
)
from device.config.kinds import show_number as _num
from device.config.model import Config, SensorKind

_KMH_CAP = Number(0.5, 25, "km/h")
# "" or mqtt(s)://host[:port], the port 1-65535; a bracketed IPv6 host is allowed
_PORT = r"(?:6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3})"
# One MQTT topic level: a site, a machine id (device/fleet/topics.py builds the topics).
TOPIC_LEVEL = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}"
EVERY_SITE = "*"  # a fleet service's site: follow every site (a chain's head office)
_BROKER_URL = rf"(?:mqtts?://(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(?::{_PORT})?/?)?"

_PORT_URL = Text(
    'a serial port such as "/dev/ttyUSB0", or a pyserial URL such as "socket://10.0.0.21:4001" '
    'or "loop://"'
)
_BAUD = Choice((1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400))

# table -> key -> rule. The reasons for the ranges: config.example.toml.
RULES: dict[str, dict[str, Rule]] = {
    "machine": {
        "id": Text(
            "1 to 64 letters, digits, '-', '_' or '.' (it names MQTT topics and exports)",
            shape=TOPIC_LEVEL,
        ),
        "name": Text("a name of 1 to 80 characters", shape=r"(?s)(?=.*\S).{1,80}"),
    },
    "sensor": {
        "kind": Choice(tuple(kind.value for kind in SensorKind)),
        "pin": GpioPin(),
        "meters_per_pulse": Number(0.01, 5, "m"),
        "max_speed_kmh": Number(1, 30, "km/h"),
        "url": _PORT_URL,
        "baud": _BAUD,
        "pattern": SpeedPattern(),
        "unit": Choice(("km/h", "mph", "m/s")),
        "stale_s": Number(0.2, 60, "s"),
        # unitless: the words after the range read "... from 0.5 to 2 (a factor ...), not 3."
        "serial_scale": Number(0.5, 2, "(a factor on the bridge's speed)"),
    },
    "sensor.check": {
        "kind": Choice((SensorKind.HALL.value, SensorKind.CSAFE.value)),
        "pin": GpioPin(),
        "meters_per_pulse": Number(0.01, 5, "m"),
        "url": _PORT_URL,
        "baud": _BAUD,
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
        "follow_console": Flag(),
    },
    "backward": {
        "start_cap_kmh": Number(0.5, 10, "km/h"),
        "hold_s": Number(0, 3600, "s"),
        "ramp_step_kmh": Number(0.05, 2, "km/h"),
        "ramp_every_s": Number(5, 600, "s"),
        "level_caps_kmh": NumberList(_KMH_CAP, 1, 10, "levels"),
        # safety margins: bounded so no file can widen them past what still protects a
        # walker; anything looser than the shipped default is shown on the live page
        "tolerance_kmh": Number(0, 1, "km/h"),
        "grace_s": Number(1, 20, "s"),
        "running_cap_kmh": _KMH_CAP,
    },
    "enforce": {
        "action": Choice(("relay", "none")),
        "mode": Choice(("pulse", "latch")),
        "pulse_s": Number(0.2, 30, "s"),
        "without_session": Choice(("warn", "stop")),
        "soft": Choice(("none", "csafe")),
    },
    "storage": {
        "db": Text("a file path for the SQLite database", shape=r"(?s)(?=.*\S).+"),
    },
    "web": {
        "listen": Listen(),
        "open_controls": Flag(),
    },
    "program": {
        "single_user": Flag(),
        "profile": Text(
            "1 to 32 letters, digits, '-', '_' or '.', other than \"guest\" (the walk-up "
            "user's name)",
            shape=r"(?!guest\Z)[A-Za-z0-9][A-Za-z0-9_.-]{0,31}",
        ),
        "weight_kg": Number(30, 250, "kg"),
        "level_up_sessions": Count(1, 50, "sessions"),
        "qualifying_backward_s": Number(60, 3600, "s"),
        "qualifying_share": Number(0.5, 1, "(a share of the cap in force)"),
        "running_unlock_sessions": Count(1, 200, "sessions"),
        "running_unlock_kmh": _KMH_CAP,
        "running_unlock_s": Number(10, 3600, "s"),
        "weeks": Count(1, 52, "weeks"),
        "sessions_per_week": Count(1, 14, "sessions"),
        "session_min_s": Number(60, 7200, "s"),
        "session_max_s": Number(60, 7200, "s"),
    },
    "fleet": {
        "broker": Text(
            'empty (no fleet), "mqtt://host:1883" or "mqtts://host:8883" (a port from 1 to 65535)',
            shape=_BROKER_URL,
        ),
        "site": Text(
            "1 to 64 letters, digits, '-', '_' or '.', a letter or digit first (one MQTT "
            'topic level), or "*" for a fleet service that follows every site',
            shape=rf"{TOPIC_LEVEL}|\{EVERY_SITE}",
        ),
        "username": Text("the treadmill's user name on the broker, or empty"),
        "password_file": Text("a file path, or empty", shape=r"(?s)(?=.*\S).+|"),
        "ca_file": Text("a file path, or empty", shape=r"(?s)(?=.*\S).+|"),
        "dashboards": Text(
            'an address pattern such as "http://{machine_id}.local:8080/"',
            shape=r"https?://\S+",
        ),
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
    # A serial sensor or a console reads its port, so its pin is free for other functions.
    if config.sensor.kind == SensorKind.HALL:
        pins.insert(0, ("[sensor] pin", config.sensor.pin))
    check = config.sensor.check
    if check is not None and check.kind == SensorKind.HALL:
        pins.insert(1, ("[sensor.check] pin", check.pin))
    return [(name, pin) for name, pin in pins if pin is not None]


def _one_function_per_pin(config: Config) -> tuple[str, str] | None:
    owner: dict[int, str] = {}
    for name, pin in _pins_in_use(config):
        if pin in owner:
            return (
                f"{owner[pin]} and {name} both use GPIO {pin}; give each function its own pin",
                name.replace("[", "").replace("] ", "."),  # "[sensor.check] pin": sensor.check.pin
            )
        owner[pin] = name
    return None


def _serial_has_url(config: Config) -> tuple[str, str] | None:
    sensor, check = config.sensor, config.sensor.check
    if sensor.kind.reads_port and not sensor.url.strip():
        return (
            '[sensor] url must name the serial port (such as "/dev/ttyUSB0" or '
            f'"socket://10.0.0.21:4001") when kind is "{sensor.kind}"',
            "sensor.url",
        )
    if check is not None and check.kind.reads_port and not check.url.strip():
        return (
            '[sensor.check] url must name the console\'s serial port (such as "/dev/ttyUSB0" '
            'or "socket://10.0.0.21:4001") when kind is "csafe"',
            "sensor.check.url",
        )
    return None


def _check_is_another_channel(config: Config) -> tuple[str, str] | None:
    sensor, check = config.sensor, config.sensor.check
    if check is None or check.kind == SensorKind.HALL or sensor.kind == SensorKind.HALL:
        return None
    return (
        f'[sensor.check] kind "csafe" checks a hall sensor, but [sensor] kind is '
        f'"{sensor.kind}"; fit a hall sensor as [sensor] and let the console check it, or '
        "leave out [sensor.check]",
        "sensor.check.kind",
    )


def _soft_stop_has_console(config: Config) -> tuple[str, str] | None:
    if config.enforce.soft == "csafe" and config.enforce.action != "relay":
        return (
            '[enforce] soft = "csafe" asks the console to slow the belt before the relay '
            'stops it, but action is "none"; set action = "relay", or soft = "none" (no '
            "public source confirms a treadmill honours SetSpeed, so it never stands alone)",
            "enforce.soft",
        )
    if config.enforce.soft == "csafe" and config.sensor.console is None:
        return (
            '[enforce] soft = "csafe" asks the console to slow the belt, but no console is '
            'read; set [sensor] kind or [sensor.check] kind to "csafe", or soft = "none"',
            "enforce.soft",
        )
    return None


def _console_to_follow(config: Config) -> tuple[str, str] | None:
    if config.session.follow_console and config.sensor.console is None:
        return (
            "[session] follow_console = true follows a CSAFE console, but no console is read; "
            'set [sensor] kind or [sensor.check] kind to "csafe", or follow_console = false',
            "session.follow_console",
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


def _session_length_in_order(config: Config) -> tuple[str, str] | None:
    p = config.program
    if p.session_min_s > p.session_max_s:
        return (
            f"[program] session_min_s ({_num(p.session_min_s)} s) must not be above "
            f"session_max_s ({_num(p.session_max_s)} s)",
            "program.session_min_s",
        )
    return None


CROSS_CHECKS: tuple[Check, ...] = (
    _one_function_per_pin,
    _serial_has_url,
    _check_is_another_channel,
    _soft_stop_has_console,
    _console_to_follow,
    _caps_in_order,
    _caps_measurable,
    _relay_fitted,
    _session_length_in_order,
)


def check_across(config: Config, *, source: str) -> None:
    """Raise ConfigError for the first combination of keys the device cannot run with."""
    for check in CROSS_CHECKS:
        found = check(config)
        if found is not None:
            message, key = found
            raise ConfigError(f"{source}: {message}.", key=key)
