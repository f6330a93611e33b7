"""The status the socket streams and the dashboard shows: one flat object of plain JSON values,
built from the Controller's parts (the daemon adds its adapters' health). Pure: the caller
passes every part, read at one time.

`DeviceStatus` is the wire format, key for key and in this order; the web reads it through
device.ipc.protocol. Keys the dashboard relies on: speed_kmh, mean_kmh, mode, state, cap_kmh,
next_cap_kmh, next_cap_in_s, warning (None, or its reason, speed, cap, seconds_left, whether a
stop is coming and the guard's scope), limit_kmh, guard, grace_left_s, enforcement,
cap_enforced, weakened, level, program (this week's sessions against the target), elapsed_s,
distance_m, backward_s, forward_s, kcal (an estimate), sensor (its state in a word and a
sentence), message, history_error and health.
"""

from __future__ import annotations

from typing import TypedDict

from device.config.model import BackwardConfig, Config, SensorConfig, SensorKind
from device.core.console import ConsoleState, SpeedAnswer
from device.core.governor import CapSchedule
from device.core.overspeed import Limit
from device.core.program import WeekProgress
from device.core.sensor_watch import SensorWatch
from device.core.session import SessionMachine


class ProgramStatus(TypedDict):
    """This week of the walker's program (device/core/program.py WeekProgress)."""

    week: int | None
    sessions_done: int
    sessions_target: int
    per_week: list[int]
    finished: bool


class ProgressionStatus(TypedDict):
    profile: str
    level: int
    running_unlocked: bool
    program: ProgramStatus


class SensorStatus(TypedDict):
    kind: str  # a SensorKind
    ok: bool
    state: str  # a SensorState
    channel: str
    detail: str
    checked: bool
    # edges closer than the max speed allows, ignored as bounces (pulse sensors)
    bounces: int


class WarningStatus(TypedDict):
    reason: str  # "over the cap" | "speed unknown"
    speed_kmh: float | None
    cap_kmh: float | None
    seconds_left: float
    enforced: bool
    stop_coming: bool
    scope: str


class GuardStatus(TypedDict):
    warning: WarningStatus | None
    limit_kmh: float | None
    guard: str | None  # the limit's scope
    grace_left_s: float
    enforcement: str  # [enforce] action
    cap_enforced: bool
    soft: str  # [enforce] soft: "none" | "csafe"
    slowing: bool  # the console was asked to slow the belt; the relay follows if it does not
    console_ignores_speed: bool  # remembered: stops go straight to the relay
    relay: str  # a RelayState
    latched: bool
    sensor_lost: bool


class ConsoleStatus(TypedDict):
    """A CSAFE console's own word, as the controller heard it."""

    state: str | None  # a ConsoleState; None before its first answer
    follows: bool  # [session] follow_console
    speed_answer: str | None  # a SpeedAnswer: what it made of the last SetSpeed


class ControllerStatus(TypedDict):
    """What the Controller knows: everything but the daemon's adapters."""

    machine_id: str
    machine_name: str
    speed_kmh: float | None
    mean_kmh: float | None
    mode: str  # a Mode
    state: str  # a SessionState
    cap_kmh: float | None  # the cap in force: the session's, or the one the guard holds
    next_cap_kmh: float | None
    next_cap_in_s: float | None
    profile: str
    level: int
    running_unlocked: bool
    program: ProgramStatus
    sensor: SensorStatus
    warning: WarningStatus | None
    limit_kmh: float | None
    guard: str | None
    grace_left_s: float
    enforcement: str
    cap_enforced: bool
    soft: str
    slowing: bool
    console_ignores_speed: bool
    relay: str
    latched: bool
    sensor_lost: bool
    console: ConsoleStatus | None  # None when no CSAFE console is read
    message: str
    start_refusal: str | None  # what START would be told now; None when it would go ahead
    weakened: list[str]
    elapsed_s: float | None
    distance_m: float | None
    backward_s: float | None
    forward_s: float | None
    kcal: float | None
    kcal_is_estimate: bool


class HistoryStatus(TypedDict):
    ok: bool
    error: str | None
    unsaved_rows: int
    lost_rows: int


class FleetStatus(TypedDict):
    """The link to the gym's broker (device/fleet/publisher.py LinkHealth)."""

    connected: bool
    error: str | None  # one sentence while the link is down or refused
    events_waiting: int
    events_dropped: int
    sessions_sent: int


class ConsoleLinkStatus(TypedDict):
    """The CSAFE link as the daemon's poller sees it."""

    connected: bool
    error: str | None  # why the port is not open
    unsupported: str | None  # e.g. the console gives no speed over CSAFE
    answers: int
    timeouts: int
    rejected_frames: int
    distance_m: float | None  # the console's own distance (GetHorizontal), None if it has none


class HealthStatus(TypedDict):
    sensor_rejected: int
    sensor_error: str | None
    inputs_dropped: int
    console: ConsoleLinkStatus | None  # None when no CSAFE console is read
    history: HistoryStatus | None  # None before the history writer started
    fleet: FleetStatus | None  # None while [fleet] broker is empty


class DeviceStatus(ControllerStatus):
    """The daemon's status line: the Controller's, then the adapters' health."""

    history_error: str | None
    health: HealthStatus


def _rounded(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def program_status(progress: WeekProgress) -> ProgramStatus:
    return {
        "week": progress.week,
        "sessions_done": progress.sessions_done,
        "sessions_target": progress.sessions_target,
        "per_week": list(progress.per_week),
        "finished": progress.finished,
    }


def sensor_status(config: SensorConfig, sensor: SensorWatch) -> SensorStatus:
    verdict, primary = sensor.verdict, sensor.primary
    return {
        "kind": config.kind,
        "ok": verdict.trusted,
        "state": verdict.state.value,
        "channel": verdict.channel,
        "detail": verdict.detail,
        "checked": config.check is not None,
        "bounces": primary.estimator.bounces if primary else 0,
    }


def console_status(
    config: Config, state: ConsoleState | None, answer: SpeedAnswer | None
) -> ConsoleStatus | None:
    """The console's part of the status (None when no console is read): its machine state
    (a ConsoleState) and what it made of the last SetSpeed (a SpeedAnswer)."""
    if config.sensor.console is None:
        return None
    return {
        "state": None if state is None else state.value,
        "follows": config.session.follow_console,
        "speed_answer": None if answer is None else answer.value,
    }


def controller_status(
    config: Config,
    session: SessionMachine,
    *,
    schedule: CapSchedule | None,
    limit: Limit | None,
    speed_kmh: float | None,
    mean_kmh: float | None,
    progression: ProgressionStatus,
    sensor: SensorStatus,
    guard: GuardStatus,
    console: ConsoleStatus | None,
    message: str,
    start_refusal: str | None = None,
) -> ControllerStatus:
    """The Controller's status from its parts, all read at one time: `schedule` is the
    session's cap schedule, `limit` the guard's limit now (None in forward mode)."""
    if limit is not None and schedule is not None and limit.cap_kmh < schedule.cap_kmh:
        schedule = None  # held lower than the session's schedule (after an enforced stop)
    status: ControllerStatus = {
        "machine_id": config.machine.id,
        "machine_name": config.machine.name,
        "speed_kmh": _rounded(speed_kmh, 2),
        "mean_kmh": _rounded(mean_kmh, 2),
        "mode": session.mode.value,
        "state": session.state.value,
        "cap_kmh": limit.cap_kmh if limit else None,
        "next_cap_kmh": schedule.next_cap_kmh if schedule else None,
        "next_cap_in_s": _rounded(schedule.next_cap_in_s, 1) if schedule else None,
        **progression,
        "sensor": sensor,
        **guard,
        "console": console,
        "message": message,
        "start_refusal": start_refusal,
        "weakened": weakened(config),
        "elapsed_s": None,
        "distance_m": None,
        "backward_s": None,
        "forward_s": None,
        "kcal": None,
        "kcal_is_estimate": True,
    }
    totals = session.totals
    if totals is not None:
        status.update(
            {
                "elapsed_s": round(totals.active_s, 1),
                "distance_m": round(totals.distance_m, 1),
                "backward_s": round(totals.backward_s, 1),
                "forward_s": round(totals.forward_s, 1),
                "kcal": round(totals.kcal, 1),
            }
        )
    return status


def device_status(
    status: ControllerStatus, *, history_error: str | None, health: HealthStatus
) -> DeviceStatus:
    """The daemon's status line: the Controller's status with the adapters' health."""
    return {**status, "history_error": history_error, "health": health}


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
    # == as everywhere a kind is compared: a config built in code may name it by its word
    reads_port = config.sensor.kind in (SensorKind.SERIAL, SensorKind.CSAFE)
    if reads_port and config.sensor.stale_s > SensorConfig().stale_s:
        words.append(f"serial stale after {config.sensor.stale_s:g} s")
    if config.enforce.soft == "csafe":
        words.append("soft stop: up to 2 s more")
    if b.start_cap_kmh > shipped.start_cap_kmh:
        words.append(f"start cap {b.start_cap_kmh:g} km/h")
    if b.ramp_step_kmh / b.ramp_every_s > shipped.ramp_step_kmh / shipped.ramp_every_s or (
        b.hold_s < shipped.hold_s
    ):
        words.append("faster ramp")
    return words
