"""A story through the simulator, in-process, judged on the truth (support.invariant says how),
and a story as the TOML `retrotread simulate` reads, for a failure's report."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from device.config.load import config_from_mapping
from device.config.model import Config
from device.history.store import Store
from device.sim.scenario import Scenario, parse_scenario
from device.sim.simulate import Simulation
from support.invariant import Judgement, blind_rows, judge, rules_over_time, unguarded_rows


@dataclass
class Run:
    """One story through the simulator, in-process, with what the truth says of it."""

    scenario: Scenario
    config: Config
    report: dict[str, Any]
    judgement: Judgement

    @property
    def trace(self) -> list[dict[str, Any]]:
        return self.report["trace"]

    @property
    def events(self) -> list[dict[str, Any]]:
        return self.report["events"]

    def kinds(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["kind"] == kind]


def run_story(data: dict[str, Any]) -> Run:
    """Run a scenario (the dict a TOML file parses to) and judge it on the truth."""
    scenario = parse_scenario(data, source="story")
    config = config_from_mapping(scenario.config, source="story [config]")
    report = Simulation(scenario, Store(":memory:"), config=config, trace=True).run().as_dict()
    return Run(scenario, config, report, judge_report(scenario, config, report))


def judge_report(scenario: Scenario, config: Config, report: dict[str, Any]) -> Judgement:
    """The truth's judgement of a report `retrotread simulate --trace` printed for `scenario`
    (whose [config] gave `config`)."""
    trace, events = report["trace"], report["events"]
    timeline = rules_over_time(config, scenario)
    pulse_m = {"hall": config.sensor.meters_per_pulse}
    if config.sensor.check is not None:
        pulse_m["check"] = config.sensor.check.meters_per_pulse
    if config.sensor.console is not None:  # a console sees the belt while it answers at all
        blind = [False] * len(trace)
    else:
        blind = blind_rows(trace, scenario, meters_per_pulse=pulse_m)
    unguarded = unguarded_rows(trace, events, timeline, blind)
    return judge(trace, events, timeline, left_out=blind, unguarded=unguarded)


def as_toml(data: dict[str, Any]) -> str:
    """A story as TOML that `retrotread simulate` reads, one step a line, for a report."""
    lines = [
        f"config.{table} = {_toml(entries)}" for table, entries in data.get("config", {}).items()
    ]
    lines += ["step = ["] + [f"  {_toml(step)}," for step in data["step"]] + ["]"]
    return "\n".join(lines)


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + " }"
    return f"{value:g}" if isinstance(value, float) else str(value)
