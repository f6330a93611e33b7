"""The demo's simulator panel: the belt's speed knob and the treadmill's two buttons, for a
laptop with no treadmill. Registered only by `retrotread demo`. It needs no login (it stands
in for the physical treadmill, which needs none either), but its requests are CSRF-protected
like every other state-changing request.

It drives the demo's simulated walker (device/sim/demo.py), which acts only through the mock
pins, so what the panel does reaches the daemon exactly as a hall sensor and buttons would.
"""

from __future__ import annotations

import json
import math
from typing import Any

from flask import Blueprint, current_app, jsonify, request

from device.core.modes import ButtonName
from web.site import site

bp = Blueprint("demo", __name__, url_prefix="/demo")

MAX_BELT_KMH = 20.0
BUTTONS = tuple(ButtonName)


def _refuse(sentence: str):
    # the error shape of web.protect.Refused, answered here: its handler answers JSON only
    # under /api/, and the panel's script reads JSON from /demo/
    return jsonify({"ok": False, "error": sentence}), 400


def _body() -> dict[str, Any] | None:
    try:
        # not get_json(silent=True): that lets a RecursionError (64 KiB of "[") through as a 500
        body = json.loads(request.get_data())
    except (ValueError, RecursionError):
        return None
    return body if isinstance(body, dict) else None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


@bp.get("/state")
def state():
    return jsonify({"ok": True, **site(current_app).demo.panel_state()})


@bp.post("/belt")
def belt():
    body = _body()
    kmh = _number(body.get("kmh")) if body is not None else None
    if body is None or set(body) != {"kmh"} or kmh is None or not 0 <= kmh <= MAX_BELT_KMH:
        return _refuse(f'Send {{"kmh": N}} with N from 0 to {MAX_BELT_KMH:g} km/h.')
    site(current_app).demo.set_belt(kmh)
    return jsonify({"ok": True, "belt_kmh": kmh})


@bp.post("/press")
def press():
    body = _body()
    if body is None or body.get("button") not in BUTTONS or not set(body) <= {"button", "hold_s"}:
        return _refuse('Send {"button": "start" or "direction"} and optionally "hold_s".')
    hold = _number(body.get("hold_s", 0.2))
    if hold is None or not 0.05 <= hold <= 5:
        return _refuse("hold_s must be a number of seconds from 0.05 to 5.")
    site(current_app).demo.press(ButtonName(body["button"]), hold_s=hold)
    return jsonify({"ok": True})
