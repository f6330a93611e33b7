"""What goes on the wire, and when: the status and event payloads (device/fleet/schema/), the
broker address as the [fleet] table writes it, and the status throttle.

Pure: time is an argument, nothing here touches the network.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from device.core.events import Event, tell
from device.core.status import ControllerStatus
from device.errors import RetrotreadError
from device.fleet.topics import FLEET_EVENT_KINDS, PAYLOAD_VERSION

STATUS_EVERY_S = 1.0  # the status's rate while nothing that matters changes: at most 1 Hz
MAX_SENTENCE = 500  # event.json's maxLength for "sentence"
MAX_DETAILS = 30  # event.json's maxProperties for "details"

_BROKER = re.compile(r"(?P<scheme>mqtts?)://(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)"
                     r"(?::(?P<port>[0-9]{1,5}))?/?")  # fmt: skip


class FleetError(RetrotreadError):
    """The fleet cannot start as configured (a password file, a CA file): one sentence."""


@dataclass(frozen=True)
class BrokerAddress:
    """Where the gym's broker listens; `tls` for mqtts:// (the port defaults follow MQTT's
    registered ones: 1883 plain, 8883 TLS)."""

    host: str
    port: int
    tls: bool

    @classmethod
    def parse(cls, url: str) -> BrokerAddress:
        found = _BROKER.fullmatch(url)
        if found is None:
            raise FleetError(
                f'[fleet] broker must be "mqtt://host:1883" or "mqtts://host:8883", not {url!r}.'
            )
        tls = found["scheme"] == "mqtts"
        port = int(found["port"]) if found["port"] else (8883 if tls else 1883)
        return cls(host=found["host"].strip("[]"), port=port, tls=tls)

    def __str__(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"


def status_payload(status: Mapping[str, Any], *, at_epoch: float) -> bytes:
    """The retained status message: the typed status with the payload version and the epoch
    time it was sent (status.json)."""
    return _compact({"v": PAYLOAD_VERSION, "at": round(at_epoch, 3), **status})


def fleet_event(event: Event) -> bool:
    """Whether the fleet hears of `event`: the safety events only (a level-up or a reload is
    the treadmill's own business)."""
    return str(event.kind) in FLEET_EVENT_KINDS


def event_payload(event: Event, *, machine_id: str, at_epoch: float) -> bytes:
    """One safety event as event.json describes it; details cut to what the schema allows."""
    details = dict(list(event.details.items())[:MAX_DETAILS])
    return _compact({
        "v": PAYLOAD_VERSION,
        "machine_id": machine_id,
        "t": round(at_epoch, 3),
        "kind": str(event.kind),
        "sentence": tell(event.kind, event.details)[:MAX_SENTENCE],
        "details": details,
    })  # fmt: skip


def _compact(payload: dict[str, Any]) -> bytes:
    # default=str: a detail that is not plain JSON (an enum, a Path) is sent as its words
    # rather than losing the whole message
    return json.dumps(payload, separators=(",", ":"), default=str).encode()


def status_change(status: ControllerStatus) -> tuple[object, ...]:
    """What, when it changes, is published at once rather than at the next second: the state,
    the mode, a warning coming or going, and the enforcement (the action, an enforced stop
    underway, a soft stop under way, the relay, a latch)."""
    warning = status.get("warning")
    return (
        status.get("state"),
        status.get("mode"),
        warning is not None,
        bool(warning and warning.get("enforced")),
        status.get("enforcement"),
        status.get("cap_enforced"),
        status.get("slowing"),
        status.get("relay"),
        status.get("latched"),
    )


class StatusThrottle:
    """Decides, tick by tick, whether this status goes out: at most one a `every_s`, and at
    once on a change that matters (status_change). `now` is the tick's monotonic time."""

    def __init__(self, every_s: float = STATUS_EVERY_S) -> None:
        self.every_s = every_s
        self._sent_at: float | None = None
        self._change: tuple[object, ...] | None = None

    def due(self, status: ControllerStatus, now: float) -> bool:
        change = status_change(status)
        if (
            self._sent_at is not None
            and change == self._change
            and now - self._sent_at < self.every_s
        ):
            return False
        self._sent_at, self._change = now, change
        return True
