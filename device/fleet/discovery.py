"""Home Assistant's MQTT device discovery: one retained message that makes the treadmill a
device in Home Assistant, with read-only entities on its status topic.

Device-based discovery (Home Assistant 2024.11 and later) puts every entity of a device in
one payload on `homeassistant/device/<id>/config`: the device block "dev", the origin "o",
the availability topic, and "cmps", each component with its platform "p" and a unique_id.
It is retained, and re-sent when Home Assistant announces itself "online" on
`homeassistant/status` (a Home Assistant restarted on a broker that lost its retained
messages). No component has a command topic: nothing in Home Assistant can command the
treadmill; the safety rules stay on the device.
"""

from __future__ import annotations

import json
from typing import Any

from device.fleet.topics import OFFLINE, ONLINE, Topics

PREFIX = "homeassistant"  # Home Assistant's default discovery prefix
HA_STATUS = f"{PREFIX}/status"  # its birth ("online") and last will ("offline")
ORIGIN_URL = "https://github.com/retrotread/retrotread"


def discovery_topic(machine_id: str) -> str:
    return f"{PREFIX}/device/{machine_id}/config"


def _sensor(name: str, key: str, *, unit: str | None = None, device_class: str | None = None,
            state_class: str | None = None, icon: str | None = None) -> dict[str, Any]:  # fmt: skip
    # A null in the status (no session, an unknown speed) renders as "None", which Home
    # Assistant's MQTT sensor takes for "unknown" rather than an error.
    cmp: dict[str, Any] = {"p": "sensor", "name": name,
                           "value_template": f"{{{{ value_json.{key} }}}}"}  # fmt: skip
    if unit is not None:
        cmp["unit_of_measurement"] = unit
    if device_class is not None:
        cmp["device_class"] = device_class
    if state_class is not None:
        cmp["state_class"] = state_class
    if icon is not None:
        cmp["icon"] = icon
    return cmp


def components() -> dict[str, dict[str, Any]]:
    """The entities, keyed by their object id (unique_id is added per machine)."""
    return {
        "speed": _sensor("Belt speed", "speed_kmh", unit="km/h", device_class="speed",
                         state_class="measurement"),
        "mode": _sensor("Mode", "mode", device_class="enum", icon="mdi:swap-horizontal"),
        "state": _sensor("Session state", "state", device_class="enum", icon="mdi:walk"),
        "cap": _sensor("Speed cap", "cap_kmh", unit="km/h", device_class="speed",
                       state_class="measurement"),
        "session_time": _sensor("Session time", "elapsed_s", unit="s", device_class="duration",
                                state_class="measurement"),
        "distance": _sensor("Session distance", "distance_m", unit="m",
                            device_class="distance", state_class="total_increasing"),
        # an estimate (energy.py): no device_class, so Home Assistant does not put it in its
        # energy dashboard beside metered kWh
        "kcal": _sensor("Energy (estimate)", "kcal", unit="kcal", state_class="total_increasing",
                        icon="mdi:fire"),
        "warning": {
            "p": "binary_sensor",
            "name": "Over-speed warning",
            "device_class": "problem",
            "value_template": "{{ 'ON' if value_json.warning else 'OFF' }}",
            "payload_on": "ON",
            "payload_off": "OFF",
        },
    }  # fmt: skip


# enum sensors list their options, so Home Assistant shows them and can automate on them
_OPTIONS = {"mode": ["forward", "backward"], "state": ["idle", "running", "paused"]}


def discovery_payload(topics: Topics, *, machine_name: str, sw_version: str) -> dict[str, Any]:
    """The device-based discovery payload for one treadmill."""
    cmps: dict[str, dict[str, Any]] = {}
    for object_id, cmp in components().items():
        cmp = {**cmp, "unique_id": f"retrotread_{topics.machine_id}_{object_id}"}
        if object_id in _OPTIONS:
            cmp["options"] = _OPTIONS[object_id]
        cmps[object_id] = cmp
    return {
        "dev": {
            "ids": [f"retrotread_{topics.machine_id}"],
            "name": machine_name,
            "mf": "retrotread",
            "mdl": "Treadmill companion",
            "sw": sw_version,
        },
        "o": {"name": "retrotread", "sw": sw_version, "url": ORIGIN_URL},
        "avty_t": topics.availability,
        "pl_avail": ONLINE,
        "pl_not_avail": OFFLINE,
        "stat_t": topics.status,  # shared by every component
        "cmps": cmps,
    }


def discovery_message(topics: Topics, *, machine_name: str, sw_version: str) -> bytes:
    payload = discovery_payload(topics, machine_name=machine_name, sw_version=sw_version)
    return json.dumps(payload, separators=(",", ":")).encode()
