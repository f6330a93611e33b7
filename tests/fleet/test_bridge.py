"""A chain's gyms bridged to the head office: the shipped bridge config (systemd/mosquitto/
bridge.conf) between two real Mosquitto processes. Sessions a site's treadmills send reach the
central broker, also those sent while the link to it was down."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from support.mosquitto import Broker, have_mosquitto
from support.waiting import wait_until

SHIPPED = Path(__file__).resolve().parents[2] / "systemd" / "mosquitto" / "bridge.conf"
SITE = "gym-north"
WITHIN_S = 15.0  # the bridge retries every 1-2 s here (restart_timeout), a few times at most


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
    """The fleet's subscription at the centre: a persistent session, so what arrives while
    it reconnects after the centre's restart waits for it."""

    def __init__(self, central: Broker):
        self.received: list[dict] = []
        self.subscribed = threading.Event()
        self._mqtt = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id="fleet-head-office", clean_session=False
        )
        self._mqtt.reconnect_delay_set(min_delay=0.1, max_delay=0.5)
        self._mqtt.on_connect = lambda c, *_: c.subscribe("retrotread/+/#", qos=1)
        self._mqtt.on_subscribe = lambda *_: self.subscribed.set()
        self._mqtt.on_message = lambda _c, _u, m: self.received.append(json.loads(m.payload))
        self._mqtt.connect("127.0.0.1", central.port)
        self._mqtt.loop_start()

    def sessions(self) -> list[str]:
        return [message["uuid"] for message in self.received]

    def close(self) -> None:
        self._mqtt.loop_stop()
        self._mqtt.disconnect()


def send_session(site: Broker, uuid: str) -> None:
    """What a treadmill's publisher does with a finished session: QoS 1, acknowledged."""
    treadmill = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"treadmill-{uuid}")
    treadmill.connect("127.0.0.1", site.port)
    treadmill.loop_start()
    try:
        topic = f"retrotread/{SITE}/treadmill-1/sessions/{uuid}"
        treadmill.publish(topic, json.dumps({"uuid": uuid}), qos=1).wait_for_publish(5)
    finally:
        treadmill.loop_stop()
        treadmill.disconnect()


@pytest.fixture
def chain(tmp_path: Path) -> Iterator[tuple[Broker, Broker]]:
    if not have_mosquitto():
        pytest.skip("mosquitto is not installed (apt install mosquitto)")
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


def test_a_sites_sessions_reach_the_head_office(chain: tuple[Broker, Broker]) -> None:
    site, central = chain
    office = HeadOffice(central)
    try:
        assert office.subscribed.wait(5)
        # the bridge connects on its own schedule: a session sent before it is up waits for it
        send_session(site, "first")
        wait_until(lambda: "first" in office.sessions(), within_s=WITHIN_S,
                   what="the first session at the centre", showing=lambda: site.log)  # fmt: skip
    finally:
        office.close()


def test_sessions_sent_while_the_head_office_was_down_arrive_when_it_is_back(
    chain: tuple[Broker, Broker],
) -> None:
    site, central = chain
    office = HeadOffice(central)
    try:
        assert office.subscribed.wait(5)
        send_session(site, "before")
        wait_until(lambda: "before" in office.sessions(), within_s=WITHIN_S,
                   what="the session before the outage")  # fmt: skip
        central.stop()  # the link to the head office is down
        for uuid in ("during-1", "during-2", "during-3"):
            send_session(site, uuid)  # the site's broker takes them: the treadmills are done
        central.start()
        wait_until(
            lambda: {"during-1", "during-2", "during-3"} <= set(office.sessions()),
            within_s=WITHIN_S,
            what="the sessions sent during the outage",
            showing=lambda: f"arrived: {office.sessions()}\nsite log:\n{site.log}",
        )
        # QoS 1 may repeat a message across a reconnect (receivers upsert by uuid); none lost
        assert set(office.sessions()) == {"before", "during-1", "during-2", "during-3"}
    finally:
        office.close()
