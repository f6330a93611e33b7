"""The backward-speed governor: how fast a backward walker may go, and when that rises.

Pure: the caller gives the mode, the seconds since the current backward segment began and the
walker's level. A backward segment starts at the start cap, holds it for `hold_s` so the
walker learns the movement, then rises by `ramp_step_kmh` at `hold_s` and every
`ramp_every_s` after, up to the level's cap. Forward walking has no backward cap.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

from device.config.model import BackwardConfig
from device.core.modes import Mode


@dataclass(frozen=True)
class CapSchedule:
    """The cap now and the next rise (None when the cap is at the level's ceiling)."""

    cap_kmh: float
    next_cap_kmh: float | None
    next_cap_in_s: float | None


class Governor:
    def __init__(self, config: BackwardConfig):
        self.config = config

    def level_cap_kmh(self, level: int, *, running: bool = False) -> float:
        """The ceiling for a walking level (1-based; levels past the table keep the top cap),
        or the running cap once backward running is unlocked."""
        if running:
            return self.config.running_cap_kmh
        caps = self.config.level_caps_kmh
        return caps[min(max(level, 1), len(caps)) - 1]

    def cap_kmh(self, segment_s: float, level: int, *, running: bool = False) -> float:
        """The backward cap `segment_s` seconds into a backward segment."""
        cfg = self.config
        ceiling = self.level_cap_kmh(level, running=running)
        if segment_s < cfg.hold_s:
            return min(cfg.start_cap_kmh, ceiling)
        # +1: the first step comes at hold_s itself, then one every ramp_every_s
        steps = math.floor((segment_s - cfg.hold_s) / cfg.ramp_every_s) + 1
        # round to 0.01 km/h so 2.0 + 3 * 0.1 reads 2.3, not 2.3000000000000003
        return min(round(cfg.start_cap_kmh + steps * cfg.ramp_step_kmh, 2), ceiling)

    def schedule(
        self, mode: Mode, segment_s: float, level: int, *, running: bool = False
    ) -> CapSchedule | None:
        """The cap now and when it next rises; None in forward mode (no backward cap)."""
        if mode is not Mode.BACKWARD:
            return None
        cfg = self.config
        cap = self.cap_kmh(segment_s, level, running=running)
        if cap >= self.level_cap_kmh(level, running=running):
            return CapSchedule(cap, None, None)
        if segment_s < cfg.hold_s:
            next_at = cfg.hold_s
        else:
            steps_done = math.floor((segment_s - cfg.hold_s) / cfg.ramp_every_s) + 1
            next_at = cfg.hold_s + steps_done * cfg.ramp_every_s
        return CapSchedule(cap, self.cap_kmh(next_at, level, running=running), next_at - segment_s)


class Verdict(StrEnum):
    OK = "ok"
    WARNING = "warning"  # over the cap (or speed unknown); the grace is running
    ENFORCED = "enforced"  # the grace ran out while still over


@dataclass(frozen=True)
class Decision:
    """The governor's word on one tick. `began`, `cleared` and `enforce` are true only at the
    tick where that happened, so the controller says each once."""

    verdict: Verdict
    speed_kmh: float | None = None  # the 3 s mean judged; None when unknown
    cap_kmh: float | None = None
    seconds_left: float | None = None  # before enforcement, during a warning
    reason: str = ""  # "over the cap" | "speed unknown"
    began: bool = False
    cleared: bool = False
    enforce: bool = False


OK = Decision(Verdict.OK)


class OverspeedWatch:
    """Warning, then enforcement: over means the 3 s mean above the cap plus the tolerance
    (foot strikes and sensor noise stay inside it), or a speed we cannot read at all; still
    over after `grace_s` means enforce. Back under within the grace clears the warning.

    Pure: `judge` takes the time, the cap (None when nothing is judged: forward mode, no
    session running) and the mean speed (None when unknown)."""

    def __init__(self, config: BackwardConfig):
        self.config = config
        self.over_since: float | None = None
        self.enforced = False

    def judge(self, t: float, cap_kmh: float | None, mean_kmh: float | None) -> Decision:
        if cap_kmh is None:
            return self._clear(mean_kmh, cap_kmh)
        over = mean_kmh is None or mean_kmh > cap_kmh + self.config.tolerance_kmh
        if not over:
            return self._clear(mean_kmh, cap_kmh)
        began = self.over_since is None
        if began:
            self.over_since = t
        assert self.over_since is not None
        left = self.config.grace_s - (t - self.over_since)
        # a microsecond of slack: the daemon wakes exactly at the deadline, and float sums
        # there can land a hair short of it
        enforce = left <= 1e-6 and not self.enforced
        self.enforced = self.enforced or enforce
        return Decision(
            verdict=Verdict.ENFORCED if self.enforced else Verdict.WARNING,
            speed_kmh=mean_kmh,
            cap_kmh=cap_kmh,
            seconds_left=max(0.0, left),
            reason="speed unknown" if mean_kmh is None else "over the cap",
            began=began,
            enforce=enforce,
        )

    def reset(self) -> None:
        """Forget the over-cap stretch (after an enforced stop the segment starts afresh)."""
        self.over_since = None
        self.enforced = False

    def _clear(self, mean_kmh: float | None, cap_kmh: float | None) -> Decision:
        if self.over_since is None:
            return OK
        self.reset()
        return Decision(Verdict.OK, speed_kmh=mean_kmh, cap_kmh=cap_kmh, cleared=True)
