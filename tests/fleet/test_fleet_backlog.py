"""A backlog draining after an outage does not hold the live grid up, and every session of it
is stored once. (How long a status waits during a real drain of 1,000 sessions is measured by
`make bench`, section Fleet: the session thread took its p95 from 3.7 s to 82 ms.)"""

from __future__ import annotations

import json
import uuid as uuids
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from support.fleet_payloads import session_payload, status_payload
from support.mosquitto import Broker
from support.waiting import wait_until

from device.fleet.topics import Topics
from web.fleet.board import Board
from web.fleet.receiver import FleetReceiver
from web.fleet.settings import FleetSettings
from web.fleet.store import FleetStore

SITE = "northgym"
BACKLOG = 300  # ten-minute sessions: seconds of checking and storing for the session thread


@pytest.fixture
def receiver(broker: Broker, tmp_path: Path) -> Iterator[FleetReceiver]:
    settings = FleetSettings(
        host="127.0.0.1", port=broker.port, site=SITE, client_id="fleet-backlog",
        db=str(tmp_path / "fleet.db"), dashboards="http://{machine_id}.local:8080/",
    )  # fmt: skip
    store, board = FleetStore(settings.db), Board()
    running = FleetReceiver(settings, board=board, store=store)
    running.start()
    wait_until(lambda: running.stats().connected, within_s=10, what="the fleet's link")
    try:
        yield running
    finally:
        board.close()
        running.close()
        store.close()


def test_a_status_is_on_the_grid_while_a_backlog_of_sessions_is_still_being_stored(
    broker: Broker, receiver: FleetReceiver
) -> None:
    topics = Topics(SITE, "tm-07")
    treadmill = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="tm-07")
    treadmill.connect("127.0.0.1", broker.port)
    treadmill.loop_start()
    try:
        samples = [[1.7e9 + s, 2.0, "backward", "running", 2.5] for s in range(600)]
        for _ in range(BACKLOG):  # what a treadmill's outbox sends after a day offline
            uuid = str(uuids.uuid4())
            payload = session_payload("tm-07", uuid, samples=samples)
            treadmill.publish(topics.session(uuid), json.dumps(payload), qos=1)
        status = status_payload("tm-07", speed_kmh=3.3)
        treadmill.publish(topics.status, json.dumps(status), qos=0, retain=True).wait_for_publish(5)

        def on_the_grid() -> bool:
            tile = next((t for t in receiver.board.tiles() if t.key == (SITE, "tm-07")), None)
            return tile is not None and tile.status is not None and tile.status["speed_kmh"] == 3.3

        wait_until(on_the_grid, within_s=2, what="the status behind the backlog on the grid")
        assert receiver.stats().sessions_stored < BACKLOG  # the backlog was still draining
        wait_until(lambda: receiver.stats().sessions_stored == BACKLOG, within_s=60,
                   what="the whole backlog stored")  # fmt: skip
        assert receiver.stats().duplicates == 0
    finally:
        treadmill.loop_stop()
        treadmill.disconnect()
