"""`retrotread simulate SCENARIO.toml`: run a scenario in virtual time through the same
Controller and Recorder the daemon uses, and print one JSON report.

Virtual time makes a 30-minute scenario run in well under two seconds and makes every run
of the same file give the same report, which is what the scenario tests rely on.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

from device.config.kinds import ConfigError
from device.config.load import config_from_mapping, merge_overrides
from device.config.model import Config
from device.core.controller import CommandRefused
from device.core.modes import Mode
from device.core.signals import RelayState
from device.core.tick import TickResult
from device.history.recorder import Recorder, load_controller
from device.history.store import Store, StoreError
from device.sim.belt import SimulatedBelt
from device.sim.scenario import Scenario, ScenarioError, Step, load_scenario

TICK_S = 0.1  # the daemon's tick loop runs at 10 Hz; so does virtual time
SERIAL_EVERY_S = 0.5  # a serial bridge reports about twice a second


@dataclass
class Report:
    samples: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    outputs: list[dict[str, Any]] = field(default_factory=list)
    sessions: list[dict[str, Any]] = field(default_factory=list)
    trace: list[dict[str, Any]] | None = None  # one row per tick with --trace

    def add(self, result: TickResult) -> None:
        if result.sample is not None:
            sample = result.sample
            self.samples.append(
                {
                    "t": round(sample.t, 3),
                    "speed_kmh": sample.speed_kmh,
                    "mode": sample.mode.value,
                    "state": sample.state.value,
                    "cap_kmh": sample.cap_kmh,
                }
            )
        for event in result.events:
            self.events.append({"t": round(event.t, 3), "kind": event.kind.value, **event.details})
        for change in result.outputs:
            self.outputs.append(
                {"t": round(change.t, 3), "name": change.name, "state": change.state}
            )

    def as_dict(self) -> dict[str, Any]:
        report = {
            "samples": self.samples,
            "events": self.events,
            "sessions": self.sessions,
            "outputs": self.outputs,
        }
        return report if self.trace is None else {**report, "trace": self.trace}


class Simulation:
    """A treadmill, its walker's hands and the device's core objects, in virtual time."""

    def __init__(
        self,
        scenario: Scenario,
        store: Store,
        *,
        config: Config | None = None,
        trace: bool = False,
        wall0: float | None = None,
    ):
        self.scenario = scenario
        self.config = config or config_from_mapping(scenario.config, source="[config]")
        self.wall0 = float(int(time.time())) if wall0 is None else wall0
        self.controller = load_controller(store, self.config, t=0.0, wall0=self.wall0)
        self.recorder = Recorder(store, self.config, wall0=self.wall0, mono0=0.0)
        check = self.config.sensor.check
        self.belt = SimulatedBelt(
            self.config.sensor.meters_per_pulse,
            check_meters_per_pulse=None if check is None else check.meters_per_pulse,
        )
        self.sensor_lost = False
        self.check_lost = False
        self.report = Report(trace=[] if trace else None)
        self._releases: list[float] = []  # when a held START button comes up
        self._next_reading = 0.0

    def run(self) -> Report:
        steps = list(self.scenario.steps)
        end_at = self.scenario.end_at
        tick = 0
        while True:
            t = round(tick * TICK_S, 6)
            if t > end_at + 1e-9:
                break
            self._feed_belt(t)
            while steps and steps[0].at <= t + 1e-9:
                step = steps.pop(0)
                if step.action == "end":
                    steps.clear()
                    end_at = step.at
                    break
                if step.action == "skip":
                    tick = self._skip(t, step.value)
                    t = round(tick * TICK_S, 6)
                    self._feed_belt(t)
                    continue
                self._do(step)
            self._release_buttons(t)
            self._record(self.controller.tick(t))
            if self.report.trace is not None:
                self.report.trace.append(self._trace_row(t))
            tick += 1
        self._record(self.controller.shutdown(end_at))
        self.recorder.store.flush()
        self.report.sessions = self.recorder.session_report()
        self.recorder.close()
        return self.report

    def _skip(self, t: float, seconds: float) -> int:
        """Jump over a stretch nobody is at the treadmill (a night between two sessions):
        the tick index to go on from. Only an idle, standing treadmill can be skipped."""
        controller = self.controller
        if controller.session.in_session or self.belt.set_kmh > 0 or self.belt.base_kmh > 0:
            raise ScenarioError(
                f"step at {t:g} s: skip needs the belt stopped and no session open; end the "
                "session and set belt_kmh = 0 first."
            )
        return round((t + seconds) / TICK_S)

    def _feed_belt(self, t: float) -> None:
        """Bring the belt to time t and hand its pulses (or readings) to the controller, each
        at its own time, before the tick at t looks at them."""
        pulses = self.belt.advance(t)
        checked = self.belt.take_check_pulses()
        if not self.check_lost:
            for pulse_t in checked:
                self.controller.check_pulse(pulse_t)
        if self.sensor_lost:
            return
        if self.controller.uses_pulses:
            for pulse_t in pulses:
                self.controller.pulse(pulse_t)
        elif t >= self._next_reading:
            self.controller.speed_reading(t, round(self.belt.speed_kmh(t), 2))
            self._next_reading = t + SERIAL_EVERY_S

    def _do(self, step: Step) -> None:
        t = step.at
        if step.action == "press" and step.value == "start":
            self.controller.start_down(t)
            self._releases.append(t + step.hold)
        elif step.action == "press":
            self.controller.direction_pressed(t)
        elif step.action == "belt_kmh":
            self.belt.set_speed(
                step.value,
                jitter_pct=step.jitter_pct,
                ripple_pct=step.ripple_pct,
                ripple_hz=step.ripple_hz,
                abrupt=step.abrupt,
            )
        elif step.action == "sensor":
            self.sensor_lost = step.value == "lost"
        elif step.action == "check_sensor":
            self.check_lost = step.value == "lost"
        elif step.action == "reload":
            overrides = {} if step.value is True else step.value
            # a reload goes through the daemon's own validation; a bad one is a bad scenario
            config = merge_overrides(self.config, overrides, source=f"step at {t} s: reload")
            self.config = config
            self.controller.reconfigure(t, config)
        elif step.action == "command":
            self._command(t, step.value)

    def _command(self, t: float, value: str) -> None:

        try:
            if value in ("forward", "backward"):
                self.controller.command(t, "mode", Mode(value))
            else:
                self.controller.command(t, value)
        except CommandRefused:
            pass  # the refusal is in the events (start_refused) or was a no-op for the user

    def _release_buttons(self, t: float) -> None:
        for release_t in [r for r in self._releases if r <= t + 1e-9]:
            self._releases.remove(release_t)
            self.controller.start_up(release_t)

    def _trace_row(self, t: float) -> dict[str, Any]:
        """What the belt truly did at this tick beside what the device believed."""
        controller = self.controller
        speed, limit = controller.speed_kmh(t), controller.guard.limit
        return {
            "t": t,
            "belt_kmh": round(self.belt.speed_kmh(t), 3),
            "belt_m": round(self.belt.travel_m, 3),
            "speed_kmh": None if speed is None else round(speed, 2),
            "mode": controller.session.mode.value,
            "state": controller.session.state.value,
            "cap_kmh": None if limit is None else limit.cap_kmh,
            "relay": controller.guard.relay.value,
            "sensor": controller.sensor.verdict.state.value,
        }

    def _record(self, result: TickResult) -> None:
        for change in result.outputs:
            if change.name == "relay" and change.state == RelayState.OPEN.value:
                self.belt.key_pulled()
            elif change.name == "relay":
                self.belt.key_back()
        self.recorder.record(result)
        self.report.add(result)


def simulate_main(scenario_path: str, *, db: str | None = None, trace: bool = False) -> int:
    """Run a scenario file and print the report; 2 with one sentence for a bad file."""
    try:
        scenario = load_scenario(scenario_path)
        config = config_from_mapping(scenario.config, source=f"{scenario_path} [config]")
    except (ScenarioError, ConfigError) as exc:
        print(exc, file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="retrotread-sim-") as scratch:
        path = db or os.path.join(scratch, "simulate.db")
        try:
            store = Store(path)
        except StoreError as exc:
            print(exc, file=sys.stderr)
            return 2
        try:
            report = Simulation(scenario, store, config=config, trace=trace).run()
        except (ConfigError, ScenarioError) as exc:  # a reload the daemon would refuse, a skip
            print(exc, file=sys.stderr)  # while walking
            return 2
    json.dump(report.as_dict(), sys.stdout)
    sys.stdout.write("\n")
    return 0
