"""The status the socket streams and the dashboard shows: one flat dict of plain JSON values,
built from the Controller's parts. Pure: the time is an argument.

Keys the dashboard relies on: speed_kmh, mean_kmh, mode, state, cap_kmh, next_cap_kmh,
next_cap_in_s, warning (None, or its reason, speed, cap, seconds_left, whether a stop is
coming and the guard's scope), limit_kmh, guard, grace_left_s, enforcement, cap_enforced,
weakened, level, program (this week's sessions against the target), elapsed_s, distance_m,
backward_s, forward_s, kcal (an estimate), sensor (its state in a word and a sentence),
message.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from device.config.model import BackwardConfig, Config, SensorConfig

if TYPE_CHECKING:
    from device.core.controller import Controller


def _rounded(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def device_status(controller: Controller, t: float) -> dict[str, Any]:
    schedule = controller.cap(t)
    limit = controller.guard.limit_at(t, controller.belt(t))  # as of now: a reload shows
    if limit is not None and schedule is not None and limit.cap_kmh < schedule.cap_kmh:
        schedule = None  # held lower than the session's schedule (after an enforced stop)
    totals = controller.session.totals
    status: dict[str, Any] = {
        "machine_id": controller.config.machine.id,
        "machine_name": controller.config.machine.name,
        "speed_kmh": _rounded(controller.speed_kmh(t), 2),
        "mean_kmh": _rounded(controller.mean_kmh(t), 2),
        "mode": controller.session.mode.value,
        "state": controller.session.state.value,
        # the cap in force: the session's, or the one the guard holds outside a session
        "cap_kmh": limit.cap_kmh if limit else None,
        "next_cap_kmh": schedule.next_cap_kmh if schedule else None,
        "next_cap_in_s": _rounded(schedule.next_cap_in_s, 1) if schedule else None,
        **controller.progression.status(t + controller.wall_offset),
        "sensor": _sensor(controller, t),
        **controller.guard.status(),
        "message": controller.message,
        "weakened": weakened(controller.config),
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
    verdict = controller.sensor.verdict
    return {
        "kind": controller.config.sensor.kind,
        "ok": verdict.trusted,
        "state": verdict.state.value,
        "channel": verdict.channel,
        "detail": verdict.detail,
        "checked": controller.config.sensor.check is not None,
        # edges closer than the max speed allows, ignored as bounces (pulse sensors)
        "bounces": controller.sensor.primary.estimator.bounces if controller.sensor.primary else 0,
    }


def weakened(config: Config) -> list[str]:
    """The safety settings looser than the ones retrotread ships, in a few words each: the
    live page shows them at all times, not only once the belt is over the cap."""
    b, shipped = config.backward, BackwardConfig()
    words = []
    if config.enforce.action == "none":
        words.append("cap not enforced")
    if b.grace_s > shipped.grace_s:
        words.append(f"grace {b.grace_s:g} s")
    if b.tolerance_kmh > shipped.tolerance_kmh:
        words.append(f"tolerance {b.tolerance_kmh:g} km/h")
    if config.sensor.kind == "serial" and config.sensor.stale_s > SensorConfig().stale_s:
        words.append(f"serial stale after {config.sensor.stale_s:g} s")
    if b.start_cap_kmh > shipped.start_cap_kmh:
        words.append(f"start cap {b.start_cap_kmh:g} km/h")
    if b.ramp_step_kmh / b.ramp_every_s > shipped.ramp_step_kmh / shipped.ramp_every_s or (
        b.hold_s < shipped.hold_s
    ):
        words.append("faster ramp")
    return words
