"""The backward-speed governor: how fast a backward walker may go, and when that rises.

Pure: the caller gives the mode, the seconds since the current backward segment began and the
walker's level. A backward segment starts at the start cap, holds it for `hold_s` so the
walker learns the movement, then rises by `ramp_step_kmh` at `hold_s` and every
`ramp_every_s` after, up to the level's cap. Forward walking has no backward cap.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from device.config import BackwardConfig
from device.modes import Mode


@dataclass(frozen=True)
class CapSchedule:
    """The cap now and the next rise (None when the cap is at the level's ceiling)."""

    cap_kmh: float
    next_cap_kmh: float | None
    next_cap_in_s: float | None


class Governor:
    def __init__(self, config: BackwardConfig):
        self.config = config

    def level_cap_kmh(self, level: int) -> float:
        """The ceiling for a walking level (1-based); levels past the table keep the top cap."""
        caps = self.config.level_caps_kmh
        return caps[min(max(level, 1), len(caps)) - 1]

    def cap_kmh(self, segment_s: float, level: int) -> float:
        """The backward cap `segment_s` seconds into a backward segment."""
        cfg = self.config
        ceiling = self.level_cap_kmh(level)
        if segment_s < cfg.hold_s:
            return min(cfg.start_cap_kmh, ceiling)
        # +1: the first step comes at hold_s itself, then one every ramp_every_s
        steps = math.floor((segment_s - cfg.hold_s) / cfg.ramp_every_s) + 1
        # round to 0.01 km/h so 2.0 + 3 * 0.1 reads 2.3, not 2.3000000000000003
        return min(round(cfg.start_cap_kmh + steps * cfg.ramp_step_kmh, 2), ceiling)

    def schedule(self, mode: Mode, segment_s: float, level: int) -> CapSchedule | None:
        """The cap now and when it next rises; None in forward mode (no backward cap)."""
        if mode is not Mode.BACKWARD:
            return None
        cfg = self.config
        cap = self.cap_kmh(segment_s, level)
        if cap >= self.level_cap_kmh(level):
            return CapSchedule(cap, None, None)
        if segment_s < cfg.hold_s:
            next_at = cfg.hold_s
        else:
            steps_done = math.floor((segment_s - cfg.hold_s) / cfg.ramp_every_s) + 1
            next_at = cfg.hold_s + steps_done * cfg.ramp_every_s
        return CapSchedule(cap, self.cap_kmh(next_at, level), next_at - segment_s)
