"""The safety invariant over many stories, judged on the simulated belt's truth
(tests/support/invariant.py): a seeded sweep of attack stories, each 2-4 minutes of someone trying
every way to keep a fast belt running backward, and hours of a walker who keeps under the
cap. The seed names each story: `attack(RandomDraw(seed))` rebuilds it."""

from __future__ import annotations

import multiprocessing
import os
import time
from dataclasses import dataclass

from support.invariant import RunOver, over_the_cap_rows, true_means_kmh
from support.stories import RandomDraw, attack, legit_walk
from support.story_runs import run_story

from benchmarks.table import Row

TITLE = "Safety: the invariant on the belt's truth, attack stories and legit walking"
ATTACKS = 3000  # about 90 s on 2 cores
LEGIT_HOURS = 4.0
LEGIT_SESSION_S = (900.0, 1800.0)
PROCESSES = min(2, os.cpu_count() or 1)


@dataclass(frozen=True)
class Verdict:
    """What one attack story comes to, small enough to send back from a worker."""

    seed: int
    holds: bool
    worst_run: RunOver | None  # the run-over furthest over (or closest to) its bound
    worst_window: RunOver | None
    across_stops: RunOver | None
    late_warnings: int
    stops: int


def _judge_attack(seed: int) -> Verdict:
    judged = run_story(attack(RandomDraw(seed))).judgement
    return Verdict(
        seed,
        judged.holds,
        max(judged.runs, key=lambda r: r.excess_s, default=None),
        max(judged.windows, key=lambda w: w.excess_s, default=None),
        judged.across_stops,
        len(judged.late_warnings),
        len(judged.stops),
    )


def _worst(verdicts: list[Verdict], which: str) -> tuple[Verdict, RunOver] | None:
    found = [(v, getattr(v, which)) for v in verdicts if getattr(v, which) is not None]
    return max(found, key=lambda pair: pair[1].excess_s, default=None)


def where(seed: int, over: RunOver) -> str:
    """A line on what the belt and the device did in the middle of a run-over."""
    run = run_story(attack(RandomDraw(seed)))
    mid_t = over.start_t + min(over.seconds, over.allowed_s) / 2
    i = min(range(len(run.trace)), key=lambda k: abs(run.trace[k]["t"] - mid_t))
    row, mean = run.trace[i], true_means_kmh(run.trace)[i]
    guard = [e for e in run.events if e["t"] <= mid_t and e["kind"] not in ("config_reloaded",)]
    last = f"; last event {guard[-1]['kind']} at {guard[-1]['t']:g} s" if guard else ""
    device = "unknown" if row["speed_kmh"] is None else f"{row['speed_kmh']:g} km/h"
    cap = "none (forward)" if row["cap_kmh"] is None else f"{row['cap_kmh']:g}"
    return (
        f"seed {seed}, from t = {over.start_t:g} s: {row['mode']} {row['state']}, belt "
        f"{row['belt_kmh']:g} km/h (3 s mean {mean:.1f}), device reads {device} "
        f"(sensor {row['sensor']}), cap {cap}{last}"
    )


def _sweep() -> tuple[list[Verdict], float]:
    started = time.perf_counter()
    with multiprocessing.get_context("fork").Pool(PROCESSES) as pool:
        verdicts = list(pool.imap_unordered(_judge_attack, range(ATTACKS), chunksize=20))
    return sorted(verdicts, key=lambda v: v.seed), time.perf_counter() - started


def _legit_story(seed: int) -> dict:
    return legit_walk(RandomDraw(seed), sessions=2, session_s=LEGIT_SESSION_S)


def _walk_legit(seed: int) -> tuple[float, int, int, int, int, int]:
    """Virtual seconds, sessions, enforced stops, not_enforced, warnings, over-the-cap rows."""
    run = run_story(_legit_story(seed))
    return (
        run.trace[-1]["t"],
        len(run.kinds("session_started")),
        len(run.kinds("enforced_stop")),
        len(run.kinds("not_enforced")),
        len(run.kinds("overspeed_warning")),
        len(over_the_cap_rows(run.trace)),
    )


def _legit() -> tuple[list[tuple[float, int, int, int, int, int]], float]:
    """Stories of two sessions each, seeds from 0, until LEGIT_HOURS of virtual time."""
    started = time.perf_counter()
    results: list[tuple[float, int, int, int, int, int]] = []
    seeds = iter(range(10_000))
    with multiprocessing.get_context("fork").Pool(PROCESSES) as pool:
        while sum(r[0] for r in results) < LEGIT_HOURS * 3600:
            batch = [next(seeds) for _ in range(PROCESSES)]
            results += pool.map(_walk_legit, batch)
    return results, time.perf_counter() - started


def _over_row(
    label: str, worst: tuple[Verdict, RunOver] | None, bound: str, said: list[Row]
) -> Row:
    """The worst run-over (furthest over its bound) as a figure; where it was goes in `said`."""
    if worst is None:
        return Row(label, "none", bound, True)
    verdict, over = worst
    said.append(Row(f"  {label.strip()}: {where(verdict.seed, over)}"))
    figure = f"{over.seconds:.1f} s of {over.allowed_s:.1f} s"
    return Row(label, figure, bound, over.excess_s <= 1e-9)


def _across_row(verdicts: list[Verdict], said: list[Row]) -> Row:
    """The fullest 60 s window counting run-over on both sides of stops: restarts add up."""
    label = "  fullest 60 s window across stops, stories that hold"
    found = [(v, v.across_stops) for v in verdicts if v.holds and v.across_stops is not None]
    if not found:
        return Row(label, "none")
    verdict, over = max(found, key=lambda pair: pair[1].seconds)
    said.append(Row(f"  {label.strip()}: {where(verdict.seed, over)}"))
    return Row(label, f"{over.seconds:.1f} s", f"(2 x grace + 1 s = {over.allowed_s:.1f} s)")


def rows() -> list[Row]:
    verdicts, took = _sweep()
    broken = [v.seed for v in verdicts if not v.holds]
    late = [v.seed for v in verdicts if v.late_warnings]
    said = [Row("Where the worst happened (rebuild a story with attack(RandomDraw(seed)))")]
    if broken:
        said.append(Row("  seeds that break the invariant: " + ", ".join(map(str, broken[:15]))))
    out = [
        Row(f"Attack stories: seeds 0-{ATTACKS - 1}, 2-4 min each"),
        Row(f"  wall time on {PROCESSES} processes", f"{took:.1f} s", "< 180 s", took < 180),
        Row("  enforced stops, all stories", f"{sum(v.stops for v in verdicts)}"),
        Row("  stories that break the invariant", f"{len(broken)} of {ATTACKS}", "0", not broken),
        _over_row(
            "  worst continuous run-over", _worst(verdicts, "worst_run"), "<= grace + 1.5 s", said
        ),
        _over_row(
            "  worst 60 s window", _worst(verdicts, "worst_window"), "<= 2 x grace + 1 s", said
        ),
        _across_row(verdicts, said),
        Row(
            '  "warn", no session: run-over not warned within 1 s',
            f"{len(late)} stories",
            "0",
            not late,
        ),
    ]
    legit, legit_took = _legit()
    hours = sum(r[0] for r in legit) / 3600
    stops, not_enforced, warnings = (sum(r[k] for r in legit) for k in (2, 3, 4))
    out += [
        Row(
            f"Legit walking: {len(legit)} stories, {sum(r[1] for r in legit)} sessions of "
            f"{LEGIT_SESSION_S[0] / 60:.0f}-{LEGIT_SESSION_S[1] / 60:.0f} min, ripple and jitter"
        ),
        Row("  virtual time", f"{hours:.1f} h", f"in {legit_took:.1f} s of wall time"),
        Row("  enforced stops per hour", f"{stops / hours:.2f}", "0", stops == 0),
        Row(
            "  not_enforced events per hour", f"{not_enforced / hours:.2f}", "0", not_enforced == 0
        ),
        Row("  warnings per hour", f"{warnings / hours:.2f}"),
        Row("  rows the walker's mean was over the shown cap", f"{sum(r[5] for r in legit)}"),
    ]
    return out + said
