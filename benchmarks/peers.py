"""Re-implementations of what public treadmill-sensor projects do, to score ours against.

Both take edges with `pulse(t)` and answer `speed_kmh(t)` and `mean_kmh(t, window_s)` like
`device.core.speed.SpeedEstimator`, so the benchmark drives all three the same way. Each follows
its firmware's loop: the reading changes only when that loop would have updated it.
"""

from __future__ import annotations

from collections import deque

KMH_PER_MPS = 3.6


class IntervalAveragePeer:
    """Interval timing averaged once per second (lefty01/ESP32_TTGO_FTMS, reed ISR).

    The ISR ignores an edge within 300 us or within half the last interval of the previous
    one; a gap over 1 s restarts the clock without counting an interval. Every second the
    loop averages the intervals counted in that second, or reads 0 when there were none.
    The 3 s mean is the mean of the last three one-second readings.
    """

    def __init__(self, meters_per_pulse: float, *, period_s: float = 1.0, max_gap_s: float = 1.0):
        self.meters_per_pulse = meters_per_pulse
        self.period_s = period_s
        self.max_gap_s = max_gap_s
        self._start: float | None = None  # the ISR's startTime
        self._long_pause = 0.0
        self._sum = 0.0
        self._count = 0
        self._next_update: float | None = None
        self._readings: deque[float] = deque(maxlen=10)  # km/h, one per period

    def pulse(self, t: float) -> None:
        self._advance(t)
        if self._next_update is None:
            self._next_update = t + self.period_s
        if self._start is None:
            self._start = t
            return
        elapsed = t - self._start
        if elapsed < 0.0003:
            return
        if elapsed > self.max_gap_s:
            self._start = t
            self._long_pause = 0.0
            return
        if elapsed > self._long_pause / 2:
            self._start = t
            self._long_pause = elapsed
            self._sum += elapsed
            self._count += 1

    def _advance(self, t: float) -> None:
        while self._next_update is not None and self._next_update <= t:
            mps = self.meters_per_pulse * self._count / self._sum if self._count else 0.0
            self._readings.append(mps * KMH_PER_MPS)
            self._sum, self._count = 0.0, 0
            self._next_update += self.period_s

    def speed_kmh(self, t: float) -> float:
        self._advance(t)
        return self._readings[-1] if self._readings else 0.0

    def mean_kmh(self, t: float, window_s: float) -> float:
        self._advance(t)
        n = max(1, round(window_s / self.period_s))
        recent = list(self._readings)[-n:]
        return sum(recent) / len(recent) if recent else 0.0


class PulseCountPeer:
    """Pulse counting in fixed 3 s windows (mstepovanyy/TreadmillSensor).

    Every edge counts (no debounce). The loop runs every 10 ms; once more than 3 s have passed
    since the window opened, the speed is count * meters_per_pulse / elapsed and a new window
    opens. The reading is that last window's speed, for display and mean alike.
    """

    def __init__(self, meters_per_pulse: float, *, window_s: float = 3.0, loop_s: float = 0.01):
        self.meters_per_pulse = meters_per_pulse
        self.window_s = window_s
        self.loop_s = loop_s
        self._opened: float | None = None
        self._count = 0
        self._pending: deque[float] = deque()
        self._kmh = 0.0

    def pulse(self, t: float) -> None:
        if self._opened is None:
            self._opened = t
        self._advance(t)
        self._pending.append(t)

    def _advance(self, t: float) -> None:
        if self._opened is None:
            return
        # the loop's first check after window_s has passed, on its 10 ms grid
        while True:
            steps = int(self.window_s / self.loop_s) + 1
            closes = self._opened + steps * self.loop_s
            if closes > t:
                break
            while self._pending and self._pending[0] < closes:
                self._pending.popleft()
                self._count += 1
            self._kmh = self._count * self.meters_per_pulse / (closes - self._opened) * KMH_PER_MPS
            self._count = 0
            self._opened = closes

    def speed_kmh(self, t: float) -> float:
        self._advance(t)
        return self._kmh

    def mean_kmh(self, t: float, window_s: float) -> float:
        return self.speed_kmh(t)
