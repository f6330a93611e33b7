"""How fast `retrotread simulate` runs a 30-minute session in virtual time, through the same
Controller, Recorder and SQLite store the daemon uses. The scenario tests lean on this speed."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from benchmarks.table import Row
from device.history.store import Store
from device.sim.scenario import parse_scenario
from device.sim.simulate import Simulation

TITLE = "Simulator: a 30-minute session in virtual time"
TARGET_S = 2.0
RUNS = 3

# A beginner's half hour: backward at the start cap, up the ramp, a forward stretch, a stop.
HALF_HOUR = {
    "step": [
        {"at": 1, "belt_kmh": 1.0, "ripple_pct": 5},
        {"at": 3, "press": "start"},
        {"at": 130, "belt_kmh": 2.0, "ripple_pct": 5},
        {"at": 400, "belt_kmh": 2.8, "ripple_pct": 5},
        {"at": 900, "press": "direction"},
        {"at": 902, "belt_kmh": 4.5, "ripple_pct": 4},
        {"at": 1500, "belt_kmh": 1.0},
        {"at": 1505, "press": "direction"},
        {"at": 1780, "press": "start", "hold": 2.5},
        {"at": 1800, "end": True},
    ]
}


def _run_once(db: Path) -> tuple[float, int]:
    scenario = parse_scenario(HALF_HOUR, source="benchmark")
    started = time.perf_counter()
    report = Simulation(scenario, Store(db)).run()
    return time.perf_counter() - started, len(report.samples)


def rows() -> list[Row]:
    timings = []
    with tempfile.TemporaryDirectory() as scratch:
        for run in range(RUNS):
            took, samples = _run_once(Path(scratch) / f"run{run}.db")
            timings.append(took)
    best, worst = min(timings), max(timings)
    return [
        Row(
            f"wall time, worst of {RUNS} runs ({samples} samples)",
            f"{worst:.2f} s",
            f"< {TARGET_S:.0f} s",
            worst < TARGET_S,
        ),
        Row("wall time, best run", f"{best:.2f} s"),
        Row("virtual seconds per wall second", f"{1800 / best:,.0f}x"),
    ]
