"""A session as a FIT file from the dashboard: `/sessions/<id>.fit` and `/api/sessions/<id>.fit`
on a real history file, through the real app with no daemon running, the link on the session
page and the `fit_url` in the API; 404 for no such session, 409 while it runs, 503 with no
history file."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from support.fit_sessions import (
    T0,
    WALK_PAUSE_TURN,
    Stretch,
    close_to,
    read_both,
    record_walk,
    simulate_into,
)

from device.config.model import BackwardConfig, Config
from device.core.modes import Mode
from device.history.reader import History
from device.history.store import Store

ROUTES = ("/sessions/{}.fit", "/api/sessions/{}.fit")


@pytest.fixture
def client(make_app: Callable[..., Flask]) -> FlaskClient:
    return make_app().test_client()


@pytest.fixture
def walked(db_path: str) -> int:
    (session_id,) = simulate_into(db_path, WALK_PAUSE_TURN)
    return session_id


@pytest.fixture
def running(db_path: str, walked: int) -> int:
    with Store(db_path) as store:
        return record_walk(store, [Stretch(Mode.BACKWARD, 20)], start=T0 + 3600, ended=False)


@pytest.mark.parametrize("route", ROUTES)
def test_the_fit_file_downloads_and_both_readers_agree_with_the_history(
    db_path: str, walked: int, client: FlaskClient, route: str
) -> None:
    response = client.get(route.format(walked))
    assert response.status_code == 200
    assert response.mimetype == "application/vnd.ant.fit"
    disposition = response.headers["Content-Disposition"]
    assert re.fullmatch(
        rf'attachment; filename="retrotread-treadmill-1-{walked}-\d{{8}}-\d{{4}}\.fit"',
        disposition,
    )
    back = read_both(response.get_data())
    with History(db_path) as history:
        row = history.session(walked)
        assert row is not None and row.ended_at is not None
        records = len(list(history.sample_rows(walked)))
    for session in back.one("session"):
        assert (session["sport"], session["sub_sport"]) == ("walking", "treadmill")
        assert close_to(session["total_distance"], row.distance_m, floor=0.01)
        assert close_to(session["total_timer_time"], row.active_s, floor=0.001)
        assert close_to(session["total_elapsed_time"], row.ended_at - row.started_at,
                        floor=0.001)  # fmt: skip
    assert [lap["direction"] for lap in back.fitdecode["lap"]] == ["backward", "forward"]
    assert len(back.fitdecode["record"]) == records


def test_page_and_api_give_the_same_file(walked: int, client: FlaskClient) -> None:
    page, api = (client.get(route.format(walked)).get_data() for route in ROUTES)
    assert page == api


def test_the_session_page_links_the_download(walked: int, client: FlaskClient) -> None:
    html = client.get(f"/sessions/{walked}").get_data(as_text=True)
    link = re.search(r'<a class="fit-download" href="([^"]+)" download>Download FIT</a>', html)
    assert link is not None, "no Download FIT link on the session page"
    assert link.group(1) == f"/sessions/{walked}.fit"
    assert client.get(link.group(1)).status_code == 200


def test_a_running_sessions_page_offers_no_download_yet(running: int, client: FlaskClient) -> None:
    html = client.get(f"/sessions/{running}").get_data(as_text=True)
    assert "Download FIT" not in html
    assert "FIT file once the session ends" in html


def test_the_sessions_json_says_where_its_fit_file_is(walked: int, client: FlaskClient) -> None:
    body = client.get(f"/api/sessions/{walked}").get_json()
    assert body["fit_url"] == f"/api/sessions/{walked}.fit"
    assert client.get(body["fit_url"]).mimetype == "application/vnd.ant.fit"


def test_no_such_session_is_404(client: FlaskClient) -> None:
    api = client.get("/api/sessions/999.fit")
    assert api.status_code == 404
    assert api.get_json() == {
        "ok": False,
        "error": "There is no session 999; GET /api/sessions lists them.",
    }
    page = client.get("/sessions/999.fit")
    assert page.status_code == 404
    assert "There is no session 999" in page.get_data(as_text=True)
    assert client.get(f"/sessions/{2**63}.fit").status_code == 404  # past SQLite's ids


def test_a_session_still_running_is_409_with_the_sentence(
    running: int, client: FlaskClient
) -> None:
    sentence = f"Session {running} is still running; export it once it ends."
    api = client.get(f"/api/sessions/{running}.fit")
    assert api.status_code == 409
    assert api.get_json() == {"ok": False, "error": sentence}
    page = client.get(f"/sessions/{running}.fit")
    assert page.status_code == 409
    assert sentence in page.get_data(as_text=True)


def test_no_history_file_is_503_with_the_fix(
    tmp_path: Path, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "never-written.db"
    monkeypatch.setattr(client.application.extensions["retrotread"], "db_path", str(missing))
    for route in ROUTES:
        response = client.get(route.format(1))
        assert response.status_code == 503
        assert f"There is no history database at {missing} yet" in response.get_data(as_text=True)
    assert client.get("/api/sessions/1.fit").get_json()["ok"] is False


def test_the_configs_running_cap_decides_walking_or_running(
    db_path: str, make_app: Callable[..., Flask]
) -> None:
    with Store(db_path) as store:
        sid = record_walk(store, [Stretch(Mode.BACKWARD, 60, kmh=5.4, cap_kmh=5.5)])
    default = make_app().test_client().get(f"/sessions/{sid}.fit").get_data()
    lowered_config = Config(backward=BackwardConfig(running_cap_kmh=5.5))
    lowered = make_app(lowered_config).test_client().get(f"/sessions/{sid}.fit").get_data()
    assert {s["sport"] for s in read_both(default).one("session")} == {"walking"}
    assert {s["sport"] for s in read_both(lowered).one("session")} == {"running"}
