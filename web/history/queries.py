"""What the history pages and the history API ask of the history file, shaped for templates,
JSON and CSV.

The web reads the daemon's SQLite file read-only (device.history.reader.History), one connection per
request, so it answers while the daemon writes and while the daemon is down. Times in the
file are epoch seconds; pages show them in the Pi's local time. Query values a visitor can get
wrong raise BadQuery, one sentence, which the views answer with 400.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime, timedelta
from typing import Any, overload

from flask import current_app, g

from device.config.model import Config
from device.core.events import EventKind, tell
from device.core.modes import EndReason
from device.core.program import profile_name
from device.errors import RetrotreadError
from device.history.reader import EventRow, History, SegmentRow, SessionRow
from web.formats import clock, distance, minutes
from web.site import site

PAGE_SIZE = 25  # sessions per page of /history, and the API's default limit
MAX_LIMIT = 200  # the most sessions one API call returns
MAX_NUMBER = 10**9  # bigger paging values are typing slips, and SQLite's integers end at 2**63
CHART_BUCKETS = 600  # points on a session's chart: about one per pixel of the widest chart
WEEKS_SHOWN = 8
MIN_GAP_S = 3.0  # samples further apart leave a gap in the line (the store's own rule)
MARKED_KINDS = (EventKind.OVERSPEED_WARNING, EventKind.ENFORCED_STOP, EventKind.START_REFUSED)

END_REASONS = {
    EndReason.BUTTON: "START held",
    EndReason.COMMAND: "ended from the dashboard",
    EndReason.PAUSE_TIMEOUT: "paused too long",
    EndReason.SHUTDOWN: "device stopped",
    EndReason.INTERRUPTED: "interrupted (power cut or crash)",
}


class BadQuery(RetrotreadError, ValueError):
    """A query value a visitor got wrong; str() is one sentence with the fix."""


def reader() -> History:
    """This request's read-only connection to the history file, opened on first use;
    StoreError, one sentence, when there is no usable file."""
    if "history_reader" not in g:
        g.history_reader = History(site(current_app).db_path)
    return g.history_reader


def close_reader(_exc: BaseException | None = None) -> None:
    found = g.pop("history_reader", None)
    if found is not None:
        found.close()


# --- query values ---


def whole_number(args: Mapping[str, str], key: str, *, default: int, lowest: int, highest: int,
                 hint: str) -> int:  # fmt: skip
    """`args[key]` as a whole number from `lowest` to `highest`, or `default` when absent."""
    text = args.get(key)
    if text is None:
        return default
    text = text.strip()
    value = int(text) if text.isascii() and text.isdigit() and len(text) <= 10 else None
    if value is None or not lowest <= value <= highest:
        raise BadQuery(f"{key} must be a whole number from {lowest} to {highest}, not "
                       f"{text[:20]!r}; {hint}.")  # fmt: skip
    return value


def page_number(args: Mapping[str, str]) -> int:
    return whole_number(args, "page", default=1, lowest=1, highest=MAX_NUMBER,
                        hint="page 1 holds the newest sessions")  # fmt: skip


def api_window(args: Mapping[str, str]) -> tuple[int, int]:
    """(limit, offset) from `?limit=&offset=` or `?limit=&page=`."""
    limit = whole_number(args, "limit", default=PAGE_SIZE, lowest=1, highest=MAX_LIMIT,
                         hint=f"ask for at most {MAX_LIMIT} sessions and page on")  # fmt: skip
    if "offset" in args and "page" in args:
        raise BadQuery("Give offset or page, not both; page N starts at offset (N - 1) x limit.")
    if "page" in args:
        return limit, (page_number(args) - 1) * limit
    offset = whole_number(args, "offset", default=0, lowest=0, highest=MAX_NUMBER,
                          hint="it counts the newest sessions to skip")  # fmt: skip
    return limit, offset


# --- sessions ---


@overload
def local(epoch: float) -> datetime: ...
@overload
def local(epoch: None) -> None: ...
@overload
def local(epoch: float | None) -> datetime | None: ...
def local(epoch: float | None) -> datetime | None:
    """Epoch seconds as the Pi's local time."""
    return None if epoch is None else datetime.fromtimestamp(epoch).astimezone()


def summary(row: SessionRow, enforced_stops: int) -> dict[str, Any]:
    """A session as the API gives it: times epoch seconds (and ISO 8601 in the Pi's local
    time), durations s, distances m, speeds km/h; kcal is an estimate (None: not estimated)."""
    started, ended = local(row.started_at), local(row.ended_at)
    return {
        "id": row.id,
        "started_at": row.started_at,
        "started_local": started.isoformat(timespec="seconds"),
        "ended_at": row.ended_at,
        "ended_local": ended and ended.isoformat(timespec="seconds"),
        "end_reason": row.end_reason and row.end_reason.value,
        "active_s": row.active_s,
        "backward_s": row.backward_s,
        "forward_s": row.forward_s,
        "distance_m": row.distance_m,
        "backward_distance_m": row.backward_distance_m,
        "top_speed_kmh": row.top_speed_kmh,
        "kcal": row.kcal,
        "kcal_is_estimate": True,
        "enforced_stops": enforced_stops,
        "profile": row.profile,
        "level": row.level,
        "machine_id": row.machine_id,
        "last_sample_at": row.last_sample_at,
    }


def summaries(rows: list[SessionRow]) -> list[dict[str, Any]]:
    stops = reader().enforced_stops(row.id for row in rows)
    return [summary(row, stops.get(row.id, 0)) for row in rows]


def shown(session: dict[str, Any]) -> dict[str, str]:
    """A summary's figures as the pages print them."""
    kcal = session["kcal"]
    reason = session["end_reason"]
    return {
        "when": f"{local(session['started_at']):%a %d %b %Y %H:%M}",
        "active": minutes(session["active_s"]),
        "backward": minutes(session["backward_s"]),
        "forward": minutes(session["forward_s"]),
        "distance": distance(session["distance_m"]),
        "kcal": "–" if kcal is None else f"≈ {kcal:.0f}",
        "top_speed": f"{session['top_speed_kmh']:.1f}",
        "stops": str(session["enforced_stops"]),
        "end": "in progress" if session["ended_at"] is None else end_reason(reason),
    }


def end_reason(reason: str | None) -> str:
    """The reason in words; one this web does not know (a newer daemon's), or none, as it is."""
    try:
        known = EndReason(reason) if reason is not None else None
    except ValueError:
        known = None
    return str(reason) if known is None else END_REASONS[known]


# --- the weekly chart ---


def monday_of(epoch: float) -> date:
    """The Monday of the Pi's local week `epoch` falls in."""
    day = datetime.fromtimestamp(epoch).date()
    return day - timedelta(days=day.weekday())


def week_target_min(config: Config) -> float:
    """The program's backward minutes a week: sessions_per_week x session_min_s."""
    return config.program.sessions_per_week * config.program.session_min_s / 60


def weeks_since(now_epoch: float, weeks: int = WEEKS_SHOWN) -> float:
    """Epoch seconds of local midnight on the first Monday the weekly chart shows."""
    first = monday_of(now_epoch) - timedelta(weeks=weeks - 1)
    return datetime(first.year, first.month, first.day).timestamp()


def weekly_minutes(sessions: Iterable[tuple[float, float]], *, now_epoch: float,
                   weeks: int = WEEKS_SHOWN) -> list[dict[str, Any]]:  # fmt: skip
    """Backward minutes per local calendar week (Monday first), oldest week first, the last
    `weeks` up to the one holding `now_epoch`; `sessions` are (started_at, backward_s)."""
    this_week = monday_of(now_epoch)
    totals = {this_week - timedelta(weeks=k): 0.0 for k in reversed(range(weeks))}
    for started_at, backward_s in sessions:
        week = monday_of(started_at)
        if week in totals:
            totals[week] += backward_s / 60
    return [{"week_of": week.isoformat(), "label": f"{week.day} {week:%b}",
             "backward_min": round(total, 1)} for week, total in totals.items()]  # fmt: skip


def weekly_chart(config: Config, *, now_epoch: float) -> dict[str, Any]:
    """The weekly chart's data: this treadmill's profile's ended sessions of the last weeks
    against the program's target."""
    profile = profile_name(config)
    rows = reader().session_summaries(profile, weeks_since(now_epoch))
    weeks = weekly_minutes(((s.started_at, s.backward_s) for s in rows), now_epoch=now_epoch)
    program = config.program
    return {
        "weeks": weeks,
        "target_min": round(week_target_min(config), 1),
        "sessions_per_week": program.sessions_per_week,
        "session_min": round(program.session_min_s / 60, 1),
        "profile": profile,
    }


# --- one session ---


def session_end(row: SessionRow) -> float:
    """The last moment the session has data for (an open one: its newest flushed sample)."""
    return max(row.ended_at or row.started_at, row.last_sample_at or row.started_at)


def session_chart(
    row: SessionRow, segments: list[SegmentRow], events: list[EventRow]
) -> dict[str, Any]:
    """Speed and cap over time for the session page, at most CHART_BUCKETS points of
    [seconds from start, lowest km/h, highest km/h, cap km/h] whatever the session's length,
    with its forward/backward bands and the moments of its warnings and stops."""
    start, end = row.started_at, session_end(row)
    bucket_s = max(1.0, (end - start) / CHART_BUCKETS)
    points = [
        [round(t - start, 1), _kmh(low), _kmh(high), _kmh(cap)]
        for t, low, high, cap in reader().sample_envelope(row.id, start=start, bucket_s=bucket_s)
    ]
    bands = [[seg.mode.value, round(seg.started_at - start, 1),
              round((seg.ended_at or end) - start, 1)] for seg in segments]  # fmt: skip
    marks = [[round(e.t - start, 1), e.kind.value] for e in events if e.kind in MARKED_KINDS]
    return {
        "duration_s": round(end - start, 1),
        "bucket_s": round(bucket_s, 3),
        "gap_s": max(MIN_GAP_S, 2.5 * bucket_s),
        "points": points,
        "bands": bands,
        "marks": marks,
    }


def _kmh(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def sentence(kind: EventKind, details: Mapping[str, Any]) -> str:
    """The event as a sentence of the session's story (device.core.events.STORY)."""
    story = tell(kind, dict(details))
    return story[:1].upper() + story[1:] + "."


def timeline(events: list[EventRow], start: float) -> list[dict[str, Any]]:
    """The session's events for the page and the API: when, what, and the sentence."""
    return [
        {
            "t": e.t,
            "local": f"{local(e.t):%H:%M:%S}",
            "elapsed": clock(e.t - start),
            "kind": e.kind.value,
            "sentence": sentence(e.kind, e.details),
            "details": e.details,
        }
        for e in events
    ]


def segment_list(segments: list[SegmentRow], row: SessionRow) -> list[dict[str, Any]]:
    end = session_end(row)
    return [
        {
            "mode": seg.mode.value,
            "started_at": seg.started_at,
            "ended_at": seg.ended_at,
            "from": clock(seg.started_at - row.started_at),
            "to": clock((seg.ended_at or end) - row.started_at),
            "minutes": minutes((seg.ended_at or end) - seg.started_at),
            "distance_m": seg.distance_m,
            "distance": distance(seg.distance_m),
        }
        for seg in segments
    ]
