"""What a FIT activity file says about time and distance, worked out from one stored session:
when its timer ran (pauses stop it), how far the belt had gone at each sample, and the figures
of each lap (a segment: one way of facing). Pure: stored rows in, numbers out; times are epoch
seconds, speeds km/h, distances m, as in device.history.reader.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import pairwise

from device.core.events import EventKind
from device.core.modes import Mode
from device.core.speed import KMH_PER_MPS
from device.history.reader import EventRow, SegmentRow, SessionRow
from device.history.store import MAX_SAMPLE_GAP_S

# One row of History.sample_rows: (t, speed_kmh, cap_kmh, mode, state)
SampleRow = tuple[float, float | None, float | None, str, str]


@dataclass(frozen=True, slots=True)
class TimerSpan:
    """A stretch of the session with its timer running: from a start or resume to the next
    pause or the end."""

    start: float
    end: float


@dataclass(frozen=True, slots=True)
class Lap:
    """One segment as a FIT lap."""

    start: float
    end: float
    timer_s: float  # its elapsed time less the pauses in it
    distance_m: float
    max_speed_kmh: float | None  # None when no known speed was sampled in it
    mode: Mode | None  # None for the one lap of a session stored without segments


def timer_spans(started_at: float, ended_at: float, events: Iterable[EventRow]) -> list[TimerSpan]:
    """When the session's timer ran: it starts with the session, stops at each pause, starts
    again at each resume and stops at the end. A pause with no resume (the session ended
    while paused, or the resume was lost) lasts to the end; a resume with no pause before it
    changes nothing. A session of no time at all still has one span, its timer started and
    stopped at once."""
    spans: list[TimerSpan] = []
    running_since: float | None = started_at
    for event in sorted(events, key=lambda e: e.t):
        t = min(max(event.t, started_at), ended_at)
        if event.kind is EventKind.SESSION_PAUSED and running_since is not None:
            spans.append(TimerSpan(running_since, t))
            running_since = None
        elif event.kind is EventKind.SESSION_RESUMED and running_since is None:
            running_since = t
    if running_since is not None:
        spans.append(TimerSpan(running_since, ended_at))
    return spans


def timer_s(spans: Sequence[TimerSpan], start: float, end: float) -> float:
    """Seconds of running timer between `start` and `end`."""
    return sum(max(0.0, min(end, s.end) - max(start, s.start)) for s in spans)


def record_distances(samples: Sequence[SampleRow], total_m: float) -> list[float]:
    """The cumulative distance at each sample, ending on `total_m`.

    The shape comes from the sampled speeds (trapezoids between neighbours, as the store sums
    a segment), the size from `total_m`: the session's distance is counted from belt pulses,
    which the 1 Hz speed samples only approximate (they miss what happens between samples and
    skip unknown speeds), and Garmin Connect and Strava show the last record's distance beside
    the session's total, so the two must agree. With no usable speeds at all the distance is
    spread evenly over the time between samples.
    """
    if not samples:
        return []
    steps = [_trapezoid_m(before, after) for before, after in pairwise(samples)]
    if sum(steps) <= 0:
        steps = [after[0] - before[0] for before, after in pairwise(samples)]
    walked = sum(steps)
    if walked <= 0:  # one sample, or all at the same second: the whole distance at the last
        return [0.0] * (len(samples) - 1) + [total_m]
    scale = total_m / walked
    cumulative, distances = 0.0, [0.0]
    for step in steps:
        cumulative += step
        distances.append(cumulative * scale)
    distances[-1] = total_m  # no rounding drift on the figure the readers compare
    return distances


def _trapezoid_m(before: SampleRow, after: SampleRow) -> float:
    (t0, v0, *_), (t1, v1, *_) = before, after
    dt = t1 - t0
    if v0 is None or v1 is None or not 0 < dt <= MAX_SAMPLE_GAP_S:
        return 0.0
    return max(0.0, (v0 + v1) / 2 / KMH_PER_MPS * dt)


def laps(
    session: SessionRow,
    ended_at: float,
    segments: Sequence[SegmentRow],
    spans: Sequence[TimerSpan],
    samples: Sequence[SampleRow],
) -> list[Lap]:
    """One lap per segment, in time order, each ending where the next begins (and the last at
    the session's end); a session stored without segments is one lap without a direction."""
    if not segments:
        return [_lap(session.started_at, ended_at, session.distance_m, None, spans, samples)]
    found = []
    for i, segment in enumerate(segments):
        following = segments[i + 1].started_at if i + 1 < len(segments) else ended_at
        end = segment.ended_at if segment.ended_at is not None else following
        start = max(segment.started_at, session.started_at)
        end = min(max(end, start), ended_at)
        found.append(_lap(start, end, segment.distance_m, segment.mode, spans, samples))
    return found


def _lap(
    start: float,
    end: float,
    distance_m: float,
    mode: Mode | None,
    spans: Sequence[TimerSpan],
    samples: Sequence[SampleRow],
) -> Lap:
    speeds = [v for t, v, *_ in samples if start <= t <= end and v is not None]
    return Lap(
        start=start,
        end=end,
        timer_s=timer_s(spans, start, end),
        distance_m=distance_m,
        max_speed_kmh=max(speeds) if speeds else None,
        mode=mode,
    )


def used_running_cap(samples: Iterable[SampleRow], running_cap_kmh: float) -> bool:
    """Whether the walker was allowed to run: some sample's cap reached the running cap."""
    return any(cap is not None and cap >= running_cap_kmh - 1e-9 for _, _, cap, *_ in samples)
