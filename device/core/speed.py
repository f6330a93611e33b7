"""Belt speed from the times of the hall or reed sensor's edges.

Interval timing, not pulse counting: at backward-walking speeds (0.5-2 km/h) pulses come
0.3-1.8 s apart, so a counter over a few seconds is off by a whole pulse (about 20 % at
1 km/h). Instead the estimator keeps the edge times and treats the belt's travel as known at
every accepted edge (one `meters_per_pulse` further than the edge before) and as running
evenly in between. Both readings come from that one picture of the belt:

- `mean_kmh(t, window_s)`: the distance covered in the window divided by the window. The
  window's start falls inside an interval and counts its fraction of that interval; its end
  falls in the open interval since the last edge, which counts the pace of the last second's
  intervals for at most one pulse's travel (the belt cannot have gone further, or the sensor
  would have seen the magnet). The safety rules use it with a 3 s window.
- `speed_kmh(t)`: the display. The mean over the whole intervals of about the last
  `DISPLAY_SETTLE_S` (at least the last interval), so a step in belt speed shows in full
  within that time (or two intervals at slow speed), and never more than the belt can have
  done since the last edge: a stopping belt reads lower at once and 0 once the edge is two
  intervals (at least `STOP_AFTER_MIN_S`) overdue.

Edges closer to the previous accepted edge than the belt can make at `max_speed_kmh` (with a
margin) are bounces of a reed switch or noise on the wire and are ignored. The first edge after
a standstill gives no interval: the belt reads 0 until the second edge.

Pure: time is always an argument (monotonic seconds); no clock, no I/O.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right

KMH_PER_MPS = 3.6

# An edge sooner than this fraction of the interval at max speed is a bounce: reed switches
# chatter 1-3 ms after closing (a twentieth of the 22.6 ms interval at 25 km/h and 0.157 m).
# Half, not more, so a belt faster than max_speed_kmh reads faster than it (up to twice max
# every edge counts; beyond, one in k does and the reading stays above max) and is caught as
# a fault, rather than read at half its speed as every other edge is taken for a bounce.
DEBOUNCE_FRACTION = 0.5
# The display averages the whole intervals in this span minus one interval, so a speed step has
# fully reached the display after DISPLAY_SETTLE_S (or after two intervals at slow speed).
DISPLAY_SETTLE_S = 0.45
# With no edge for this many last intervals the belt has stopped; a lone missed pulse at speed
# leaves a gap of two intervals, hence the floor in seconds.
STOP_AFTER_INTERVALS = 2.0
STOP_AFTER_MIN_S = 0.5
# The open interval since the last edge is taken at the pace of the whole intervals in this
# span (at least the last one): a second averages out most of a foot strike's dip and surge.
PACE_SPAN_S = 1.0
# Slower than this is standstill: no walker uses it, and it bounds how long a lone edge waits
# for a second one. Below it the belt reads 0.
STANDSTILL_KMH = 0.2
# An edge's timestamp may be this late (kernel and pin-factory latency), so the
# "cannot have gone further" bound gives it this much grace instead of flickering on jitter.
EDGE_LATENESS_S = 0.002
# Memory: edges are kept this long, which bounds the longest window mean_kmh accepts.
HISTORY_S = 10.0
# Pruning the history is batched to keep pulse() cheap.
_PRUNE_BATCH = 32


class SpeedEstimator:
    """Belt speed from edge times.

    `meters_per_pulse` is the belt travel between two edges (roller circumference / magnets,
    or belt length / magnets on the belt), in meters. `max_speed_kmh` is the treadmill's top
    speed; edges faster than it are bounces. Edges are kept for `history_s` seconds, the
    longest window `mean_kmh` accepts; memory is bounded by `history_s` / debounce interval.
    """

    def __init__(
        self, meters_per_pulse: float, *, max_speed_kmh: float = 25.0, history_s: float = HISTORY_S
    ):
        if not (isinstance(meters_per_pulse, int | float) and 0 < meters_per_pulse < math.inf):
            raise ValueError(
                f"[sensor] meters_per_pulse must be a positive number of meters "
                f"(got {meters_per_pulse!r}); set it to the belt travel per pulse in config.toml."
            )
        if not (isinstance(max_speed_kmh, int | float) and 0 < max_speed_kmh < math.inf):
            raise ValueError(
                f"[sensor] max_speed_kmh must be a positive speed in km/h "
                f"(got {max_speed_kmh!r}); set it to the treadmill's top speed in config.toml."
            )
        if not history_s > 0:
            raise ValueError(f"history_s must be positive seconds (got {history_s!r}).")
        self.meters_per_pulse = float(meters_per_pulse)
        self.max_speed_kmh = float(max_speed_kmh)
        self.history_s = float(history_s)
        # seconds: edges closer than this to the previous accepted edge are ignored
        self.debounce_s = DEBOUNCE_FRACTION * self.meters_per_pulse * KMH_PER_MPS / max_speed_kmh
        # seconds: the longest interval that still counts as a moving belt
        self.standstill_s = self.meters_per_pulse * KMH_PER_MPS / STANDSTILL_KMH
        self.reset()

    def reset(self) -> None:
        """Forget every edge: the belt reads 0 until two new edges arrive."""
        self._times: list[float] = []  # accepted edge times, oldest first
        self._run_start = 0  # index in _times of the first edge after the last standstill
        self.run_intervals = 0  # intervals measured since the last standstill
        self._last_interval: float | None = None  # seconds; None: no interval in this run
        self._pace_interval = math.inf  # seconds per pulse for the open interval
        self._display_mps = 0.0  # the display's mean at the last edge, m/s
        self.pulses = 0  # accepted edges since construction or reset()
        self.bounces = 0  # edges ignored as bounces

    def rescaled(self, meters_per_pulse: float, *, max_speed_kmh: float) -> SpeedEstimator:
        """A new estimator for new calibration that has seen the same edges: a reload keeps
        reading the belt instead of starting from standstill."""
        fresh = SpeedEstimator(
            meters_per_pulse, max_speed_kmh=max_speed_kmh, history_s=self.history_s
        )
        for t in self._times:
            fresh.pulse(t)
        return fresh

    # -- input ------------------------------------------------------------------------------

    def pulse(self, t: float) -> bool:
        """An edge at monotonic time t (seconds). Returns False when it was ignored as a
        bounce (closer to the previous accepted edge than the max speed allows, or earlier)."""
        times = self._times
        if times:
            gap = t - times[-1]
            if gap < self.debounce_s:
                self.bounces += 1
                return False
            if gap > self._stop_after():
                # The belt had stopped: this edge starts a new run, and the gap says nothing
                # about the speed it starts with.
                self._run_start = len(times)
                self._last_interval = None
                self.run_intervals = 0
            else:
                self._last_interval = gap
                self.run_intervals += 1
        times.append(t)
        self.pulses += 1
        if self._last_interval is None:
            self._display_mps, self._pace_interval = 0.0, math.inf
        else:
            span = max(self._last_interval, DISPLAY_SETTLE_S - self._last_interval)
            self._display_mps = self.meters_per_pulse / self._mean_interval(t, span)
            self._pace_interval = self._mean_interval(t, PACE_SPAN_S)
        self._prune(t)
        return True

    # -- readings ---------------------------------------------------------------------------

    @property
    def last_pulse_t(self) -> float | None:
        """Time of the last accepted edge (seconds), None before any."""
        return self._times[-1] if self._times else None

    @property
    def pace_kmh(self) -> float:
        """The belt speed at the pace of the last second's whole intervals, as of the last
        edge, km/h; 0 after a lone first edge."""
        if math.isinf(self._pace_interval):
            return 0.0
        return self.meters_per_pulse / self._pace_interval * KMH_PER_MPS

    @property
    def last_interval_s(self) -> float | None:
        """The last interval of this run, seconds; None after a lone first edge."""
        return self._last_interval

    @property
    def slower_of_last_two_s(self) -> float | None:
        """The longer of this run's last two intervals, seconds: a speed the belt held for two
        intervals in a row, which one short interval (ripple, jitter) cannot fake. None before
        the run has two."""
        times = self._times
        if self.run_intervals < 2 or len(times) < 3:
            return None
        return max(times[-1] - times[-2], times[-2] - times[-3])

    @property
    def run_started_t(self) -> float | None:
        """Time of the first edge after the last standstill, None before any edge."""
        return self._times[self._run_start] if self._times else None

    def stopped(self, t: float) -> bool:
        """True once the belt reads stopped at t: no edge for the stop bound after the last
        one (or no edge at all)."""
        return not self._times or t - self._times[-1] > self._stop_after()

    def speed_known(self, t: float) -> bool:
        """Whether a reading at t rests on enough edges to vouch for it: at least two intervals
        since the belt last stood still, or a standstill long enough that no moving belt could
        have hidden in it. After a lone edge (a magnet on the belt passes every 3 m) the belt
        may be running at any speed until the next ones arrive."""
        if not self._times or t - self._times[-1] > self.standstill_s:
            return True
        return self.run_intervals >= 2

    @property
    def stored_pulses(self) -> int:
        """Edge times held in memory; at most history_s / debounce_s plus a small batch."""
        return len(self._times)

    @property
    def distance_m(self) -> float:
        """Belt travel counted since construction or reset(): one pulse's travel per edge."""
        return self.pulses * self.meters_per_pulse

    def speed_kmh(self, t: float) -> float:
        """The displayed speed at time t, km/h: lightly smoothed, never above what the belt
        can have done since the last edge, 0 when stopped or after a lone first edge."""
        if self._display_mps == 0.0:
            return 0.0
        since = t - self._times[-1]
        if since > self._stop_after():
            return 0.0
        mps = self._display_mps
        late = since - EDGE_LATENESS_S
        if late > 0.0:
            mps = min(mps, self.meters_per_pulse / late)
        return mps * KMH_PER_MPS

    def mean_kmh(self, t: float, window_s: float) -> float:
        """The mean belt speed over the last `window_s` seconds before t, km/h: distance
        covered in the window divided by the window."""
        if not 0.0 < window_s <= self.history_s:
            raise ValueError(
                f"window_s must be between 0 and history_s={self.history_s} s (got {window_s!r})."
            )
        pulses = self._pulses_at(t) - self._pulses_at(t - window_s)
        return pulses * self.meters_per_pulse / window_s * KMH_PER_MPS

    # -- the belt's travel, in pulses -------------------------------------------------------

    def _pulses_at(self, x: float) -> float:
        """Belt travel at time x in pulses, counted from the oldest kept edge."""
        times = self._times
        if not times:
            return 0.0
        last_index = len(times) - 1
        last = times[last_index]
        if x >= last:
            # The open interval: at the recent pace, but never a whole pulse (no pace after a
            # lone first edge: the belt counts as still).
            return last_index + min((x - last) / self._pace_interval, 1.0)
        if x <= times[0]:
            return 0.0
        # Evenly within each interval; across a standstill that spreads its one pulse over
        # the whole gap, which only matters for the seconds after a restart.
        i = bisect_right(times, x) - 1
        return i + (x - times[i]) / (times[i + 1] - times[i])

    def _mean_interval(self, t: float, span: float) -> float:
        """Mean interval (seconds) over the whole intervals of this run that fit in `span`
        before the edge at t; at least the last interval."""
        times = self._times
        last_index = len(times) - 1
        first = bisect_left(times, t - span - 1e-9, self._run_start, last_index)
        first = min(max(first, self._run_start), last_index - 1)
        return (t - times[first]) / (last_index - first)

    def _stop_after(self) -> float:
        """Seconds after the last edge at which the belt counts as stopped."""
        if self._last_interval is None:
            return self.standstill_s
        return min(
            max(STOP_AFTER_INTERVALS * self._last_interval, STOP_AFTER_MIN_S), self.standstill_s
        )

    def _prune(self, t: float) -> None:
        """Drop edges no window can reach, keeping one at or before t - history_s."""
        times = self._times
        drop = bisect_right(times, t - self.history_s) - 1
        if drop >= _PRUNE_BATCH:
            del times[:drop]
            self._run_start = max(self._run_start - drop, 0)
