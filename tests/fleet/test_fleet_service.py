"""`retrotread fleet`, the receiving side: treadmills publish to a real Mosquitto (paho, as a
device would, with payloads built here), the fleet's receiver hears them, and the grid, the
JSON API and the history show them. Bad messages are counted and never stop it; neither does
the broker going away.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from flask.testing import FlaskClient
from paho.mqtt.enums import CallbackAPIVersion
from support.fleet_payloads import session_payload, status_payload
from support.mosquitto import Broker
from support.ports import free_port
from support.waiting import wait_until

from device.cli import main
from device.fleet.topics import Topics
from web.auth import set_password
from web.fleet import create_fleet_app
from web.fleet.board import Board
from web.fleet.payloads import Reason
from web.fleet.receiver import FleetReceiver
from web.fleet.settings import FleetSettings
from web.fleet.store import FleetStore, FleetStoreError

SITE = "northgym"
WITHIN_S = 10.0
PASSWORD = "front-desk-2026"


class Treadmill:
    """One device's side of the broker: a paho client publishing at QoS 1 and waiting for the
    broker's acknowledgement, as the real publisher does."""

    def __init__(self, broker: Broker, machine_id: str) -> None:
        self.topics = Topics(SITE, machine_id)
        self.machine_id = machine_id
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"test-{machine_id}")
        self.client.connect("127.0.0.1", broker.port)
        self.client.loop_start()

    def send(
        self, topic: str, payload: bytes | str | dict[str, Any], *, retain: bool = False
    ) -> None:
        data = json.dumps(payload) if isinstance(payload, dict) else payload
        self.client.publish(topic, data, qos=1, retain=retain).wait_for_publish(WITHIN_S)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class Fleet:
    def __init__(self, receiver: FleetReceiver, store: FleetStore, client: FlaskClient) -> None:
        self.receiver, self.store, self.client = receiver, store, client

    def machine(self, machine_id: str) -> dict[str, Any] | None:
        machines = self.client.get("/api/fleet").get_json()["machines"]
        return next((m for m in machines if m["machine_id"] == machine_id), None)


@pytest.fixture
def fleet(broker: Broker, tmp_path: Path) -> Iterator[Fleet]:
    """The fleet service on the test broker, following SITE, with its app's test client."""
    settings = FleetSettings(
        host="127.0.0.1", port=broker.port, site=SITE, client_id="fleet-under-test",
        db=str(tmp_path / "fleet.db"), dashboards="http://{machine_id}.local:8080/",
    )  # fmt: skip
    store = FleetStore(settings.db)
    board = Board()
    receiver = FleetReceiver(settings, board=board, store=store)
    app = create_fleet_app(
        settings, store=store, board=board, receiver=receiver, test_config={"TESTING": True}
    )
    receiver.start()
    wait_until(lambda: receiver.stats().connected, within_s=WITHIN_S, what="the fleet to connect")
    try:
        yield Fleet(receiver, store, app.test_client())
    finally:
        board.close()
        receiver.close()
        store.close()


@pytest.fixture
def treadmill(broker: Broker) -> Iterator[Treadmill]:
    device = Treadmill(broker, "tm-01")
    yield device
    device.close()


def test_a_treadmill_walking_backward_shows_on_the_grid_and_in_the_api(fleet, treadmill):
    treadmill.send(treadmill.topics.availability, "online", retain=True)
    treadmill.send(treadmill.topics.status, status_payload("tm-01"), retain=True)

    machine = wait_until(
        lambda: (m := fleet.machine("tm-01")) and m["status"] and m,
        within_s=WITHIN_S, what="tm-01 in /api/fleet",
    )  # fmt: skip
    assert machine["online"] is True
    assert machine["status"]["speed_kmh"] == 2.1
    assert machine["status"]["mode"] == "backward"
    assert machine["dashboard"] == "http://tm-01.local:8080/"
    assert machine["alert"] is False

    page = fleet.client.get("/").get_data(as_text=True)
    assert "Treadmill tm-01" in page
    assert "2.1 km/h" in page and "cap 2.5 km/h" in page and "backward" in page
    assert 'href="http://tm-01.local:8080/"' in page
    assert "online · " in page and "tile tile-alert" not in page


def test_the_api_and_the_grid_never_name_the_walker(fleet, treadmill):
    treadmill.send(treadmill.topics.status, status_payload("tm-01", profile="anna-k"))
    wait_until(lambda: fleet.machine("tm-01"), within_s=WITHIN_S, what="tm-01 in /api/fleet")

    api = fleet.client.get("/api/fleet")
    assert "profile" not in api.get_json()["machines"][0]["status"]
    assert "anna-k" not in api.get_data(as_text=True)
    assert "anna-k" not in fleet.client.get("/").get_data(as_text=True)
    assert api.headers["Content-Security-Policy"].startswith("default-src 'self'")


def test_a_warning_or_an_enforced_stop_turns_the_tile_red(fleet, treadmill, broker):
    other = Treadmill(broker, "tm-02")
    try:
        warning = {"reason": "over the cap", "speed_kmh": 3.1, "cap_kmh": 2.5, "seconds_left": 4.0}
        treadmill.send(treadmill.topics.status, status_payload("tm-01", warning=warning))
        other.send(other.topics.status, status_payload("tm-02", speed_kmh=0.0))
        other.send(
            other.topics.events,
            {
                "v": 1,
                "machine_id": "tm-02",
                "t": time.time(),
                "kind": "enforced_stop",
                "details": {},
            },
        )
        wait_until(
            lambda: (m := fleet.machine("tm-02")) and m["alert"],
            within_s=WITHIN_S, what="tm-02's tile to turn red",
        )  # fmt: skip
    finally:
        other.close()
    assert fleet.machine("tm-01")["alert"] is True
    page = fleet.client.get("/").get_data(as_text=True)
    assert page.count("tile tile-alert") == 2
    assert "over the cap" in page and "enforced stop" in page


def test_the_stream_pushes_the_grid(fleet, treadmill):
    treadmill.send(treadmill.topics.status, status_payload("tm-01", speed_kmh=1.8))
    wait_until(lambda: fleet.machine("tm-01"), within_s=WITHIN_S, what="tm-01 in /api/fleet")

    response = fleet.client.get("/api/fleet/stream")
    assert response.mimetype == "text/event-stream"
    chunks = (chunk.decode() for chunk in response.response)
    try:
        assert next(chunks).startswith("retry:")
        assert _speeds(next(chunks)) == [("tm-01", "1.8 km/h")]
        treadmill.send(treadmill.topics.status, status_payload("tm-01", speed_kmh=2.2))
        # the change comes as the next event, or the one after a ping that raced it
        pushed = [_speeds(next(chunks)) for _ in range(2)]
    finally:
        response.close()
    assert [("tm-01", "2.2 km/h")] in pushed


def _speeds(event: str) -> list[tuple[str, str]]:
    kind, data = event.split("\n")[:2]
    assert kind == "event: grid"
    tiles = json.loads(data.removeprefix("data: "))["tiles"]
    return [(t["machine_id"], t["speed"]) for t in tiles]


def test_a_session_published_twice_is_stored_once(fleet, treadmill):
    session_uuid = str(uuid.uuid4())
    session = session_payload("tm-01", session_uuid)
    treadmill.send(treadmill.topics.session(session_uuid), session)
    treadmill.send(treadmill.topics.session(session_uuid), session)  # a resend after a reconnect

    wait_until(lambda: fleet.receiver.stats().duplicates == 1, within_s=WITHIN_S, what="the resend")
    assert fleet.store.session_count() == 1
    assert fleet.receiver.stats().sessions_stored == 1


def test_bad_payloads_are_counted_by_reason_and_the_fleet_keeps_listening(fleet, treadmill, caplog):
    topics = treadmill.topics
    treadmill.send(topics.status, b"\xff not json {")
    treadmill.send(topics.status, b"still not json")
    treadmill.send(topics.status, b"{" + b" " * (5 * 1024 * 1024) + b"}")
    treadmill.send(topics.status, status_payload("tm-01", speed_kmh="fast"))
    treadmill.send(topics.status, status_payload("tm-01", v=2))
    treadmill.send(topics.status, status_payload("tm-99"))  # tm-01 speaking as another machine
    treadmill.send(topics.availability, "maybe")
    treadmill.send(topics.events, b"[1, 2, 3]")
    treadmill.send(topics.events, "1" * 100 + "e999")
    treadmill.send(topics.status, status_payload("tm-01", speed_kmh=1.5))  # and then a good one

    wait_until(
        lambda: fleet.machine("tm-01"), within_s=WITHIN_S, what="the good status after the bad"
    )
    assert fleet.machine("tm-01")["status"]["speed_kmh"] == 1.5
    assert fleet.receiver.stats().rejected == {
        Reason.NOT_JSON: 2,
        Reason.TOO_LARGE: 1,
        Reason.SCHEMA: 3,  # a speed that is text, an array, a number too large
        Reason.WRONG_VERSION: 1,
        Reason.MACHINE_MISMATCH: 1,
        Reason.BAD_AVAILABILITY: 1,
    }
    assert fleet.store.rejections() == {
        "bad_availability": 1, "machine_mismatch": 1, "not_json": 2, "schema": 3,
        "too_large": 1, "wrong_version": 1,
    }  # fmt: skip
    turned_away = [r for r in caplog.records if "turned away" in r.getMessage()]
    assert len(turned_away) == 6  # once per reason, however many come
    assert fleet.client.get("/api/fleet").get_json()["broker"]["rejected"]["schema"] == 3


def test_a_session_under_another_uuid_or_machine_is_refused(fleet, treadmill):
    session_uuid, other_uuid = str(uuid.uuid4()), str(uuid.uuid4())
    treadmill.send(treadmill.topics.session(session_uuid), session_payload("tm-01", other_uuid))
    treadmill.send(treadmill.topics.session(session_uuid), session_payload("tm-02", session_uuid))
    wait_until(
        lambda: len(fleet.receiver.stats().rejected) == 2, within_s=WITHIN_S, what="both refusals"
    )
    assert fleet.receiver.stats().rejected == {Reason.UUID_MISMATCH: 1, Reason.MACHINE_MISMATCH: 1}
    assert fleet.store.session_count() == 0


def test_the_fleet_hears_again_after_the_broker_is_killed_and_restarted(fleet, broker):
    broker.stop()
    wait_until(lambda: not fleet.receiver.stats().connected, within_s=WITHIN_S, what="the loss")
    assert "lost the broker" in fleet.client.get("/").get_data(as_text=True)

    broker.start()
    wait_until(lambda: fleet.receiver.stats().connected, within_s=40, what="the reconnect")
    device = Treadmill(broker, "tm-03")
    try:
        session_uuid = str(uuid.uuid4())
        device.send(device.topics.session(session_uuid), session_payload("tm-03", session_uuid))
        device.send(device.topics.availability, "offline")
        wait_until(lambda: fleet.store.session_count() == 1, within_s=WITHIN_S, what="the session")
        wait_until(
            lambda: (m := fleet.machine("tm-03")) and m["online"] is False,
            within_s=WITHIN_S, what="tm-03 offline on the grid",
        )  # fmt: skip
    finally:
        device.close()
    assert "offline" in fleet.client.get("/").get_data(as_text=True)


def _log_in(client: FlaskClient) -> None:
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf-token" content="([^"]+)"', page)
    assert token, "the login page carries a CSRF token"
    answer = client.post("/login", data={"password": PASSWORD, "csrf_token": token.group(1)})
    assert answer.status_code == 302


def test_the_sessions_history_needs_the_login_and_filters_by_profile(fleet, treadmill, tmp_path):
    for profile in ("anna", "ben"):
        session_uuid = str(uuid.uuid4())
        payload = session_payload("tm-01", session_uuid, profile=profile)
        treadmill.send(treadmill.topics.session(session_uuid), payload)
    wait_until(lambda: fleet.store.session_count() == 2, within_s=WITHIN_S, what="two sessions")

    refused = fleet.client.get("/sessions")
    assert refused.status_code == 302 and "/login" in refused.headers["Location"]
    assert fleet.client.get("/sessions.csv").status_code == 302

    set_password(tmp_path, PASSWORD)
    _log_in(fleet.client)
    page = fleet.client.get("/sessions?profile=ben").get_data(as_text=True)
    assert "<td>ben</td>" in page and "<td>anna</td>" not in page
    assert "8.0" in page  # 480 s backward: 8.0 minutes, in the session row and its week
    export = fleet.client.get("/sessions.csv?machine=tm-01").get_data(as_text=True).splitlines()
    assert export[0].startswith("uuid,site,machine_id,profile")
    assert len(export) == 3 and all(line.endswith(",1") for line in export[1:])  # one stop each
    bad_day = fleet.client.get("/sessions?from=yesterday")
    assert bad_day.status_code == 400
    assert "is not a date; write it like 2026-03-01." in bad_day.get_data(as_text=True)


def test_the_store_refuses_another_programs_database(tmp_path):
    import sqlite3

    other = tmp_path / "other.db"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE invoices (id INTEGER)")
    with pytest.raises(FleetStoreError, match="another program's SQLite database"):
        FleetStore(str(other))
    FleetStore(str(tmp_path / "fleet.db")).close()
    store = FleetStore(str(tmp_path / "fleet.db"))  # ours, opened again
    store.close()


def test_retrotread_fleet_refuses_a_broker_that_is_not_one(tmp_path, capsys):
    config = tmp_path / "config.toml"
    config.write_text('[fleet]\nbroker = "http://broker.gym.lan"\n')
    assert main(["fleet", "--config", str(config), "--db", str(tmp_path / "f.db")]) == 2
    sentence = capsys.readouterr().err.strip()
    assert "broker" in sentence and "\n" not in sentence


def test_retrotread_fleet_serves_what_the_broker_carries(broker, tmp_path):
    config = tmp_path / "config.toml"
    config.write_text(f'[fleet]\nbroker = "{broker.url}"\nsite = "{SITE}"\n')
    port = free_port()
    service = subprocess.Popen(
        [sys.executable, "-m", "device.cli", "fleet", "--config", str(config),
         "--port", str(port), "--db", str(tmp_path / "fleet.db")],
        cwd=Path(__file__).resolve().parents[2], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    device = Treadmill(broker, "tm-04")
    try:
        device.send(device.topics.status, status_payload("tm-04"), retain=True)

        def machines() -> list[dict[str, Any]] | None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/fleet", timeout=2) as got:
                    return json.load(got)["machines"] or None
            except OSError:  # not listening yet
                return None

        found = wait_until(machines, within_s=20, what="tm-04 from `retrotread fleet`")
        assert found[0]["machine_id"] == "tm-04" and "profile" not in found[0]["status"]
    finally:
        device.close()
        service.send_signal(signal.SIGTERM)
        out, err = service.communicate(timeout=15)
    assert service.returncode == 0, err.decode()
    assert b"retrotread fleet: serving" in out


def test_fleet_settings_link_each_tile_to_its_own_dashboard():
    settings = replace(FleetSettings(), dashboards="https://{site}-{machine_id}.gym.lan/")
    assert settings.dashboard_url("north", "tm-07") == "https://north-tm-07.gym.lan/"
