"""The fleet's ear on the gym's broker: one paho-mqtt client on its own network thread,
subscribed at QoS 1 to one site's treadmills (or every site's), reconnecting with backoff for
as long as the broker is down, slow or refusing.

Every message is checked by web.fleet.payloads before anything believes it; what passes goes
to the live grid (web.fleet.board) and the fleet's database (web.fleet.store), what fails is
counted by reason and logged once per reason. Nothing a message holds can raise out of the
callback: paho's thread would die with it, and with it every treadmill's tile.

The client keeps a persistent session (clean_session off, a fixed client id), so a broker
with persistence holds the QoS 1 sessions published while the fleet was away and hands them
over when it returns; the store's upsert by uuid makes any repeat harmless.

Finished sessions are checked and stored on a thread of their own (a 10-minute session is
about 15 ms of schema check and SQLite), so a backlog draining after an outage never holds up
the live statuses behind it on paho's thread. Each is acknowledged to the broker only once it
is stored (manual acks): the broker keeps at most its in-flight window of them unacknowledged,
which bounds the queue, and one the disk refused is sent again after the next reconnect.
"""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from device.fleet.topics import site_filter
from web.fleet.board import Board
from web.fleet.payloads import REASON_WORDS, Kind, Message, Reason, Rejection, read
from web.fleet.settings import FleetSettings
from web.fleet.store import FleetStore

log = logging.getLogger("retrotread.fleet")

RECONNECT_MIN_S = 1
RECONNECT_MAX_S = 30
KEEPALIVE_S = 30
_NOT_YET = "the fleet has not reached the broker yet."


@dataclass(frozen=True)
class ReceiverStats:
    """What the receiver has done since it started, for the dashboard and the tests."""

    connected: bool
    problem: str | None  # one sentence while the broker cannot be reached
    sessions_stored: int
    duplicates: int
    rejected: dict[Reason, int] = field(default_factory=dict)


class FleetReceiver:
    """Follows the broker in `settings` into `board` and `store`: start(), then close()."""

    def __init__(self, settings: FleetSettings, *, board: Board, store: FleetStore) -> None:
        self.settings = settings
        self.board = board
        self.store = store
        self.topic_filter = site_filter(settings.site)
        self._lock = threading.Lock()
        self._connected = False
        self._problem: str | None = _NOT_YET
        self._stored = 0
        self._duplicates = 0
        self._rejected: Counter[Reason] = Counter()
        self._logged: set[str] = set()  # causes already in the journal, once each
        self._closing = False
        # (topic, payload, mid, qos) of sessions heard, for the session thread; None stops it
        self._sessions: queue.Queue[tuple[str, bytes, int, int] | None] = queue.Queue()
        self._session_thread = threading.Thread(
            target=self._store_sessions, name="fleet-sessions", daemon=True
        )
        self._client = self._make_client()

    def _make_client(self) -> mqtt.Client:
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.settings.client_id,
            clean_session=False,
            protocol=mqtt.MQTTv311,
            manual_ack=True,  # a session is acknowledged once stored (see the module's note)
        )
        if self.settings.username:
            client.username_pw_set(self.settings.username, self.settings.password)
        if self.settings.tls:
            client.tls_set(ca_certs=self.settings.ca_file)
        client.reconnect_delay_set(min_delay=RECONNECT_MIN_S, max_delay=RECONNECT_MAX_S)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        return client

    # -- running ---------------------------------------------------------------------------

    def start(self) -> None:
        """Connect in the background: returns at once, even with the broker down."""
        for machine in self.store.machines():  # the grid as it was, until the broker speaks
            self.board.restore(
                machine.site,
                machine.machine_id,
                name=machine.name,
                online=machine.online,
                last_seen=machine.last_seen,
                status=machine.status,
            )
        self._session_thread.start()
        self._client.connect_async(self.settings.host, self.settings.port, KEEPALIVE_S)
        self._client.loop_start()  # paho's thread retries the first connection too

    def close(self) -> None:
        self._closing = True
        self._client.disconnect()
        self._client.loop_stop()
        if self._session_thread.is_alive():
            self._sessions.put(None)
            self._session_thread.join(timeout=10)

    def stats(self) -> ReceiverStats:
        with self._lock:
            return ReceiverStats(
                connected=self._connected,
                problem=self._problem,
                sessions_stored=self._stored,
                duplicates=self._duplicates,
                rejected=dict(self._rejected),
            )

    # -- paho's callbacks (its network thread) ---------------------------------------------

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        where = f"{self.settings.host}:{self.settings.port}"
        if reason.is_failure:
            self._went_away(
                f"the broker at {where} refused the fleet ({reason}); check [fleet] username "
                "and password_file, and the broker's ACL."
            )
            return
        client.subscribe(self.topic_filter, qos=1)  # again after every reconnect
        with self._lock:
            self._connected, self._problem = True, None
        log.info("fleet: connected to %s, following %s", where, self.topic_filter)

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        where = f"{self.settings.host}:{self.settings.port}"
        self._went_away(
            f"the fleet lost the broker at {where} ({reason}); it reconnects by itself, check "
            "that mosquitto runs there."
        )

    def _went_away(self, sentence: str) -> None:
        if self._closing:  # our own disconnect at shutdown
            return
        with self._lock:
            was, self._connected, self._problem = self._connected, False, sentence
        if was or sentence not in self._logged:
            self._logged.add(sentence)
            log.warning("fleet: %s", sentence)

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        heard = (message.topic, bytes(message.payload), message.mid, message.qos)
        if "/sessions/" in message.topic:
            self._sessions.put(heard)  # bounded by the broker's in-flight window
            return
        self._handle(*heard)

    def _store_sessions(self) -> None:
        while (heard := self._sessions.get()) is not None:
            self._handle(*heard)

    def _handle(self, topic: str, payload: bytes, mid: int, qos: int) -> None:
        try:
            stored = self.hear(topic, payload)
        except Exception:  # the last resort: these threads serve every treadmill
            stored = True  # a message we cannot handle would come back forever
            if "internal" not in self._logged:
                self._logged.add("internal")
                log.exception("fleet: a message on %s could not be handled", topic)
        if stored:
            self._client.ack(mid, qos)

    # -- one message -----------------------------------------------------------------------

    def hear(self, topic: str, payload: bytes) -> bool:
        """Check one message and pass it on, or count why not. False when the store refused
        it: not acknowledged, so the broker sends it again after the next reconnect."""
        now = time.time()
        if not payload:  # an empty retained message clears a topic: nothing to hear
            return True
        verdict = read(topic, payload)
        try:
            if isinstance(verdict, Rejection):
                self._reject(verdict, now)
            else:
                self._accept(verdict, now)
        except sqlite3.Error as exc:
            cause = f"store: {exc}"
            if cause not in self._logged:
                self._logged.add(cause)
                log.error("fleet: cannot write %s to %s (%s)", topic, self.store.path, exc)
            return False
        return True

    def _reject(self, rejection: Rejection, now: float) -> None:
        with self._lock:
            self._rejected[rejection.reason] += 1
            first = rejection.reason.value not in self._logged
            self._logged.add(rejection.reason.value)
        if first:  # later ones are only counted: a broken device would flood the journal
            log.warning(
                "fleet: turned away %s (%s); later ones are counted, not logged",
                REASON_WORDS[rejection.reason],
                rejection.detail,
            )
        self.store.count_rejection(rejection.reason.value, at=now)

    def _accept(self, message: Message, now: float) -> None:
        address = message.address
        site, machine_id = address.site, address.machine_id
        if address.kind is Kind.AVAILABILITY:
            online = bool(message.online)
            self.store.record_availability(site, machine_id, online=online, at=now)
            self.board.heard_availability(site, machine_id, online=online, at=now)
            return
        body = message.body or {}
        if address.kind is Kind.STATUS:
            self.store.record_status(site, machine_id, body, at=now)
            self.board.heard_status(site, machine_id, body, at=now)
        elif address.kind is Kind.EVENT:
            self.board.heard_event(site, machine_id, kind=body["kind"], t=body["t"], at=now)
        elif address.kind is Kind.SESSION:
            new = self.store.add_session(site, body, at=now)
            with self._lock:
                if new:
                    self._stored += 1
                else:
                    self._duplicates += 1
