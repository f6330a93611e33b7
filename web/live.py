"""The live view: the page a walker reads from 3 m, the status as JSON, and a Server-Sent
Events stream that keeps both up to date. All of it answers from the app's StatusHub (one
daemon subscription for every viewer), never with a socket round trip per request.

The words on the page come from web.live_view.view(), both for the server-rendered page and
for every streamed status, so the page reads the same with and without JavaScript. A status
of unexpected shape renders with its odd fields as unknown; its numbers that JSON cannot carry
(NaN, infinities) go out as null, so one odd status never ends a stream.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, render_template, request
from flask.typing import ResponseReturnValue

from device.ipc.protocol import DeviceStatus
from web.guide.first_steps import needs_first_session_card
from web.guide.rules import essentials
from web.history.queries import reader
from web.hub import StatusHub, hub_for
from web.live_view import Fields, mode_of, state_of, view
from web.protect import Refused
from web.site import site

log = logging.getLogger("retrotread.web.live")

bp = Blueprint("live", __name__)

RETRY_MS = 2000  # how soon a browser's EventSource reconnects after losing the stream
PING_EVERY_S = 2.0  # a comment this often when nothing changes: proxies keep the stream open
MIN_GAP_S = 0.2  # at most ~4-5 events a second per viewer, whatever the daemon sends
DEFAULT_MAX_STREAMS = 40  # web/serve.py sets this from its thread count
STREAM_HEADERS = {
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",  # nginx in front must pass each event on at once
}

UNREADABLE = (
    "the device sent a status this dashboard cannot read; check that the device and the web "
    "run the same version (journalctl -u retrotread-web has the details)."
)
MAX_JSON_DEPTH = 32  # deeper parts of a status are no field the page knows: null


def offline_sentence(hub: StatusHub) -> str:
    return f"device offline: {hub.error or 'the device has not answered yet.'}"


def json_safe(value: Any, depth: int = 0) -> Any:
    """`value` as strict JSON can carry it: NaN and infinities as null, nothing deeper than
    MAX_JSON_DEPTH."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping | list | tuple) and depth >= MAX_JSON_DEPTH:
        return None
    if isinstance(value, Mapping):
        return {str(key): json_safe(item, depth + 1) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item, depth + 1) for item in value]
    return value


def status_body(status: DeviceStatus) -> dict[str, Any]:
    return json_safe({"online": True, **status})


# -- routes -----------------------------------------------------------------------------------


def _page(status: DeviceStatus | None, words: dict[str, str], offline: str | None) -> str:
    config = site(current_app).config
    machine = config.machine.name
    if status is not None:
        machine = Fields(status).text("machine_name") or machine
    # before a walker's first backward session (every guest's, and while the device is
    # offline): the few rules that make it safe, and the way to the guide
    profile = Fields(status).text("profile") if status is not None else None
    return render_template(
        "live.html",
        status=status,
        v=words,
        live_state=state_of(status),
        live_mode=mode_of(status),
        offline=offline,
        live_machine=machine,
        stream_url=request.script_root + "/api/stream",
        control_url=request.script_root + "/api/control",
        first_session=needs_first_session_card(profile, reader),
        essentials=essentials(config),
    )


@bp.get("/")
def page() -> ResponseReturnValue:
    hub = hub_for(current_app)
    status = hub.latest()
    try:
        words = view(status)
    except Exception:  # view() reads every field for its type; this is the last resort
        log.exception("the live view failed on a status from the device")
        return _page(None, view(None), f"device status unreadable: {UNREADABLE}"), 503
    return _page(status, words, None if status is not None else offline_sentence(hub))


@bp.after_request
def _headers(response: Response) -> Response:
    """Also on the answers web.protect gives for a Refused: a status is never cached, and a
    viewer turned away knows when to come back."""
    if request.endpoint == "live.status":
        response.headers["Cache-Control"] = "no-store"
    elif request.endpoint == "live.stream" and response.status_code == 503:
        response.headers["Retry-After"] = "10"
    return response


@bp.get("/api/status")
def status() -> tuple[Response, int]:
    hub = hub_for(current_app)
    latest = hub.latest()
    if latest is None:  # "online" beside the one error shape: what the stream says too
        raise Refused(offline_sentence(hub), 503, online=False)
    return jsonify(status_body(latest)), 200


@bp.get("/api/stream")
def stream() -> Response:
    hub = hub_for(current_app)
    viewers = _viewers(current_app)
    limit = int(current_app.config.get("RETROTREAD_MAX_STREAMS", DEFAULT_MAX_STREAMS))
    if not viewers.enter(limit):
        sentence = f"{limit} live viewers are already connected; close one, or retry soon."
        raise Refused(sentence, 503, online=hub.online)
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
    said_unreadable = False
    while not hub.closed:
        if latest is not None and seq != sent_seq:
            try:
                message = _event("status", {**status_body(latest), "view": view(latest)})
            except Exception:  # the last resort: skip this status, keep the stream
                if not said_unreadable:
                    log.exception("the live stream skipped a status it could not send")
                said_unreadable = True
                message = ": a status was skipped\n\n"
            yield message
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
