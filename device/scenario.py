"""Scenario files for `retrotread simulate`, and the simulated belt that turns a set speed into
hall pulses. Pure: no clock, no I/O beyond reading the scenario's TOML text.

A scenario is an optional `[config]` table (overrides of the device config) and `[[step]]`
tables in time order, each with `at` (seconds) and one action:

    press = "start" | "direction"   (optional hold = seconds the button stays down)
    belt_kmh = 2.5                  (the belt's set speed from then on; optional jitter_pct,
                                     ripple_pct and ripple_hz for foot strikes)
    sensor = "lost" | "ok"          (unplug or re-plug the speed sensor)
    command = "start" | "pause" | "resume" | "end" | "forward" | "backward"  (the dashboard)
    end = true                      (the scenario stops; an open session ends as shutdown)
"""

from __future__ import annotations

import itertools
import math
import random
import tomllib
from dataclasses import dataclass
from typing import Any

ACTIONS = ("press", "belt_kmh", "sensor", "command", "end")
PRESS_HOLD_S = 0.2  # a short press: a finger down and up again
BUTTONS = ("start", "direction")
SENSOR_STATES = ("lost", "ok")
COMMANDS = ("start", "pause", "resume", "end", "forward", "backward")
STEP_KEYS = {"at", "hold", "jitter_pct", "ripple_pct", "ripple_hz", *ACTIONS}


class ScenarioError(Exception):
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
    return Scenario(config=config, steps=steps)


def _number(raw: dict, key: str, where: str, *, low: float, high: float, default: float) -> float:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise ScenarioError(f"{where}: `{key}` must be a number from {low} to {high}.")
    return float(value)


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
    at = _number(raw, "at", where, low=0, high=86400, default=0)
    actions = [key for key in ACTIONS if key in raw]
    if len(actions) != 1:
        raise ScenarioError(f"{where} needs exactly one of {', '.join(ACTIONS)}.")
    action = actions[0]
    value = raw[action]
    if action == "press" and value not in BUTTONS:
        raise ScenarioError(f'{where}: press must be "start" or "direction".')
    if action == "belt_kmh":
        value = _number(raw, "belt_kmh", where, low=0, high=40, default=0)
    if action == "sensor" and value not in SENSOR_STATES:
        raise ScenarioError(f'{where}: sensor must be "lost" or "ok".')
    if action == "command" and value not in COMMANDS:
        raise ScenarioError(f"{where}: command must be one of {', '.join(COMMANDS)}.")
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
    )


class SimulatedBelt:
    """A treadmill belt with a magnet passing the sensor every `meters_per_pulse`.

    The walker's foot strikes slow the belt a little and the motor catches up: `ripple_pct`
    at `ripple_hz` models that; `jitter_pct` adds random variation per pulse interval. While
    the safety-key loop is open the belt stands still, and it stays stopped until someone
    sets a speed again (a real treadmill needs its key back and a press on its console).
    """

    SUBSTEP_S = 0.01

    def __init__(self, meters_per_pulse: float, *, seed: int = 1):
        self.meters_per_pulse = meters_per_pulse
        self.set_kmh = 0.0
        self.jitter_pct = 0.0
        self.ripple_pct = 0.0
        self.ripple_hz = 2.0
        self.stopped_by_key = False
        self._random = random.Random(seed)
        self._travel_m = 0.0  # since the last pulse
        self._jitter = 1.0
        self._t = 0.0

    def set_speed(self, kmh: float, *, jitter_pct=0.0, ripple_pct=0.0, ripple_hz=2.0) -> None:
        self.set_kmh = kmh
        self.jitter_pct, self.ripple_pct, self.ripple_hz = jitter_pct, ripple_pct, ripple_hz
        self.stopped_by_key = False

    def key_pulled(self) -> None:
        self.stopped_by_key = True

    def speed_kmh(self, t: float) -> float:
        if self.stopped_by_key or self.set_kmh <= 0:
            return 0.0
        ripple = 1.0 + self.ripple_pct / 100 * math.sin(2 * math.pi * self.ripple_hz * t)
        return self.set_kmh * ripple * self._jitter

    def advance(self, until: float) -> list[float]:
        """Move the belt to time `until`; returns the pulse times on the way."""
        pulses: list[float] = []
        while self._t < until - 1e-12:
            step = min(self.SUBSTEP_S, until - self._t)
            speed_ms = self.speed_kmh(self._t) / 3.6
            travel = speed_ms * step
            while speed_ms > 0 and self._travel_m + travel >= self.meters_per_pulse:
                needed = self.meters_per_pulse - self._travel_m
                pulse_t = self._t + needed / speed_ms
                pulses.append(pulse_t)
                travel -= needed
                step -= needed / speed_ms
                self._t = pulse_t
                self._travel_m = 0.0
                if self.jitter_pct:
                    self._jitter = 1.0 + self._random.uniform(-1, 1) * self.jitter_pct / 100
                    speed_ms = self.speed_kmh(self._t) / 3.6
                    travel = speed_ms * step
            self._travel_m += travel
            self._t += step
        return pulses
