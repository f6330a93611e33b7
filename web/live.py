"""The live view: the page a walker reads from 3 m, the status as JSON, and a Server-Sent
Events stream that keeps both up to date. All of it answers from the app's StatusHub (one
daemon subscription for every viewer), never with a socket round trip per request.

The words on the page come from `view()` here, both for the server-rendered page and for
every streamed status, so the page reads the same with and without JavaScript.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, render_template, request

from device.program import GUEST
from web import site
from web.hub import StatusHub, hub_for

bp = Blueprint("live", __name__)

RETRY_MS = 2000  # how soon a browser's EventSource reconnects after losing the stream
PING_EVERY_S = 2.0  # a comment this often when nothing changes: proxies keep the stream open
MIN_GAP_S = 0.2  # at most ~4-5 events a second per viewer, whatever the daemon sends
DEFAULT_MAX_STREAMS = 40  # web/serve.py sets this from its thread count
STREAM_HEADERS = {
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",  # nginx in front must pass each event on at once
}

STATE_WORDS = {"idle": "Idle", "running": "Running", "paused": "Paused"}


# -- the words on the page --------------------------------------------------------------------


def _clock(seconds: float, *, pad: bool = False) -> str:
    """m:ss (mm:ss with `pad`), minutes unbounded: 75:02 after an hour and a quarter."""
    whole = max(0, int(seconds))
    minutes, secs = divmod(whole, 60)
    return f"{minutes:02d}:{secs:02d}" if pad else f"{minutes}:{secs:02d}"


def _km_h(value: float) -> str:
    return f"{value:.1f} km/h"


def _cap(status: Mapping[str, Any]) -> str:
    cap = status.get("cap_kmh")
    if cap is None:
        return "no cap going forward" if status.get("mode") == "forward" else "no cap"
    text = f"cap {_km_h(cap)}"
    next_cap, next_in = status.get("next_cap_kmh"), status.get("next_cap_in_s")
    if next_cap is not None and next_in is not None:
        text += f", {next_cap:.1f} in {_clock(math.ceil(next_in))}"
    return text


def _program(status: Mapping[str, Any]) -> str:
    program = status.get("program")
    if not program:
        return ""
    if status.get("profile") == GUEST and program.get("week") is None:
        # a gym's walk-up user: no progress is kept, so there is no program to follow
        return "walk-up guest: every session starts at level 1"
    if program.get("finished"):
        weeks = len(program.get("per_week") or ())
        return (
            f"{weeks}-week program complete"
            if program.get("week") is None
            else ("program complete")
        )
    if program.get("week") is None:
        return "the program starts with the first session"
    done, target = program.get("sessions_done", 0), program.get("sessions_target", 0)
    return f"{done} of {target} sessions this week (week {program['week']})"


def _sensor(status: Mapping[str, Any]) -> str:
    sensor = status.get("sensor") or {}
    kind = {"hall": "hall sensor", "serial": "serial speed"}.get(sensor.get("kind"), "sensor")
    if sensor.get("checked"):
        kind += " + check"
    if sensor.get("ok", not status.get("sensor_lost")):
        return f"{kind}: ok"
    # never "ok" by default: a sensor the device cannot vouch for says what is wrong
    state = sensor.get("state") or "lost"
    channel = sensor.get("channel")
    which = f" ({channel})" if channel and sensor.get("checked") else ""
    return f"{kind}: {state}{which}"


def _safety(status: Mapping[str, Any]) -> str:
    """The safety settings looser than shipped, at all times: "cap not enforced", "grace 20 s"."""
    weakened = [str(word) for word in status.get("weakened") or ()]
    return "Safety settings loosened: " + ", ".join(weakened) if weakened else ""


def _history(status: Mapping[str, Any]) -> str:
    """The daemon cannot write its history (a full or read-only disk): said until it can."""
    error = status.get("history_error")
    return f"History is not being saved: {error}" if error else ""


def _warning(status: Mapping[str, Any]) -> str:
    warning = status.get("warning")
    if not warning:
        return ""
    unknown = warning.get("reason") == "speed unknown"
    if not status.get("cap_enforced", True):
        if unknown:
            return "Speed unknown and the cap is not enforced on this machine"
        return "Over the cap and not enforced on this machine"
    if warning.get("stop_coming") is False:
        # nobody started a session and this machine only warns then
        return "Backward mode: press DIRECTION for forward walking, or slow down"
    if warning.get("enforced"):
        return "Stopped: the belt was over the cap"
    seconds = math.ceil(warning.get("seconds_left") or 0)
    lead = "Speed unknown" if unknown else "Slow down"
    return f"{lead}: stopping in {seconds} s"


def _warning_detail(status: Mapping[str, Any]) -> str:
    warning = status.get("warning") or {}
    speed, cap = warning.get("speed_kmh"), warning.get("cap_kmh")
    if speed is None or cap is None:
        return ""
    return f"{_km_h(speed)} against a cap of {_km_h(cap)}"


def _level(status: Mapping[str, Any]) -> str:
    level = status.get("level")
    if level is None:
        return ""
    return f"level {level}" + (", running unlocked" if status.get("running_unlocked") else "")


def view(status: Mapping[str, Any] | None) -> dict[str, str]:
    """The page's words for one status (None: the daemon is offline). Speeds km/h,
    distances m or km, times m:ss."""
    if status is None:
        blank = "--"
        return {"speed": blank, "mode": "", "state": "Offline", "elapsed": "--:--",
                "distance": blank, "kcal": blank, "cap": "", "level": "", "program": "",
                "sensor": "", "warning": "", "warning_detail": "", "message": "",
                "safety": "", "history": ""}  # fmt: skip
    speed, elapsed = status.get("speed_kmh"), status.get("elapsed_s")
    distance, kcal = status.get("distance_m"), status.get("kcal")
    if distance is None:
        distance_text = "--"
    elif distance < 1000:
        distance_text = f"{distance:.0f} m"
    else:
        distance_text = f"{distance / 1000:.2f} km"
    return {
        "speed": "--" if speed is None else f"{speed:.1f}",
        "mode": str(status.get("mode", "")).upper(),
        "state": STATE_WORDS.get(status.get("state"), str(status.get("state", ""))),
        "elapsed": "--:--" if elapsed is None else _clock(elapsed, pad=True),
        "distance": distance_text,
        "kcal": "--" if kcal is None else f"{kcal:.0f} kcal",
        "cap": _cap(status),
        "level": _level(status),
        "program": _program(status),
        "sensor": _sensor(status),
        "warning": _warning(status),
        "warning_detail": _warning_detail(status),
        "message": str(status.get("message") or ""),
        "safety": _safety(status),
        "history": _history(status),
    }


def offline_sentence(hub: StatusHub) -> str:
    return f"device offline: {hub.error or 'the device has not answered yet.'}"


def status_body(status: Mapping[str, Any]) -> dict[str, Any]:
    return {"online": True, **status}


# -- routes -----------------------------------------------------------------------------------


@bp.get("/")
def page() -> str:
    hub = hub_for(current_app)
    status = hub.latest()
    machine = site(current_app).config.machine.name
    if status is not None:
        machine = status.get("machine_name") or machine
    return render_template(
        "live.html",
        status=status,
        v=view(status),
        offline=None if status is not None else offline_sentence(hub),
        live_machine=machine,
        stream_url=request.script_root + "/api/stream",
        control_url=request.script_root + "/api/control",
    )


@bp.get("/api/status")
def status() -> tuple[Response, int]:
    hub = hub_for(current_app)
    latest = hub.latest()
    if latest is None:
        reply = jsonify(online=False, error=offline_sentence(hub))
        code = 503
    else:
        reply, code = jsonify(status_body(latest)), 200
    reply.headers["Cache-Control"] = "no-store"
    return reply, code


@bp.get("/api/stream")
def stream() -> Response | tuple[Response, int]:
    hub = hub_for(current_app)
    viewers = _viewers(current_app)
    limit = int(current_app.config.get("RETROTREAD_MAX_STREAMS", DEFAULT_MAX_STREAMS))
    if not viewers.enter(limit):
        reply = jsonify(
            online=hub.online,
            error=f"{limit} live viewers are already connected; close one, or retry soon.",
        )
        reply.headers["Retry-After"] = "10"
        return reply, 503
    response = Response(_events(hub), mimetype="text/event-stream", headers=STREAM_HEADERS)
    # waitress closes the response when the viewer leaves, even before the first event
    response.call_on_close(viewers.leave)
    return response


def _event(kind: str, body: Mapping[str, Any]) -> str:
    data = json.dumps(body, separators=(",", ":"), allow_nan=False)
    return f"event: {kind}\ndata: {data}\n\n"


def _events(hub: StatusHub) -> Iterator[str]:
    """The SSE stream: each new status as `event: status`, `event: offline` once when the
    daemon goes away (the stream stays open and resumes when it returns), a comment ping when
    nothing happens for PING_EVERY_S."""
    yield f"retry: {RETRY_MS}\n\n"
    sent_seq: int | None = None
    sent_offline: str | None = None
    seq, latest = hub.snapshot()
    while not hub.closed:
        if latest is not None and seq != sent_seq:
            yield _event("status", {**status_body(latest), "view": view(latest)})
            sent_seq, sent_offline = seq, None
            time.sleep(MIN_GAP_S)  # then the newest status; any that came between are skipped
        elif latest is None and offline_sentence(hub) != sent_offline:
            sent_offline = offline_sentence(hub)
            yield _event("offline", {"online": False, "error": sent_offline, "view": view(None)})
            sent_seq = None
        else:
            yield ": ping\n\n"
        seq, latest = hub.wait_newer(seq, PING_EVERY_S)


class _Viewers:
    """How many SSE streams are open: each holds a server thread, so past the limit a new
    viewer is turned away and normal pages stay quick."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.count = 0

    def enter(self, limit: int) -> bool:
        with self._lock:
            if self.count >= limit:
                return False
            self.count += 1
            return True

    def leave(self) -> None:
        with self._lock:
            self.count -= 1


_viewers_lock = threading.Lock()


def _viewers(app: Any) -> _Viewers:
    extras = site(app).extras
    with _viewers_lock:
        return extras.setdefault("live_viewers", _Viewers())
