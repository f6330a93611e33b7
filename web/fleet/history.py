"""History across every treadmill: the sessions, filterable by machine, profile and date, the
per-machine and per-profile weeks (backward minutes, enforced stops), and a CSV export.

Sessions name their walkers' profiles, so every route here needs the admin login of
web.auth (the fleet's own admin password, `retrotread set-password --state-dir` with the
fleet database's directory). [web] open_controls, meant for a home treadmill's buttons, opens
nothing here.

Called "history", as the device's history blueprint is, so the shared templates' links find it.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from functools import wraps
from typing import Any, TypeVar

from flask import Blueprint, Response, current_app, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from web.auth import logged_in
from web.fleet.store import FleetStore, SessionFilter
from web.formats import distance, minutes
from web.protect import Refused

bp = Blueprint("history", __name__)

View = TypeVar("View", bound=Callable[..., ResponseReturnValue])
CSV_COLUMNS = (
    "uuid", "site", "machine_id", "profile", "started_at", "ended_at", "end_reason", "level",
    "distance_m", "backward_s", "forward_s", "kcal", "enforced_stops",
)  # fmt: skip


def store() -> FleetStore:
    return current_app.extensions["retrotread_fleet_store"]


def login_required(view: View) -> View:
    @wraps(view)
    def guarded(*args: Any, **kwargs: Any) -> ResponseReturnValue:
        if logged_in():
            return view(*args, **kwargs)
        return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))

    return guarded  # type: ignore[return-value]


def _day(name: str) -> date | None:
    text = request.args.get(name, "").strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise Refused(
            f"{name} = {text[:20]!r} is not a date; write it like 2026-03-01.", 400
        ) from None


def chosen() -> SessionFilter:
    """The filter in the query string: machine, profile, from and to (days, both included)."""
    since, until = _day("from"), _day("to")
    return SessionFilter(
        machine_id=request.args.get("machine") or None,
        profile=request.args.get("profile") or None,
        since=datetime.combine(since, time()).timestamp() if since else None,
        until=datetime.combine(until + timedelta(days=1), time()).timestamp() if until else None,
    )


@bp.get("/sessions")
@login_required
def page() -> str:
    fleet = store()
    wanted = chosen()
    machines, profiles = fleet.choices()
    rows = [
        {
            "machine_id": s.machine_id,
            "profile": s.profile,
            "started": datetime.fromtimestamp(s.started_at).strftime("%Y-%m-%d %H:%M"),
            "minutes": minutes(s.ended_at - s.started_at),
            "backward_min": minutes(s.backward_s),
            "distance": distance(s.distance_m),
            "end_reason": s.end_reason,
            "level": "" if s.level is None else s.level,
            "enforced_stops": s.enforced_stops,
        }
        for s in fleet.sessions(wanted)
    ]
    return render_template(
        "fleet_sessions.html",
        rows=rows,
        by_machine=fleet.weeks(wanted, by="machine_id"),
        by_profile=fleet.weeks(wanted, by="profile"),
        machines=machines,
        profiles=profiles,
        args=request.args,
        csv_url=url_for("history.export") + _query(),
    )


@bp.get("/sessions.csv")
@login_required
def export() -> Response:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for s in store().sessions(chosen(), limit=1_000_000):
        writer.writerow([_cell(getattr(s, column)) for column in CSV_COLUMNS])
    response = Response(out.getvalue(), mimetype="text/csv")
    response.headers["Content-Disposition"] = 'attachment; filename="fleet-sessions.csv"'
    return response


def _query() -> str:
    query = request.query_string.decode("ascii", errors="replace")
    return "?" + query if query else ""


def _cell(value: Any) -> Any:
    # a profile is typed by people: never let a spreadsheet run it as a formula
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return "" if value is None else value
