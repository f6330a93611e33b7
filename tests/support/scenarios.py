"""The scenario stories in tests/scenarios, `retrotread simulate` run on them, and readers of
the report it prints: shared by the simulate, safety-scenario and guard-rule tests."""

from __future__ import annotations

import functools
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from device.config.load import config_from_mapping
from device.core.tick import TickResult
from device.history.store import Store
from device.sim.scenario import Scenario, Step, load_scenario
from device.sim.simulate import Simulation

REPO = Path(__file__).resolve().parents[2]
SCENARIOS = REPO / "tests" / "scenarios"


def cli(*args: str) -> subprocess.CompletedProcess:
    """`retrotread simulate ARGS` in a subprocess, as a user types it."""
    return subprocess.run(
        [sys.executable, "-m", "device.cli", "simulate", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )


@functools.cache
def story(name: str) -> dict[str, Any]:
    """The JSON report `retrotread simulate tests/scenarios/<name>.toml --trace` prints, read
    once per test run."""
    done = cli(str(SCENARIOS / f"{name}.toml"), "--trace")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    return json.loads(done.stdout)


def sample_at(rep: dict, t: float) -> dict:
    (sample,) = [s for s in rep["samples"] if s["t"] == t]
    return sample


def events(rep: dict, kind: str) -> list[dict]:
    return [e for e in rep["events"] if e["kind"] == kind]


def the(rep: dict, kind: str) -> dict:
    """The one event of this kind in the story."""
    (event,) = events(rep, kind)
    return event


def outputs(rep: dict, name: str) -> list[str]:
    return [o["state"] for o in rep["outputs"] if o["name"] == name]


def status_at(name: str, t: float) -> dict[str, Any]:
    """The dashboard's status at time t of the story, after the tick at t (the printed report
    has events, outputs and samples, not the status: this runs the story in-process up to t)."""
    scenario = load_scenario(str(SCENARIOS / f"{name}.toml"))
    steps = [step for step in scenario.steps if step.at < t]
    cut = Scenario(scenario.config, [*steps, Step(at=t, action="end", value=True)])
    simulation = Simulation(cut, Store(":memory:"), config=config_from_mapping(cut.config))
    seen: dict[str, Any] = {}
    shutdown = simulation.controller.shutdown

    def read_status_then_shut_down(t: float) -> TickResult:
        seen.update(simulation.controller.status(t))
        return shutdown(t)

    simulation.controller.shutdown = read_status_then_shut_down  # type: ignore[method-assign]
    simulation.run()
    return seen
