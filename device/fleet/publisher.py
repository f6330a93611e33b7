"""The treadmill's link to the gym's MQTT broker: availability, status, safety events and
finished sessions (device.fleet.topics), and Home Assistant's discovery.

Two threads do the work, neither of them the tick's: paho-mqtt's network thread (loop_start:
connects, reconnects with a 1-60 s backoff, reads acknowledgements) and the publisher's own
sender, which takes what the tick left and hands it to paho. The tick only stores a
reference and sets a flag: publish_status and publish_event never block and never raise, so
a broker that is down, slow or refusing cannot delay a safety decision.

QoS: the status is retained at QoS 0. It is replaced every second, so one lost on the way
is superseded within a second, and QoS 1 would have paho keep stale copies in memory while a
slow link catches up. Events and sessions are QoS 1. Availability is retained at QoS 1 with
the last will "offline", so the fleet sees a treadmill that vanished.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import logging
import os
import stat
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from device.config.model import FleetConfig
from device.core.events import Event
from device.core.status import ControllerStatus
from device.fleet.discovery import HA_STATUS, discovery_message, discovery_topic
from device.fleet.payloads import (
    BrokerAddress,
    FleetError,
    StatusThrottle,
    event_payload,
    fleet_event,
    status_payload,
)
from device.fleet.topics import OFFLINE, ONLINE, Topics, valid_level

__all__ = ["FleetError", "LinkHealth", "Publisher", "SessionOutbox", "read_password"]

log = logging.getLogger("retrotread.fleet")

RECONNECT_MIN_S, RECONNECT_MAX_S = 1, 60
KEEPALIVE_S = 30  # the broker declares the treadmill gone (last will) after 1.5 x this
# Safety events kept while the broker is away. A session's own events also reach the fleet in
# its outbox row, so these are the live view only: 100 covers a long outage of warnings (one
# every few seconds at worst) without a Pi's memory growing; past it the oldest go, counted.
EVENTS_KEPT = 100
# Sessions handed to paho at once; the next few go when these are acknowledged. A session
# with its 1 Hz samples is some 100 kB: a few keep a backlog draining while the status, sent
# between the batches, still goes out every second.
SESSIONS_IN_FLIGHT = 4
# Besides after a (re)connect and a finished session: the writer commits a session's outbox
# row on its own thread, maybe just after the tick said it finished.
SESSIONS_LOOK_EVERY_S = 10.0
PAHO_QUEUE = 500  # QoS 1 messages paho may hold in memory (availability, events, sessions)
STOP_WAIT_S = 2.0  # at shutdown, how long "offline" may take to be acknowledged


class SessionOutbox(Protocol):
    """Finished sessions waiting for the broker (device.history.outbox.Outbox). Both are
    called from the publisher's sender thread only."""

    # (uuid, JSON payload), oldest first
    def pending(self, limit: int) -> list[tuple[str, bytes]]: ...

    def mark_sent(self, uuid: str) -> None: ...


@dataclass(frozen=True)
class LinkHealth:
    """The link to the broker, for the status's health part."""

    connected: bool
    error: str | None  # one sentence while the link is down or refused, else None
    status_dropped: int  # statuses due while disconnected (the retained one is refreshed)
    events_dropped: int  # events let go past EVENTS_KEPT while disconnected
    events_waiting: int
    sessions_sent: int  # acknowledged by the broker since start
    failed_connects: int


def read_password(path: str) -> str:
    """The broker password from [fleet] password_file, which only the service user (and its
    group) may read; FleetError, one sentence, for a file that is missing or open to others."""
    try:
        info = os.stat(path)
        if info.st_mode & stat.S_IRWXO:
            raise FleetError(
                f"[fleet] password_file {path} can be read by other users; "
                f"run: chmod 600 {path} (owned by the user the device runs as)."
            )
        with open(path, encoding="utf-8") as fh:
            return fh.readline().rstrip("\r\n")
    except FileNotFoundError:
        raise FleetError(
            f"[fleet] password_file {path} does not exist; create it with the broker password "
            "for this treadmill (chmod 600), or leave password_file empty."
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise FleetError(
            f"[fleet] password_file {path} cannot be read ({exc.__class__.__name__}); make it "
            "a UTF-8 text file readable by the user the device runs as (chmod 600)."
        ) from None


class Publisher:
    """One treadmill's publisher. start() returns at once (the connection is made on paho's
    thread); close() says "offline" and stops both threads."""

    def __init__(
        self,
        fleet: FleetConfig,
        *,
        machine_id: str,
        machine_name: str,
        outbox: SessionOutbox | None = None,
        sw_version: str | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.broker = BrokerAddress.parse(fleet.broker)
        if not valid_level(fleet.site):  # "*" is for a fleet service, never a treadmill
            raise FleetError(
                f'[fleet] site = "{fleet.site}" follows every site, which only a fleet service '
                "may; give this treadmill its gym's site name."
            )
        self.topics = Topics(fleet.site, machine_id)
        self._outbox = outbox
        self._wall_clock = wall_clock
        self._discovery = discovery_message(
            self.topics, machine_name=machine_name, sw_version=sw_version or _version()
        )
        self._client = self._make_client(fleet)
        self._throttle = StatusThrottle()
        # written by the tick thread, read by the sender: one reference and flags each
        self._latest: ControllerStatus | None = None
        self._status_due = False
        self._events: deque[bytes] = deque(maxlen=EVENTS_KEPT)
        self._sessions_due = False
        self._acks: deque[int] = deque()  # mids paho acknowledged, from its thread
        self._in_flight: dict[int, str] = {}  # mid -> session uuid; the sender's alone
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._sender = threading.Thread(target=self._send_loop, name="fleet-sender", daemon=True)
        self._connected = False
        self._error: str | None = None
        self._status_dropped = self._events_dropped = self._sessions_sent = 0
        self._failed_connects = 0
        self._started = False

    def _make_client(self, fleet: FleetConfig) -> mqtt.Client:
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"retrotread-{fleet.site}-{self.topics.machine_id}",
            protocol=mqtt.MQTTv311,
        )
        client.suppress_exceptions = True  # a bug in a callback must not end the network thread
        client.enable_logger(logging.getLogger("retrotread.fleet.paho"))
        if fleet.username:
            password = read_password(fleet.password_file) if fleet.password_file else None
            client.username_pw_set(fleet.username, password)
        elif fleet.password_file:
            raise FleetError("[fleet] password_file is set but username is empty; set username.")
        if self.broker.tls:
            if fleet.ca_file and not os.path.isfile(fleet.ca_file):
                raise FleetError(
                    f"[fleet] ca_file {fleet.ca_file} does not exist; give the broker's CA "
                    "certificate (PEM), or leave ca_file empty to trust the system's CAs."
                )
            client.tls_set(ca_certs=fleet.ca_file or None)
        client.will_set(self.topics.availability, OFFLINE, qos=1, retain=True)
        client.reconnect_delay_set(RECONNECT_MIN_S, RECONNECT_MAX_S)
        client.max_queued_messages_set(PAHO_QUEUE)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        return client

    # -- the tick thread: never blocks, never raises -------------------------------------------

    def publish_status(self, status: ControllerStatus, now: float) -> None:
        """The tick's status; `now` its monotonic time. Goes out at most once a second, and
        at once on a change of state, mode, warning or enforcement."""
        try:
            self._latest = status
            if not self._throttle.due(status, now):
                return
            if not self._connected:
                self._status_dropped += 1  # the retained one is refreshed on reconnect
                return
            self._status_due = True
            self._wake.set()
        except Exception:  # pragma: no cover - the tick goes on whatever the fleet does
            log.exception("fleet status not published")

    def publish_event(self, event: Event, at_epoch: float) -> bool:
        """A safety event (FLEET_EVENT_KINDS; others are ignored: False); kept while the
        broker is away, the oldest let go past EVENTS_KEPT."""
        try:
            if not fleet_event(event):
                return False
            payload = event_payload(event, machine_id=self.topics.machine_id, at_epoch=at_epoch)
            if len(self._events) == self._events.maxlen:
                self._events_dropped += 1
            self._events.append(payload)
            self._wake.set()
            return True
        except Exception:  # pragma: no cover
            log.exception("fleet event not published")
            return False

    def session_finished(self) -> None:
        """A session went into the outbox: send it (and any backlog) when connected."""
        self._sessions_due = True
        self._wake.set()

    def health(self) -> LinkHealth:
        return LinkHealth(
            connected=self._connected,
            error=self._error,
            status_dropped=self._status_dropped,
            events_dropped=self._events_dropped,
            events_waiting=len(self._events),
            sessions_sent=self._sessions_sent,
            failed_connects=self._failed_connects,
        )

    # -- start and stop ----------------------------------------------------------------------

    def start(self) -> Publisher:
        """Begin connecting, on paho's thread; returns at once."""
        self._client.connect_async(self.broker.host, self.broker.port, keepalive=KEEPALIVE_S)
        self._client.loop_start()
        self._sender.start()
        self._started = True
        log.info("fleet: publishing to %s as %s", self.broker, self.topics.base)
        return self

    def close(self) -> None:
        """Say "offline" (retained) if connected, then disconnect cleanly and stop."""
        if not self._started:
            return
        self._started = False
        self._stopping.set()
        self._wake.set()
        self._sender.join(timeout=STOP_WAIT_S)
        if self._connected:
            info = self._client.publish(self.topics.availability, OFFLINE, qos=1, retain=True)
            # lost the link meanwhile: the last will says it instead
            with contextlib.suppress(RuntimeError, ValueError):
                info.wait_for_publish(timeout=STOP_WAIT_S)
        self._client.disconnect()
        self._client.loop_stop()

    def __enter__(self) -> Publisher:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- paho's network thread ------------------------------------------------------------

    def _on_connect(self, client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any,
                    _properties: Any) -> None:  # fmt: skip
        if reason.is_failure:
            self._say(
                f"the MQTT broker at {self.broker} refused the treadmill ({reason}); check "
                "[fleet] username and password_file and the broker's ACL"
            )
            return
        client.publish(self.topics.availability, ONLINE, qos=1, retain=True)
        client.subscribe(HA_STATUS, qos=1)
        self._announce(client)
        self._connected = True
        if self._error is not None:
            log.info("fleet: connected to %s again", self.broker)
        self._error = None
        # the retained status is refreshed, queued events and the outbox go out
        self._status_due = self._latest is not None
        self._sessions_due = True
        self._wake.set()

    def _on_connect_fail(self, _client: mqtt.Client, _userdata: Any) -> None:
        self._failed_connects += 1
        self._say(
            f"cannot reach the MQTT broker at {self.broker}; the treadmill works on and "
            "retries (check [fleet] broker and that the broker runs)"
        )

    def _on_disconnect(self, _client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any,
                       _properties: Any) -> None:  # fmt: skip
        was = self._connected
        self._connected = False
        if was and not self._stopping.is_set():
            self._say(f"lost the MQTT broker at {self.broker} ({reason}); reconnecting")

    def _on_publish(self, _client: mqtt.Client, _userdata: Any, mid: int, _reason: Any,
                    _properties: Any) -> None:  # fmt: skip
        # paho holds its message lock here: only note the mid, the sender does the rest
        self._acks.append(mid)
        self._wake.set()

    def _on_message(self, client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        if message.topic == HA_STATUS and message.payload == ONLINE.encode():
            self._announce(client)  # Home Assistant restarted: tell it again

    def _announce(self, client: mqtt.Client) -> None:
        client.publish(discovery_topic(self.topics.machine_id), self._discovery, qos=1,
                       retain=True)  # fmt: skip

    def _say(self, sentence: str) -> None:
        """The link's trouble, logged once for each new sentence (not at every retry)."""
        if sentence != self._error:
            log.warning("fleet: %s.", sentence)
        self._error = sentence

    # -- the sender thread ----------------------------------------------------------------

    def _send_loop(self) -> None:
        next_look = time.monotonic() + SESSIONS_LOOK_EVERY_S
        while not self._stopping.is_set():
            self._wake.wait(timeout=1.0)
            self._wake.clear()
            try:
                self._settle_acks()
                if not self._connected:
                    continue
                if time.monotonic() >= next_look:
                    self._sessions_due = True
                    next_look = time.monotonic() + SESSIONS_LOOK_EVERY_S
                self._send_status()
                self._send_events()
                self._send_sessions()
            except Exception:  # the sender lives as long as the publisher
                log.exception("fleet: sending failed; trying again")

    def _send_status(self) -> None:
        status = self._latest
        if not self._status_due or status is None:
            return
        self._status_due = False
        payload = status_payload(status, at_epoch=self._wall_clock())
        self._client.publish(self.topics.status, payload, qos=0, retain=True)

    def _send_events(self) -> None:
        # popleft before sending: the tick may append meanwhile, and a full deque then lets
        # its oldest go, which must not be one already sent
        while self._events and self._connected:
            payload = self._events.popleft()
            info = self._client.publish(self.topics.events, payload, qos=1)
            if info.rc == mqtt.MQTT_ERR_QUEUE_SIZE:
                self._events.appendleft(payload)  # paho's queue is full: at the next wake
                return

    def _send_sessions(self) -> None:
        if self._outbox is None or not self._sessions_due:
            return
        room = SESSIONS_IN_FLIGHT - len(self._in_flight)
        if room <= 0:
            return  # the acknowledgements of these ask for the next ones
        self._sessions_due = False
        flying = set(self._in_flight.values())
        batch = [(u, p) for u, p in self._outbox.pending(room + len(flying)) if u not in flying]
        for uuid, payload in batch[:room]:
            info = self._client.publish(self.topics.session(uuid), payload, qos=1)
            if info.rc == mqtt.MQTT_ERR_QUEUE_SIZE:
                self._sessions_due = True
                return
            self._in_flight[info.mid] = uuid
        if len(batch) > room:
            self._sessions_due = True  # more after these are acknowledged

    def _settle_acks(self) -> None:
        while self._acks:
            uuid = self._in_flight.pop(self._acks.popleft(), None)
            if uuid is None:
                continue  # an event, availability or discovery
            if self._outbox is not None:
                self._outbox.mark_sent(uuid)
            self._sessions_sent += 1
            self._sessions_due = True  # the next of the backlog, if any


def _version() -> str:
    """retrotread's version, for Home Assistant's device page."""
    try:
        return importlib.metadata.version("retrotread")
    except importlib.metadata.PackageNotFoundError:
        return "0"
