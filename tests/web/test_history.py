"""The history pages and API, on a real history file the daemon's own Store wrote, through the
real app with no daemon running (conftest's make_app without fake_device: the socket is not
there)."""

from __future__ import annotations

import csv
import io
import json
import re
import sqlite3
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from device.config.model import Config, ProgramConfig
from device.core.events import EventKind
from device.core.modes import EndReason, Mode, SessionState
from device.core.session import Totals
from device.core.tick import Sample
from device.history import reader as history
from device.history.store import Store
from web.history.api import SAMPLE_COLUMNS, SESSION_COLUMNS
from web.history.queries import CHART_BUCKETS, weekly_minutes

T0 = 1_760_000_000.0  # an afternoon in October 2025, epoch seconds
DAY = 86400.0
WARNING = {"speed_kmh": 2.9, "cap_kmh": 2.0, "grace_s": 5.0, "reason": "3 s mean over the cap"}
STOP = {"speed_kmh": 2.9, "cap_kmh": 2.0, "reason": "still over after 5 s", "action": "relay",
        "mode": "pulse"}  # fmt: skip


def walk(store: Store, start: float, *, backward_s: int = 60, forward_s: int = 0,
         stops: int = 0, kcal: float | None = 12.0, kmh: float = 2.0,
         reason: EndReason | None = EndReason.BUTTON) -> int:  # fmt: skip
    """One session as the daemon records it: 1 Hz samples, a turn to forward after the
    backward part, `stops` warnings each followed by an enforced stop; left open when
    `reason` is None."""
    sid = store.open_session(start, mode=Mode.BACKWARD, machine_id="treadmill-1")
    for i in range(backward_s):
        store.add_sample(sid, Sample(start + i, kmh, Mode.BACKWARD, SessionState.RUNNING, 2.0))
        store.maybe_flush(start + i)
    for k in range(stops):
        store.add_event(start + 10 * k + 1, EventKind.OVERSPEED_WARNING, WARNING, session_id=sid)
        store.add_event(start + 10 * k + 6, EventKind.ENFORCED_STOP, STOP, session_id=sid)
    if forward_s:
        store.start_segment(sid, start + backward_s, Mode.FORWARD)
        for i in range(backward_s, backward_s + forward_s):
            store.add_sample(sid, Sample(start + i, kmh, Mode.FORWARD, SessionState.RUNNING, None))
            store.maybe_flush(start + i)
    totals = Totals(backward_s=float(backward_s), forward_s=float(forward_s),
                    distance_m=(backward_s + forward_s) * kmh / 3.6, top_speed_kmh=kmh,
                    kcal=kcal)  # fmt: skip
    if reason is None:
        store.update_totals(sid, totals)
        store.flush()
    else:
        store.end_session(sid, start + backward_s + forward_s, reason, totals)
    return sid


@pytest.fixture
def client(make_app: Callable[..., Flask]) -> FlaskClient:
    """The dashboard with the daemon down: no socket at the configured path."""
    return make_app().test_client()


def session_links(html: str) -> list[int]:
    return [int(sid) for sid in re.findall(r'href="/sessions/(\d+)"', html)]


def embedded(html: str, element_id: str) -> dict:
    found = re.search(rf'<script type="application/json" id="{element_id}">(.*?)</script>', html,
                      re.S)  # fmt: skip
    assert found, f"no {element_id} in the page"
    return json.loads(found.group(1))


def csv_rows(body: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(body.decode())))


def test_history_lists_sessions_newest_first_25_to_a_page(db_path: str, client) -> None:
    with Store(db_path) as store:
        ids = [walk(store, T0 + n * DAY, backward_s=5) for n in range(30)]
    newest_first = ids[::-1]

    first = client.get("/history")
    assert first.status_code == 200
    html = first.get_data(as_text=True)
    assert session_links(html) == newest_first[:25]
    assert "30 sessions" in html and "Page 1 of 2" in html
    assert 'rel="next" href="/history?page=2"' in html and 'rel="prev"' not in html

    second = client.get("/history?page=2").get_data(as_text=True)
    assert session_links(second) == newest_first[25:]
    assert 'rel="prev" href="/history?page=1"' in second and 'rel="next"' not in second


def test_page_past_the_last_one_goes_to_the_last_page(db_path: str, client) -> None:
    with Store(db_path) as store:
        walk(store, T0, backward_s=5)
    response = client.get("/history?page=7")
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/history?page=1")


@pytest.mark.parametrize("page", ["abc", "0", "-1", "1.5", "", "99999999999"])
def test_page_number_that_is_not_a_page_answers_400_with_a_sentence(client, page: str) -> None:
    response = client.get(f"/history?page={page}")
    assert response.status_code == 400
    assert "page must be a whole number from 1" in response.get_data(as_text=True)


def test_row_shows_minutes_distance_kcal_estimate_top_speed_and_end(db_path: str, client) -> None:
    with Store(db_path) as store:
        sid = walk(store, T0, backward_s=600, forward_s=300, kmh=3.2, kcal=56.4,
                   reason=EndReason.PAUSE_TIMEOUT)  # fmt: skip
    html = client.get("/history").get_data(as_text=True)
    row = re.search(rf'<tr>\s*<td data-label="When"><a href="/sessions/{sid}".*?</tr>', html, re.S)
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row.group(0), re.S)
    when = datetime.fromtimestamp(T0).strftime("%a %d %b %Y %H:%M")  # the Pi's local time
    assert when in cells[0]
    assert cells[1:] == ["15.0", "10.0", "5.0", "800 m", "≈ 56", "3.2", "0", "paused too long"]
    assert "est.</abbr>" in html  # kcal is marked as an estimate


def test_enforced_stops_are_counted_per_session(db_path: str, client) -> None:
    with Store(db_path) as store:
        calm = walk(store, T0, stops=0)
        once = walk(store, T0 + DAY, stops=1)
        thrice = walk(store, T0 + 2 * DAY, stops=3)
        store.add_event(T0 + 2 * DAY + 50, EventKind.NOT_ENFORCED, STOP, session_id=calm)
    sessions = client.get("/api/sessions").get_json()["sessions"]
    assert {s["id"]: s["enforced_stops"] for s in sessions} == {calm: 0, once: 1, thrice: 3}

    html = client.get("/history").get_data(as_text=True)
    stops = re.findall(r'<td data-label="Enforced stops">(\d+)</td>', html)
    assert stops == ["3", "1", "0"]


def test_weekly_minutes_add_up_backward_time_per_local_week() -> None:
    wednesday = datetime(2025, 10, 15, 12, 0).timestamp()  # local time, as the Pi reads it
    sessions = [
        (datetime(2025, 10, 13, 0, 30).timestamp(), 600.0),  # this Monday, just after midnight
        (datetime(2025, 10, 15, 9, 0).timestamp(), 300.0),
        (datetime(2025, 10, 12, 23, 30).timestamp(), 1200.0),  # last week's Sunday night
        (datetime(2025, 8, 25, 8, 0).timestamp(), 60.0),  # the first of the 8 weeks shown
        (datetime(2025, 8, 24, 8, 0).timestamp(), 6000.0),  # one day too old to show
    ]
    weeks = weekly_minutes(sessions, now_epoch=wednesday)
    assert (weeks[0]["week_of"], weeks[-1]["week_of"]) == ("2025-08-25", "2025-10-13")
    assert [w["backward_min"] for w in weeks] == [1.0, 0, 0, 0, 0, 0, 20.0, 15.0]


def test_weekly_chart_shows_minutes_against_the_program_target(
    db_path: str, make_app: Callable[..., Flask]
) -> None:
    now = datetime.now().timestamp()
    with Store(db_path) as store:
        walk(store, now - 3 * DAY, backward_s=600, forward_s=120)
        walk(store, now - 10 * DAY, backward_s=900)
        walk(store, now - 400 * DAY, backward_s=3000)  # long before the chart's 8 weeks
    program = ProgramConfig(sessions_per_week=3, session_min_s=900.0)
    html = make_app(Config(program=program)).test_client().get("/history").get_data(as_text=True)
    chart = embedded(html, "weeks-data")
    assert chart["target_min"] == 45.0  # 3 sessions x 15 minutes
    assert len(chart["weeks"]) == 8
    assert sum(week["backward_min"] for week in chart["weeks"]) == 25.0  # forward not counted
    assert "Target 45.0 min a week" in html


def test_session_page_shows_chart_segments_and_the_story(db_path: str, client) -> None:
    with Store(db_path) as store:
        sid = walk(store, T0, backward_s=120, forward_s=60, stops=1)
    response = client.get(f"/sessions/{sid}")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    chart = embedded(html, "session-data")
    assert len(chart["points"]) == 180  # a 3-minute session: one point a second
    assert chart["points"][0] == [0.0, 2.0, 2.0, 2.0]
    assert chart["points"][-1] == [179.0, 2.0, 2.0, None]  # no cap facing forward
    assert chart["bands"] == [["backward", 0.0, 120.0], ["forward", 120.0, 180.0]]
    assert chart["marks"] == [[1.0, "overspeed_warning"], [6.0, "enforced_stop"]]
    assert ("Enforced stop (still over after 5 s): the relay cut the safety-key loop (pulse) "
            "at 2.9 km/h against the 2.0 km/h cap.") in html  # fmt: skip
    assert "Warning (3 s mean over the cap): 2.9 km/h against the 2.0 km/h cap" in html
    assert f"{datetime.fromtimestamp(T0 + 6):%H:%M:%S}</time>" in html
    assert "0:00–2:00" in html and "2:00–3:00" in html  # the two segments


def test_hours_of_samples_are_drawn_as_a_min_max_envelope(db_path: str, client) -> None:
    with Store(db_path) as store:
        sid = store.open_session(T0, mode=Mode.BACKWARD, machine_id="treadmill-1")
        for i in range(3 * 3600):
            kmh = 4.4 if i == 5000 else 1.5 + (i % 10) / 10  # one spike among 10,800 samples
            store.add_sample(sid, Sample(T0 + i, kmh, Mode.BACKWARD, SessionState.RUNNING, 3.0))
            store.maybe_flush(T0 + i)  # every tick, as the daemon does
        store.end_session(sid, T0 + 3 * 3600, EndReason.BUTTON, Totals(backward_s=3 * 3600.0))
    chart = embedded(client.get(f"/sessions/{sid}").get_data(as_text=True), "session-data")
    assert len(chart["points"]) == CHART_BUCKETS
    assert chart["bucket_s"] == 18.0
    assert max(p[2] for p in chart["points"]) == 4.4  # the spike survives the downsampling
    assert {p[1] for p in chart["points"]} == {1.5}


def test_unknown_session_is_a_404_page_and_a_404_json(client) -> None:
    page = client.get("/sessions/999")
    assert page.status_code == 404
    assert "There is no session 999" in page.get_data(as_text=True)
    for url in ("/api/sessions/999", "/api/sessions/999/samples.csv"):
        response = client.get(url)
        assert response.status_code == 404
        assert response.get_json() == {
            "ok": False,  # the API's one error shape
            "error": "There is no session 999; GET /api/sessions lists them.",
        }


def test_an_id_past_what_sqlite_can_hold_is_no_session_not_a_crash(client) -> None:
    # 2**63 overflowed SQLite's integer binding: a 500 from a typo'd or hostile URL
    for url in ("/sessions/", "/api/sessions/"):
        assert client.get(f"{url}{2**63}").status_code == 404
        assert client.get(f"{url}{2**63 - 1}").status_code == 404  # the largest, none there
    assert client.get(f"/api/sessions/{2**64}/samples.csv").status_code == 404


def test_api_pages_through_sessions_newest_first(db_path: str, client) -> None:
    with Store(db_path) as store:
        ids = [walk(store, T0 + n * DAY, backward_s=3) for n in range(12)]
    body = client.get("/api/sessions?limit=5&offset=5").get_json()
    assert (body["total"], body["limit"], body["offset"]) == (12, 5, 5)
    assert [s["id"] for s in body["sessions"]] == ids[::-1][5:10]
    by_page = client.get("/api/sessions?limit=5&page=3").get_json()
    assert [s["id"] for s in by_page["sessions"]] == ids[::-1][10:]
    assert by_page["offset"] == 10
    default = client.get("/api/sessions").get_json()
    assert (default["limit"], default["offset"], len(default["sessions"])) == (25, 0, 12)
    first = default["sessions"][0]
    assert first["started_at"] == T0 + 11 * DAY and first["active_s"] == 3.0
    assert first["kcal_is_estimate"] is True and first["end_reason"] == "button"


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("limit=abc", "limit must be a whole number from 1 to 200, not 'abc'"),
        ("limit=0", "limit must be a whole number from 1 to 200"),
        ("limit=201", "limit must be a whole number from 1 to 200"),
        ("limit=100000", "limit must be a whole number from 1 to 200, not '100000'"),
        ("limit=1.5", "limit must be a whole number"),
        ("limit=", "limit must be a whole number"),
        ("offset=-1", "offset must be a whole number from 0"),
        ("offset=abc", "offset must be a whole number from 0"),
        ("offset=99999999999999999999", "offset must be a whole number from 0"),
        ("page=0", "page must be a whole number from 1"),
        ("page=x", "page must be a whole number from 1"),
        ("page=2&offset=10", "Give offset or page, not both"),
    ],
)
def test_api_refuses_a_bad_query_value_with_a_sentence(client, query: str, says: str) -> None:
    response = client.get(f"/api/sessions?{query}")
    assert response.status_code == 400
    assert response.get_json()["ok"] is False
    error = response.get_json()["error"]
    assert error.startswith(says)
    assert error.endswith(".") and "\n" not in error


def test_api_session_carries_segments_samples_and_events(db_path: str, client) -> None:
    with Store(db_path) as store:
        sid = walk(store, T0, backward_s=4, forward_s=2, stops=1)
    body = client.get(f"/api/sessions/{sid}").get_json()
    assert body["id"] == sid and body["enforced_stops"] == 1
    assert [(s["mode"], s["started_at"], s["ended_at"]) for s in body["segments"]] == [
        ("backward", T0, T0 + 4), ("forward", T0 + 4, T0 + 6)]  # fmt: skip
    samples = body["samples"]
    assert samples["t"] == [T0 + i for i in range(6)]
    assert samples["cap_kmh"] == [2.0] * 4 + [None] * 2
    assert samples["mode"] == ["backward"] * 4 + ["forward"] * 2
    assert set(samples) == {"t", "speed_kmh", "cap_kmh", "mode", "state"}
    kinds = [e["kind"] for e in body["events"]]
    assert kinds == ["overspeed_warning", "enforced_stop"]
    assert body["events"][1]["details"] == STOP
    assert body["events"][1]["sentence"].startswith("Enforced stop (still over after 5 s)")


def test_sessions_csv_is_every_session_as_an_attachment(db_path: str, client) -> None:
    with Store(db_path) as store:
        ids = [walk(store, T0 + n * DAY, backward_s=60, forward_s=30, stops=n % 2)
               for n in range(3)]  # fmt: skip
    response = client.get("/api/sessions.csv")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"] == (
        'attachment; filename="retrotread-treadmill-1-sessions.csv"'
    )
    header, *rows = csv_rows(response.get_data())
    assert tuple(header) == SESSION_COLUMNS
    by_column = [dict(zip(header, row, strict=True)) for row in rows]
    assert [int(r["id"]) for r in by_column] == ids[::-1]
    newest = by_column[0]
    assert newest["started_local"] == f"{datetime.fromtimestamp(T0 + 2 * DAY):%Y-%m-%d %H:%M:%S}"
    assert (newest["active_min"], newest["backward_min"], newest["forward_min"]) == (
        "1.5", "1.0", "0.5")  # fmt: skip
    assert [r["enforced_stops"] for r in by_column] == ["0", "1", "0"]
    assert newest["end_reason"] == "button" and newest["kcal_estimate"] == "12.0"


def test_samples_csv_is_one_session_second_by_second(db_path: str, client) -> None:
    with Store(db_path) as store:
        walk(store, T0 - DAY, backward_s=9)
        sid = walk(store, T0, backward_s=3, forward_s=2)
    response = client.get(f"/api/sessions/{sid}/samples.csv")
    assert response.headers["Content-Disposition"] == (
        f'attachment; filename="retrotread-session-{sid}-samples.csv"'
    )
    header, *rows = csv_rows(response.get_data())
    assert tuple(header) == SAMPLE_COLUMNS
    assert [row[1:] for row in rows] == [
        ["0.0", "2.0", "2.0", "backward", "running"],
        ["1.0", "2.0", "2.0", "backward", "running"],
        ["2.0", "2.0", "2.0", "backward", "running"],
        ["3.0", "2.0", "", "forward", "running"],
        ["4.0", "2.0", "", "forward", "running"],
    ]
    assert float(rows[0][0]) == T0


def test_empty_history_shows_a_friendly_empty_state(client) -> None:
    page = client.get("/history")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "No sessions yet" in html and "Press START" in html
    assert 'id="weeks-data"' not in html
    assert client.get("/api/sessions").get_json() == {
        "sessions": [], "total": 0, "limit": 25, "offset": 0}  # fmt: skip
    assert csv_rows(client.get("/api/sessions.csv").get_data()) == [list(SESSION_COLUMNS)]


def test_no_history_file_yet_answers_503_with_the_fix(
    tmp_path: Path, make_app: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch
) -> None:
    client = make_app().test_client()
    missing = tmp_path / "never-written.db"
    monkeypatch.setattr(client.application.extensions["retrotread"], "db_path", str(missing))
    page = client.get("/history")
    assert page.status_code == 503
    assert f"There is no history database at {missing} yet" in page.get_data(as_text=True)
    api = client.get("/api/sessions")
    assert api.status_code == 503
    assert api.get_json()["ok"] is False
    assert api.get_json()["error"].endswith("start retrotread-device once to create it, "
                                            "or set db in the [storage] table of the config "
                                            "to another path.")  # fmt: skip


def test_history_reads_while_the_daemon_writes(db_path: str, client) -> None:
    store = Store(db_path)  # the daemon's writer, left open as the daemon leaves it
    try:
        sid = walk(store, T0, backward_s=30, reason=None)  # a session still being walked
        writer = sqlite3.connect(db_path, isolation_level=None)
        writer.execute("BEGIN IMMEDIATE")  # a flush half done: the write lock is held
        writer.execute(
            "INSERT INTO samples (session_id, t, speed_kmh, mode, state)"
            " VALUES (?, ?, 9.9, 'backward', 'running')",
            (sid, T0 + 30),
        )
        page = client.get("/history")
        assert page.status_code == 200
        assert "in progress" in page.get_data(as_text=True)
        body = client.get(f"/api/sessions/{sid}").get_json()
        assert len(body["samples"]["t"]) == 30  # the unfinished flush is not seen
        assert body["ended_at"] is None
        writer.execute("COMMIT")
        writer.close()
        assert len(client.get(f"/api/sessions/{sid}").get_json()["samples"]["t"]) == 31
    finally:
        store.close()


def test_history_needs_no_daemon(db_path: str, client, socket_dir: Path) -> None:
    with Store(db_path) as store:
        sid = walk(store, T0)
    assert not (socket_dir / "device.sock").exists()  # the daemon is down
    for url in ("/history", f"/sessions/{sid}", "/api/sessions", f"/api/sessions/{sid}",
                "/api/sessions.csv", f"/api/sessions/{sid}/samples.csv"):  # fmt: skip
        assert client.get(url).status_code == 200, url


def plan(db: sqlite3.Connection, sql: str, *args: object) -> str:
    return " | ".join(row[3] for row in db.execute(f"EXPLAIN QUERY PLAN {sql}", args))


def test_history_queries_walk_indexes_not_whole_tables(db_path: str) -> None:
    with sqlite3.connect(db_path) as db:
        page = plan(db, history.SESSIONS_PAGE, 25, 9975)
        assert "USING INDEX sessions_by_start" in page and "TEMP B-TREE" not in page
        assert "USING INDEX sessions_by_profile" in plan(db, history.PROFILE_PAGE, "guest", 25, 0)
        assert "COVERING INDEX" in plan(db, history.SESSION_COUNT)
        assert "COVERING INDEX" in plan(db, history.PROFILE_COUNT, "guest")
        stops = plan(db, history.ENFORCED_STOPS, "[1, 2]", "enforced_stop")
        assert "SEARCH events USING INDEX events_by_session (session_id=?)" in stops
        for samples in (
            plan(db, history.SAMPLE_ROWS, 1),
            plan(db, history.SAMPLE_ENVELOPE, 1, T0, 1.0),
        ):
            assert "SEARCH samples USING INDEX samples_by_session (session_id=?)" in samples
            assert "SCAN samples" not in samples
