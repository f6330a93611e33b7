"""`retrotread simulate SCENARIO.toml`: run a scenario in virtual time through the same
Controller and Recorder the daemon uses, and print one JSON report.

Virtual time makes a 30-minute scenario run in well under two seconds and makes every run
of the same file give the same report, which is what the scenario tests rely on.

A CSAFE console ([sensor] or [sensor.check] kind = "csafe") is simulated as the link sees
one: polled at 5 Hz, it reports the speed it is set to (the belt's target, not the belt:
consoles do not measure the belt), reading `console_fast_pct` fast, and its machine state on
each change; SetSpeed (Output.CONSOLE_SPEED) is honoured at the belt's own rate, taken and
ignored, or refused, and its fate comes back with the answer to the next poll. The trace
then has a `console_kmh` column: what the console reports (None when it reaches nobody).
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
from device.config.model import Config, SensorKind
from device.core.console import ConsoleState, SpeedAnswer
from device.core.controller import CommandRefused, Controller
from device.core.modes import Mode
from device.core.signals import RelayState
from device.core.tick import Output, TickResult
from device.history.recorder import Recorder, load_controller
from device.history.store import Store, StoreError
from device.sim.belt import SimulatedBelt
from device.sim.scenario import CONSOLE_ACTIONS, Scenario, ScenarioError, Step, load_scenario

TICK_S = 0.1  # the daemon's tick loop runs at 10 Hz; so does virtual time
SERIAL_EVERY_S = 0.5  # a serial bridge reports about twice a second
CONSOLE_EVERY_S = 0.2  # the CSAFE link polls the console at 5 Hz
# SetSpeed goes out at the next poll; the answer to the poll after it tells its fate
ANSWER_AFTER_S = 0.3
_ANSWERS = {"honours": SpeedAnswer.ACCEPTED, "ignores": SpeedAnswer.ACCEPTED,
            "rejects": SpeedAnswer.REJECTED}  # fmt: skip


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


class SimulatedConsole:
    """A gym treadmill's CSAFE console as the device's link sees it, in the role `role`
    ("primary": the speed source; "check": it checks the hall sensor)."""

    def __init__(self, role: str):
        self.role = role
        self.behaviour = "honours"  # what it does with SetSpeed; "unplugged": nothing at all
        self.fast_pct = 0.0  # how far fast it reads
        self.state = ConsoleState.READY
        self._told: ConsoleState | None = None  # the state the link last reported
        self._next_poll = 0.0
        self._answers: list[tuple[float, SpeedAnswer]] = []  # (when it arrives, the fate)

    @property
    def plugged(self) -> bool:
        return self.behaviour != "unplugged"

    def reports_kmh(self, belt: SimulatedBelt) -> float:
        """What it says the belt runs at: the speed it is set to, in its own calibration."""
        return round(belt.set_kmh * (1 + self.fast_pct / 100), 2)

    def poll(self, t: float, belt: SimulatedBelt, controller: Controller, *, read: bool) -> None:
        """The link's polls up to t: answers due, the state on a change, the speed every
        CONSOLE_EVERY_S (`read`: the speed channel's cable is in)."""
        if not self.plugged:
            self._answers.clear()  # the frames after SetSpeed never come back
            return
        for answer in [a for a in self._answers if a[0] <= t + 1e-9]:
            self._answers.remove(answer)
            controller.console_answered(answer[0], answer[1])
        if t + 1e-9 < self._next_poll:
            return
        self._next_poll = round(t + CONSOLE_EVERY_S, 6)
        if self.state is not self._told:
            self._told = self.state
            controller.console_changed(t, self.state)
        if read and self.role == "primary":
            controller.speed_reading(t, self.reports_kmh(belt))
        elif read:
            controller.console_reading(t, self.reports_kmh(belt))

    def set_speed(self, t: float, kmh: float, belt: SimulatedBelt) -> None:
        """SetSpeed arrived: the belt follows at its own rate (a console that honours it sets
        its own figure to `kmh`, so a console reading fast sets the belt a little under)."""
        if not self.plugged:
            return
        self._answers.append((round(t + ANSWER_AFTER_S, 6), _ANSWERS[self.behaviour]))
        if self.behaviour == "honours" and not belt.loop_open:
            belt.set_speed(
                kmh / (1 + self.fast_pct / 100),
                jitter_pct=belt.jitter_pct,
                ripple_pct=belt.ripple_pct,
                ripple_hz=belt.ripple_hz,
            )


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
        sensor, check = self.config.sensor, self.config.sensor.check
        hall_check = check is not None and check.kind == SensorKind.HALL
        self.belt = SimulatedBelt(
            sensor.meters_per_pulse,
            check_meters_per_pulse=check.meters_per_pulse if check and hall_check else None,
        )
        self.console: SimulatedConsole | None = None
        if sensor.kind == SensorKind.CSAFE:
            self.console = SimulatedConsole("primary")
        elif check is not None and not hall_check:
            self.console = SimulatedConsole("check")
        _needs_console(scenario, self.console)
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
        console = self.console
        if console is not None:
            lost = self.sensor_lost if console.role == "primary" else self.check_lost
            console.poll(t, self.belt, self.controller, read=not lost)
        if self.sensor_lost:
            return
        if self.controller.uses_pulses:
            for pulse_t in pulses:
                self.controller.pulse(pulse_t)
        elif console is None and t >= self._next_reading:  # a console's own polls are above
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
        elif self.console is not None and step.action == "console":
            self.console.behaviour = step.value
        elif self.console is not None and step.action == "console_state":
            self.console.state = ConsoleState(step.value)
        elif self.console is not None and step.action == "console_fast_pct":
            self.console.fast_pct = step.value

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
        row = {
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
        console = self.console
        if console is None:
            return row
        lost = self.sensor_lost if console.role == "primary" else self.check_lost
        heard = console.plugged and not lost
        return {**row, "console_kmh": console.reports_kmh(self.belt) if heard else None}

    def _record(self, result: TickResult) -> None:
        for change in result.outputs:
            if change.name == "relay" and change.state == RelayState.OPEN.value:
                self.belt.key_pulled()
            elif change.name == "relay":
                self.belt.key_back()
            elif change.name is Output.CONSOLE_SPEED and self.console is not None:
                self.console.set_speed(change.t, float(change.state), self.belt)
        self.recorder.record(result)
        self.report.add(result)


def _needs_console(scenario: Scenario, console: SimulatedConsole | None) -> None:
    """A console step on a treadmill with no console is a mistake in the scenario."""
    if console is not None:
        return
    for step in scenario.steps:
        if step.action in CONSOLE_ACTIONS:
            raise ScenarioError(
                f"step at {step.at:g} s: {step.action} needs a CSAFE console; set [sensor] kind "
                'or [sensor.check] kind to "csafe" in [config].'
            )


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
