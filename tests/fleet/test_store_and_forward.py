"""Store and forward, on a real Mosquitto: a finished session waits in the device's outbox
until the broker acknowledges it, through a broker outage and a daemon restart, and the front
desk gets each one whole."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import jsonschema
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from support.mosquitto import Broker
from support.waiting import wait_until

from device.config.model import FleetConfig
from device.core.modes import EndReason, Mode, SessionState
from device.core.session import Totals
from device.core.tick import Sample
from device.fleet import topics
from device.fleet.publisher import Publisher
from device.history.outbox import Outbox
from device.history.store import Store

T0 = 1_760_000_000.0  # epoch seconds
SITE, MACHINE = "gym", "treadmill-1"
SCHEMA = json.loads((Path(topics.__file__).parent / "schema" / "session.json").read_text())
# the publisher reconnects with a 1-60 s backoff: after a short outage, within ~10 s
ARRIVES_WITHIN_S = 30.0


class FrontDesk:
    """What the fleet service hears of the treadmills' sessions: subscribed at QoS 1 on a
    persistent session (clean_session off), so the broker keeps what arrives while the desk
    is reconnecting after a broker restart."""

    def __init__(self, broker: Broker) -> None:
        self.sessions: list[tuple[str, dict]] = []
        self.subscribed = threading.Event()
        self._mqtt = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id="front-desk", clean_session=False
        )
        self._mqtt.on_connect = self._on_connect
        self._mqtt.on_subscribe = lambda *_args: self.subscribed.set()
        self._mqtt.on_message = self._on_message
        self._mqtt.reconnect_delay_set(min_delay=1, max_delay=2)
        self._mqtt.connect("127.0.0.1", broker.port)
        self._mqtt.loop_start()
        assert self.subscribed.wait(10), "the front desk got no SUBACK"

    def _on_connect(self, client, _userdata, _flags, reason, _properties) -> None:
        if not reason.is_failure:
            client.subscribe(f"{topics.ROOT}/{SITE}/+/sessions/#", qos=1)

    def _on_message(self, _client, _userdata, message: mqtt.MQTTMessage) -> None:
        session = json.loads(message.payload)
        jsonschema.Draft202012Validator(SCHEMA).validate(session)
        self.sessions.append((message.topic, session))

    def uuids(self) -> list[str]:
        return [session["uuid"] for _, session in self.sessions]

    def close(self) -> None:
        self._mqtt.disconnect()
        self._mqtt.loop_stop()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "retrotread.db"


def walk(store: Store, start: float, seconds: int = 30) -> str:
    """A guest walks `seconds` backward at 2 km/h and ends with the button; its uuid."""
    session_id = store.open_session(start, mode=Mode.BACKWARD, machine_id=MACHINE)
    for second in range(seconds):
        sample = Sample(start + second, 2.0, Mode.BACKWARD, SessionState.RUNNING, 2.0)
        store.add_sample(session_id, sample)
    totals = Totals(distance_m=seconds * 2.0 / 3.6, backward_s=seconds, kcal=1.0)
    store.end_session(session_id, start + seconds, EndReason.BUTTON, totals)
    uuid = store.session_uuid(session_id)
    assert uuid is not None
    return uuid


def publisher(broker: Broker, outbox: Outbox) -> Publisher:
    fleet = FleetConfig(broker=broker.url, site=SITE)
    return Publisher(fleet, machine_id=MACHINE, machine_name="Treadmill 1", outbox=outbox)


def test_a_session_finished_while_the_broker_is_down_goes_out_when_it_is_back(
    db_path: Path, gym_broker: Broker
) -> None:
    desk = FrontDesk(gym_broker)
    # the broker saves its state every second: the desk's subscription is in it before the kill
    saved = gym_broker.home / "mosquitto.db"
    wait_until(saved.exists, within_s=10, what="the broker to save its subscriptions")
    first_save = saved.stat().st_mtime_ns
    wait_until(lambda: saved.stat().st_mtime_ns > first_save, within_s=10,
               what="the broker to save again, with the desk's subscription")  # fmt: skip
    store, outbox = Store(db_path), Outbox(db_path)
    link = publisher(gym_broker, outbox).start()
    try:
        before = walk(store, T0)
        link.session_finished()
        wait_until(lambda: desk.uuids() == [before], within_s=ARRIVES_WITHIN_S,
                   what="the first session at the front desk", showing=desk.uuids)  # fmt: skip
        wait_until(lambda: outbox.pending(10) == [], within_s=ARRIVES_WITHIN_S,
                   what="the first session marked sent")  # fmt: skip

        gym_broker.stop()  # the gym's broker dies mid-afternoon
        during = walk(store, T0 + 600)
        link.session_finished()
        # nobody acknowledged it: it waits in the file
        assert [uuid for uuid, _ in outbox.pending(10)] == [during]

        gym_broker.start()
        wait_until(lambda: outbox.pending(10) == [], within_s=ARRIVES_WITHIN_S,
                   what="the session walked during the outage marked sent")  # fmt: skip
        wait_until(lambda: during in desk.uuids(), within_s=ARRIVES_WITHIN_S,
                   what="the outage's session at the front desk", showing=desk.uuids)  # fmt: skip
        assert sorted(desk.uuids()) == sorted([before, during])  # once each
        topic, session = desk.sessions[-1]
        assert topic == topics.Topics(SITE, MACHINE).session(during)
        assert len(session["samples"]) == 30 and session["totals"]["backward_s"] == 30
    finally:
        link.close()
        store.close()
        outbox.close()
        desk.close()


def test_sessions_left_unsent_by_a_stopped_daemon_go_out_after_its_restart(
    db_path: Path, broker: Broker
) -> None:
    # the daemon walked three sessions and stopped before the broker took any of them
    with Store(db_path) as store:
        walked = [walk(store, T0 + n * 600) for n in range(3)]
    desk = FrontDesk(broker)

    store, outbox = Store(db_path), Outbox(db_path)  # the daemon starts again
    assert [uuid for uuid, _ in outbox.pending(10)] == walked
    link = publisher(broker, outbox).start()
    try:
        wait_until(lambda: len(desk.sessions) >= 3, within_s=ARRIVES_WITHIN_S,
                   what="the three sessions at the front desk", showing=desk.uuids)  # fmt: skip
        assert desk.uuids() == walked  # oldest first, once each
        wait_until(lambda: outbox.pending(10) == [], within_s=ARRIVES_WITHIN_S,
                   what="all three marked sent on the broker's acknowledgement")  # fmt: skip
        assert all(s["end_reason"] == "button" and s["machine_id"] == MACHINE
                   for _, s in desk.sessions)  # fmt: skip
    finally:
        link.close()
        store.close()
        outbox.close()
        desk.close()
