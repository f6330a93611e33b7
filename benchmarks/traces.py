"""Generated belt pulse trains: a belt with foot-strike ripple, edge jitter and reed bounce.

Everything is seeded, so every run of the benchmark sees the same edges. The belt's travel is
known exactly (`Belt.position`), which gives the true mean speed over any window to score the
estimators against.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

KMH_PER_MPS = 3.6
RIPPLE = 0.05  # the belt slows and surges +-5 % around its set speed at every foot strike
JITTER_S = 0.0005  # edge timestamp jitter (standard deviation), seconds
BOUNCE_DELAYS_S = (0.001, 0.003)  # a reed switch chatters 1-3 ms after the real edge


@dataclass(frozen=True)
class Belt:
    """A belt whose set speed changes at given times, with a sinusoidal foot-strike ripple.

    `segments` are (start_s, kmh) pairs, the first starting at 0; the last runs forever.
    Speed at t = set speed * (1 + ripple * sin(2 pi f t + phase)).
    """

    segments: tuple[tuple[float, float], ...]
    ripple: float = RIPPLE
    strike_hz: float = 1.75
    phase: float = 0.0
    _starts: tuple[float, ...] = field(init=False, repr=False)
    _offsets: tuple[float, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        starts = tuple(s for s, _ in self.segments)
        offsets = [0.0]
        for (start, kmh), end in zip(self.segments, starts[1:], strict=False):
            offsets.append(
                offsets[-1] + kmh / KMH_PER_MPS * (self._rippled(end) - self._rippled(start))
            )
        object.__setattr__(self, "_starts", starts)
        object.__setattr__(self, "_offsets", tuple(offsets))

    def _rippled(self, t: float) -> float:
        """Integral of (1 + ripple sin(...)) from 0 to t, seconds."""
        w = 2 * math.pi * self.strike_hz
        return t - self.ripple / w * (math.cos(w * t + self.phase) - math.cos(self.phase))

    def _segment(self, t: float) -> int:
        i = len(self._starts) - 1
        while i > 0 and self._starts[i] > t:
            i -= 1
        return i

    def position(self, t: float) -> float:
        """Belt travel since t=0, meters."""
        i = self._segment(t)
        start, kmh = self.segments[i]
        return self._offsets[i] + kmh / KMH_PER_MPS * (self._rippled(t) - self._rippled(start))

    def speed_mps(self, t: float) -> float:
        _, kmh = self.segments[self._segment(t)]
        w = 2 * math.pi * self.strike_hz
        return kmh / KMH_PER_MPS * (1 + self.ripple * math.sin(w * t + self.phase))

    def mean_kmh(self, t: float, window_s: float) -> float:
        """The true mean speed over [t - window_s, t], km/h."""
        return (self.position(t) - self.position(t - window_s)) / window_s * KMH_PER_MPS

    def set_kmh(self, t: float) -> float:
        return self.segments[self._segment(t)][1]


def edge_times(
    belt: Belt, meters_per_pulse: float, until_s: float, *, offset_m: float
) -> list[float]:
    """Exact times at which the belt has travelled offset_m + k * meters_per_pulse, k = 0, 1..."""
    times: list[float] = []
    end = belt.position(until_s)
    target = offset_m
    t = 0.0
    while target < end:
        # Newton on position(t) = target; position is smooth and nearly linear within a segment
        v = belt.speed_mps(t)
        if v <= 0.0:
            t = _next_moving(belt, t)
            v = belt.speed_mps(t)
        guess = t + (target - belt.position(t)) / v
        for _ in range(8):
            v = belt.speed_mps(guess)
            if v <= 0.0:  # overshot into a stop: fall back to bisection
                guess = _bisect(belt, target, t, guess)
                break
            step = (belt.position(guess) - target) / v
            guess -= step
            if abs(step) < 1e-9:
                break
        t = guess
        times.append(t)
        target += meters_per_pulse
    return times


def _next_moving(belt: Belt, t: float) -> float:
    for start, kmh in belt.segments:
        if start > t and kmh > 0:
            return start
    return t


def _bisect(belt: Belt, target: float, lo: float, hi: float) -> float:
    for _ in range(60):
        mid = (lo + hi) / 2
        if belt.position(mid) < target:
            lo = mid
        else:
            hi = mid
    return hi


def jittered(times: list[float], rng: random.Random, sigma_s: float = JITTER_S) -> list[float]:
    """Edge timestamps with Gaussian jitter (clipped at 3 sigma), as the kernel stamps them."""
    out = [t + max(-3 * sigma_s, min(3 * sigma_s, rng.gauss(0.0, sigma_s))) for t in times]
    out.sort()
    return out


def bounced(times: list[float], rng: random.Random, probability: float = 0.6) -> list[float]:
    """A reed switch: after some real edges, one to three extra edges 1-3 ms later."""
    out: list[float] = []
    lo, hi = BOUNCE_DELAYS_S
    for t in times:
        out.append(t)
        if rng.random() < probability:
            out.extend(sorted(t + rng.uniform(lo, hi) for _ in range(rng.randint(1, 3))))
    out.sort()
    return out


@dataclass(frozen=True)
class Trace:
    """One run of edges with the belt that made them."""

    belt: Belt
    meters_per_pulse: float
    edges: list[float]
    duration_s: float
    label: str = ""


def steady(
    kmh: float,
    meters_per_pulse: float,
    *,
    seed: int,
    duration_s: float = 30.0,
    ripple: float = RIPPLE,
    bounce: bool = False,
) -> Trace:
    """A belt at a set speed with ripple at a random foot-strike rate (1.5-2 Hz) and phase."""
    rng = random.Random(seed)
    belt = Belt(
        ((0.0, kmh),),
        ripple=ripple,
        strike_hz=rng.uniform(1.5, 2.0),
        phase=rng.uniform(0, 2 * math.pi),
    )
    edges = jittered(
        edge_times(belt, meters_per_pulse, duration_s, offset_m=rng.uniform(0, meters_per_pulse)),
        rng,
    )
    if bounce:
        edges = bounced(edges, rng)
    return Trace(belt, meters_per_pulse, edges, duration_s, f"{kmh} km/h")


def step(
    from_kmh: float,
    to_kmh: float,
    meters_per_pulse: float,
    *,
    seed: int,
    at_s: float = 8.0,
    after_s: float = 6.0,
    ripple: float = 0.0,
) -> Trace:
    """A belt that jumps from one set speed to another at a random moment near `at_s`."""
    rng = random.Random(seed)
    at = at_s + rng.uniform(0, 1.0)
    belt = Belt(
        ((0.0, from_kmh), (at, to_kmh)),
        ripple=ripple,
        strike_hz=rng.uniform(1.5, 2.0),
        phase=rng.uniform(0, 2 * math.pi),
    )
    duration = at + after_s
    edges = jittered(
        edge_times(belt, meters_per_pulse, duration, offset_m=rng.uniform(0, meters_per_pulse)), rng
    )
    return Trace(belt, meters_per_pulse, edges, duration, f"{from_kmh}->{to_kmh} km/h")


def stop(
    kmh: float, meters_per_pulse: float, *, seed: int, at_s: float = 8.0, after_s: float = 8.0
) -> Trace:
    """A belt that stops dead (safety key pulled) at a random moment near `at_s`."""
    rng = random.Random(seed)
    at = at_s + rng.uniform(0, 1.0)
    belt = Belt(
        ((0.0, kmh), (at, 0.0)), strike_hz=rng.uniform(1.5, 2.0), phase=rng.uniform(0, 2 * math.pi)
    )
    duration = at + after_s
    edges = jittered(
        edge_times(belt, meters_per_pulse, duration, offset_m=rng.uniform(0, meters_per_pulse)), rng
    )
    return Trace(belt, meters_per_pulse, edges, duration, f"{kmh}->0 km/h")
