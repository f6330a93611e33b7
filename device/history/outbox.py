"""The outbox: finished sessions waiting for the gym's MQTT broker to acknowledge them.

Two sides share the `outbox` table of the history file. The daemon's writer
(device.history.store) calls `post_session` inside the very transaction that ends a session,
so no crash or power cut can leave a session ended without its outbox row. The fleet
publisher (device.fleet.publisher) reads it through `Outbox(db_path)` on a connection of its
own, on its own thread: `pending()` the rows not yet acknowledged, oldest first, and
`mark_sent()` once the broker has acknowledged one (QoS 1). Rows stay in the file, so a daemon
restart or a broker down for a day loses nothing; receivers upsert by the session's UUID, so
a row sent twice is harmless.

Every session is posted, whether or not a broker is configured. The store knows nothing of
the config, a fleet switched on later (or a reload) then never misses a session that ended in
between, and it costs what the session costs on disk anyway (a few hundred kB for hours of
1 Hz samples). The price is bounded: sent rows are pruned after SENT_KEPT_S, and the unsent
backlog keeps the newest MAX_UNSENT sessions, counting the ones it lets go (their history
stays in the sessions table; only their trip to the fleet is given up).

Payloads follow device/fleet/schema/session.json. Times are epoch seconds, speeds km/h,
distances m.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
import uuid as uuids
from dataclasses import fields
from pathlib import Path
from typing import Any

from device.core.session import Totals

log = logging.getLogger("retrotread.outbox")

PAYLOAD_VERSION = 1  # "v" of session.json (device.fleet.topics.PAYLOAD_VERSION, a layer up)
SENT_KEPT_S = 7 * 24 * 3600.0  # a week of sent sessions, for a fleet DB restored from backup
# About a month of a busy gym treadmill (30 sessions a day); 1,000 sessions take some 80 MB
# at half an hour each: what an SD card can spare for a broker that never comes back.
MAX_UNSENT = 1000
MAX_SAMPLES = 86400  # session.json's maxItems: a day at 1 Hz; longer sessions are thinned
# The publisher's thread waits at most this long for the daemon's write lock. The daemon holds
# it for one batch (milliseconds); paho's network thread, which acknowledges, must not stall.
BUSY_TIMEOUT_S = 0.1

TOTALS = tuple(f.name for f in fields(Totals))  # a sessions column each
_SESSION = (
    "SELECT uuid, machine_id, started_at, ended_at, end_reason, profile, level, "
    + ", ".join(TOTALS)
    + " FROM sessions WHERE id = ?"
)
_SEGMENTS = (
    "SELECT mode, started_at, ended_at, distance_m FROM segments WHERE session_id = ?"
    " ORDER BY started_at, id"
)
_EVENTS = "SELECT t, kind, details FROM events WHERE session_id = ? ORDER BY t, id"
_SAMPLES = "SELECT t, speed_kmh, mode, state, cap_kmh FROM samples WHERE session_id = ? ORDER BY t"
_POST = (
    "INSERT INTO outbox (uuid, payload, created_at, sent_at) VALUES (?, ?, ?, NULL)"
    # ended again (never in normal use): the newer payload replaces the old, and goes out again
    " ON CONFLICT (uuid) DO UPDATE SET payload = excluded.payload,"
    " created_at = excluded.created_at, sent_at = NULL"
)
_PRUNE_SENT = "DELETE FROM outbox WHERE sent_at IS NOT NULL AND sent_at < ?"
_DROP_OLDEST_UNSENT = (
    "DELETE FROM outbox WHERE sent_at IS NULL AND rowid NOT IN ("
    " SELECT rowid FROM outbox WHERE sent_at IS NULL ORDER BY rowid DESC LIMIT ?)"
)
# rowid is the order rows were posted in, whatever the wall clock did meanwhile
_PENDING = "SELECT uuid, payload FROM outbox WHERE sent_at IS NULL ORDER BY rowid LIMIT ?"
_MARK_SENT = "UPDATE outbox SET sent_at = ? WHERE uuid = ? AND sent_at IS NULL"


def post_session(db: sqlite3.Connection, session_id: int, *, now: float) -> int:
    """Write session `session_id`'s outbox row, built from its stored rows, on `db` inside the
    caller's open transaction (the one that ends the session), then prune. Returns how many
    unsent rows the backlog cap let go. A session with no row (its batch was refused) has
    nothing to post."""
    if db.execute("SELECT 1 FROM sessions WHERE id = ?", (session_id,)).fetchone() is None:
        return 0
    db.execute(_POST, (_session_uuid(db, session_id), session_payload(db, session_id), now))
    db.execute(_PRUNE_SENT, (now - SENT_KEPT_S,))
    return max(db.execute(_DROP_OLDEST_UNSENT, (MAX_UNSENT,)).rowcount, 0)


def _session_uuid(db: sqlite3.Connection, session_id: int) -> str:
    """The session's UUID; one given now to a session that has none (every session has one
    since schema version 4, so this is a belt and braces for a hand-edited file)."""
    row = db.execute("SELECT uuid FROM sessions WHERE id = ?", (session_id,)).fetchone()
    if row is not None and row[0]:
        return str(row[0])
    fresh = new_uuid()
    db.execute("UPDATE sessions SET uuid = ? WHERE id = ?", (fresh, session_id))
    return fresh


def new_uuid() -> str:
    return str(uuids.uuid4())


def session_payload(db: sqlite3.Connection, session_id: int) -> bytes:
    """The finished session as session.json describes it, compact JSON in UTF-8."""
    row = db.execute(_SESSION, (session_id,)).fetchone()
    if row is None:
        raise ValueError(f"there is no session {session_id}")
    uuid, machine_id, started_at, ended_at, end_reason, profile, level, *figures = row
    totals: dict[str, Any] = dict(zip(TOTALS, figures, strict=True))
    segments = [
        {"mode": mode, "started_at": start, "ended_at": end, "distance_m": distance}
        for mode, start, end, distance in db.execute(_SEGMENTS, (session_id,))
    ]
    events = [
        {"t": t, "kind": kind, "details": _details(text)}
        for t, kind, text in db.execute(_EVENTS, (session_id,))
    ]
    samples = [list(sample) for sample in db.execute(_SAMPLES, (session_id,))]
    if len(samples) > MAX_SAMPLES:  # every n-th, so the fleet still sees the whole session
        samples = samples[:: -(-len(samples) // MAX_SAMPLES)]
    payload = {
        "v": PAYLOAD_VERSION,
        "uuid": uuid,
        "machine_id": machine_id,
        "started_at": started_at,
        "ended_at": ended_at,
        "end_reason": end_reason,
        "profile": profile,
        "level": level,
        "totals": totals,
        "segments": segments,
        "events": events,
        "samples": samples,
    }
    return json.dumps(payload, separators=(",", ":")).encode()


def _details(text: str) -> dict[str, Any]:
    """An event's stored details; anything but a JSON object (a hand-edited row) as empty, so
    one odd row never holds a whole session back."""
    try:
        details = json.loads(text)
    except ValueError:
        return {}
    return details if isinstance(details, dict) else {}


class Outbox:
    """The publisher's view of the outbox in the history file at `db_path`, on a connection
    of its own; safe to call from several threads (paho acknowledges on its network thread).
    Nothing here raises: a file that is busy, missing or not yet upgraded is "nothing pending
    now", and `error` says why until a call works again."""

    def __init__(self, db_path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(db_path)
        self.error: str | None = None
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        # acknowledged by the broker but not yet marked (the file was busy): marked at the
        # next call, and never offered by pending() again meanwhile
        self._acknowledged: dict[str, float] = {}

    def pending(self, limit: int) -> list[tuple[str, bytes]]:
        """Up to `limit` unsent sessions as (uuid, payload), oldest first; [] when the file
        cannot be read now."""
        with self._lock:
            try:
                db = self._connection()
                # a write lock held elsewhere keeps the marks waiting, not the reading (WAL)
                marked = self._try_marks(db)
                wanted = limit + len(self._acknowledged)
                rows = db.execute(_PENDING, (wanted,)).fetchall()
            except sqlite3.Error as exc:
                self._failed("read", exc)
                return []
            if marked:
                self.error = None
        return [(u, bytes(p)) for u, p in rows if u not in self._acknowledged][:limit]

    def mark_sent(self, uuid: str) -> None:
        """The broker acknowledged session `uuid`: it is not pending any more. A busy file
        keeps the acknowledgement for the next call to write."""
        with self._lock:
            self._acknowledged.setdefault(uuid, time.time())
            try:
                if self._try_marks(self._connection()):
                    self.error = None
            except sqlite3.Error as exc:  # cannot even open it
                self._failed("read", exc)

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            # mode=rw: never create the file; the daemon's Store makes and migrates it
            uri = Path(self.path).resolve().as_uri() + "?mode=rw"
            self._db = sqlite3.connect(
                uri,
                uri=True,
                timeout=BUSY_TIMEOUT_S,
                isolation_level=None,
                check_same_thread=False,  # behind self._lock
            )
        return self._db

    def _try_marks(self, db: sqlite3.Connection) -> bool:
        """Write every acknowledgement held, in one short transaction; False (kept for the
        next call) if the file refuses now."""
        if not self._acknowledged:
            return True
        try:
            with db:
                db.execute("BEGIN IMMEDIATE")
                db.executemany(_MARK_SENT, [(at, u) for u, at in self._acknowledged.items()])
        except sqlite3.Error as exc:
            self._failed("written", exc)
            return False
        self._acknowledged.clear()
        return True

    def _failed(self, doing: str, exc: sqlite3.Error) -> None:
        error = f"the fleet outbox in {self.path} cannot be {doing} now ({exc})"
        if error != self.error:
            log.warning("%s; trying again at the next call", error)
        self.error = error
