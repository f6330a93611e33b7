"""Belt speed from readings rather than pulses: a serial bridge or a console that reports
km/h. Pure: the caller gives the time. A reading older than `stale_s` means the speed is
unknown (None), which the governor treats as possibly too fast."""

from __future__ import annotations

from collections import deque


class ReadingSpeed:
    def __init__(self, *, stale_s: float, keep_s: float = 10.0):
        self.stale_s = stale_s
        self.keep_s = keep_s
        self._readings: deque[tuple[float, float]] = deque()

    def reading(self, t: float, kmh: float) -> None:
        if self.is_stale(t):
            # back after a gap: the last reading before it says nothing of the gap, and held
            # across it the mean would read a belt back at 6 km/h as 1.5 for a while
            self._readings.clear()
        self._readings.append((t, kmh))
        while self._readings and t - self._readings[0][0] > self.keep_s:
            self._readings.popleft()

    def cut(self, t: float) -> None:
        """Our relay cut the belt at t: it stands now, whatever the readings before said. The
        last reading stays, as 0, so the source is not stale for the cut alone."""
        if self._readings:
            last_t = self._readings[-1][0]
            self._readings.clear()
            self._readings.append((min(last_t, t), 0.0))

    @property
    def last_t(self) -> float | None:
        """When the last reading came, or None before the first."""
        return self._readings[-1][0] if self._readings else None

    def is_stale(self, t: float) -> bool:
        return not self._readings or t - self._readings[-1][0] > self.stale_s

    def speed_kmh(self, t: float) -> float | None:
        return None if self.is_stale(t) else self._readings[-1][1]

    def mean_kmh(self, t: float, window_s: float) -> float | None:
        """Time-weighted mean over the last `window_s`: each reading holds until the next."""
        if self.is_stale(t):
            return None
        start = t - window_s
        total = 0.0
        covered = 0.0
        readings = list(self._readings)
        for i, (at, kmh) in enumerate(readings):
            until = readings[i + 1][0] if i + 1 < len(readings) else t
            lo, hi = max(at, start), min(until, t)
            if hi > lo:
                total += kmh * (hi - lo)
                covered += hi - lo
        return total / covered if covered > 0 else readings[-1][1]
