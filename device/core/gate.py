"""The backward start gate: a backward session or segment begins only with the belt slow.

Slow means at or under the start cap plus the tolerance the cap allows for foot-strike
ripple, judged on the higher of the display and the 3 s mean (a second after the belt jumped
to 4 km/h the mean still remembers the standstill; the display already knows), from a speed
the device can vouch for and that rests on at least two pulse intervals (a magnet on the belt
passes every 3 m: after one edge the belt may be running at any speed). Pure.
"""

from __future__ import annotations

from typing import Any

from device.config.model import BackwardConfig
from device.core.sensor_trust import SensorVerdict


def start_refusal(
    backward: BackwardConfig, *, speed_kmh: float | None, sensor: SensorVerdict
) -> dict[str, Any] | None:
    """None when a backward start may go ahead at `speed_kmh` (the higher of the display and
    the 3 s mean; None when not known), else the refusal's details: the speed, the limit and
    the sentence the walker reads."""
    limit = round(backward.start_cap_kmh + backward.tolerance_kmh, 2)
    gate = (
        f"backward walking starts at {limit:.1f} km/h or slower (the "
        f"{backward.start_cap_kmh:.1f} km/h start cap + {backward.tolerance_kmh:.1f} km/h "
        "tolerance)"
    )
    if speed_kmh is None:
        why = (
            sensor.detail
            if not sensor.trusted
            else "The belt speed is not known yet: the sensor has not seen enough of the belt."
        )
        sentence = f"{why} {gate[0].upper()}{gate[1:]}."
        return {"speed_kmh": None, "limit_kmh": limit, "reason": sentence}
    if speed_kmh > limit:
        return {
            "speed_kmh": round(speed_kmh, 2),
            "limit_kmh": limit,
            "reason": f"The belt runs at {speed_kmh:.1f} km/h; {gate}.",
        }
    return None
