"""The broker config we ship (systemd/mosquitto/), run on a real Mosquitto: nobody gets in
without a login, a treadmill writes only under its own machine id, the fleet only reads."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from support.mosquitto import Broker, require_mosquitto
from support.waiting import wait_until

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "systemd" / "mosquitto"
SITE = "gym-north"
LOGINS = {
    "treadmill-1": "belt-one",
    "treadmill-2": "belt-two",
    "fleet": "front-desk",
    "homeassistant": "the-house",
    "auditor": "sees-all",  # the test's own: reads every topic, to see what the broker let in
}
WITHIN_S = 5.0


class Client:
    """One MQTT client as a treadmill or the front desk runs it: connected, or refused."""

    def __init__(self, broker: Broker, user: str | None, password: str | None = None):
        self.connected = threading.Event()
        self.refused: mqtt.ReasonCode | None = None
        self.received: list[tuple[str, bytes]] = []
        self._mqtt = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"test-{user}")
        if user is not None:
            self._mqtt.username_pw_set(user, password)
        self._mqtt.on_connect = self._on_connect
        self._mqtt.on_message = lambda _c, _u, msg: self.received.append((msg.topic, msg.payload))
        self._mqtt.connect("127.0.0.1", broker.port)
        self._mqtt.loop_start()

    def _on_connect(self, _client, _userdata, _flags, reason_code, _properties) -> None:
        if reason_code.is_failure:
            self.refused = reason_code
            self._mqtt.disconnect()
        self.connected.set()

    def subscribe(self, topic: str) -> None:
        done = threading.Event()
        self._mqtt.on_subscribe = lambda *_args: done.set()
        self._mqtt.subscribe(topic, qos=1)
        assert done.wait(WITHIN_S), f"no SUBACK for {topic}"

    def publish(self, topic: str, payload: str) -> None:
        self._mqtt.publish(topic, payload, qos=1).wait_for_publish(WITHIN_S)

    def close(self) -> None:
        self._mqtt.loop_stop()
        self._mqtt.disconnect()


@pytest.fixture
def gym_broker(tmp_path: Path) -> Iterator[Broker]:
    """Mosquitto with the shipped ACL (SITE filled in) and a password file with three logins."""
    require_mosquitto()
    passwd = tmp_path / "retrotread.passwd"
    for n, (user, password) in enumerate(LOGINS.items()):
        create = ["-c"] if n == 0 else []
        subprocess.run(["mosquitto_passwd", *create, "-b", str(passwd), user, password], check=True)
    acl = tmp_path / "retrotread.acl"
    auditor = "\nuser auditor\ntopic read #\n"
    acl.write_text((SHIPPED / "retrotread.acl").read_text().replace("SITE", SITE) + auditor)
    shipped = (SHIPPED / "retrotread.conf").read_text()
    settings = [
        line for line in shipped.splitlines()
        if line and not line.startswith(("#", "listener", "persistence"))
    ]  # fmt: skip
    conf = "\n".join(settings).replace("/etc/mosquitto/retrotread.passwd", str(passwd))
    conf = conf.replace("/etc/mosquitto/retrotread.acl", str(acl))
    broker = Broker(tmp_path, extra=conf + "\n").start()
    try:
        yield broker
    finally:
        broker.stop()


def logged_in(broker: Broker, user: str) -> Client:
    client = Client(broker, user, LOGINS[user])
    assert client.connected.wait(WITHIN_S) and client.refused is None, f"{user} was refused"
    return client


def test_an_anonymous_client_is_refused(gym_broker: Broker) -> None:
    stranger = Client(gym_broker, None)
    try:
        assert stranger.connected.wait(WITHIN_S)
        assert stranger.refused is not None  # "Not authorized"
    finally:
        stranger.close()


def test_a_wrong_password_is_refused(gym_broker: Broker) -> None:
    impostor = Client(gym_broker, "treadmill-1", "guessed")
    try:
        assert impostor.connected.wait(WITHIN_S) and impostor.refused is not None
    finally:
        impostor.close()


def test_a_treadmill_cannot_publish_as_another_machine(gym_broker: Broker) -> None:
    front_desk, one = logged_in(gym_broker, "fleet"), logged_in(gym_broker, "treadmill-1")
    try:
        front_desk.subscribe(f"retrotread/{SITE}/#")
        one.publish(f"retrotread/{SITE}/treadmill-2/status", '{"forged": true}')
        one.publish(f"retrotread/{SITE}/treadmill-1/status", '{"own": true}')
        # one connection's messages arrive in order: once its own is in, the forged one was
        # dropped by the broker, not merely late
        wait_until(lambda: front_desk.received, within_s=WITHIN_S, what="treadmill-1's status")
        assert front_desk.received == [(f"retrotread/{SITE}/treadmill-1/status", b'{"own": true}')]
    finally:
        front_desk.close()
        one.close()


def test_a_treadmill_writes_only_in_its_own_site(gym_broker: Broker) -> None:
    auditor, one = logged_in(gym_broker, "auditor"), logged_in(gym_broker, "treadmill-1")
    try:
        auditor.subscribe("#")
        one.publish("retrotread/gym-south/treadmill-1/status", '{"elsewhere": true}')
        one.publish("something/else", '{"off the tree": true}')
        one.publish(f"retrotread/{SITE}/treadmill-1/events", '{"here": true}')
        wait_until(lambda: auditor.received, within_s=WITHIN_S, what="treadmill-1's event")
        assert [topic for topic, _ in auditor.received] == [f"retrotread/{SITE}/treadmill-1/events"]
    finally:
        auditor.close()
        one.close()


def test_the_fleet_reads_but_cannot_write(gym_broker: Broker) -> None:
    front_desk, one = logged_in(gym_broker, "fleet"), logged_in(gym_broker, "treadmill-1")
    try:
        one.subscribe(f"retrotread/{SITE}/#")  # a treadmill may not read the site either...
        front_desk.subscribe(f"retrotread/{SITE}/#")
        front_desk.publish(f"retrotread/{SITE}/treadmill-1/status", '{"from": "the desk"}')
        one.publish(f"retrotread/{SITE}/treadmill-1/status", '{"from": "the belt"}')
        wait_until(lambda: front_desk.received, within_s=WITHIN_S, what="treadmill-1's status")
        assert front_desk.received == [
            (f"retrotread/{SITE}/treadmill-1/status", b'{"from": "the belt"}')
        ]
        assert one.received == []  # ...so it never sees the others' statuses (or its own)
    finally:
        front_desk.close()
        one.close()


def test_a_treadmill_announces_itself_to_home_assistant_only_as_itself(gym_broker: Broker) -> None:
    house, one = logged_in(gym_broker, "homeassistant"), logged_in(gym_broker, "treadmill-1")
    try:
        house.subscribe("homeassistant/device/#")
        one.publish("homeassistant/device/treadmill-2/config", '{"forged": true}')
        one.publish("homeassistant/device/treadmill-1/config", '{"own": true}')
        wait_until(lambda: house.received, within_s=WITHIN_S, what="treadmill-1's discovery")
        assert house.received == [("homeassistant/device/treadmill-1/config", b'{"own": true}')]
    finally:
        house.close()
        one.close()


def test_home_assistant_cannot_command_a_treadmill(gym_broker: Broker) -> None:
    house, front_desk = logged_in(gym_broker, "homeassistant"), logged_in(gym_broker, "fleet")
    one = logged_in(gym_broker, "treadmill-1")
    try:
        front_desk.subscribe(f"retrotread/{SITE}/#")
        house.publish(f"retrotread/{SITE}/treadmill-1/status", '{"from": "the house"}')
        one.publish(f"retrotread/{SITE}/treadmill-1/status", '{"from": "the belt"}')
        wait_until(lambda: front_desk.received, within_s=WITHIN_S, what="treadmill-1's status")
        assert [payload for _, payload in front_desk.received] == [b'{"from": "the belt"}']
    finally:
        house.close()
        front_desk.close()
        one.close()
