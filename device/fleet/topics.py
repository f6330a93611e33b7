"""The topic tree under `retrotread/<site>/<machine_id>/`, and the versions of its payloads.

    availability      "online" / "offline", retained; the broker sends "offline" as the last
                      will when the device vanishes
    status            the device status (device.core.status.DeviceStatus) plus "v" and "at",
                      retained; at most 1 Hz, and at once on a change of state, mode, warning
                      or enforcement
    events            one safety event a message (warning, enforced stop, sensor fault, start
                      refused), QoS 1, not retained
    sessions/<uuid>   one finished session a message (totals, segments, profile, level, end
                      reason, events, 1 Hz samples), QoS 1, not retained; receivers upsert by
                      the uuid, so a duplicate after a reconnect is harmless

The payloads are JSON, described by the JSON Schemas in device/fleet/schema/ (draft 2020-12).
A site and a machine id are one topic level each: no "/", "+", "#" or NUL.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from device.config.rules import EVERY_SITE, TOPIC_LEVEL

ROOT = "retrotread"
PAYLOAD_VERSION = 1  # "v" in every JSON payload; a receiver refuses versions it does not know

ONLINE = "online"
OFFLINE = "offline"

# one topic level: no MQTT wildcard or separator; the config's rule for site and machine id
_LEVEL = re.compile(TOPIC_LEVEL)

# the safety events a fleet hears about (device.core.events.EventKind values)
FLEET_EVENT_KINDS = (
    "overspeed_warning",
    "enforced_stop",
    "not_enforced",
    "sensor_lost",
    "sensor_restored",
    "start_refused",
    "stop_held",
    "slowdown_asked",
    "slowed",
    "console_ignores_speed",
)


def valid_level(name: str) -> bool:
    """Whether `name` can be one topic level (a site or a machine id)."""
    return bool(_LEVEL.fullmatch(name))


@dataclass(frozen=True)
class Topics:
    """The topics of one treadmill."""

    site: str
    machine_id: str

    @property
    def base(self) -> str:
        return f"{ROOT}/{self.site}/{self.machine_id}"

    @property
    def availability(self) -> str:
        return f"{self.base}/availability"

    @property
    def status(self) -> str:
        return f"{self.base}/status"

    @property
    def events(self) -> str:
        return f"{self.base}/events"

    def session(self, uuid: str) -> str:
        return f"{self.base}/sessions/{uuid}"


def site_filter(site: str | None) -> str:
    """What a fleet subscribes to: one site's treadmills, or every site's (a chain's head
    office) when `site` is None or "*"."""
    return f"{ROOT}/{site}/#" if site not in (None, EVERY_SITE) else f"{ROOT}/+/#"
