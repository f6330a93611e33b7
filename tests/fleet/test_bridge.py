"""A chain's gyms bridged to the head office: the shipped bridge config (systemd/mosquitto/
bridge.conf) between two real Mosquitto processes. Sessions a site's treadmills send reach the
fleet service at the centre (following every site), also those sent while the link was down."""

from __future__ import annotations

import json
import uuid as uuids
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from support.fleet_payloads import session_payload
from support.mosquitto import Broker, require_mosquitto
from support.waiting import wait_until

from web.fleet.board import Board
from web.fleet.receiver import FleetReceiver
from web.fleet.settings import FleetSettings
from web.fleet.store import FleetStore, SessionFilter

SHIPPED = Path(__file__).resolve().parents[2] / "systemd" / "mosquitto" / "bridge.conf"
SITE = "gym-north"
WITHIN_S = 30.0  # the bridge retries every 1-2 s here; the fleet reconnects with a backoff


def bridge_lines(central: Broker) -> str:
    """The shipped bridge for this site, pointed at the test's central broker (plain TCP,
    anonymous: TLS and the bridge's login are the centre's business)."""
    lines = []
    for line in SHIPPED.read_text().splitlines():
        if not line or line.startswith("#"):
            continue
        if line.startswith(("bridge_cafile", "remote_username", "remote_password")):
            continue
        if line.startswith("restart_timeout"):
            line = "restart_timeout 1 2"
        lines.append(line.replace("CENTRAL_HOST:8883", f"127.0.0.1:{central.port}"))
    return "\n".join(lines).replace("SITE", SITE) + "\n"


class HeadOffice:
    """`retrotread fleet` at the centre, following every site ("*"): its receiver (a
    persistent session, so what arrives while it reconnects after the centre's restart waits
    for it) and its store."""

    def __init__(self, central: Broker, db: Path):
        settings = FleetSettings(
            host="127.0.0.1", port=central.port, site=None, client_id="fleet-head-office",
            db=str(db), dashboards="http://{machine_id}.local:8080/",
        )  # fmt: skip
        self.store = FleetStore(settings.db)
        self.board = Board()
        self.receiver = FleetReceiver(settings, board=self.board, store=self.store)
        self.receiver.start()
        wait_until(lambda: self.receiver.stats().connected, within_s=5, what="the fleet's link")

    def sessions(self) -> list[str]:
        return [row.uuid for row in self.store.sessions(SessionFilter())]

    def close(self) -> None:
        self.board.close()
        self.receiver.close()
        self.store.close()


def saved_by_now(broker: Broker) -> None:
    """Wait for the broker's next save of its state (autosave_interval 1), so what it knows
    now (the fleet's persistent session) outlives a kill."""
    saved = broker.home / "mosquitto.db"
    wait_until(saved.exists, within_s=5, what="the broker's first save")
    before = saved.stat().st_mtime_ns
    wait_until(lambda: saved.stat().st_mtime_ns > before, within_s=5, what="its next save")


def send_session(site: Broker, uuid: str) -> None:
    """What a treadmill's publisher does with a finished session: QoS 1, acknowledged."""
    treadmill = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"treadmill-{uuid[:8]}")
    treadmill.connect("127.0.0.1", site.port)
    treadmill.loop_start()
    try:
        topic = f"retrotread/{SITE}/treadmill-1/sessions/{uuid}"
        payload = json.dumps(session_payload("treadmill-1", uuid))
        treadmill.publish(topic, payload, qos=1).wait_for_publish(5)
    finally:
        treadmill.loop_stop()
        treadmill.disconnect()


@pytest.fixture
def chain(tmp_path: Path) -> Iterator[tuple[Broker, Broker]]:
    require_mosquitto()
    (tmp_path / "central").mkdir()
    (tmp_path / "site").mkdir()
    central = Broker(tmp_path / "central", persistent=True).start()
    site = Broker(
        tmp_path / "site", extra="allow_anonymous true\n" + bridge_lines(central), persistent=True
    ).start()
    try:
        yield site, central
    finally:
        site.stop()
        central.stop()


def test_a_sites_sessions_reach_the_head_office(
    chain: tuple[Broker, Broker], tmp_path: Path
) -> None:
    site, central = chain
    office = HeadOffice(central, tmp_path / "fleet.db")
    first = str(uuids.uuid4())
    try:
        # the bridge connects on its own schedule: a session sent before it is up waits for it
        send_session(site, first)
        wait_until(lambda: first in office.sessions(), within_s=WITHIN_S,
                   what="the first session at the centre", showing=lambda: site.log)  # fmt: skip
    finally:
        office.close()


def test_sessions_sent_while_the_head_office_was_down_arrive_when_it_is_back(
    chain: tuple[Broker, Broker], tmp_path: Path
) -> None:
    site, central = chain
    office = HeadOffice(central, tmp_path / "fleet.db")
    before, *during = (str(uuids.uuid4()) for _ in range(4))
    try:
        send_session(site, before)
        wait_until(lambda: before in office.sessions(), within_s=WITHIN_S,
                   what="the session before the outage")  # fmt: skip
        saved_by_now(central)  # the centre remembers the fleet's subscription across its restart
        central.stop()  # the link to the head office is down
        for uuid in during:
            send_session(site, uuid)  # the site's broker takes them: the treadmills are done
        central.start()
        wait_until(
            lambda: set(during) <= set(office.sessions()),
            within_s=WITHIN_S,
            what="the sessions sent during the outage",
            showing=lambda: f"{office.sessions()}\nsite:\n{site.log}\ncentre:\n{central.log}",
        )
        # each stored once, whatever QoS 1 repeated across the reconnect; none lost
        assert sorted(office.sessions()) == sorted([before, *during])
    finally:
        office.close()
