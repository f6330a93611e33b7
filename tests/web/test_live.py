"""The live page, /api/status, the SSE stream and /healthz, against a real device socket with
a status the test sets (tests/web/conftest.py) and, for the stream, a real waitress server."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from support.live_page import WITHIN_S, EventStream, live_page
from support.waiting import wait_until

from web import live
from web.hub import StatusHub
from web.serve import WebServer

if TYPE_CHECKING:  # pytest imports each conftest under the same name: never import it
    from conftest import FakeDevice

# -- /api/status ------------------------------------------------------------------------------


def test_status_reports_the_belt_as_the_daemon_sees_it(
    fake_device: FakeDevice, client: FlaskClient
) -> None:
    reply = client.get("/api/status")
    assert reply.status_code == 200
    body = reply.get_json()
    assert body["online"] is True
    assert (body["speed_kmh"], body["mode"], body["state"], body["cap_kmh"]) == (
        2.1,
        "backward",
        "running",
        2.0,
    )
    assert "ok" not in body  # the socket protocol's own field stays behind


def test_status_follows_the_belt_as_it_speeds_up(
    fake_device: FakeDevice, client: FlaskClient
) -> None:
    assert client.get("/api/status").get_json()["speed_kmh"] == 2.1
    fake_device.status["speed_kmh"] = 2.6
    assert wait_until(
        lambda: client.get("/api/status").get_json()["speed_kmh"] == 2.6,
        within_s=WITHIN_S,
        what="the new speed to reach /api/status",
    )


def test_status_is_503_device_offline_when_no_daemon_runs(client: FlaskClient) -> None:
    reply = client.get("/api/status")
    assert reply.status_code == 503
    body = reply.get_json()
    assert body["ok"] is False  # the API's one error shape, with "online" beside it
    assert body["online"] is False
    assert body["error"].startswith("device offline: ")
    assert reply.headers["Cache-Control"] == "no-store"
    assert "not running" in body["error"]


def test_status_answers_from_the_hub_without_asking_the_daemon_each_time(
    fake_device: FakeDevice, client: FlaskClient
) -> None:
    client.get("/api/status")
    reads_before = fake_device.status_reads
    for _ in range(30):
        assert client.get("/api/status").status_code == 200
    # only the shared subscription's 4 Hz lines read the status, not the 30 requests
    assert fake_device.status_reads - reads_before < 10
    assert fake_device.client_count == 1


def test_a_daemon_that_cannot_read_its_status_reads_as_offline_with_its_reason(
    fake_device: FakeDevice, client: FlaskClient
) -> None:
    fake_device.status = None  # the socket's status() raises: the daemon sends ok false
    body = client.get("/api/status").get_json()
    assert body["online"] is False
    assert "could not read its status" in body["error"]


def test_a_daemon_that_goes_silent_counts_as_offline(fake_device: FakeDevice) -> None:
    fake_device.stop()
    fake_device.start(stream_interval_s=30.0)  # one status line, then silence
    hub = StatusHub(fake_device.path, stale_after_s=0.3)
    hub.start()
    try:
        assert hub.wait_answered(WITHIN_S)
        assert hub.latest() is not None
        seq, status = hub.snapshot()
        while status is not None:
            seq, status = hub.wait_newer(seq, WITHIN_S)
        assert hub.online is False
        assert hub.error is not None and str(fake_device.path) in hub.error
    finally:
        hub.close()


# -- the page ---------------------------------------------------------------------------------


def test_live_page_shows_the_session_without_javascript(
    fake_device: FakeDevice, client: FlaskClient
) -> None:
    page = live_page(client)
    assert page.says("speed") == "2.1"
    assert page.says("mode") == "BACKWARD"
    assert "mode-backward" in (page.attrs["mode"]["class"] or "")
    assert page.says("state") == "Running"
    assert page.says("elapsed") == "03:05"
    assert page.says("distance") == "98 m"
    assert page.says("kcal") == "8 kcal"
    assert page.says("cap") == "cap 2.0 km/h, 2.1 in 0:24"
    assert page.says("level") == "level 1"
    assert page.says("program") == "2 of 4 sessions this week (week 1)"
    assert page.says("sensor") == "hall sensor: ok"
    assert page.says("machine") == "Treadmill 1"
    assert not page.shown("offline-banner")
    assert not page.shown("warning-banner")
    assert not page.shown("message")


def test_live_page_marks_the_energy_figure_as_an_estimate(
    fake_device: FakeDevice, client: FlaskClient
) -> None:
    html = client.get("/").get_data(as_text=True)
    assert '<span class="estimate">estimate</span>' in html


def test_live_page_says_device_offline_when_the_daemon_is_down(client: FlaskClient) -> None:
    page = live_page(client)
    assert page.shown("offline-banner")
    assert page.says("offline-banner").startswith("device offline: ")
    assert page.says("speed") == "--"
    for button in ("control-start", "control-pause", "control-resume", "control-end"):
        assert not page.shown(button)
    assert "disabled" in page.attrs["control-backward"]


@pytest.mark.parametrize(
    ("state", "shown"),
    [
        ("idle", {"control-start"}),
        ("running", {"control-pause", "control-end"}),
        ("paused", {"control-resume", "control-end"}),
    ],
)
def test_the_button_that_fits_the_session_is_shown(
    fake_device: FakeDevice, client: FlaskClient, state: str, shown: set[str]
) -> None:
    fake_device.status["state"] = state
    page = live_page(client)
    buttons = {"control-start", "control-pause", "control-resume", "control-end"}
    assert {button for button in buttons if page.shown(button)} == shown


def test_the_mode_buttons_show_which_way_the_walker_faces(
    fake_device: FakeDevice, client: FlaskClient
) -> None:
    fake_device.status.update(mode="forward", cap_kmh=None, next_cap_kmh=None, next_cap_in_s=None)
    page = live_page(client)
    assert page.attrs["control-forward"]["aria-pressed"] == "true"
    assert page.attrs["control-backward"]["aria-pressed"] == "false"
    assert page.says("cap") == "no cap going forward"


def test_over_the_cap_the_banner_counts_down_to_the_enforced_stop(
    fake_device: FakeDevice, client: FlaskClient
) -> None:
    fake_device.status.update(
        speed_kmh=2.7,
        warning={
            "reason": "over the cap",
            "speed_kmh": 2.6,
            "cap_kmh": 2.0,
            "seconds_left": 2.4,
            "enforced": False,
        },
    )
    page = live_page(client)
    assert page.shown("warning-banner")
    assert page.says("warning-text") == "Slow down: stopping in 3 s"
    assert page.says("warning-detail") == "2.6 km/h against a cap of 2.0 km/h"


def test_over_the_cap_on_a_machine_without_enforcement_says_so(
    fake_device: FakeDevice, client: FlaskClient
) -> None:
    fake_device.status.update(
        enforcement="none",
        cap_enforced=False,
        warning={
            "reason": "over the cap",
            "speed_kmh": 2.6,
            "cap_kmh": 2.0,
            "seconds_left": 0.0,
            "enforced": False,
        },
    )
    page = live_page(client)
    assert page.says("warning-text") == "Over the cap and not enforced on this machine"


def test_loosened_safety_settings_are_on_the_live_page_at_all_times(
    fake_device: FakeDevice, client: FlaskClient, running_status
) -> None:
    fake_device.status = running_status(weakened=["cap not enforced", "grace 20 s"])
    page = client.get("/").get_data(as_text=True)
    assert "Safety settings loosened: cap not enforced, grace 20 s" in page
    fake_device.status = running_status()
    assert live.view(fake_device.status)["safety"] == ""


def test_a_history_the_daemon_cannot_write_is_said_on_the_live_page(
    fake_device: FakeDevice, client: FlaskClient, running_status
) -> None:
    fake_device.status = running_status(history_error="Cannot write ... (disk is full).")
    page = client.get("/").get_data(as_text=True)
    assert "History is not being saved: Cannot write ... (disk is full)." in page
    assert live.view(running_status())["history"] == ""


def test_a_sensor_the_device_cannot_vouch_for_is_never_shown_ok(running_status) -> None:
    suspect = {"kind": "hall", "ok": False, "state": "suspect", "channel": "hall",
               "detail": "The hall sensor's pulses ended...", "checked": False}  # fmt: skip
    assert live.view(running_status(sensor=suspect))["sensor"] == "hall sensor: suspect"
    silent = {**suspect, "state": "silent", "channel": "check", "checked": True}
    assert live.view(running_status(sensor=silent))["sensor"] == (
        "hall sensor + check: silent (check)"
    )
    assert live.view(running_status())["sensor"] == "hall sensor: ok"


def test_backward_mode_without_a_session_says_what_to_do_not_a_countdown(
    running_status,
) -> None:
    warning = {"reason": "over the cap", "speed_kmh": 6.0, "cap_kmh": 2.0, "seconds_left": 3.0,
               "enforced": False, "stop_coming": False, "scope": "no session"}  # fmt: skip
    words = live.view(running_status(state="idle", warning=warning))
    assert words["warning"] == "Backward mode: press DIRECTION for forward walking, or slow down"
    coming = live.view(running_status(warning={**warning, "stop_coming": True}))
    assert coming["warning"] == "Slow down: stopping in 3 s"


def test_a_refused_start_shows_the_daemons_message(
    fake_device: FakeDevice, client: FlaskClient
) -> None:
    sentence = "Backward start refused: the belt runs at 3.1 km/h, over the 2.0 km/h start cap."
    fake_device.status.update(state="idle", message=sentence)
    page = live_page(client)
    assert page.shown("message")
    assert page.says("message") == sentence


def test_the_controls_offer_a_login_when_they_are_locked(
    fake_device: FakeDevice, client: FlaskClient
) -> None:
    page = live_page(client)
    assert page.shown("control-login")
    assert page.attrs["control-login-link"]["href"].startswith("/login")


def test_view_words_for_a_long_walk_and_a_finished_program(
    running_status: Callable[..., dict[str, Any]],
) -> None:
    words = live.view(
        running_status(
            elapsed_s=4502.0,
            distance_m=3456.0,
            next_cap_kmh=None,
            profile="home",  # the home walker keeps a program; a gym's guest has none
            level=3,
            running_unlocked=True,
            program={
                "week": None,
                "sessions_done": 0,
                "sessions_target": 4,
                "per_week": [4, 4, 4, 4],
                "finished": True,
            },
        )
    )
    assert words["elapsed"] == "75:02"
    assert words["distance"] == "3.46 km"
    assert words["cap"] == "cap 2.0 km/h"
    assert words["level"] == "level 3, running unlocked"
    assert words["program"] == "4-week program complete"


def test_a_gyms_walk_up_guest_is_told_there_is_no_program_to_follow(
    running_status: Callable[..., dict[str, Any]],
) -> None:
    guest = running_status(
        profile="guest",
        program={"week": None, "sessions_done": 0, "sessions_target": 4,
                 "per_week": [0, 0, 0, 0], "finished": False},
    )  # fmt: skip
    assert live.view(guest)["program"] == "walk-up guest: every session starts at level 1"


# -- /api/stream ------------------------------------------------------------------------------


def test_stream_sends_each_status_about_four_times_a_second(
    fake_device: FakeDevice, app: Flask, serve_app: Callable[..., WebServer]
) -> None:
    stream = EventStream(serve_app(app))
    try:
        assert stream.response.status == 200
        assert stream.response.getheader("Content-Type").startswith("text/event-stream")
        assert stream.response.getheader("Cache-Control") == "no-cache"
        assert stream.response.getheader("X-Accel-Buffering") == "no"
        assert stream.next_message() == {"retry": "2000"}
        first = stream.next_event("status")
        assert first["online"] is True
        assert first["speed_kmh"] == 2.1
        assert first["view"]["cap"] == "cap 2.0 km/h, 2.1 in 0:24"
        started = time.monotonic()
        count = 0
        while time.monotonic() - started < 1.2:
            stream.next_event("status")
            count += 1
        assert count >= 4
    finally:
        stream.close()


def test_stream_says_offline_when_the_daemon_stops_and_resumes_when_it_returns(
    fake_device: FakeDevice, app: Flask, serve_app: Callable[..., WebServer]
) -> None:
    stream = EventStream(serve_app(app))
    try:
        stream.next_event("status")
        fake_device.stop()
        offline = stream.next_event("offline")
        assert offline["online"] is False
        assert offline["error"].startswith("device offline: ")
        fake_device.status["state"] = "paused"
        fake_device.start()
        back = stream.next_event("status")
        assert back["state"] == "paused"
    finally:
        stream.close()


def test_stream_pings_while_the_daemon_stays_away(
    app: Flask, serve_app: Callable[..., WebServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(live, "PING_EVERY_S", 0.1)
    stream = EventStream(serve_app(app))
    try:
        assert stream.next_event("offline")["view"]["speed"] == "--"
        assert stream.next_message() == {"comment": "ping"}
    finally:
        stream.close()


def test_many_viewers_share_one_daemon_subscription(
    fake_device: FakeDevice, app: Flask, serve_app: Callable[..., WebServer]
) -> None:
    server = serve_app(app)
    streams = [EventStream(server) for _ in range(6)]
    try:
        for stream in streams:
            assert stream.next_event("status")["online"] is True
        assert fake_device.client_count == 1
    finally:
        for stream in streams:
            stream.close()


def test_streams_past_the_limit_are_turned_away_with_503(
    fake_device: FakeDevice, make_app: Callable[..., Flask], serve_app: Callable[..., WebServer]
) -> None:
    server = serve_app(make_app(test_config={"RETROTREAD_MAX_STREAMS": 1}))
    first = EventStream(server)
    try:
        first.next_event("status")
        second = EventStream(server)
        assert second.response.status == 503
        assert second.response.getheader("Retry-After") == "10"
        assert "already connected" in json.loads(second.response.read())["error"]
        second.close()
    finally:
        first.close()


# -- /healthz ---------------------------------------------------------------------------------


def test_healthz_is_ok_with_the_device_online(fake_device: FakeDevice, client: FlaskClient) -> None:
    reply = client.get("/healthz")
    assert reply.status_code == 200
    assert reply.get_json() == {"ok": True, "device": "online", "db": "ok"}


def test_healthz_is_still_ok_with_the_device_offline(client: FlaskClient) -> None:
    reply = client.get("/healthz")
    assert reply.status_code == 200
    assert reply.get_json() == {"ok": True, "device": "offline", "db": "ok"}


def test_healthz_is_503_when_the_history_file_is_not_a_database(
    make_app: Callable[..., Flask], db_path: str
) -> None:
    Path(db_path).write_bytes(b"this is a note, not SQLite" * 100)
    reply = make_app().test_client().get("/healthz")
    assert reply.status_code == 503
    body = reply.get_json()
    assert body["ok"] is False and body["db"] == "error"
    assert "is not a history database" in body["error"]
