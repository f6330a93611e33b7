"""Energy: oxygen uptake and kilocalories for walking and running on the belt, either way round.

An estimate, and the dashboard must show it as one (about +-25 %). Forward walking and
running use the ACSM metabolic equations as they are. Backward walking uses the fit in the
project's reference notes (shared/reference/backward-walking.md): 0.187 per m/min instead of
ACSM's 0.1, fitted so 93.8 m/min on the level gives the Compendium's 6.0 MET (code 17320);
backward running costs 35 % more than forward (Wright & Weyand 2001). The estimate runs low
for novices, whose real cost is higher until practice lowers it (-19 % VO2 after 4 weeks of
backward walking, Heath 2001).

Units: belt speed in km/h (converted to S in m/min), grade G as a fraction (0.05 is 5 %),
VO2 in mL O2 per kg per minute, energy in kcal (1 L O2 ~ 5 kcal). The treadmill's incline is
not measured, so callers leave `grade` at 0: on an inclined belt the estimate is low.

Pure: no clock and no I/O; `EnergyMeter.add` is told the seconds that passed.
"""

from __future__ import annotations

from device.core.modes import Mode

__all__ = [
    "KCAL_PER_L_O2",
    "REST_VO2",
    "RUN_FROM_M_PER_MIN",
    "EnergyMeter",
    "kcal_per_min",
    "met",
    "vo2_ml_kg_min",
]

REST_VO2 = 3.5  # mL/kg/min: one MET, the resting uptake every ACSM equation starts from
KCAL_PER_L_O2 = 5.0
# Above 96 m/min (1.6 m/s, 5.76 km/h) the walk-to-run transition is near (backward: 1.63 m/s,
# Hreljac 2005) and the ACSM running equation applies; the cost jumps up there, as in ACSM.
RUN_FROM_M_PER_MIN = 96.0
BACKWARD_WALK_PER_M = 0.187  # fitted: 93.8 m/min level -> 6.0 MET (Compendium 17320)
BACKWARD_RUN_FACTOR = 1.35  # backward running costs 35 % more (Wright & Weyand 2001)


def _m_per_min(speed_kmh: float) -> float:
    return speed_kmh * 1000.0 / 60.0


# No treadmill belt runs this fast: a larger figure is a broken reading, not exercise, and
# near float's limit the formulas overflow to inf and then to nan.
NO_BELT_RUNS_KMH = 100.0


def _belt_moving(speed_kmh: float | None) -> bool:
    # `not x > 0` is also true for nan; the upper bound also rules out inf
    return speed_kmh is not None and 0 < speed_kmh < NO_BELT_RUNS_KMH


def vo2_ml_kg_min(speed_kmh: float | None, mode: Mode | str, grade: float = 0.0) -> float:
    """Oxygen uptake walking (or running) on the belt at `speed_kmh` facing `mode`, mL/kg/min.

    A stopped belt or an unknown speed (0, None, negative) gives 0.0, not the resting 3.5:
    someone standing on a stopped belt is not exercising, and the session does not count
    their rest, so kcal stays proportional to this figure everywhere.
    """
    if not _belt_moving(speed_kmh):
        return 0.0
    s = _m_per_min(speed_kmh)  # type: ignore[arg-type]
    backward = Mode(mode) is Mode.BACKWARD
    if s < RUN_FROM_M_PER_MIN:
        per_m = BACKWARD_WALK_PER_M if backward else 0.1
        return REST_VO2 + per_m * s + 1.8 * s * grade
    running = 0.2 * s + 0.9 * s * grade
    return REST_VO2 + (BACKWARD_RUN_FACTOR * running if backward else running)


def met(speed_kmh: float | None, mode: Mode | str, grade: float = 0.0) -> float:
    """The same uptake in METs (multiples of the resting 3.5 mL/kg/min)."""
    return vo2_ml_kg_min(speed_kmh, mode, grade) / REST_VO2


def kcal_per_min(
    speed_kmh: float | None, mode: Mode | str, body_kg: float, grade: float = 0.0
) -> float:
    """Kilocalories per minute for a walker of `body_kg` kg; 0.0 on a stopped belt."""
    return vo2_ml_kg_min(speed_kmh, mode, grade) * body_kg / 1000.0 * KCAL_PER_L_O2


class EnergyMeter:
    """The kcal of one session, added up tick by tick.

    The controller calls `add(seconds, speed_kmh, mode)` on every tick while the session is
    running, with the seconds since the previous tick and the belt speed over them; `kcal` is
    the running total. Ticks while paused are simply not added.
    """

    def __init__(self, body_kg: float) -> None:
        if not body_kg > 0:
            raise ValueError(f"body weight must be above 0 kg, not {body_kg!r}")
        self.body_kg = float(body_kg)
        self.kcal = 0.0

    def add(
        self, seconds: float, speed_kmh: float | None, mode: Mode | str, *, grade: float = 0.0
    ) -> float:
        """Count `seconds` at `speed_kmh` facing `mode`; returns the kcal they added.

        Seconds of 0 or less add nothing: a tick that repeats the previous time has no
        length, and the energy figure is never worth stopping the tick loop for.
        """
        if not seconds > 0:
            return 0.0
        added = kcal_per_min(speed_kmh, mode, self.body_kg, grade) * seconds / 60.0
        self.kcal += added
        return added
