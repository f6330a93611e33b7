"""Scenario files for `retrotread simulate` (the simulated belt is in device/sim/belt.py).
Pure: no clock, no I/O beyond reading the scenario's TOML text.

A scenario is an optional `[config]` table (overrides of the device config) and `[[step]]`
tables in time order, each with `at` (seconds) and one action:

    press = "start" | "direction"   (optional hold = seconds the button stays down)
    belt_kmh = 2.5                  (the belt's set speed from then on; optional jitter_pct,
                                     ripple_pct and ripple_hz for foot strikes; abrupt = true
                                     jumps to it instead of changing at the console's rate)
    sensor = "lost" | "ok"          (unplug or re-plug the speed sensor; a console's speed
                                     readings stop, its states and answers still come)
    check_sensor = "lost" | "ok"    (the same for the check sensor, [sensor.check])
    reload = true | {table}         (the daemon reloads its config: the same, or with these
                                     overrides on the scenario's [config])
    skip = 57600                    (nobody is at the treadmill for this many seconds: the
                                     belt stands, no session is open, and virtual time jumps
                                     over them; the next step comes `at` or after the skip)
    command = "start" | "pause" | "resume" | "end" | "forward" | "backward"  (the dashboard)
    console = "honours" | "ignores" | "rejects" | "unplugged"
                                    (a CSAFE console, [sensor] or [sensor.check] kind = "csafe":
                                     what it does with SetSpeed from then on; "honours" until
                                     told otherwise; unplugged: no readings, states or answers)
    console_state = "in use" | "paused" | "finished" | ...  (the console's machine state, as
                                     its status byte says it: a member pressed Go, Pause, End)
    console_fast_pct = 5            (the console reads this many percent fast from then on:
                                     consoles commonly do by 2.5-6 %; negative reads slow)
    end = true                      (the scenario stops; an open session ends as shutdown)
"""

from __future__ import annotations

import itertools
import tomllib
from dataclasses import dataclass
from typing import Any

from device.core.console import ConsoleState
from device.errors import RetrotreadError

ACTIONS = (
    "press",
    "belt_kmh",
    "sensor",
    "check_sensor",
    "command",
    "reload",
    "skip",
    "console",
    "console_state",
    "console_fast_pct",
    "end",
)
# the actions only a scenario with a CSAFE console can take
CONSOLE_ACTIONS = ("console", "console_state", "console_fast_pct")
PRESS_HOLD_S = 0.2  # a short press: a finger down and up again
BUTTONS = ("start", "direction")
SENSOR_STATES = ("lost", "ok")
COMMANDS = ("start", "pause", "resume", "end", "forward", "backward")
# What a simulated console does with SetSpeed: sets its belt to it, takes it and leaves the
# belt as it is, refuses it (its next answer says so), or nothing at all (the cable is out).
CONSOLE_BEHAVIOURS = ("honours", "ignores", "rejects", "unplugged")
CONSOLE_STATES = tuple(state.value for state in ConsoleState)
STEP_KEYS = {"at", "hold", "jitter_pct", "ripple_pct", "ripple_hz", "abrupt", *ACTIONS}


class ScenarioError(RetrotreadError):
    """str() is one sentence naming the file, the step and what is allowed."""


@dataclass(frozen=True)
class Step:
    at: float
    action: str
    value: Any
    hold: float = PRESS_HOLD_S
    jitter_pct: float = 0.0
    ripple_pct: float = 0.0
    ripple_hz: float = 2.0
    abrupt: bool = False


@dataclass(frozen=True)
class Scenario:
    config: dict[str, Any]
    steps: list[Step]

    @property
    def end_at(self) -> float:
        return max((step.at for step in self.steps), default=0.0)


def load_scenario(path: str) -> Scenario:
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise ScenarioError(f"{path}: no such scenario file.") from None
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read the scenario ({exc.strerror}).") from None
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{path}: not valid TOML ({exc}).") from None
    return parse_scenario(data, source=path)


def parse_scenario(data: dict[str, Any], *, source: str = "scenario") -> Scenario:
    unknown = set(data) - {"config", "step"}
    if unknown:
        name = sorted(unknown)[0]
        raise ScenarioError(f"{source}: unknown table [{name}]; use [config] and [[step]].")
    config = data.get("config", {})
    if not isinstance(config, dict):
        raise ScenarioError(f"{source}: [config] must be a table of config overrides.")
    raw_steps = data.get("step", [])
    if not isinstance(raw_steps, list) or not raw_steps:
        raise ScenarioError(f"{source}: add at least one [[step]] with `at` and an action.")
    steps = [_parse_step(raw, number, source) for number, raw in enumerate(raw_steps, 1)]
    for number, (before, after) in enumerate(itertools.pairwise(steps), 2):
        if after.at < before.at:
            raise ScenarioError(
                f"{source}: step {number} is at {after.at} s, before the step above it; "
                "list steps in time order."
            )
        if before.action == "skip" and after.at < before.at + before.value:
            raise ScenarioError(
                f"{source}: step {number} is at {after.at} s, inside the skip of step "
                f"{number - 1} (which ends at {before.at + before.value:g} s)."
            )
    return Scenario(config=config, steps=steps)


def _number(raw: dict, key: str, where: str, *, low: float, high: float, default: float) -> float:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise ScenarioError(f"{where}: `{key}` must be a number from {low} to {high}.")
    return float(value)


def _quoted(options: tuple[str, ...]) -> str:
    return ", ".join(f'"{option}"' for option in options)


def _parse_step(raw: Any, number: int, source: str) -> Step:
    where = f"{source}: step {number}"
    if not isinstance(raw, dict):
        raise ScenarioError(f"{where} must be a table.")
    extra = set(raw) - STEP_KEYS
    if extra:
        raise ScenarioError(
            f"{where}: unknown key `{sorted(extra)[0]}`; allowed: {', '.join(sorted(STEP_KEYS))}."
        )
    if "at" not in raw:
        raise ScenarioError(f"{where} needs `at`, the time in seconds.")
    at = _number(raw, "at", where, low=0, high=60 * 86400, default=0)
    actions = [key for key in ACTIONS if key in raw]
    if len(actions) != 1:
        raise ScenarioError(f"{where} needs exactly one of {', '.join(ACTIONS)}.")
    action = actions[0]
    value = raw[action]
    if action == "press" and value not in BUTTONS:
        raise ScenarioError(f'{where}: press must be "start" or "direction".')
    if action == "belt_kmh":
        value = _number(raw, "belt_kmh", where, low=0, high=40, default=0)
    if action == "skip":
        value = _number(raw, "skip", where, low=0.1, high=30 * 86400, default=0.1)
    if action in ("sensor", "check_sensor") and value not in SENSOR_STATES:
        raise ScenarioError(f'{where}: {action} must be "lost" or "ok".')
    if action == "reload" and value is not True and not isinstance(value, dict):
        raise ScenarioError(f"{where}: reload must be true or a table of config overrides.")
    abrupt = raw.get("abrupt", False)
    if not isinstance(abrupt, bool):
        raise ScenarioError(f"{where}: abrupt must be true or false.")
    if action == "command" and value not in COMMANDS:
        raise ScenarioError(f"{where}: command must be one of {', '.join(COMMANDS)}.")
    if action == "console" and value not in CONSOLE_BEHAVIOURS:
        raise ScenarioError(f"{where}: console must be one of {_quoted(CONSOLE_BEHAVIOURS)}.")
    if action == "console_state" and value not in CONSOLE_STATES:
        raise ScenarioError(f"{where}: console_state must be one of {_quoted(CONSOLE_STATES)}.")
    if action == "console_fast_pct":
        value = _number(raw, "console_fast_pct", where, low=-20, high=20, default=0)
    if action == "end" and value is not True:
        raise ScenarioError(f"{where}: end must be true.")
    return Step(
        at=at,
        action=action,
        value=value,
        hold=_number(raw, "hold", where, low=0.01, high=60, default=PRESS_HOLD_S),
        jitter_pct=_number(raw, "jitter_pct", where, low=0, high=50, default=0),
        ripple_pct=_number(raw, "ripple_pct", where, low=0, high=50, default=0),
        ripple_hz=_number(raw, "ripple_hz", where, low=0.1, high=10, default=2.0),
        abrupt=abrupt,
    )
