"""The kinds of value a config key may hold, each with the words an error message uses for it.

device.config.rules says which kind each key is; device.config.load parses the file with them.
Every `expects` reads as the end of "[table] key must be ...".
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from device.config.line_pattern import PatternError, check_speed_pattern
from device.errors import RetrotreadError


class ConfigError(RetrotreadError):
    """A config the device cannot run with; str() is one sentence naming the file and key.

    `key` is "table.key" (or "table", or None for a file-level problem) so the dashboard's
    settings page can point at the field.
    """

    def __init__(self, message: str, *, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


class Invalid(Exception):
    """A rule refused a value; args[0], when given, says why beyond the rule's expectation.
    Internal, so not a RetrotreadError: load turns it into a ConfigError naming the key."""


def show_number(x: float) -> str:
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
    """A table or key name as TOML writes it: bare when it can be, else quoted; cut short past
    60 characters, as a message names it."""
    name = _shorten(name)
    return name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else toml_string(name)


def _shorten(text: str) -> str:
    # A sentence quotes a value, never the file back: a key or a number may be 100 kB long.
    return text if len(text) <= 60 else text[:57] + "..."


def show(value: object, *, depth: int = 0) -> str:
    """A value as it looked in the TOML file, for 'not ...' at the end of a message; lists
    nested deeper than three are "[...]" (a file may nest hundreds, past the stack)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return toml_string(_shorten(value))
    if isinstance(value, Mapping):
        return "a table"
    if isinstance(value, list | tuple):
        if depth >= 3:
            return "[...]"
        inner = ", ".join(show(v, depth=depth + 1) for v in value[:6])
        return "[" + inner + (", ...]" if len(value) > 6 else "]")
    return _shorten(str(value))


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
        return f"a number from {show_number(self.lo)} to {show_number(self.hi)} {self.unit}"

    @property
    def range_words(self) -> str:
        """The range as help texts and config.example.toml state it: "0.5-25 km/h", and
        "0.5-2" where the unit is words in brackets rather than a unit."""
        span = f"{show_number(self.lo)}-{show_number(self.hi)}"
        return span if self.unit.startswith("(") else f"{span} {self.unit}"

    def parse(self, value: object) -> float:
        # `not lo <= x <= hi` also refuses nan, which TOML allows.
        if not _is_number(value) or not self.lo <= value <= self.hi:  # type: ignore[operator]
            raise Invalid
        return float(value)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Count:
    """A whole number from lo to hi inclusive, of `unit` (sessions, weeks); 4.0 is refused
    rather than guessed at, since a count written with a decimal point is likely a slip."""

    lo: int
    hi: int
    unit: str

    @property
    def expects(self) -> str:
        return f"a whole number from {self.lo} to {self.hi} {self.unit}"

    @property
    def range_words(self) -> str:
        """ "1-50 sessions"."""
        return f"{self.lo}-{self.hi} {self.unit}"

    def parse(self, value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise Invalid
        if not self.lo <= value <= self.hi:
            raise Invalid
        return value


@dataclass(frozen=True)
class NumberList:
    """A list of `least` to `most` numbers, each in `item`'s range; becomes a tuple of floats.
    `counted` names what the numbers are (levels) where a range is stated in words."""

    item: Number
    least: int
    most: int
    counted: str = "numbers"

    @property
    def expects(self) -> str:
        each = self.item
        return (
            f"a list of {self.least} to {self.most} numbers, each from {show_number(each.lo)} "
            f"to {show_number(each.hi)} {each.unit}"
        )

    def parse(self, value: object) -> tuple[float, ...]:
        if not isinstance(value, list | tuple) or not self.least <= len(value) <= self.most:
            raise Invalid
        return tuple(self.item.parse(v) for v in value)

    @property
    def range_words(self) -> str:
        """ "1-10 levels, each 0.5-25 km/h"."""
        return f"{self.least}-{self.most} {self.counted}, each {self.item.range_words}"


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

    @property
    def range_words(self) -> str:
        """ "2-27", the BCM numbers of the header's GPIOs."""
        return f"{GPIO_LO}-{GPIO_HI}"

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
            check_speed_pattern(value)
        except PatternError as exc:
            raise Invalid(str(exc)) from None
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
        # a length first: int() refuses a string of thousands of digits with a ValueError
        if not (len(port) <= 5 and port.isascii() and port.isdigit() and 1 <= int(port) <= 65535):
            raise Invalid
        return value


Rule = Number | Count | NumberList | Choice | Flag | Text | GpioPin | SpeedPattern | Listen
# The kinds with a range, which help texts and config.example.toml state by range_words.
Ranged = Number | Count | NumberList | GpioPin


def range_words(rule: Rule) -> str | None:
    """The range of a ranged rule in words ("0.5-25 km/h"), or None for a rule without one
    (a choice, a flag, a text)."""
    return rule.range_words if isinstance(rule, Ranged) else None
