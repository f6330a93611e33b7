"""The history pages: `/history`, the sessions newest first with the weekly chart, and
`/sessions/<id>`, one session's chart, segments and events.

Paging: `?page=N`, PAGE_SIZE sessions a page, page 1 the newest. A page that is not a whole
number from 1 up answers 400 with a sentence; a page past the last one redirects to the last
(the nearest page that exists), so an old bookmark still lands on the oldest sessions.
"""

from __future__ import annotations

import time

from flask import current_app, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from web.history.queries import (
    PAGE_SIZE,
    BadQuery,
    page_number,
    reader,
    segment_list,
    session_chart,
    shown,
    summaries,
    timeline,
    weekly_chart,
)
from web.site import site


def page() -> ResponseReturnValue:
    try:
        number = page_number(request.args)
    except BadQuery as exc:
        return render_template("history.html", problem=str(exc)), 400
    history = reader()
    total = history.session_count()
    last = max(1, -(-total // PAGE_SIZE))
    if number > last:
        return redirect(url_for("history.page", page=last))
    sessions = summaries(history.sessions(PAGE_SIZE, (number - 1) * PAGE_SIZE))
    chart = weekly_chart(site(current_app).config, now_epoch=time.time()) if total else None
    return render_template(
        "history.html",
        rows=[(s, shown(s)) for s in sessions],
        total=total,
        page=number,
        last=last,
        first_shown=(number - 1) * PAGE_SIZE + 1,
        weeks=chart,
    )


def session_page(session_id: int) -> ResponseReturnValue:
    history = reader()
    row = history.session(session_id)
    if row is None:
        return render_template("session.html", session=None, session_id=session_id), 404
    (session,) = summaries([row])
    segments = history.segments(session_id)
    events = history.events(session_id)
    return render_template(
        "session.html",
        session=session,
        shown=shown(session),
        chart=session_chart(row, segments, events),
        segments=segment_list(segments, row),
        events=timeline(events, row.started_at),
    )
