"""One formatter per quantity, for every page of the dashboard: the live page (web.live_view)
and the history (web.history.queries) print a distance, a speed or a time the same way; the
guide and the plan (web.guide) print the config's settings with setting_kmh, setting_s and
setting_min, which keep the digits the operator wrote.
"""

from __future__ import annotations

import math


def clock(seconds: float) -> str:
    """A moment into a session, as the history shows it: h:mm:ss, or m:ss under an hour."""
    whole = max(0, math.floor(seconds))
    hours, rest = divmod(whole, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def stopwatch(seconds: float, *, pad: bool = False) -> str:
    """Elapsed time as a treadmill console counts it: m:ss (mm:ss with `pad`), minutes
    unbounded, so 75:02 after an hour and a quarter."""
    whole = max(0, int(seconds))
    minutes, secs = divmod(whole, 60)
    return f"{minutes:02d}:{secs:02d}" if pad else f"{minutes}:{secs:02d}"


def minutes(seconds: float) -> str:
    """A duration in minutes with one decimal: "12.5"."""
    return f"{seconds / 60:.1f}"


def distance(metres: float) -> str:
    """ "850 m" under a kilometre, "1.25 km" from one up."""
    return f"{metres / 1000:.2f} km" if metres >= 1000 else f"{metres:.0f} m"


def km_h(speed_kmh: float) -> str:
    """ "3.2 km/h"."""
    return f"{speed_kmh:.1f} km/h"


def setting_kmh(value: float) -> str:
    """A speed from the config: one decimal, or two where the operator set two (a ramp step
    of 0.05 km/h must not read 0.1)."""
    return f"{value:.1f} km/h" if round(value, 1) == round(value, 2) else f"{value:.2f} km/h"


def setting_s(value: float) -> str:
    """A time from the config in seconds: "120 s", "2.5 s"."""
    return f"{value:g} s"


def setting_min(value_s: float) -> str:
    """A time from the config in minutes: "10 min", "12.5 min"."""
    return f"{round(value_s / 60, 1):g} min"
