"""The history part of the dashboard, blueprint `history`: the pages in web.history.views, the
JSON, CSV and FIT API in web.history.api, the reads in web.history.queries.

Everything here reads the SQLite file the daemon writes, read-only, and never the daemon's
socket: history answers the same whether the daemon runs or not. While there is no usable
history file (the daemon never started, or its schema is newer or older than this web's),
pages and API answer 503 with the one sentence device.history.reader gives (the API in its
one error shape, {"ok": false, "error": sentence}).
"""

from __future__ import annotations

from flask import Blueprint, render_template, request
from flask.typing import ResponseReturnValue

from device.history.reader import StoreError
from web.history import api as history_api
from web.history import views as history_views
from web.history.queries import close_reader
from web.protect import problem

bp = Blueprint("history", __name__)
# SQLite's ids are signed 64-bit: a larger one in a URL is no session (404), not an
# OverflowError (500)
SESSION_ID = "<int(max=9223372036854775807):session_id>"

bp.add_url_rule("/history", "page", history_views.page)
bp.add_url_rule(f"/sessions/{SESSION_ID}", "session_page", history_views.session_page)
bp.add_url_rule(f"/sessions/{SESSION_ID}.fit", "session_fit", history_api.session_fit)
bp.add_url_rule("/api/sessions", "api_sessions", history_api.sessions)
bp.add_url_rule("/api/sessions.csv", "sessions_csv", history_api.sessions_csv)
bp.add_url_rule(f"/api/sessions/{SESSION_ID}", "api_session", history_api.session)
bp.add_url_rule(f"/api/sessions/{SESSION_ID}/samples.csv", "samples_csv", history_api.samples_csv)
bp.add_url_rule(f"/api/sessions/{SESSION_ID}.fit", "api_session_fit", history_api.session_fit)
bp.teardown_app_request(close_reader)


@bp.errorhandler(StoreError)
def no_history(exc: StoreError) -> ResponseReturnValue:
    if request.path.startswith("/api/"):
        return problem(str(exc), 503)  # {"ok": false, "error": sentence}, as every API error
    return render_template("history.html", problem=str(exc)), 503
