"""Whether the device can vouch for the belt speed it reads.

A hall sensor that dies reads exactly like a belt that stopped: no more edges. What tells them
apart is the belt's physics. A console brings a belt to a stop gradually (1-2 km/h per
second), so a belt that was running at v keeps passing magnets for a while: it covers
v^2 / (2 a) before it stands. Edges that end sooner than that are not the belt's doing. They
come from a sensor that died or came loose, or from a pulled safety key. Either way the
device cannot vouch for the speed, so in backward mode the guard counts it as over the limit.
If the key really was pulled, the enforcement then acts on a stopped belt: a beep and a relay
pulse, never a fall. When our own relay cut the belt, the end of the edges is explained and
raises nothing.

Edges that stop and resume at a speed no belt could regain in the gap are dropouts (a loose
wire, a magnet that is too far away). That fault latches until the belt has been seen
stopped and START is pressed.

A second sensor ([sensor.check]) sees the same belt through its own magnet. The two must
agree; one pulsing while the other is silent, or readings further apart than the tolerance,
is a fault that names the channel. One sensor alone cannot tell a dead sensor on a slow belt
from a stopped belt: below about 2.5 km/h (at 0.157 m per pulse) a belt can stop within two
pulses, so no rule on the pulses can say it did not. Only a second channel can.

Pure: time is an argument. The controller feeds the edges and asks for a verdict each tick.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

from device.core.speed import KMH_PER_MPS, SpeedEstimator

ENFORCE_WINDOW_S = 3.0  # the window of the mean the rules use (the controller's too)

# The quickest ordinary stop a console makes, km/h per second (the simulated one stops at
# 1.5). Edges that end sooner than a belt slowing at this rate could stop count as abrupt.
STOP_RATE_KMH_PER_S = 2.0
# The quickest start from standstill: a belt whose first interval after a gap reads faster than
# a start this quick allows never stopped at all.
START_RATE_KMH_PER_S = 2.0
# A belt slowing at the stop rate must have passed this many more magnets before the end of
# its edges counts as abrupt: one missed pulse is not a fault yet.
MISSING_PULSES = 2
# The one-second pace may be this much faster than the belt at its last edge: foot-strike
# ripple (+-7 %) and edge jitter (+-5 %) around it, with room to spare.
PACE_MARGIN = 0.8
# Two channels on one belt agree within AGREE_KMH + AGREE_SHARE of the faster 3 s mean:
# each meters_per_pulse is calibrated to about 3 % (6 % between the two), a belt creeps on its
# roller under a foot strike by a few percent, and in a 3 s window the slower channel's
# reading can be a whole pulse off (0.19 km/h at 0.157 m; more with fewer magnets).
AGREE_KMH = 0.5
AGREE_SHARE = 0.15
DISAGREE_FOR_S = 1.0  # for this long, so a speed change seen a pulse apart is not a fault
# A channel is silent when the other reads the belt moving and its own next edge is this many
# of its intervals (at the other's speed) overdue, and at least SILENT_MIN_S.
SILENT_INTERVALS = 2.5
SILENT_MIN_S = 1.0
MOVING_KMH = 0.3  # the other channel must read at least this to call one silent
# A dropout fault clears only on START after the belt was seen stopped: our relay cut it, or
# no edge came for this long.
SEEN_STOPPED_S = 5.0
# After our relay cut the belt, it may coast this long before it stands.
COAST_S = 1.0
# A running belt's next edge is due within an interval, give or take ripple and jitter (13 %):
# later than this many intervals at the moment of a cut, the sensor may have just died.
OVERDUE_INTERVALS = 1.25


class SensorState(StrEnum):
    """The device's word on its speed reading; anything but OK means speed unknown."""

    OK = "ok"
    STALE = "stale"  # a serial source with no reading for stale_s
    SUSPECT = "suspect"  # hall edges ended more abruptly than a belt can stop
    DROPOUT = "dropout"  # edges stopped and resumed at speed: latched
    TOO_FAST = "too fast"  # a reading above [sensor] max_speed_kmh
    SILENT = "silent"  # this channel is silent while the other sees the belt move
    DISAGREE = "disagree"  # the two channels read different speeds
    UNPROVEN = "unproven"  # its edges ended abruptly, and it has not seen the belt since


@dataclass(frozen=True)
class SensorVerdict:
    state: SensorState
    channel: str = ""  # "hall", "serial" or "check": the channel at fault
    detail: str = ""  # one sentence for the walker and the journal

    @property
    def trusted(self) -> bool:
        return self.state is SensorState.OK


TRUSTED = SensorVerdict(SensorState.OK)


class PulseTrust:
    """One hall channel: its estimator and what its edges say about it."""

    def __init__(self, estimator: SpeedEstimator, *, channel: str):
        self.estimator = estimator
        self.channel = channel
        self.suspect = False
        self.dropout = False
        self._suspect_gap_from: float | None = None  # the last edge before a suspicious gap
        self._excused_until = -math.inf  # runs started before this end as our relay cut them
        self._seen_stopped = False
        # A sensor whose edges ended abruptly may be dead: after our relay stopped the belt it
        # must see the belt move again before a reading of 0 means a stopped belt. So must a
        # sensor found silent while the other saw the belt move (it stays "silent" till then).
        self.unproven = False
        self._silent = False

    def pulse(self, t: float) -> None:
        estimator = self.estimator
        if not estimator.pulse(t):
            return
        if self.unproven and estimator.run_intervals >= 2:
            self.unproven = self._silent = False  # it sees the belt: a working sensor
        if not self.suspect:
            return
        gap_from, run = self._suspect_gap_from, estimator.run_started_t
        assert gap_from is not None and run is not None
        if run <= gap_from:
            # the run went on after the gap: the belt never stopped, the edges were lost
            self._latch_dropout()
        elif estimator.run_intervals >= 1:
            # the first interval of a new run decides: a belt that really stopped starts
            # again from standstill, and its first whole interval cannot be fast
            back_kmh = estimator.meters_per_pulse / (t - run) * KMH_PER_MPS
            if back_kmh > first_interval_max_kmh(estimator.meters_per_pulse):
                self._latch_dropout()
            else:
                self.suspect = False
                self._suspect_gap_from = None

    def judge(self, t: float) -> SensorVerdict:
        estimator = self.estimator
        if self.dropout:
            last = estimator.last_pulse_t
            if last is None or t - last >= SEEN_STOPPED_S:
                self._seen_stopped = True
            return SensorVerdict(
                SensorState.DROPOUT,
                self.channel,
                f"The {self._name()} lost pulses at speed; stop the belt and press START once "
                "its wiring is checked.",
            )
        if not self.suspect and self._ended_abruptly(t):
            self.suspect = True
            self._suspect_gap_from = estimator.last_pulse_t
        if self.unproven and self._silent:
            return silent_verdict(self.channel)
        if self.unproven:
            return SensorVerdict(
                SensorState.UNPROVEN,
                self.channel,
                f"The {self._name()} stopped seeing the belt and has not seen it since; press "
                "DIRECTION to walk forward and start the belt slowly, so it can, or check it.",
            )
        if self.suspect:
            return SensorVerdict(
                SensorState.SUSPECT,
                self.channel,
                f"The {self._name()}'s pulses ended more abruptly than a belt can stop; "
                "the belt speed is unknown.",
            )
        top = estimator.max_speed_kmh
        if estimator.mean_kmh(t, ENFORCE_WINDOW_S) > top:
            return SensorVerdict(
                SensorState.TOO_FAST,
                self.channel,
                f"The {self._name()} reads faster than [sensor] max_speed_kmh ({top:g} km/h); "
                "check the sensor's gap to the magnet, or max_speed_kmh.",
            )
        return TRUSTED

    def belt_cut(self, t: float) -> None:
        """Our relay opened the safety-key loop: the belt stops now, for a reason we know.
        The edges before the cut say nothing of the belt after it (the 3 s mean would remember
        a speed the belt no longer has), so they are forgotten; the belt coasting to a stop
        for a moment after the cut ends its edges abruptly, and that is explained too."""
        # A sensor already overdue at the cut may have died just before it: it must prove
        # itself too. (Within an interval of the cut nobody can tell.)
        last, pace = self.estimator.last_pulse_t, self.estimator.pace_kmh
        overdue = False
        if last is not None and pace > 0:
            interval = self.estimator.meters_per_pulse / (pace / KMH_PER_MPS)
            overdue = t - last > OVERDUE_INTERVALS * interval and not self.estimator.stopped(t)
        self.estimator.reset()
        self._excused_until = t + COAST_S
        self.unproven = self.unproven or self.suspect or overdue
        self.suspect = False
        self._suspect_gap_from = None
        if self.dropout:
            self._seen_stopped = True

    def start_pressed(self, t: float) -> None:
        """START on the treadmill: it clears a dropout once the belt was seen stopped."""
        if self.dropout and self._seen_stopped and self.estimator.stopped(t):
            self.dropout = False
            self._seen_stopped = False

    def found_silent(self) -> None:
        """The other channel saw the belt move while this one was silent: it must see the belt
        itself again before its readings count."""
        self.unproven = self._silent = True

    def silent_for(self, seen_until: float, other_kmh: float, other_since: float | None) -> bool:
        """Whether this channel was silent for too long while the other saw a belt moving at
        `other_kmh` until `seen_until` (its last edge, or now for a serial source), having
        seen it move since `other_since`. Silence is measured up to the other's own last sign
        of motion, not up to now: when the belt stops both fall quiet, whatever their magnets'
        spacing, and the coarser one's display lingering on is no evidence."""
        if other_kmh < MOVING_KMH or other_since is None:
            return False
        expected = self.estimator.meters_per_pulse / (other_kmh / KMH_PER_MPS)
        # counted from the later of its own last edge and the other's start: from standstill
        # this channel's magnet may be up to an interval away when the belt starts
        last = self.estimator.last_pulse_t
        since = other_since if last is None else max(last, other_since)
        return seen_until - since > max(SILENT_INTERVALS * expected, SILENT_MIN_S)

    def steady(self, t: float) -> bool:
        """Whether its 3 s mean can be compared with another channel's now: two intervals into
        a run and its next edge not yet overdue. At a start or a stop the coarser of two
        channels lags the other by up to a pulse, which is no disagreement."""
        estimator = self.estimator
        last, interval = estimator.last_pulse_t, estimator.last_interval_s
        if last is None or interval is None or estimator.run_intervals < 2:
            return False
        return t - last <= 1.5 * interval

    def rescaled(self, meters_per_pulse: float, *, max_speed_kmh: float) -> PulseTrust:
        """This channel with new calibration: the same edges, the same latched fault."""
        fresh = PulseTrust(
            self.estimator.rescaled(meters_per_pulse, max_speed_kmh=max_speed_kmh),
            channel=self.channel,
        )
        fresh.dropout, fresh.suspect, fresh.unproven = self.dropout, self.suspect, self.unproven
        fresh._silent = self._silent
        fresh._suspect_gap_from, fresh._excused_until = self._suspect_gap_from, self._excused_until
        fresh._seen_stopped = self._seen_stopped
        return fresh

    def _ended_abruptly(self, t: float) -> bool:
        estimator = self.estimator
        last = estimator.last_pulse_t
        if last is None or estimator.run_intervals == 0:
            return False
        started = estimator.run_started_t
        if started is not None and started < self._excused_until:
            return False
        a = STOP_RATE_KMH_PER_S / KMH_PER_MPS  # m/s^2
        # the slowest the belt can have been at its last edge, less ripple and jitter: the
        # slower of its last two intervals. A stopping belt's last interval is its slowest, and
        # its one-second pace lags it (with fine magnets by more than the margin). So does the
        # pace of a belt that just sped up, by seconds, and a sensor that died then would hide
        # behind it; two intervals in a row cannot be one short interval's ripple or jitter.
        # With one interval only, the pace or that interval, whichever is slower.
        pair = estimator.slower_of_last_two_s
        if pair is not None:
            latest = estimator.meters_per_pulse / pair * KMH_PER_MPS
        else:
            interval = estimator.last_interval_s or math.inf
            latest = min(estimator.pace_kmh, estimator.meters_per_pulse / interval * KMH_PER_MPS)
        v = latest / KMH_PER_MPS * PACE_MARGIN  # m/s
        ahead = MISSING_PULSES * estimator.meters_per_pulse
        if v * v <= 2.0 * a * ahead:
            return False  # a belt this slow may stop within two pulses: nothing to tell
        # the time by which a belt slowing at the stop rate must have passed `ahead` metres
        due = (v - math.sqrt(v * v - 2.0 * a * ahead)) / a
        return t - last > due

    def _latch_dropout(self) -> None:
        self.dropout = True
        self.suspect = False
        self._suspect_gap_from = None
        self._seen_stopped = False

    def _name(self) -> str:
        return "check sensor" if self.channel == "check" else "hall sensor"


def silent_verdict(channel: str) -> SensorVerdict:
    name = "check sensor" if channel == "check" else f"{channel} sensor"
    return SensorVerdict(
        SensorState.SILENT,
        channel,
        f"The {name} is silent while the other sees the belt moving; check its wiring.",
    )


def first_interval_max_kmh(meters_per_pulse: float) -> float:
    """The fastest a belt can read over its first whole interval after standing still, km/h.

    From rest, speeding up at the start rate a at most, the belt is at x = a t^2 / 2. Its magnet
    stood d < m before the sensor, so the first interval runs from x = d to x = d + m and lasts
    at least sqrt(2 / a) (sqrt(2 m) - sqrt(m)): the mean over it is at most
    sqrt(a m / 2) / (sqrt(2) - 1), whatever the belt did before. PACE_MARGIN covers jitter.
    A belt back faster than this never stopped: its edges were lost."""
    a = START_RATE_KMH_PER_S / KMH_PER_MPS
    mps = math.sqrt(a * meters_per_pulse / 2.0) / (math.sqrt(2.0) - 1.0)
    return mps / PACE_MARGIN * KMH_PER_MPS


def suspicion_floor_kmh(meters_per_pulse: float) -> float:
    """The slowest pace from which ending edges can be told from a stopping belt, km/h."""
    a = STOP_RATE_KMH_PER_S / KMH_PER_MPS
    return math.sqrt(2.0 * a * MISSING_PULSES * meters_per_pulse) / PACE_MARGIN * KMH_PER_MPS
