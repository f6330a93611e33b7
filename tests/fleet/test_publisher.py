"""The treadmill's MQTT publisher against a real Mosquitto: what the gym's broker hears from a
treadmill (availability, status, safety events, finished sessions), when, and that nothing the
broker does (down, restarted, refusing, silent) reaches the tick."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid as uuids
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from jsonschema import Draft202012Validator
from paho.mqtt.enums import CallbackAPIVersion
from support.daemon_thread import daemon_running
from support.mosquitto import Broker
from support.ports import free_port
from support.ticking import Treadmill
from support.waiting import wait_until

from device.config.kinds import ConfigError
from device.config.load import config_from_mapping
from device.config.model import Config, FleetConfig, MachineConfig
from device.core.events import Event, EventKind
from device.daemon import Daemon
from device.fleet.payloads import BrokerAddress
from device.fleet.publisher import EVENTS_KEPT, FleetError, Publisher, read_password
from device.fleet.topics import Topics

SCHEMA = Path(__file__).resolve().parents[2] / "device" / "fleet" / "schema"
STATUS_SCHEMA = Draft202012Validator(json.loads((SCHEMA / "status.json").read_text()))
EVENT_SCHEMA = Draft202012Validator(json.loads((SCHEMA / "event.json").read_text()))
TOPICS = Topics("gym", "treadmill-7")
WITHIN_S = 15.0  # a reconnect waits 1 s, then 2, 4 ...: a few tries fit


class Listener:
    """Someone at the front desk with an MQTT client: everything on `topics`, in order."""

    def __init__(self, broker: Broker, *topics: str) -> None:
        self.messages: list[mqtt.MQTTMessage] = []
        self._subscribed = threading.Event()
        client = self.client = mqtt.Client(CallbackAPIVersion.VERSION2)
        client.on_connect = lambda c, _u, _f, _rc, _p: c.subscribe([(t, 1) for t in topics])
        client.on_subscribe = lambda *_args: self._subscribed.set()
        client.on_message = lambda _c, _u, message: self.messages.append(message)
        client.connect("127.0.0.1", broker.port)
        client.loop_start()
        assert self._subscribed.wait(5), "the listener could not subscribe"

    def on(self, topic: str) -> list[mqtt.MQTTMessage]:
        return [m for m in list(self.messages) if m.topic == topic]

    def under(self, prefix: str) -> list[mqtt.MQTTMessage]:
        return [m for m in list(self.messages) if m.topic.startswith(prefix)]

    def payloads(self, topic: str) -> list[dict]:
        return [json.loads(m.payload) for m in self.on(topic)]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class MemoryOutbox:
    """Finished sessions waiting for the broker, in memory, the way the history's outbox
    behaves: pending until marked sent."""

    def __init__(self) -> None:
        self.rows: dict[str, bytes] = {}
        self.sent: list[str] = []

    def add(self) -> str:
        uuid = str(uuids.uuid4())
        self.rows[uuid] = json.dumps({"v": 1, "uuid": uuid}).encode()
        return uuid

    def pending(self, limit: int) -> list[tuple[str, bytes]]:
        return [(u, p) for u, p in list(self.rows.items()) if u not in self.sent][:limit]

    def mark_sent(self, uuid: str) -> None:
        self.sent.append(uuid)


def fleet_at(url: str, **keys: str) -> FleetConfig:
    return FleetConfig(broker=url, site=TOPICS.site, **keys)


@pytest.fixture
def listener(broker: Broker) -> Iterator[Listener]:
    heard = Listener(broker, f"{TOPICS.base}/#")
    yield heard
    heard.close()


def connected(publisher: Publisher) -> Publisher:
    wait_until(lambda: publisher.health().connected, within_s=WITHIN_S, what="a connection")
    return publisher


@pytest.fixture
def outbox() -> MemoryOutbox:
    return MemoryOutbox()


@pytest.fixture
def publisher(broker: Broker, outbox: MemoryOutbox) -> Iterator[Publisher]:
    with Publisher(fleet_at(broker.url), machine_id=TOPICS.machine_id, machine_name="Seven",
                   outbox=outbox) as started:  # fmt: skip
        yield connected(started)


def test_the_status_arrives_retained_with_its_version_and_fits_the_schema(
    broker, listener, publisher
):
    publisher.publish_status(Treadmill().device.status(0.0), 0.0)
    wait_until(lambda: listener.on(TOPICS.status), within_s=5, what="the status")
    late = Listener(broker, TOPICS.status)  # someone who looks later still finds it
    (message,) = wait_until(lambda: late.on(TOPICS.status), within_s=5, what="the status")
    assert message.retain
    status = json.loads(message.payload)
    assert status["v"] == 1 and status["machine_id"] == "treadmill-1" and status["at"] > 1e9
    assert list(STATUS_SCHEMA.iter_errors(status)) == []
    late.close()


def test_the_status_goes_out_once_a_second_while_nothing_changes_and_at_once_on_a_start(
    listener, publisher
):
    treadmill = Treadmill()
    idle = treadmill.device.status(0.0)
    for tick in range(25):  # 2.5 s of ticks at 10 Hz, idle all along
        publisher.publish_status(idle, tick / 10)
        time.sleep(0.01)  # pacing the ticks, not a check: the sender sends between them
    treadmill.press_start()
    running = treadmill.device.status(treadmill.now)
    publisher.publish_status(running, 2.5)  # half a second after the last: a change goes now
    wait_until(lambda: listener.on(TOPICS.status)[3:], within_s=5, what="the running status")
    assert [s["state"] for s in listener.payloads(TOPICS.status)] == ["idle"] * 3 + ["running"]


def walk_over_the_cap() -> list[Event]:
    treadmill = Treadmill()
    treadmill.press_start()
    treadmill.belt_kmh(4.0)  # backward, twice the start cap
    treadmill.run(5.0)
    return treadmill.events()


def test_a_safety_event_arrives_at_qos_1_and_fits_the_schema(listener, publisher):
    events = walk_over_the_cap()
    warning = next(e for e in events if e.kind == EventKind.OVERSPEED_WARNING)
    started = next(e for e in events if e.kind == EventKind.SESSION_STARTED)
    assert publisher.publish_event(warning, at_epoch=time.time())
    assert not publisher.publish_event(started, at_epoch=time.time())  # not a safety event
    (message,) = wait_until(lambda: listener.on(TOPICS.events), within_s=5, what="the event")
    assert message.qos == 1 and not message.retain
    event = json.loads(message.payload)
    assert event["kind"] == "overspeed_warning" and event["sentence"].startswith("warning")
    assert list(EVENT_SCHEMA.iter_errors(event)) == []


VANISHING = """
import sys, time
from device.config.model import FleetConfig
from device.fleet.publisher import Publisher
p = Publisher(FleetConfig(broker=sys.argv[1], site="gym"), machine_id="treadmill-7",
              machine_name="Seven").start()
while not p.health().connected:
    time.sleep(0.01)
print("connected", flush=True)
time.sleep(60)
"""


def test_the_broker_says_offline_when_the_treadmill_vanishes(broker, listener):
    treadmill = subprocess.Popen([sys.executable, "-c", VANISHING, broker.url],
                                 stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert treadmill.stdout is not None and treadmill.stdout.readline() == "connected\n"
        wait_until(lambda: listener.on(TOPICS.availability), within_s=5, what="online")
        treadmill.kill()  # a power cut: no DISCONNECT, the socket just closes
    finally:
        treadmill.kill()
        treadmill.wait(5)
    wait_until(lambda: listener.on(TOPICS.availability)[1:], within_s=WITHIN_S,
               what="the last will")  # fmt: skip
    assert [m.payload for m in listener.on(TOPICS.availability)] == [b"online", b"offline"]
    late = Listener(broker, TOPICS.availability)  # the fleet, started later, knows it too
    (kept,) = wait_until(lambda: late.on(TOPICS.availability), within_s=5, what="retained")
    assert kept.retain and kept.payload == b"offline"
    late.close()


def test_the_treadmill_reconnects_when_the_broker_comes_back(broker, publisher):
    broker.stop()
    wait_until(lambda: not publisher.health().connected, within_s=5, what="the link lost")
    wait_until(lambda: publisher.health().failed_connects, within_s=WITHIN_S, what="a retry")
    error = publisher.health().error
    assert error is not None and str(publisher.broker) in error and "\n" not in error
    publisher.publish_status(Treadmill().device.status(0.0), 100.0)  # dropped meanwhile
    assert publisher.health().status_dropped == 1
    broker.start()
    connected(publisher)
    assert publisher.health().error is None
    # the retained status is refreshed and the treadmill is online again, retained
    back = Listener(broker, TOPICS.status, TOPICS.availability)
    wait_until(lambda: back.on(TOPICS.status), within_s=5, what="the refreshed status")
    assert (
        wait_until(lambda: back.on(TOPICS.availability), within_s=5, what="online")[0].payload
        == b"online"
    )
    back.close()


def test_a_session_is_marked_sent_only_once_the_broker_has_acknowledged_it(
    broker, publisher, outbox
):
    broker.stop()
    wait_until(lambda: not publisher.health().connected, within_s=5, what="the link lost")
    uuid = outbox.add()
    publisher.session_finished()
    wait_until(lambda: publisher.health().failed_connects, within_s=WITHIN_S, what="a retry")
    assert outbox.sent == []  # nobody acknowledged it: it stays in the outbox
    broker.start()
    front_desk = Listener(broker, f"{TOPICS.base}/sessions/#")  # before the treadmill is back
    wait_until(lambda: outbox.sent, within_s=WITHIN_S, what="the session marked sent")
    assert outbox.sent == [uuid]
    (message,) = wait_until(lambda: front_desk.on(TOPICS.session(uuid)), within_s=5,
                            what="the front desk hearing it")  # fmt: skip
    assert message.qos == 1 and json.loads(message.payload)["uuid"] == uuid
    front_desk.close()


def test_a_backlog_of_sessions_drains_a_few_at_a_time(listener, publisher, outbox):
    backlog = [outbox.add() for _ in range(15)]
    publisher.session_finished()
    wait_until(lambda: len(outbox.sent) == 15, within_s=WITHIN_S, what="the backlog sent",
               showing=lambda: len(outbox.sent))  # fmt: skip
    assert outbox.sent == backlog  # oldest first, each once
    assert publisher.health().sessions_sent == 15

    def heard() -> list[str]:
        return [m.topic.rsplit("/", 1)[1] for m in listener.under(f"{TOPICS.base}/sessions/")]

    wait_until(lambda: len(heard()) >= 15, within_s=5, what="the front desk hearing them")
    assert heard() == backlog


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that takes TCP connections and never says a word: a broker that hangs."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        yield server.getsockname()[1]


@pytest.mark.parametrize("broker_is", ["down", "silent"])
def test_publish_status_never_waits_on_a_broker_that_is_down_or_silent(broker_is, silent_port):
    port = silent_port if broker_is == "silent" else free_port()  # nothing listens there
    treadmill = Treadmill()
    idle = treadmill.device.status(0.0)
    treadmill.press_start()
    walking = treadmill.device.status(treadmill.now)
    warning = next(e for e in walk_over_the_cap() if e.kind == EventKind.OVERSPEED_WARNING)
    with Publisher(fleet_at(f"mqtt://127.0.0.1:{port}"), machine_id="t7",
                   machine_name="Seven") as publisher:  # fmt: skip
        took = []
        for tick in range(1000):  # every tick a change of state: each one is due
            start = time.perf_counter()
            publisher.publish_status(walking if tick % 2 else idle, tick / 10)
            publisher.publish_event(warning, at_epoch=time.time())
            took.append(time.perf_counter() - start)
        health = publisher.health()
    assert not health.connected
    assert health.status_dropped == 1000  # each dropped at once, none waited for
    assert health.events_waiting == EVENTS_KEPT  # bounded: the oldest let go, counted
    assert health.events_dropped == 1000 - EVENTS_KEPT
    assert sorted(took)[500] < 0.001 and sum(took) < 1.0


def test_a_password_file_others_can_read_is_refused_in_one_sentence(tmp_path):
    secret = tmp_path / "broker.pw"
    secret.write_text("hunter2\n")
    os.chmod(secret, 0o644)
    fleet = fleet_at("mqtt://127.0.0.1:1", username="treadmill-7", password_file=str(secret))
    with pytest.raises(FleetError) as refused:
        Publisher(fleet, machine_id="treadmill-7", machine_name="Seven")
    sentence = str(refused.value)
    assert str(secret) in sentence and "chmod 600" in sentence
    assert sentence.endswith(".") and sentence.count(". ") == 0 and "\n" not in sentence
    os.chmod(secret, 0o600)
    assert read_password(str(secret)) == "hunter2"


def test_a_missing_password_file_is_refused_in_one_sentence(tmp_path):
    missing = tmp_path / "nothing.pw"
    with pytest.raises(FleetError, match="does not exist; create it"):
        read_password(str(missing))


def test_the_daemon_will_not_start_with_an_open_password_file(tmp_path, socket_dir,
                                                              mock_factory):  # fmt: skip
    secret = tmp_path / "broker.pw"
    secret.write_text("hunter2\n")
    os.chmod(secret, 0o604)
    fleet = fleet_at("mqtt://127.0.0.1:1", username="treadmill-7", password_file=str(secret))
    daemon = Daemon(Config(fleet=fleet), socket_path=str(socket_dir / "d.sock"),
                    db_path=str(tmp_path / "h.db"), pin_factory=mock_factory)  # fmt: skip
    with pytest.raises(FleetError, match="can be read by other users"):
        daemon.run()


def test_the_broker_address_is_checked_with_the_config():
    with pytest.raises(ConfigError, match=r"\[fleet\] broker must be empty \(no fleet\)"):
        config_from_mapping({"fleet": {"broker": "http://broker.local"}})
    assert config_from_mapping({"fleet": {"broker": "mqtts://broker.local"}}).fleet.broker
    assert BrokerAddress.parse("mqtts://broker.local") == BrokerAddress("broker.local", 8883, True)
    assert BrokerAddress.parse("mqtt://[::1]:1884") == BrokerAddress("::1", 1884, False)


def test_the_daemon_publishes_its_status_and_says_offline_when_it_stops(
    broker, listener, tmp_path, socket_dir, mock_factory
):
    config = Config(machine=MachineConfig(id=TOPICS.machine_id, name="Seven"),
                    fleet=fleet_at(broker.url))  # fmt: skip
    with daemon_running(config, socket_path=socket_dir / "d.sock", db_path=tmp_path / "h.db",
                        pin_factory=mock_factory):  # fmt: skip
        (first, *_) = wait_until(lambda: listener.payloads(TOPICS.status), within_s=WITHIN_S,
                                 what="the daemon's status")  # fmt: skip
        assert first["machine_id"] == TOPICS.machine_id and first["machine_name"] == "Seven"
        assert list(STATUS_SCHEMA.iter_errors(first)) == []

    def said() -> list[bytes]:
        return [m.payload for m in listener.on(TOPICS.availability)]

    wait_until(lambda: said()[-1:] == [b"offline"], within_s=5, what="offline", showing=said)
    assert said() == [b"online", b"offline"]  # said on its way out, cleanly


def test_with_no_broker_the_daemon_has_no_fleet(tmp_path, socket_dir, mock_factory):
    with daemon_running(Config(), socket_path=socket_dir / "d.sock", db_path=tmp_path / "h.db",
                        pin_factory=mock_factory) as daemon:  # fmt: skip
        assert daemon._fleet is None


def test_a_broker_that_refuses_the_treadmill_is_one_sentence_and_changes_nothing(tmp_path):
    refusing = Broker(tmp_path, extra="allow_anonymous false\n").start()
    try:
        with Publisher(fleet_at(refusing.url), machine_id="t7", machine_name="Seven") as publisher:
            error = wait_until(lambda: publisher.health().error, within_s=WITHIN_S,
                               what="the refusal said")  # fmt: skip
            publisher.publish_status(Treadmill().device.status(0.0), 0.0)
            assert not publisher.health().connected and publisher.health().status_dropped == 1
        assert "refused the treadmill" in error and "[fleet] username" in error
    finally:
        refusing.stop()
