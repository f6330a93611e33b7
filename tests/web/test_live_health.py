"""The health line on the live page (web/live_view.py): the words the daemon's "health"
report gives (sensor, inputs, history), on the page and in the stream, and "unknown" for a
part of the report that cannot be read."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from support.live_page import EventStream, live_page

from device.config.model import SensorConfig, SensorKind
from device.core.sensor_watch import SensorWatch
from device.core.status import sensor_status
from device.fleet.publisher import LinkHealth
from device.health import health_status
from device.history.writer import HistoryHealth
from web.live_view import view
from web.serve import WebServer

if TYPE_CHECKING:  # pytest imports each conftest under the same name: never import it
    from conftest import FakeDevice


def health(**changes: Any) -> dict[str, Any]:
    """A health report as the daemon builds it, all well unless `changes` say otherwise: 12
    rows waiting for their batch, nothing rejected, dropped or lost."""
    history = HistoryHealth(ok=True, error=None, unsaved_rows=12, lost_rows=0)
    report = health_status(history, sensor_rejected=0, sensor_error=None, inputs_dropped=0)
    return {**report, **changes}


# a serial bridge the device trusts, as the real status reports it
_BRIDGE = SensorConfig(kind=SensorKind.SERIAL)
SERIAL = dict(sensor_status(_BRIDGE, SensorWatch.for_sensor(_BRIDGE)))
DISK_FULL = "cannot write /var/lib/retrotread/history.db (disk is full)."


# -- the health line ------------------------------------------------------------------------


def test_a_healthy_device_reads_all_good_on_the_live_page(
    fake_device: FakeDevice, client: FlaskClient, running_status: Callable[..., dict]
) -> None:
    fake_device.status = running_status(health=health())
    page = live_page(client)
    assert page.shown("health-row")
    assert page.says("health") == "all good"
    assert "trouble" not in (page.attrs["health-row"]["class"] or "")


def test_rejected_serial_lines_and_the_last_error_are_on_the_live_page(
    fake_device: FakeDevice, client: FlaskClient, running_status: Callable[..., dict]
) -> None:
    error = "serial line 'SPD ??' does not match the pattern."
    fake_device.status = running_status(
        sensor=SERIAL, health=health(sensor_rejected=12, sensor_error=error)
    )
    page = live_page(client)
    assert page.says("health") == f"sensor: 12 lines rejected, last error: {error}"
    assert "trouble" in (page.attrs["health-row"]["class"] or "")


def test_a_hall_sensor_counts_rejected_pulses_in_the_singular_too(
    running_status: Callable[..., dict],
) -> None:
    words = view(running_status(health=health(sensor_rejected=1)))
    assert words["health"] == "sensor: 1 pulse rejected"


def test_a_history_that_is_not_saving_says_why_and_what_waits_and_what_is_lost(
    fake_device: FakeDevice, client: FlaskClient, running_status: Callable[..., dict]
) -> None:
    history = {"ok": False, "error": DISK_FULL, "unsaved_rows": 120, "lost_rows": 4}
    fake_device.status = running_status(history_error=DISK_FULL, health=health(history=history))
    page = live_page(client)
    assert page.says("health") == (
        "history: not saving: cannot write /var/lib/retrotread/history.db (disk is full) "
        "(120 rows waiting, 4 rows lost)"
    )
    assert page.shown("history-error")  # the banner says it too, in full


def test_a_saving_history_shows_its_waiting_rows_as_normal_but_an_earlier_loss_as_news(
    running_status: Callable[..., dict],
) -> None:
    waiting = {"ok": True, "error": None, "unsaved_rows": 40, "lost_rows": 0}
    assert view(running_status(health=health(history=waiting)))["health"] == "all good"
    behind = {"ok": True, "error": "the history writer fell behind the ticks.",
              "unsaved_rows": 3, "lost_rows": 1}  # fmt: skip
    assert view(running_status(health=health(history=behind)))["health"] == (
        "history: saving, 1 row lost earlier (the history writer fell behind the ticks)"
    )


def test_dropped_inputs_are_counted_and_every_problem_shares_the_line(
    running_status: Callable[..., dict],
) -> None:
    history = {"ok": False, "error": None, "unsaved_rows": 0, "lost_rows": 0}
    report = health(sensor_rejected=3, inputs_dropped=7, history=history)
    assert view(running_status(sensor=SERIAL, health=report))["health"] == (
        "sensor: 3 lines rejected · history: not saving · inputs dropped: 7"
    )


def test_a_daemon_without_a_history_writer_reports_no_history_part(
    running_status: Callable[..., dict],
) -> None:
    assert view(running_status(health=health(history=None)))["health"] == "all good"


def test_a_daemon_that_reports_no_health_hides_the_row(
    fake_device: FakeDevice, client: FlaskClient
) -> None:
    assert "health" not in fake_device.status
    page = live_page(client)
    assert not page.shown("health-row")
    assert page.says("health") == ""


def test_the_health_line_streams_like_the_other_figures(
    fake_device: FakeDevice,
    app: Flask,
    serve_app: Callable[..., WebServer],
    running_status: Callable[..., dict],
) -> None:
    fake_device.status = running_status(health=health(inputs_dropped=2))
    stream = EventStream(serve_app(app))
    try:
        assert stream.next_event("status")["view"]["health"] == "inputs dropped: 2"
    finally:
        stream.close()


@pytest.mark.parametrize(
    ("report", "says"),
    [
        (5, "unknown (the device's health report cannot be read)"),
        (health(sensor_rejected="many"), "sensor: pulses rejected: unknown"),
        (health(sensor_error=["x"]), "sensor: last error: unknown"),
        (health(inputs_dropped=-1), "inputs dropped: unknown"),
        (health(history=[1]), "history: unknown"),
        (health(history={"ok": "yes"}), "history: unknown"),
        (health(history={"ok": False, "unsaved_rows": 1.5}), "history: not saving (rows "
         "waiting: unknown)"),
    ],
)  # fmt: skip
def test_an_unreadable_part_of_the_health_report_reads_unknown(
    running_status: Callable[..., dict], report: Any, says: str
) -> None:
    assert view(running_status(health=report))["health"] == says


# -- the fleet's link -----------------------------------------------------------------------


def _fleet(*, connected: bool, error: str | None = None, waiting: int = 0, dropped: int = 0):
    link = LinkHealth(
        connected=connected, error=error, status_dropped=0, events_dropped=dropped,
        events_waiting=waiting, sessions_sent=3, failed_connects=0,
    )  # fmt: skip
    history = HistoryHealth(ok=True, error=None, unsaved_rows=0, lost_rows=0)
    return health_status(history, sensor_rejected=0, sensor_error=None, inputs_dropped=0,
                         fleet=link)  # fmt: skip


def test_a_treadmill_on_a_working_broker_reads_all_good(
    running_status: Callable[..., dict],
) -> None:
    assert view(running_status(health=_fleet(connected=True)))["health"] == "all good"


def test_a_broker_that_cannot_be_reached_is_on_the_health_line_with_what_waits(
    running_status: Callable[..., dict],
) -> None:
    down = "cannot reach the broker at broker.local:1883 (connection refused)."
    words = view(running_status(health=_fleet(connected=False, error=down, waiting=2)))
    assert words["health"] == (
        "fleet: not connected: cannot reach the broker at broker.local:1883 (connection "
        "refused) (2 events waiting)"
    )


def test_events_let_go_while_the_broker_was_away_stay_on_the_health_line(
    running_status: Callable[..., dict],
) -> None:
    words = view(running_status(health=_fleet(connected=True, dropped=7)))
    assert words["health"] == "fleet: 7 events not sent"


def test_no_broker_configured_says_nothing_of_a_fleet(running_status: Callable[..., dict]) -> None:
    report = health()
    assert report["fleet"] is None
    assert view(running_status(health=report))["health"] == "all good"
