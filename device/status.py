"""The status the socket streams and the dashboard shows: one flat dict of plain JSON values,
built from the Controller's parts. Pure: the time is an argument.

Keys the dashboard relies on: speed_kmh, mean_kmh, mode, state, cap_kmh, next_cap_kmh,
next_cap_in_s, warning (None, or its reason, speed, cap and seconds_left), enforcement,
cap_enforced, level, program (this week's sessions against the target), elapsed_s,
distance_m, backward_s, forward_s, kcal (an estimate), sensor, message.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from device.controller import Controller


def _rounded(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def device_status(controller: Controller, t: float) -> dict[str, Any]:
    schedule = controller.cap(t)
    totals = controller.session.totals
    status: dict[str, Any] = {
        "machine_id": controller.config.machine.id,
        "machine_name": controller.config.machine.name,
        "speed_kmh": _rounded(controller.speed_kmh(t), 2),
        "mean_kmh": _rounded(controller.mean_kmh(t), 2),
        "mode": controller.session.mode.value,
        "state": controller.session.state.value,
        "cap_kmh": schedule.cap_kmh if schedule else None,
        "next_cap_kmh": schedule.next_cap_kmh if schedule else None,
        "next_cap_in_s": _rounded(schedule.next_cap_in_s, 1) if schedule else None,
        **controller.progression.status(t + controller.wall_offset),
        "sensor": _sensor(controller, t),
        **controller.guard.status(),
        "message": controller.message,
        "elapsed_s": None,
        "distance_m": None,
        "backward_s": None,
        "forward_s": None,
        "kcal": None,
        "kcal_is_estimate": True,
    }
    if totals is not None:
        status.update(
            elapsed_s=round(totals.active_s, 1),
            distance_m=round(totals.distance_m, 1),
            backward_s=round(totals.backward_s, 1),
            forward_s=round(totals.forward_s, 1),
            kcal=round(totals.kcal, 1),
        )
    return status


def _sensor(controller: Controller, t: float) -> dict[str, Any]:
    if controller.uses_pulses:
        return {"kind": "hall", "ok": True}
    stale = controller.readings.is_stale(t)
    return {"kind": "serial", "ok": not stale, "detail": "no reading" if stale else ""}
