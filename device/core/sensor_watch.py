"""The belt's speed sources, judged together: the primary (hall pulses, or readings from a
serial bridge or a CSAFE console) and the optional check channel ([sensor.check]: a second
hall sensor, or the console checking a hall sensor), built from the [sensor] config. Pure:
time is an argument. What each verdict means is in device/core/sensor_trust.py.

A console as the check is held to the same agreement as a second hall sensor: AGREE_SHARE
(15 %) covers a console reading 2.5-6 % fast plus the hall sensor's own 3 % of calibration,
and AGREE_KMH (0.5 km/h) the console's 0.1 mph steps (0.16 km/h) and a reading that is up to
one poll (0.2 s) old. A console reports the speed it is set to, so it cannot see a belt that
slips; what it does see is a hall sensor that died or reads half, which is what it is for.
"""

from __future__ import annotations

from device.config.model import SensorConfig, SensorKind
from device.core.readings import ReadingSpeed
from device.core.sensor_trust import (
    AGREE_KMH,
    AGREE_SHARE,
    DISAGREE_FOR_S,
    ENFORCE_WINDOW_S,
    MOVING_KMH,
    TRUSTED,
    PulseTrust,
    SensorState,
    SensorVerdict,
    silent_verdict,
)
from device.core.speed import KMH_PER_MPS, SpeedEstimator

# What a primary source that reports speeds (not edges) says when nothing came in time.
_SILENT_SOURCE: dict[str, str] = {
    SensorKind.SERIAL: "The serial speed source has sent no reading; check its cable and port.",
    SensorKind.CSAFE: "The console has sent no speed; check its CSAFE cable and [sensor] url.",
}


def agreement_kmh(faster_kmh: float, coarser_meters_per_pulse: float) -> float:
    """How far apart two channels' 3 s means may be and still agree, km/h: AGREE_KMH +
    AGREE_SHARE of the faster, and a pulse of the coarser channel in the 3 s window (its mean
    can be that far off)."""
    quantum = coarser_meters_per_pulse / ENFORCE_WINDOW_S * KMH_PER_MPS
    return AGREE_KMH + quantum + AGREE_SHARE * faster_kmh


class SensorWatch:
    """The primary speed source (hall pulses or serial readings) and the optional check
    sensor, judged together once per tick."""

    def __init__(
        self,
        *,
        primary: PulseTrust | None,
        readings: ReadingSpeed | None,
        check: PulseTrust | None = None,
        console: ReadingSpeed | None = None,
        channel: str = "hall",
    ):
        self.primary = primary
        self.readings = readings
        self.check = check
        self.console = console  # a CSAFE console as the check channel (a hall primary only)
        self.channel = channel
        self.verdict = TRUSTED
        self._disagree_since: float | None = None
        self._serial_moving_since: float | None = None
        self._console_moving_since: float | None = None
        self._judged_t: float | None = None

    @classmethod
    def for_sensor(cls, sensor: SensorConfig) -> SensorWatch:
        """The sources a [sensor] table describes, fresh: nothing seen yet."""
        pulses = sensor.kind == SensorKind.HALL
        top = sensor.max_speed_kmh
        primary = SpeedEstimator(sensor.meters_per_pulse, max_speed_kmh=top)
        check = sensor.check
        hall_check = check is not None and check.kind == SensorKind.HALL
        return cls(
            primary=PulseTrust(primary, channel="hall") if pulses else None,
            readings=None if pulses else ReadingSpeed(stale_s=sensor.stale_s),
            check=None
            if check is None or not hall_check
            else PulseTrust(
                SpeedEstimator(check.meters_per_pulse, max_speed_kmh=top), channel="check"
            ),
            console=ReadingSpeed(stale_s=sensor.stale_s) if check and not hall_check else None,
            channel=sensor.kind,
        )

    def recalibrate(self, old: SensorConfig, new: SensorConfig) -> None:
        """A reload with new meters_per_pulse, max_speed_kmh or stale_s: the same edges read
        with the new numbers, so a reload never reads the belt as stopped, and what the
        watch knew (a latched fault) is kept. Wiring changes (kind, pins) wait for a
        restart: the daemon opened those adapters."""
        top = new.max_speed_kmh
        if self.primary is not None and (old.meters_per_pulse, old.max_speed_kmh) != (
            new.meters_per_pulse,
            top,
        ):
            self.primary = self.primary.rescaled(new.meters_per_pulse, max_speed_kmh=top)
        check = new.check
        changed = (old.check, old.max_speed_kmh) != (check, top)
        if self.check is not None and check is not None and changed:
            self.check = self.check.rescaled(check.meters_per_pulse, max_speed_kmh=top)
        for readings in (self.readings, self.console):
            if readings is not None:
                readings.stale_s = new.stale_s

    # -- the speed, as far as it can be vouched for -----------------------------------------

    def speed_kmh(self, t: float) -> float | None:
        """The displayed speed; None when the verdict is not ok."""
        if not self.judge(t).trusted:
            return None
        if self.primary is not None:
            return self.primary.estimator.speed_kmh(t)
        assert self.readings is not None
        return self.readings.speed_kmh(t)

    def mean_kmh(self, t: float) -> float | None:
        """The 3 s mean the safety rules use; None when the verdict is not ok."""
        if not self.judge(t).trusted:
            return None
        if self.primary is not None:
            return self.primary.estimator.mean_kmh(t, ENFORCE_WINDOW_S)
        assert self.readings is not None
        return self.readings.mean_kmh(t, ENFORCE_WINDOW_S)

    def speed_known(self, t: float) -> bool:
        """Whether the reading rests on enough of the belt to start backward at it: two pulse
        intervals since the belt last stood still, or a fresh serial reading."""
        if not self.judge(t).trusted:
            return False
        return self.primary is None or self.primary.estimator.speed_known(t)

    def judge(self, t: float) -> SensorVerdict:
        """The verdict at t; asked several times a tick, it is worked out once per moment
        (an edge in between makes it fresh)."""
        if t != self._judged_t:
            self.verdict, self._judged_t = self._judge(t), t
        return self.verdict

    def pulse(self, t: float) -> None:
        """An edge of the primary hall sensor."""
        assert self.primary is not None, "a serial source has no edges"
        self._judged_t = None
        self.primary.pulse(t)

    def check_pulse(self, t: float) -> None:
        """An edge of the check sensor; ignored when none is fitted."""
        if self.check is not None:
            self._judged_t = None
            self.check.pulse(t)

    def reading(self, t: float, kmh: float) -> None:
        """A speed from the serial source."""
        assert self.readings is not None, "a hall source has no readings"
        self._judged_t = None
        self.readings.reading(t, kmh)

    def console_reading(self, t: float, kmh: float) -> None:
        """A speed from the console that checks the hall sensor; ignored when none does."""
        if self.console is not None:
            self._judged_t = None
            self.console.reading(t, kmh)

    def belt_cut(self, t: float) -> None:
        self._judged_t = None
        for readings in (self.readings, self.console):
            if readings is not None:
                readings.cut(t)
        for trust in (self.primary, self.check):
            if trust is not None:
                trust.belt_cut(t)

    def start_pressed(self, t: float) -> None:
        self._judged_t = None
        for trust in (self.primary, self.check):
            if trust is not None:
                trust.start_pressed(t)

    def _judge(self, t: float) -> SensorVerdict:
        if self.primary is not None:
            own = self.primary.judge(t)
            if not own.trusted:
                return own
        elif self.readings is not None and self.readings.is_stale(t):
            return SensorVerdict(SensorState.STALE, self.channel, _SILENT_SOURCE[self.channel])
        if self.console is not None:
            return self._compare_console(t, self.console)
        check = self.check
        if check is None:
            return TRUSTED
        own = check.judge(t)
        if not own.trusted:
            return own
        return self._compare(t, check)

    def _compare(self, t: float, check: PulseTrust) -> SensorVerdict:
        check_est = check.estimator
        if self.primary is not None:
            primary_est = self.primary.estimator
            if self.primary.silent_for(
                check_est.last_pulse_t or t, check_est.pace_kmh, check_est.run_started_t
            ):
                return self._silent(self.channel)
            primary_seen = primary_est.last_pulse_t or t
            primary_kmh, primary_since = primary_est.pace_kmh, primary_est.run_started_t
            primary_mean = primary_est.mean_kmh(t, ENFORCE_WINDOW_S)
            primary_steady = self.primary.steady(t)
            primary_m = primary_est.meters_per_pulse
        else:
            assert self.readings is not None
            primary_kmh = self.readings.speed_kmh(t) or 0.0
            primary_mean = self.readings.mean_kmh(t, ENFORCE_WINDOW_S) or 0.0
            # a serial source has no edges: it sees the belt move for as long as it says so
            if primary_kmh < MOVING_KMH:
                self._serial_moving_since = None
            elif self._serial_moving_since is None:
                self._serial_moving_since = t
            primary_seen, primary_since = t, self._serial_moving_since
            primary_steady = primary_since is not None and t - primary_since >= ENFORCE_WINDOW_S
            primary_m = 0.0  # readings, not pulses
        if check.silent_for(primary_seen, primary_kmh, primary_since):
            return self._silent("check")
        if not (primary_steady and check.steady(t)):
            self._disagree_since = None  # a start or a stop: compared once both run steadily
            return TRUSTED
        check_mean = check_est.mean_kmh(t, ENFORCE_WINDOW_S)
        coarser_m = max(check_est.meters_per_pulse, primary_m)
        if self._agree(t, primary_mean, check_mean, coarser_m):
            return TRUSTED
        return SensorVerdict(
            SensorState.DISAGREE,
            "check",
            f"The speed sensors disagree ({primary_mean:.1f} against {check_mean:.1f} km/h); "
            "check both magnets and their meters_per_pulse.",
        )

    def _compare_console(self, t: float, console: ReadingSpeed) -> SensorVerdict:
        """The hall sensor against the console's own word on the belt."""
        assert self.primary is not None, "a console checks a hall sensor"
        if console.is_stale(t):
            return SensorVerdict(
                SensorState.STALE,
                "console",
                "The console checking the speed sensor has sent no speed; check its "
                "CSAFE cable and [sensor.check] url.",
            )
        console_kmh = console.speed_kmh(t) or 0.0
        if console_kmh < MOVING_KMH:
            self._console_moving_since = None
        elif self._console_moving_since is None:
            self._console_moving_since = t
        since, seen = self._console_moving_since, console.last_t or t
        if self.primary.silent_for(seen, console_kmh, since):
            return self._silent(self.channel)
        steady = since is not None and t - since >= ENFORCE_WINDOW_S
        if not (steady and self.primary.steady(t)):
            self._disagree_since = None  # a start or a stop: compared once both run steadily
            return TRUSTED
        estimator = self.primary.estimator
        hall_mean = estimator.mean_kmh(t, ENFORCE_WINDOW_S)
        console_mean = console.mean_kmh(t, ENFORCE_WINDOW_S) or 0.0
        if self._agree(t, hall_mean, console_mean, estimator.meters_per_pulse):
            return TRUSTED
        return SensorVerdict(
            SensorState.DISAGREE,
            "console",
            f"The hall sensor reads {hall_mean:.1f} km/h and the console {console_mean:.1f} "
            "km/h; check the magnet and meters_per_pulse (retrotread calibrate --console "
            "measures it against the console).",
        )

    def _agree(self, t: float, a_kmh: float, b_kmh: float, coarser_m: float) -> bool:
        """Whether two channels' 3 s means agree now; apart for DISAGREE_FOR_S they do not."""
        if abs(a_kmh - b_kmh) <= agreement_kmh(max(a_kmh, b_kmh), coarser_m):
            self._disagree_since = None
            return True
        if self._disagree_since is None:
            self._disagree_since = t
        return t - self._disagree_since < DISAGREE_FOR_S

    def _silent(self, channel: str) -> SensorVerdict:
        trust = self.check if channel == "check" else self.primary
        if trust is not None:
            trust.found_silent()
        return silent_verdict(channel)
