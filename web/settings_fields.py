"""The settings form's keys: which config keys the page offers, under which heading, with
what help, and how a typed value becomes the TOML value the config rules check (web.settings
serves the page). The help takes its ranges from device.config.rules, so it cannot state
another range than check-config enforces.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from device.config.kinds import Choice, Rule, range_words, show_number
from device.config.model import CheckSensorConfig, Config
from device.config.rules import RULES

CHECK = "sensor.check"  # the one table inside a table; absent from a file without a check
NO_CHECK = "none"  # the form's word for no [sensor.check] table
FLAG_WORDS = {"true": True, "false": False}


def _table(config: Config, table: str) -> Any:
    """One table of `config`; [sensor.check] as its defaults when the file has none."""
    if table == CHECK:
        return config.sensor.check or CheckSensorConfig()
    return getattr(config, table)


@dataclass(frozen=True)
class Field:
    """One key on the form. `kind`: "text", "number", "numbers" (comma-separated), "choice"
    (`options`: value -> what the operator reads) or "flag" (a choice of "true" and "false":
    a checkbox left unticked would send nothing at all). `about` is the help text with
    {range} where the key's range goes and {expects} for what its rule expects, both from
    device.config.rules, so the help cannot state another range than check-config enforces;
    {shipped} is the built-in default (past which the live page shows a safety margin as
    loosened)."""

    section: str
    table: str
    key: str
    label: str
    kind: str
    about: str
    options: tuple[tuple[str, str], ...] = ()

    @property
    def name(self) -> str:
        return f"{self.table}.{self.key}"

    @property
    def rule(self) -> Rule:
        return RULES[self.table][self.key]

    @property
    def help(self) -> str:
        rule = self.rule
        shipped = getattr(_table(Config(), self.table), self.key)
        return self.about.format(
            range=range_words(rule),
            expects=rule.expects,
            shipped=show_number(shipped) if isinstance(shipped, float) else shipped,
        )


def _bauds(table: str) -> tuple[tuple[str, str], ...]:
    rule = RULES[table]["baud"]
    assert isinstance(rule, Choice)
    return tuple((str(baud), str(baud)) for baud in rule.options)


FIELDS: tuple[Field, ...] = (
    Field(
        "Treadmill", "machine", "name", "Name", "text",
        "What the dashboard shows: {expects}.",
    ),
    Field(
        "Backward caps", "backward", "start_cap_kmh", "Start cap, km/h", "number",
        "A backward segment starts only at or below it. {range}, at most the first level "
        "cap.",
    ),
    Field(
        "Backward caps", "backward", "hold_s", "Hold at the start cap, s", "number",
        "Time to learn the movement before the cap rises. {range}.",
    ),
    Field(
        "Backward caps", "backward", "ramp_step_kmh", "Ramp step, km/h", "number",
        "How much the cap rises each step. {range}.",
    ),
    Field(
        "Backward caps", "backward", "ramp_every_s", "Ramp every, s", "number",
        "Time between two rises of the cap. {range}.",
    ),
    Field(
        "Backward caps", "backward", "level_caps_kmh", "Level caps, km/h", "numbers",
        "The top cap at each level, level 1 first, separated by commas, never falling. "
        "{range}.",
    ),
    Field(
        "Backward caps", "backward", "tolerance_kmh", "Tolerance, km/h", "number",
        "How far the 3 s mean speed may run over the cap before the warning. {range}; more "
        "than {shipped} is shown on the live page.",
    ),
    Field(
        "Backward caps", "backward", "grace_s", "Grace, s", "number",
        "The time over the limit allowed before enforcement, one budget with memory: it "
        "refills 1 s per 30 s under the limit. {range}; more than {shipped} is shown on the "
        "live page.",
    ),
    Field(
        "Over the cap", "enforce", "action", "After the grace", "choice",
        "The relay opens the safety-key loop: an abrupt stop, like pulling the key, and only "
        "ever after the warning.",
        (("relay", "Stop the belt (relay)"), ("none", "Warn only")),
    ),
    Field(
        "Over the cap", "enforce", "without_session", "Without a session", "choice",
        "Backward mode, the belt over the start cap, and nobody pressed START: warn only (a "
        "runner who ignores the device is not stopped abruptly), or warn and then stop.",
        (("warn", "Warn only"), ("stop", "Warn, then stop")),
    ),
    Field(
        "Over the cap", "enforce", "mode", "Relay", "choice",
        "After a pulse the belt can be restarted; a latch keeps it stopped until the device "
        "releases it.",
        (("pulse", "Pulse: open, then close"), ("latch", "Latch: stay open")),
    ),
    Field(
        "Over the cap", "enforce", "pulse_s", "Pulse length, s", "number",
        "How long a pulse keeps the safety loop open. {range}.",
    ),
    Field(
        "Over the cap", "enforce", "soft", "Before the relay", "choice",
        "With a CSAFE console: when the grace runs out, ask it to slow the belt to the cap "
        "first; the relay follows if the belt is not down within 2 s, or at once if the "
        "console refuses. No public source confirms a treadmill honours SetSpeed, so the "
        "relay stays the last resort.",
        (("none", "Nothing: the relay alone"), ("csafe", "Ask the console to slow the belt")),
    ),
    Field(
        "Sensor", "sensor", "kind", "Belt speed from", "choice",
        "Where the belt speed comes from; a change takes effect when the device restarts.",
        (("hall", "Hall sensor on a roller"), ("serial", "Serial speed bridge"),
         ("csafe", "The console's CSAFE port")),
    ),
    Field(
        "Sensor", "sensor", "meters_per_pulse", "Belt travel per pulse, m", "number",
        "Roller circumference divided by the magnets; retrotread calibrate measures it. "
        "{range}.",
    ),
    Field(
        "Sensor", "sensor", "url", "Serial port", "text",
        "The bridge's or the console's port (serial or CSAFE only): {expects}.",
    ),
    Field(
        "Sensor", "sensor", "baud", "Serial speed, baud", "choice",
        "8N1; CSAFE consoles use 9600.", _bauds("sensor"),
    ),
    Field(
        "Check sensor", CHECK, "kind", "Checked by", "choice",
        "A second speed channel that checks the first: a second hall sensor (its pin and "
        "magnets are in the file), or the console checking a hall sensor. A change takes "
        "effect when the device restarts.",
        ((NO_CHECK, "Nothing: no check sensor"), ("hall", "A second hall sensor"),
         ("csafe", "The console's CSAFE port")),
    ),
    Field(
        "Check sensor", CHECK, "url", "Console's serial port", "text",
        "For a CSAFE check: {expects}.",
    ),
    Field(
        "Check sensor", CHECK, "baud", "Console's serial speed, baud", "choice",
        "CSAFE is 9600.", _bauds(CHECK),
    ),
    Field(
        "Sessions", "session", "follow_console", "Follow the console's workout", "flag",
        "With a CSAFE console: its In Use, Paused and Finished start, pause and end sessions, "
        "so a member who presses Go on the console need not press START too; START still "
        "works.",
        (("false", "No: START only"), ("true", "Yes: the console's workout too")),
    ),
)  # fmt: skip

SECTIONS = tuple(dict.fromkeys(field.section for field in FIELDS))


def shown(field: Field, config: Config) -> str:
    """The current value as the form shows it: 2 not 2.0, caps as "3, 4, 5, 5.5", a flag as
    "true", no check sensor as "none"."""
    if field.table == CHECK and field.key == "kind" and config.sensor.check is None:
        return NO_CHECK
    value = getattr(_table(config, field.table), field.key)
    if field.kind == "number":
        return show_number(value)
    if field.kind == "numbers":
        return ", ".join(show_number(v) for v in value)
    if field.kind == "flag":
        return "true" if value else "false"
    return str(value)


def _number(text: str) -> Any:
    """A typed number as TOML would hold it; anything else stays text, so the config rules
    (the same as check-config) name the key and what it must be."""
    text = text.strip()
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def parsed(field: Field, text: str) -> Any:
    if field.kind == "number":
        return _number(text)
    if field.kind == "numbers":
        return [_number(part) for part in text.split(",") if part.strip()]
    text = text.strip()
    if field.kind == "flag":
        return FLAG_WORDS.get(text, text)
    rule = field.rule
    if isinstance(rule, Choice):  # a baud rate is a number in the file, 9600 not "9600"
        return next((option for option in rule.options if str(option) == text), text)
    return text
