"""POST /api/control: the dashboard's START / PAUSE / END / direction buttons, passed to the
daemon over its socket. The daemon alone decides (a backward start while the belt runs fast is
refused there, not here); this route checks who asks and what shape the request has.

    {"action": "start" | "pause" | "resume" | "end"}
    {"action": "mode", "mode": "forward" | "backward"}

200 {"ok": true, "status": {...}}; 400 a malformed request; 401 not logged in; 409 the daemon
refused (its sentence); 503 the daemon is down. Every error body is {"ok": false, "error"}.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, current_app, jsonify, request
from flask.typing import ResponseReturnValue

from device.core.modes import Mode
from device.ipc.client import DeviceClient, DeviceOffline
from web.auth import login_required_for_controls
from web.site import site

bp = Blueprint("control", __name__)

ACTIONS = ("start", "pause", "resume", "end", "mode")
# the longest valid body is about 40 bytes; anything near this is not our page talking
MAX_BODY_BYTES = 1024

_ACTIONS = ", ".join(ACTIONS)
_MODES = " or ".join(f'"{mode.value}"' for mode in Mode)
_EXAMPLE = '{"action": "start"}'


class BadCommand(ValueError):
    """The request body is not a control command; str() is one sentence."""


def _shown(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


def parse_command(raw: bytes) -> dict[str, str]:
    """Turn a request body into the daemon's request ({"cmd": ..., maybe "mode"}); raise
    BadCommand naming what is wrong and what is allowed."""
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        raise BadCommand(f"the body is not valid JSON; send e.g. {_EXAMPLE}.") from None
    if not isinstance(body, dict):
        raise BadCommand(f"the body must be a JSON object such as {_EXAMPLE}.")
    action = body.get("action")
    if "action" not in body:
        raise BadCommand(f'the body has no "action"; allowed actions: {_ACTIONS}.')
    if not isinstance(action, str) or action not in ACTIONS:
        raise BadCommand(f"unknown action {_shown(action)}; allowed actions: {_ACTIONS}.")
    allowed = {"action", "mode"} if action == "mode" else {"action"}
    extra = sorted(set(body) - allowed)
    if extra:
        takes = '"action" and "mode"' if action == "mode" else 'only "action"'
        keys = ", ".join(_shown(key) for key in extra)
        raise BadCommand(f'unexpected keys {keys}; "{action}" takes {takes}.')
    if action != "mode":
        return {"cmd": action}
    if "mode" not in body:
        raise BadCommand(f'"action": "mode" needs "mode": {_MODES}.')
    mode = body["mode"]
    if not isinstance(mode, str) or mode not in {m.value for m in Mode}:
        raise BadCommand(f"unknown mode {_shown(mode)}; allowed modes: {_MODES}.")
    return {"cmd": "mode", "mode": mode}


def _error(sentence: str, status: int) -> ResponseReturnValue:
    return jsonify({"ok": False, "error": sentence}), status


@bp.post("/api/control")
@login_required_for_controls
def control() -> ResponseReturnValue:
    if not request.is_json:
        return _error(
            f"send the command as JSON (Content-Type: application/json), e.g. {_EXAMPLE}.", 400
        )
    raw = request.stream.read(MAX_BODY_BYTES + 1)  # bounded, whatever Content-Length says
    if len(raw) > MAX_BODY_BYTES:
        return _error(f"the body is longer than {MAX_BODY_BYTES} bytes; send e.g. {_EXAMPLE}.", 400)
    try:
        command = parse_command(raw)
    except BadCommand as exc:
        return _error(str(exc), 400)
    try:
        reply = DeviceClient(site(current_app).socket_path).request(command)
    except DeviceOffline as exc:
        return _error(f"device offline: {exc}", 503)
    if not reply.get("ok"):
        return _error(str(reply.get("error") or "the device refused the command."), 409)
    return jsonify({"ok": True, "status": reply.get("status")}), 200
