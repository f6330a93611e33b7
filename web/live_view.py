"""The words on the live page for one daemon status: `view(status)`, used both for the
server-rendered page and for every streamed status, so the page reads the same with and
without JavaScript.

The status is a device.ipc.protocol.DeviceStatus, but it arrives as JSON from another process
(possibly another version of it), so every field is read for its type here and never trusted:
a missing field reads as absent, a field of the wrong type (a speed of "fast", a sensor of 5,
a warning of [1]) reads as unknown. No status can make view() raise. Where a field matters for
safety, unknown never reads as fine: a sensor that cannot be read is not "ok", an unreadable
warning still shows the banner, an unreadable cap_enforced counts as not enforced.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from device.config.model import SensorKind
from device.core.program import GUEST
from device.ipc.protocol import DeviceStatus
from web import formats

STATE_WORDS = {"idle": "Idle", "running": "Running", "paused": "Paused"}
MODES = ("forward", "backward")
SHOWN_TEXT_CHARS = 300  # a sentence from the device; longer is cut, never the page's layout
UNKNOWN = "unknown"
SENSOR_WORDS: dict[str, str] = {SensorKind.HALL: "hall sensor", SensorKind.SERIAL: "serial speed",
                                SensorKind.CSAFE: "console (CSAFE)"}  # fmt: skip
# what a sensor of each kind rejects, one and many
READINGS_OF: dict[str, tuple[str, str]] = {
    SensorKind.SERIAL: ("line", "lines"),
    SensorKind.HALL: ("pulse", "pulses"),
    SensorKind.CSAFE: ("frame", "frames"),
}
SLOWING = "slowing the belt (SetSpeed)"  # the soft stop's window, in place of a countdown

OFFLINE_VIEW = {"speed": "--", "mode": "", "state": "Offline", "elapsed": "--:--",
                "distance": "--", "kcal": "--", "cap": "", "level": "", "program": "",
                "sensor": "", "console": "", "warning": "", "warning_detail": "", "message": "",
                "start_hint": "", "safety": "", "history": "", "health": ""}  # fmt: skip


class Fields:
    """One status (or a part of it) read for its types: each reader gives the value, or
    None when it is missing, null or of another type. Anything but a mapping reads as
    empty."""

    def __init__(self, raw: object) -> None:
        self._raw: Mapping[Any, Any] = raw if isinstance(raw, Mapping) else {}

    def present(self, key: str) -> bool:
        """Whether `key` holds anything but null (of whatever type)."""
        return self._raw.get(key) is not None

    def raw(self, key: str) -> Any:
        return self._raw.get(key)

    def number(self, key: str) -> float | None:
        value = self._raw.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        try:
            number = float(value)  # an int past a float's range (JSON allows it) overflows
        except OverflowError:
            return None
        return number if math.isfinite(number) else None

    def count(self, key: str) -> int | None:
        """A whole number from 0 up."""
        value = self._raw.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            return None
        return value

    def text(self, key: str) -> str | None:
        value = self._raw.get(key)
        if not isinstance(value, str):
            return None
        return value if len(value) <= SHOWN_TEXT_CHARS else value[: SHOWN_TEXT_CHARS - 3] + "..."

    def flag(self, key: str) -> bool | None:
        value = self._raw.get(key)
        return value if isinstance(value, bool) else None

    def table(self, key: str) -> Fields | None:
        """The nested object at `key`, or None when it is not an object."""
        value = self._raw.get(key)
        return Fields(value) if isinstance(value, Mapping) else None

    def items(self, key: str) -> list[Any] | None:
        value = self._raw.get(key)
        return value if isinstance(value, list) else None


# -- the quantities: web.formats, one formatter each ----------------------------------------


def _plural(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


# -- the pieces of the page -------------------------------------------------------------------


def _cap(s: Fields) -> str:
    if not s.present("cap_kmh"):
        return "no cap going forward" if s.text("mode") == "forward" else "no cap"
    cap = s.number("cap_kmh")
    if cap is None:
        return f"cap {UNKNOWN}"
    text = f"cap {formats.km_h(cap)}"
    next_cap, next_in = s.number("next_cap_kmh"), s.number("next_cap_in_s")
    if next_cap is not None and next_in is not None:
        text += f", {next_cap:.1f} in {formats.stopwatch(math.ceil(next_in))}"
    return text


def _program(s: Fields) -> str:
    if not s.raw("program"):
        return ""
    program = s.table("program")
    if program is None:
        return f"program {UNKNOWN}"
    started = program.present("week")
    if s.text("profile") == GUEST and not started:
        # a gym's walk-up user: no progress is kept, so there is no program to follow
        return "walk-up guest: every session starts at level 1"
    if program.flag("finished"):
        if started:
            return "program complete"
        weeks = len(program.items("per_week") or ())
        return f"{weeks}-week program complete"
    if not started:
        return "the program starts with the first session"
    week, done = program.count("week"), program.count("sessions_done")
    target = program.count("sessions_target")
    if week is None or done is None or target is None:
        return f"program {UNKNOWN}"
    return f"{done} of {target} sessions this week (week {week})"


def _sensor(s: Fields) -> str:
    sensor = s.table("sensor")
    if sensor is None and s.present("sensor"):
        return f"sensor: {UNKNOWN}"  # never "ok" for a sensor report that cannot be read
    sensor = sensor or Fields({})
    kind = SENSOR_WORDS.get(sensor.text("kind") or "")
    kind = kind or "sensor"
    if sensor.flag("checked"):
        kind += " + check"
    ok = sensor.flag("ok")
    if ok is None and not sensor.present("ok"):
        lost = s.flag("sensor_lost")  # an older daemon: only sensor_lost says
        ok = None if lost is None else not lost
    if ok:
        return f"{kind}: ok"
    # never "ok" by default: a sensor the device cannot vouch for says what is wrong
    state = sensor.text("state") or ("lost" if ok is False else UNKNOWN)
    channel = sensor.text("channel")
    which = f" ({channel})" if channel and sensor.flag("checked") else ""
    return f"{kind}: {state}{which}"


def _console(s: Fields) -> str:
    """A CSAFE console's machine state and whether sessions follow it: "in use, sessions
    follow it"; "" when no console is read."""
    if not s.present("console"):
        return ""
    console = s.table("console")
    if console is None:
        return UNKNOWN
    state = console.text("state")
    if state is None:
        state = UNKNOWN if console.present("state") else "no answer yet"
    follows = console.flag("follows")
    if follows is None:
        return f"{state}, following: {UNKNOWN}"
    return f"{state}, sessions {'follow it' if follows else 'do not follow it'}"


def _safety(s: Fields) -> str:
    """The safety settings looser than shipped, at all times: "cap not enforced", "grace 20 s"."""
    if not s.raw("weakened"):
        return ""
    listed = s.items("weakened")
    if listed is None:
        return f"Safety settings loosened: {UNKNOWN} (the device's list cannot be read)"
    words = [word if isinstance(word, str) else UNKNOWN for word in listed]
    return "Safety settings loosened: " + ", ".join(words)


def _history(s: Fields) -> str:
    """The daemon cannot write its history (a full or read-only disk): said until it can."""
    if not s.raw("history_error"):
        return ""
    error = s.text("history_error") or "the device's reason cannot be read."
    return f"History is not being saved: {error}"


def _cap_enforced(s: Fields) -> bool:
    if not s.present("cap_enforced"):
        return True  # an older daemon that does not say: the shipped default
    return s.flag("cap_enforced") is True  # unreadable: never claim a stop is coming


def _warning(s: Fields) -> str:
    if not s.raw("warning"):
        return ""
    warning = s.table("warning")
    if warning is None:
        return "The device warns, but this dashboard cannot read why: slow down"
    unknown = warning.text("reason") == "speed unknown"
    if not _cap_enforced(s):
        if unknown:
            return "Speed unknown and the cap is not enforced on this machine"
        return "Over the cap and not enforced on this machine"
    if warning.flag("stop_coming") is False:
        # nobody started a session and this machine only warns then
        return "Backward mode: press DIRECTION for forward walking, or slow down"
    lead = "Speed unknown" if unknown else "Slow down"
    if s.flag("slowing"):
        # the grace is spent (the guard counts it enforced) but the relay is still closed:
        # the console was sent SetSpeed, and the relay follows if the belt does not come down
        return f"{lead}: {SLOWING}"
    if warning.flag("enforced"):
        return "Stopped: the belt was over the cap"
    left = warning.number("seconds_left")
    if left is None and warning.present("seconds_left"):
        return f"{lead}: stopping soon"
    return f"{lead}: stopping in {math.ceil(max(0.0, left or 0.0))} s"


def _warning_detail(s: Fields) -> str:
    warning = s.table("warning") or Fields({})
    speed, cap = warning.number("speed_kmh"), warning.number("cap_kmh")
    if speed is None or cap is None:
        return ""
    return f"{formats.km_h(speed)} against a cap of {formats.km_h(cap)}"


def _level(s: Fields) -> str:
    if not s.present("level"):
        return ""
    level = s.count("level")
    if level is None:
        return f"level {UNKNOWN}"
    return f"level {level}" + (", running unlocked" if s.flag("running_unlocked") else "")


def _distance(s: Fields) -> str:
    distance = s.number("distance_m")
    if distance is None:
        return "--"
    return formats.distance(distance)


def _counted(fields: Fields, key: str, one: str, many: str, verb: str) -> str:
    """ "12 lines rejected" for a count above 0, "" for none (or no such key), "lines
    rejected: unknown" when the value cannot be read."""
    count = fields.count(key)
    if count is None:
        return f"{many} {verb}: {UNKNOWN}" if fields.present(key) else ""
    return f"{_plural(count, one, many)} {verb}" if count else ""


def _history_health(history: Fields | None) -> str:
    ok = history.flag("ok") if history is not None else None
    if history is None or ok is None:
        return f"history: {UNKNOWN}"
    error = history.text("error")
    cause = error.rstrip(".") if error else ""
    lost = _counted(history, "lost_rows", "row", "rows", "lost")
    if ok:
        # saving: rows waiting for their batch are normal then, so only a loss is news
        if not lost:
            return ""
        return f"history: saving, {lost} earlier" + (f" ({cause})" if cause else "")
    waiting = _counted(history, "unsaved_rows", "row", "rows", "waiting")
    counts = ", ".join(part for part in (waiting, lost) if part)
    return (
        "history: not saving" + (f": {cause}" if cause else "") + (f" ({counts})" if counts else "")
    )


def _fleet_health(fleet: Fields | None) -> str:
    """Only news: the link down (the safety rules do not need it; the front desk's view
    does), or events let go while it was."""
    if fleet is None:
        return ""  # no broker configured
    connected = fleet.flag("connected")
    dropped = _counted(fleet, "events_dropped", "event", "events", "not sent")
    if connected:
        return f"fleet: {dropped}" if dropped else ""
    error = fleet.text("error")
    cause = f": {error.rstrip('.')}" if error else ""
    waiting = _counted(fleet, "events_waiting", "event", "events", "waiting")
    counts = ", ".join(part for part in (waiting, dropped) if part)
    return "fleet: not connected" + cause + (f" ({counts})" if counts else "")


def _console_health(console: Fields | None, sensor_error: str | None) -> str:
    """Only news: why the port is not read, or that the console gives no speed, and its
    timeouts when there were any. A console that is the primary sensor has its sentence in
    the sensor's part already: it is not said twice."""
    if console is None:
        return f"console: {UNKNOWN}"
    cause = console.text("error") or console.text("unsupported")
    if cause is None and (console.raw("error") or console.raw("unsupported")):
        cause = f"last error: {UNKNOWN}"
    if cause == sensor_error:
        cause = None
    timeouts = console.count("timeouts")
    counted = _plural(timeouts, "timeout", "timeouts") if timeouts else ""
    if timeouts is None and console.present("timeouts"):
        counted = f"timeouts: {UNKNOWN}"
    if cause:
        return f"console: {cause.rstrip('.')}" + (f" ({counted})" if counted else "")
    return f"console: {counted}" if counted else ""


def _health(s: Fields) -> str:
    """The adapters' health in one line, only what is wrong: "sensor: 12 lines rejected,
    last error: ... · history: not saving: disk full (40 rows waiting) · inputs dropped: 3",
    or "all good". "" from a daemon that reports no health."""
    if not s.present("health"):
        return ""
    health = s.table("health")
    if health is None:
        return f"{UNKNOWN} (the device's health report cannot be read)"
    sensor_kind = (s.table("sensor") or Fields({})).text("kind") or ""
    one, many = READINGS_OF.get(sensor_kind, ("reading", "readings"))
    sensor = [_counted(health, "sensor_rejected", one, many, "rejected")]
    error = health.text("sensor_error")
    if error:
        sensor.append(f"last error: {error}")
    elif health.raw("sensor_error"):
        sensor.append(f"last error: {UNKNOWN}")
    parts = ["sensor: " + ", ".join(part for part in sensor if part) if any(sensor) else ""]
    if health.present("console"):
        parts.append(_console_health(health.table("console"), error))
    if health.present("history"):
        parts.append(_history_health(health.table("history")))
    if health.present("fleet"):
        parts.append(_fleet_health(health.table("fleet")))
    dropped = health.count("inputs_dropped")
    if dropped:
        parts.append(f"inputs dropped: {dropped}")
    elif dropped is None and health.present("inputs_dropped"):
        parts.append(f"inputs dropped: {UNKNOWN}")
    shown = [part for part in parts if part]
    return " · ".join(shown) if shown else "all good"


def mode_of(status: DeviceStatus | None) -> str:
    """ "forward", "backward", or "" for no status or one whose mode cannot be read."""
    mode = Fields(status).text("mode")
    return mode if mode in MODES else ""


def state_of(status: DeviceStatus | None) -> str:
    """ "idle", "running", "paused", or "offline" for no status, "unknown" for an odd one."""
    if status is None:
        return "offline"
    state = Fields(status).text("state")
    return state if state in STATE_WORDS else UNKNOWN


def view(status: DeviceStatus | None) -> dict[str, str]:
    """The page's words for one status (None: the daemon is offline). Speeds km/h,
    distances m or km, times m:ss. Never raises, whatever the status holds."""
    if status is None:
        return dict(OFFLINE_VIEW)
    s = Fields(status)
    speed, elapsed, kcal = s.number("speed_kmh"), s.number("elapsed_s"), s.number("kcal")
    state = s.text("state")
    state_words = UNKNOWN if state is None else STATE_WORDS.get(state, state)
    return {
        "speed": "--" if speed is None else f"{speed:.1f}",
        "mode": mode_of(status).upper() or ("" if not s.present("mode") else "?"),
        "state": state_words,
        "elapsed": "--:--" if elapsed is None else formats.stopwatch(elapsed, pad=True),
        "distance": _distance(s),
        "kcal": "--" if kcal is None else f"{kcal:.0f} kcal",
        "cap": _cap(s),
        "level": _level(s),
        "program": _program(s),
        "sensor": _sensor(s),
        "console": _console(s),
        "warning": _warning(s),
        "warning_detail": _warning_detail(s),
        "message": s.text("message") or "",
        "start_hint": _start_hint(s, state),
        "safety": _safety(s),
        "history": _history(s),
        "health": _health(s),
    }


def _start_hint(s: Fields, state: str | None) -> str:
    """What START (or Resume) would be told now, before anyone presses it: a belt too fast
    for a backward start, or a speed the sensor has not yet seen enough of to vouch for."""
    if state not in ("idle", "paused"):
        return ""
    return s.text("start_refusal") or ""
