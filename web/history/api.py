"""The history as JSON, CSV and FIT.

    GET /api/sessions?limit=25&offset=0      (or &page=N; &profile=NAME filters)
        {"sessions": [summary, ...], "total", "limit", "offset"}, newest first
    GET /api/sessions/<id>
        summary + "segments", "samples" (columns: t, speed_kmh, cap_kmh, mode, state) and
        "events" (with a "sentence" each) and "fit_url"; 404 for an unknown id
    GET /api/sessions.csv                    every session, streamed, with a header row
    GET /api/sessions/<id>/samples.csv       one session's 1 Hz samples
    GET /api/sessions/<id>.fit               one session as a FIT activity file (also at
                                             /sessions/<id>.fit); 409 while it runs

A summary's times are epoch seconds (and ISO 8601 in the Pi's local time), durations s,
distances m, speeds km/h, kcal an estimate. Samples come as columns, not one object per
second: a session of hours has tens of thousands and columns are a third of the size.
Every error has the API's one shape, {"ok": false, "error": sentence} (web.protect.Refused):
400 for a bad query value, 404 for an unknown session, 409 for the FIT file of a session still
running, 503 while there is no history file.
"""

from __future__ import annotations

import csv
import io
import re
import time
from collections.abc import Iterator, Sequence
from itertools import islice
from typing import Any

from flask import Response, current_app, jsonify, request, stream_with_context, url_for
from flask.typing import ResponseReturnValue

from device.history.fit import SessionRunning, fit_filename, session_activity
from device.history.reader import SessionRow
from web.history.queries import (
    BadQuery,
    api_window,
    reader,
    summaries,
    timeline,
)
from web.protect import Refused
from web.site import site

SESSION_COLUMNS = ("id", "started_local", "started_at", "ended_local", "ended_at", "end_reason",
                   "active_min", "backward_min", "forward_min", "distance_m",
                   "backward_distance_m", "top_speed_kmh", "kcal_estimate", "enforced_stops",
                   "profile", "level", "machine_id")  # fmt: skip
SAMPLE_COLUMNS = ("t", "elapsed_s", "speed_kmh", "cap_kmh", "mode", "state")
CSV_BATCH = 1000  # rows per streamed chunk
FIT_MIMETYPE = "application/vnd.ant.fit"  # the media type registered for FIT files


def sessions() -> ResponseReturnValue:
    try:
        limit, offset = api_window(request.args)
    except BadQuery as exc:
        raise Refused(str(exc), 400) from None
    profile = request.args.get("profile")
    history = reader()
    rows = history.sessions(limit, offset, profile=profile)
    return jsonify(
        sessions=summaries(rows),
        total=history.session_count(profile=profile),
        limit=limit,
        offset=offset,
    )


def session(session_id: int) -> ResponseReturnValue:
    history = reader()
    row = history.session(session_id)
    if row is None:
        raise not_found(session_id)
    (found,) = summaries([row])
    columns: list[Sequence[Any]] = list(zip(*history.sample_rows(session_id), strict=True))
    columns = columns or [[]] * 5
    t, speed, cap, mode, state = (list(column) for column in columns)
    return jsonify(
        **found,
        segments=[
            {
                "mode": s.mode.value,
                "started_at": s.started_at,
                "ended_at": s.ended_at,
                "distance_m": s.distance_m,
            }
            for s in history.segments(session_id)
        ],
        samples={"t": t, "speed_kmh": speed, "cap_kmh": cap, "mode": mode, "state": state},
        events=[
            {key: event[key] for key in ("t", "kind", "sentence", "details")}
            for event in timeline(history.events(session_id), row.started_at)
        ],
        fit_url=url_for("history.api_session_fit", session_id=session_id),
    )


def session_fit(session_id: int) -> ResponseReturnValue:
    """The session as a FIT activity file, a download for Garmin Connect or Strava."""
    history = reader()
    row = history.session(session_id)
    if row is None:
        raise not_found(session_id)
    running_cap_kmh = site(current_app).config.backward.running_cap_kmh
    try:
        data = session_activity(history, row, running_cap_kmh=running_cap_kmh)
    except SessionRunning as exc:
        raise Refused(str(exc), 409) from None
    return Response(
        data,
        mimetype=FIT_MIMETYPE,
        headers={"Content-Disposition": f'attachment; filename="{fit_filename(row)}"'},
    )


def sessions_csv() -> ResponseReturnValue:
    reader()  # no history file: 503 now, before the first line goes out

    def lines() -> Iterator[list[tuple]]:
        history = reader()
        for batch in history.sessions_in_batches(CSV_BATCH):
            stops = history.enforced_stops(row.id for row in batch)
            yield [_session_line(row, stops.get(row.id, 0)) for row in batch]

    machine = re.sub(r"[^A-Za-z0-9_-]+", "-", site(current_app).config.machine.id)
    return _attachment(SESSION_COLUMNS, lines(), f"retrotread-{machine}-sessions.csv")


def samples_csv(session_id: int) -> ResponseReturnValue:
    history = reader()
    row = history.session(session_id)
    if row is None:
        raise not_found(session_id)
    start = row.started_at

    def lines() -> Iterator[list[tuple]]:
        samples = reader().sample_rows(session_id)
        while batch := list(islice(samples, CSV_BATCH)):
            yield [(t, round(t - start, 3), v, cap, m, s) for t, v, cap, m, s in batch]

    filename = f"retrotread-session-{session_id}-samples.csv"
    return _attachment(SAMPLE_COLUMNS, lines(), filename)


def not_found(session_id: int) -> Refused:
    return Refused(f"There is no session {session_id}; GET /api/sessions lists them.", 404)


def _session_line(row: SessionRow, stops: int) -> tuple:
    return (row.id, _stamp(row.started_at), row.started_at, _stamp(row.ended_at), row.ended_at,
            row.end_reason, round(row.active_s / 60, 2),
            round(row.backward_s / 60, 2), round(row.forward_s / 60, 2), round(row.distance_m, 1),
            round(row.backward_distance_m, 1), round(row.top_speed_kmh, 2),
            None if row.kcal is None else round(row.kcal, 1), stops, row.profile, row.level,
            row.machine_id)  # fmt: skip


def _stamp(epoch: float | None) -> str:
    """Epoch seconds as the Pi's local time, the way spreadsheets read dates."""
    return "" if epoch is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch))


def _attachment(header: tuple[str, ...], batches: Iterator[list[tuple]], filename: str) -> Response:
    """A CSV download streamed batch by batch, the header row riding with the first batch."""

    def chunks() -> Iterator[str]:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(header)
        for batch in batches:
            writer.writerows(batch)
            yield out.getvalue()
            out.seek(0)
            out.truncate()
        if out.tell():  # no rows at all: the header alone
            yield out.getvalue()

    # The view's request context ends before the first line is sent; stream_with_context
    # pushes it again around the lines, so reader() there opens the request's connection
    # afresh and the second teardown closes it after the last line.
    return Response(
        stream_with_context(chunks()),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
