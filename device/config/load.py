"""Reading the device's configuration: one TOML file, checked key by key against the rules
and resolved into the frozen dataclasses of device.config.model; and printing it back.
"""

from __future__ import annotations

import difflib
import logging
import os
import re
import sys
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import fields
from enum import Enum
from typing import Any

import tomlkit

from device.config.kinds import ConfigError, GpioPin, Invalid, show, toml_key, toml_string
from device.config.model import CheckSensorConfig, Config, SensorKind
from device.config.rules import RULES, check_across

DEFAULT_PATH = "/etc/retrotread/config.toml"

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
        check = parsed["sensor.check"]
        if "kind" in check:
            check["kind"] = SensorKind(check["kind"])
        parsed.setdefault("sensor", {})["check"] = CheckSensorConfig(**check)
    if "kind" in parsed.get("sensor", {}):  # validated as one of them above
        parsed["sensor"]["kind"] = SensorKind(parsed["sensor"]["kind"])
    config = Config(**{name: cls(**parsed.get(name, {})) for name, cls in _tables().items()})
    check_across(config, source=source)
    return config


def config_to_dict(config: Config) -> dict[str, dict[str, Any]]:
    """The config as plain TOML/JSON values: tuples become lists, a pin of None is "none", an
    enum its value (a plain string, as the file spells it)."""
    out: dict[str, dict[str, Any]] = {}
    for name in _tables():
        table = getattr(config, name)
        out[name] = {}
        for f in fields(table):
            value = getattr(table, f.name)
            if isinstance(value, CheckSensorConfig):
                inner = {c.name: getattr(value, c.name) for c in fields(value)}
                value = {k: v.value if isinstance(v, Enum) else v for k, v in inner.items()}
            elif value is None and f.name == "check":
                continue  # no second sensor: no [sensor.check] table
            elif value is None and isinstance(RULES[name].get(f.name), GpioPin):
                value = "none"
            elif isinstance(value, tuple):
                value = list(value)
            elif isinstance(value, Enum):
                value = value.value
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


def _toml_item(value: Any) -> Any:
    """A plain value as tomlkit writes it: a string with backslashes (a regex) as a literal
    '...' where TOML allows one, so it reads as it was typed."""
    if isinstance(value, str) and toml_string(value).startswith("'"):
        return tomlkit.string(value, literal=True)
    return value


def format_config(config: Config, *, source: str) -> str:
    """The resolved config as TOML text (it loads back to the same Config)."""
    doc = tomlkit.document()
    heading = f"retrotread config resolved from {source}; keys not in the file are defaults"
    doc.add(tomlkit.comment(heading))
    for name, entries in config_to_dict(config).items():
        table = tomlkit.table()
        inner = {key: value for key, value in entries.items() if isinstance(value, dict)}
        for key, value in entries.items():
            if key not in inner:
                table.add(key, _toml_item(value))
        for key, values in inner.items():  # [sensor.check] after the keys of [sensor]
            sub = tomlkit.table()
            for k, v in values.items():
                sub.add(k, _toml_item(v))
            table.add(key, sub)
        doc.add(tomlkit.nl())
        doc.add(name, table)
    return tomlkit.dumps(doc)


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
