"""`GET /healthz` for systemd, a load balancer or a person with curl: is the dashboard able to
do its job? It is when the history file opens; the daemon being down is reported, not failed,
because the dashboard still serves history then.

The body carries the API's error shape beside its own fields: {"ok": true, "device", "db"},
or 503 {"ok": false, "error": sentence, "device", "db": "error"}."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify

from device.history.reader import History
from device.history.schema import StoreError
from web.hub import hub_for
from web.site import site

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> tuple[Response, int]:
    device = "online" if hub_for(current_app).online else "offline"
    try:
        # opening checks the file, its schema version and that SQLite can read it
        History(site(current_app).db_path).close()
    except StoreError as exc:
        reply = jsonify(ok=False, device=device, db="error", error=str(exc))
        code = 503
    else:
        reply, code = jsonify(ok=True, device=device, db="ok"), 200
    reply.headers["Cache-Control"] = "no-store"
    return reply, code
