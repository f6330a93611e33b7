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

from flask import Blueprint, current_app, jsonify, request
from flask.typing import ResponseReturnValue

from device.ipc.client import DeviceClient, DeviceOffline
from device.ipc.protocol import Command, Request, RequestError, Spelling, request_from
from web.auth import login_required_for_controls
from web.protect import Refused
from web.site import site

bp = Blueprint("control", __name__)

# The protocol's commands the dashboard's buttons send, spelt {"action": ...}: never status,
# subscribe or reload (the settings page reloads through its own route).
ACTIONS = Spelling(
    key="action",
    noun="body",
    listed="actions",
    commands=(Command.START, Command.PAUSE, Command.RESUME, Command.END, Command.MODE),
    names_wrong_type=False,
    says_whose_keys=False,
)
# the longest valid body is about 40 bytes; anything near this is not our page talking
MAX_BODY_BYTES = 1024

_EXAMPLE = '{"action": "start"}'


def parse_body(raw: bytes) -> Request:
    """Turn a request body into the daemon's Request; raise RequestError naming what is
    wrong and what is allowed (the protocol's own checks, in the dashboard's words)."""
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        raise RequestError(f"the body is not valid JSON; send e.g. {_EXAMPLE}.") from None
    if not isinstance(body, dict):
        raise RequestError(f"the body must be a JSON object such as {_EXAMPLE}.")
    return request_from(body, ACTIONS)


@bp.post("/api/control")
@login_required_for_controls
def control() -> ResponseReturnValue:
    if not request.is_json:
        raise Refused(
            f"send the command as JSON (Content-Type: application/json), e.g. {_EXAMPLE}.", 400
        )
    raw = request.stream.read(MAX_BODY_BYTES + 1)  # bounded, whatever Content-Length says
    if len(raw) > MAX_BODY_BYTES:
        raise Refused(f"the body is longer than {MAX_BODY_BYTES} bytes; send e.g. {_EXAMPLE}.", 400)
    try:
        command = parse_body(raw)
    except RequestError as exc:
        raise Refused(str(exc), 400) from None
    try:
        reply = DeviceClient(site(current_app).socket_path).request(command.message())
    except DeviceOffline as exc:
        raise Refused(f"device offline: {exc}", 503) from None
    if not reply.get("ok"):
        raise Refused(str(reply.get("error") or "the device refused the command."), 409)
    return jsonify({"ok": True, "status": reply.get("status")}), 200
