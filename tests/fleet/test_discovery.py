"""Home Assistant finds the treadmill by itself: one retained device-discovery message with the
fields Home Assistant documents, entities that read the status topic and can command nothing,
and the message sent again when Home Assistant comes back online."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import paho.mqtt.client as mqtt
import pytest
from jinja2 import Environment
from paho.mqtt.enums import CallbackAPIVersion
from support.mosquitto import Broker
from support.ticking import Treadmill
from support.waiting import wait_until

from device.config.model import FleetConfig
from device.fleet.discovery import HA_STATUS, discovery_payload, discovery_topic
from device.fleet.payloads import status_payload
from device.fleet.publisher import Publisher
from device.fleet.topics import Topics

TOPICS = Topics("gym", "treadmill-7")
CONFIG_TOPIC = "homeassistant/device/treadmill-7/config"


def payload() -> dict:
    return discovery_payload(TOPICS, machine_name="Treadmill 7", sw_version="1.2")


def test_the_device_block_origin_and_availability_are_as_home_assistant_documents():
    found = payload()
    assert discovery_topic("treadmill-7") == CONFIG_TOPIC
    device = {"ids": ["retrotread_treadmill-7"], "name": "Treadmill 7", "mf": "retrotread",
              "mdl": "Treadmill companion", "sw": "1.2"}  # fmt: skip
    assert found["dev"] == device
    assert found["o"]["name"] == "retrotread" and found["o"]["sw"] == "1.2" and found["o"]["url"]
    assert found["avty_t"] == TOPICS.availability
    assert (found["pl_avail"], found["pl_not_avail"]) == ("online", "offline")
    assert found["stat_t"] == TOPICS.status


def test_every_reading_is_an_entity_with_a_platform_and_a_unique_id():
    cmps = payload()["cmps"]
    platforms = {name: cmp["p"] for name, cmp in cmps.items()}
    assert platforms == {
        "speed": "sensor", "mode": "sensor", "state": "sensor", "cap": "sensor",
        "session_time": "sensor", "distance": "sensor", "kcal": "sensor",
        "warning": "binary_sensor",
    }  # fmt: skip
    units = {name: cmp.get("unit_of_measurement") for name, cmp in cmps.items()}
    assert units["speed"] == units["cap"] == "km/h"
    assert (units["session_time"], units["distance"], units["kcal"]) == ("s", "m", "kcal")
    unique = [cmp["unique_id"] for cmp in cmps.values()]
    assert len(set(unique)) == len(unique) and all("treadmill-7" in u for u in unique)


def test_nothing_in_discovery_can_command_the_treadmill():
    text = json.dumps(payload())
    for command in ("command_topic", "cmd_t", "command_template", "cmd_tpl"):
        assert command not in text


def rendered(status: dict) -> dict[str, str]:
    """What each entity's value_template shows for `status`, rendered the way Home Assistant
    renders it (Jinja, the payload as value_json)."""
    env = Environment()
    return {
        name: env.from_string(cmp["value_template"]).render(value_json=status)
        for name, cmp in payload()["cmps"].items()
    }


def test_the_templates_read_the_status_a_treadmill_sends():
    treadmill = Treadmill()
    idle = json.loads(status_payload(treadmill.device.status(0.0), at_epoch=1.7e9))
    shown = rendered(idle)
    assert shown["mode"] == "backward" and shown["state"] == "idle"
    assert shown["warning"] == "OFF"
    assert shown["distance"] == "None"  # no session: Home Assistant shows "unknown"
    treadmill.press_start()
    treadmill.belt_kmh(4.0)  # backward over the 2 km/h start cap
    treadmill.run(5.0)
    walking = json.loads(status_payload(treadmill.device.status(treadmill.now), at_epoch=1.7e9))
    shown = rendered(walking)
    assert shown["state"] == "running" and shown["warning"] == "ON"
    assert float(shown["speed"]) > 3.5 and float(shown["cap"]) == 2.0
    assert float(shown["session_time"]) > 0 and float(shown["distance"]) > 0


class HomeAssistant:
    """Home Assistant's side of the broker: it reads discovery and says when it is online."""

    def __init__(self, broker: Broker) -> None:
        self.configs: list[mqtt.MQTTMessage] = []
        subscribed = threading.Event()
        client = self.client = mqtt.Client(CallbackAPIVersion.VERSION2)
        client.on_connect = lambda c, *_args: c.subscribe("homeassistant/device/+/config", 1)
        client.on_subscribe = lambda *_args: subscribed.set()
        client.on_message = lambda _c, _u, message: self.configs.append(message)
        client.connect("127.0.0.1", broker.port)
        client.loop_start()
        assert subscribed.wait(5)

    def comes_online(self) -> None:
        self.client.publish(HA_STATUS, "online", qos=1).wait_for_publish(5)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def treadmill_publishing(broker: Broker) -> Iterator[Publisher]:
    fleet = FleetConfig(broker=broker.url, site=TOPICS.site)
    with Publisher(fleet, machine_id=TOPICS.machine_id, machine_name="Treadmill 7") as publisher:
        wait_until(lambda: publisher.health().connected, within_s=10, what="a connection")
        yield publisher


def test_discovery_is_retained_and_sent_again_when_home_assistant_comes_online(
    broker, treadmill_publishing
):
    home = HomeAssistant(broker)  # started after the treadmill: it finds the retained one
    (kept,) = wait_until(lambda: home.configs, within_s=5, what="the retained discovery")
    assert kept.topic == CONFIG_TOPIC and kept.retain
    assert json.loads(kept.payload)["cmps"]["warning"]["p"] == "binary_sensor"
    home.comes_online()  # a Home Assistant restart: its birth message
    (_, again) = wait_until(lambda: home.configs[1:] and home.configs, within_s=5,
                            what="discovery sent again")  # fmt: skip
    assert again.topic == CONFIG_TOPIC and json.loads(again.payload) == json.loads(kept.payload)
    home.close()
