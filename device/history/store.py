"""The session history: one SQLite file the daemon writes and the web reads at the same time.

The daemon is the only writer, from a thread of its own (device.history.writer). Every write
goes into one ordered buffer in memory; samples (1 Hz) and events are written with the session
totals in one transaction once the oldest of them is FLUSH_DUE_S old, so a power cut or a
kill -9 loses at most FLUSH_EVERY_S seconds. Session starts and ends and safety events are
written at once. A write the disk refuses (full, locked, read-only) leaves the buffer as it
was, for the next flush to try again: `error` says why, and once the buffer is full the oldest
samples make room, counted in `lost_rows`. WAL mode lets the web's read-only connections read
while the daemon writes. All times here are wall-clock Unix epoch seconds, speeds km/h,
distances m.

This module is the writer; Store reads through device.history.reader.History, which the web uses on
its own, and device.history.schema holds the tables and their migrations.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import time
from collections import deque
from dataclasses import fields
from typing import Any

from device.core.events import EventKind
from device.core.modes import EndReason, Mode
from device.core.program import Profile
from device.core.session import Totals
from device.core.tick import Sample
from device.history import outbox
from device.history.reader import EventRow, History, SegmentRow, SessionRow
from device.history.schema import StoreError
from device.history.sqlite_file import open_writer

log = logging.getLogger("retrotread.history")

# The read side and the rows moved to device.history.reader; they stay importable from here.
__all__ = ["EventRow", "History", "SegmentRow", "SessionRow", "Store", "StoreError"]

FLUSH_EVERY_S = 5.0  # the most history a power cut may take (the README says so)
# Flush when the oldest buffered row is this old: a sample waits up to FLUSH_DUE_S, the next one
# comes a second later, and the writer thread may be a tick behind, so the newest row on disk is
# never more than FLUSH_EVERY_S older than the moment of a kill.
FLUSH_DUE_S = 3.0
FLUSH_AT_ROWS = 64  # flush sooner if rows pile up faster than 1 Hz
RETRY_EVERY_S = 1.0  # a disk that refused a write is asked again at most this often
MAX_BUFFERED_ROWS = 3600  # while the disk refuses writes, keep the newest hour of samples
MAX_SAMPLE_GAP_S = 3.0  # samples further apart than this say nothing about the belt between

# Losing one of these to a power cut would hide a safety decision or a whole session.
URGENT_KINDS = frozenset({EventKind.SESSION_STARTED, EventKind.SESSION_ENDED,
    EventKind.START_REFUSED, EventKind.OVERSPEED_WARNING, EventKind.ENFORCED_STOP,
    EventKind.NOT_ENFORCED, EventKind.SENSOR_LOST, EventKind.SLOWDOWN_ASKED,
    EventKind.CONSOLE_IGNORES_SPEED})  # fmt: skip
TOTALS = tuple(f.name for f in fields(Totals))  # a sessions column each
_INSERT_SAMPLE = (
    "INSERT INTO samples (t, speed_kmh, mode, state, cap_kmh, session_id) VALUES (?, ?, ?, ?, ?, ?)"
)
_INSERT_EVENT = "INSERT INTO events (session_id, t, kind, details) VALUES (?, ?, ?, ?)"
_INSERT_SESSION = (
    "INSERT INTO sessions (id, started_at, machine_id, profile, level, uuid)"
    " VALUES (?, ?, ?, ?, ?, ?)"
)
_NOTE_LAST_SAMPLE = (
    "UPDATE sessions SET last_sample_at = MAX(COALESCE(last_sample_at, ?1), ?1) WHERE id = ?2"
)
_PROFILE_COLUMNS = tuple(f.name for f in fields(Profile))  # the profiles table's, since v3
_UPSERT_PROFILE = (
    f"INSERT INTO profiles ({', '.join(_PROFILE_COLUMNS)})"
    f" VALUES ({', '.join('?' * len(_PROFILE_COLUMNS))})"
    " ON CONFLICT (name) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _PROFILE_COLUMNS[1:])
)


class Store(History):
    """The history file for the daemon: `Store(path)` opens it, creating and migrating it, and
    reads it back through the History methods. `":memory:"` keeps history in memory for a
    simulation without a file. Reads see flushed rows only. `Store(path, read_only=True)`
    opens it like `History(path)`, and then every write fails with StoreError."""

    def __init__(self, path: str | os.PathLike[str], *, read_only: bool = False) -> None:
        self.read_only = read_only
        # (what, row) in the order they happened: a session's row before its samples, a
        # segment's samples before the turn that closes it (its distance is summed from them)
        self._buffer: deque[tuple[str, tuple]] = deque()
        self._buffered_samples = 0
        self._totals: dict[int, dict[str, float | None]] = {}
        self._oldest_buffered_t: float | None = None
        self._open_sessions: set[int] = set()
        self.error: str | None = None  # why the last write failed; None once one succeeds
        self._retry_at = 0.0  # time.monotonic() of the next try after a failed write
        self.lost_rows = 0  # samples and events the buffer had to let go, or a batch refused
        self.outbox_dropped = 0  # unsent sessions the outbox's backlog cap let go (outbox.py)
        super().__init__(path)  # opens self._db through _connect
        # Ids are ours to give (the daemon is the only writer), so a session can begin while
        # the disk refuses writes and still be written, whole, once it takes them again.
        (last_id,) = self._db.execute("SELECT COALESCE(MAX(id), 0) FROM sessions").fetchone()
        self._next_session_id = int(last_id) + 1

    def _connect(self) -> sqlite3.Connection:
        return super()._connect() if self.read_only else open_writer(self.path)

    # --- writing: the daemon ---

    def open_session(
        self,
        started_at: float,
        *,
        mode: Mode,
        machine_id: str,
        profile: str = "guest",
        level: int | None = None,
    ) -> int:
        """Start a session and its first segment in `mode`; written at once. Returns its id.
        `level` is the walking level the profile walks it at."""

        self._refuse_if_read_only()
        session_id = self._next_session_id
        self._next_session_id += 1
        row = (session_id, started_at, machine_id, profile, level, outbox.new_uuid())
        self._buffer.append(("session", row))
        self._buffer.append(("segment", (session_id, started_at, mode)))
        self._open_sessions.add(session_id)
        self._write_now()
        return session_id

    def start_segment(self, session_id: int, t: float, mode: Mode) -> None:
        """The walker turned round at `t`: close the open segment there (its distance
        integrated from the samples) and open one in `mode`; written at once."""
        self._require_open(session_id)
        self._buffer.append(("turn", (session_id, t, mode)))
        self._write_now()

    def add_sample(self, session_id: int, sample: Sample) -> None:
        """Buffer one sample of session `session_id` for the next flush."""
        self._require_open(session_id)
        if self._buffered_samples >= MAX_BUFFERED_ROWS:
            self._let_go_of_the_oldest("sample")
        row = (*(getattr(sample, f.name) for f in fields(Sample)), session_id)
        self._buffer.append(("sample", row))
        self._buffered_samples += 1
        self._note_buffered(sample.t)

    def add_event(
        self,
        t: float,
        kind: EventKind,
        details: dict[str, Any] | None = None,
        *,
        session_id: int | None = None,
        urgent: bool | None = None,
    ) -> None:
        """Record an event at epoch `t`. Kinds in URGENT_KINDS, or `urgent=True`, are written
        at once with everything buffered; the rest wait for the next flush."""
        self._refuse_if_read_only()
        # Checked and serialised now so a bad event fails here, not every later flush.
        known = session_id is None or session_id in self._open_sessions
        if not known and session_id is not None and self.session(session_id) is None:
            raise ValueError(f"there is no session {session_id}")
        if len(self._buffer) - self._buffered_samples >= MAX_BUFFERED_ROWS:
            self._let_go_of_the_oldest("event")
        row = (session_id, t, kind, json.dumps(details or {}, default=str))
        self._buffer.append(("event", row))
        self._note_buffered(t)
        if urgent or (urgent is None and kind in URGENT_KINDS):
            self._write_now()

    def update_totals(self, session_id: int, totals: Totals) -> None:
        """Hold the session's running totals; the next flush writes them in the same
        transaction as the samples, so after a crash the two agree."""
        self._require_open(session_id)
        self._totals[session_id] = {name: getattr(totals, name) for name in TOTALS}

    def save_profile(self, profile: Profile) -> None:
        """Write a profile's progress (device.core.program.after_session's result); written at
        once, with everything buffered, so a level earned is never lost to a power cut."""
        values = tuple(getattr(profile, c) for c in _PROFILE_COLUMNS)
        self._refuse_if_read_only()
        self._buffer.append(("profile", values))
        self._write_now()

    def session_uuid(self, session_id: int) -> str | None:
        """The session's name across the fleet (flushed sessions only)."""
        row = self._db.execute("SELECT uuid FROM sessions WHERE id = ?", (session_id,)).fetchone()
        return None if row is None else row[0]

    @property
    def pending(self) -> bool:
        """Whether rows wait in the buffer for a write (after a failed one, until it works)."""
        return bool(self._buffer or self._totals)

    @property
    def unsaved_rows(self) -> int:
        """Rows in the buffer, waiting for their write."""
        return len(self._buffer)

    def maybe_flush(self, now: float) -> bool:
        """Flush once the oldest buffered row is FLUSH_DUE_S old (or the wall clock jumped
        back that far). Call it often with epoch `now`; returns whether it wrote. After a
        failed write it waits RETRY_EVERY_S before the next try."""
        oldest = self._oldest_buffered_t
        if oldest is None or (
            abs(now - oldest) < FLUSH_DUE_S and len(self._buffer) < FLUSH_AT_ROWS
        ):
            return False
        if self.error is not None and time.monotonic() < self._retry_at:
            return False
        return self.try_flush()

    def flush(self) -> None:
        """Write everything buffered and the held totals in one transaction. StoreError if
        the disk refuses it; the buffer is kept for the next try."""
        if self._buffer or self._totals:
            try:
                self._commit()
            except StoreError as exc:
                self.error = str(exc)
                self._retry_at = time.monotonic() + RETRY_EVERY_S
                raise
            self.error = None

    def try_flush(self) -> bool:
        """flush() for a caller that carries on whatever the disk does: False if it failed
        (`error` says why)."""
        try:
            self.flush()
        except StoreError:
            return False
        return True

    def end_session(
        self, session_id: int, ended_at: float, end_reason: EndReason, totals: Totals | None
    ) -> None:
        """End the session and its open segment at `ended_at` with its final `totals` (None:
        those held last), writing everything buffered."""
        if totals is not None:
            self.update_totals(session_id, totals)
        self._buffer.append(("end", (session_id, ended_at, end_reason)))
        self._open_sessions.discard(session_id)
        self._write_now()

    def recover_interrupted(self) -> list[int]:
        """Close every session a crash or power cut left open (not those this Store opened)
        at its last stored sample, or its start if it has none, as 'interrupted', with a
        session_ended event. Totals stay as last flushed. Returns the ids, oldest first."""
        found = self._db.execute(
            "SELECT id, COALESCE((SELECT MAX(t) FROM samples WHERE session_id = sessions.id),"
            " started_at) FROM sessions WHERE ended_at IS NULL ORDER BY id"
        ).fetchall()
        left_open = [(sid, end) for sid, end in found if sid not in self._open_sessions]

        for session_id, ended_at in left_open:
            details = {"reason": EndReason.INTERRUPTED}
            self.add_event(ended_at, EventKind.SESSION_ENDED, details, session_id=session_id,
                           urgent=False)  # fmt: skip
            self._buffer.append(("end", (session_id, ended_at, EndReason.INTERRUPTED)))
        if left_open:
            self.flush()  # at start-up: a disk that refuses this refuses the daemon
        return [session_id for session_id, _ in left_open]

    def close(self) -> None:
        """Flush and close."""
        try:
            if not self.read_only:
                self.flush()
        finally:
            super().close()

    def _require_open(self, session_id: int) -> None:
        if session_id not in self._open_sessions:
            raise ValueError(f"session {session_id} is not open in this store")

    def _refuse_if_read_only(self) -> None:
        if self.read_only:
            raise StoreError(
                f"Cannot write to the history database {self.path}: it is open read-only "
                "here, and only retrotread-device writes it."
            )

    def _write_now(self) -> None:
        """Written at once, if the disk lets us; else kept for the next flush, like a sample."""
        self.try_flush()

    def _let_go_of_the_oldest(self, what: str) -> None:
        """Make room in a full buffer: drop the oldest row of this kind, counted."""
        for index, (kind, _) in enumerate(self._buffer):
            if kind == what:
                del self._buffer[index]
                self._buffered_samples -= what == "sample"
                self.lost_rows += 1
                return

    def _note_buffered(self, t: float) -> None:
        if self._oldest_buffered_t is None or t < self._oldest_buffered_t:
            self._oldest_buffered_t = t

    def _commit(self) -> None:
        """One transaction, rolled back whole on any error: the buffer in order, the held
        totals, then the outbox row of each session it ends, built from the rows just written
        (so no session is on disk ended without it). If the disk refuses it the buffer is kept
        for the next flush to try again; a batch SQLite itself refuses (a constraint) would be
        refused forever, so it is counted as lost instead of blocking every write after it."""
        db, newest = self._db, dict[int, float]()  # session id -> its newest sample's t
        ended = [row[0] for what, row in self._buffer if what == "end"]
        dropped = 0
        try:
            with db:  # commits, or rolls back on an exception
                db.execute("BEGIN IMMEDIATE")
                for what, row in self._buffer:
                    self._write_row(what, row)
                    if what == "sample":
                        newest[row[-1]] = max(row[0], newest.get(row[-1], row[0]))
                for session_id, staged in self._totals.items():
                    assignments = ", ".join(f"{name} = ?" for name in staged)
                    db.execute(f"UPDATE sessions SET {assignments} WHERE id = ?",
                               (*staged.values(), session_id))  # fmt: skip
                db.executemany(_NOTE_LAST_SAMPLE, [(t, sid) for sid, t in newest.items()])
                for session_id in ended:
                    dropped += outbox.post_session(db, session_id, now=time.time())
        except sqlite3.IntegrityError as exc:
            self.lost_rows += len(self._buffer)
            self._clear()
            raise self._refused(exc) from None
        except sqlite3.Error as exc:
            raise self._refused(exc) from None
        self._clear()
        if dropped:
            if not self.outbox_dropped:  # once: with no fleet configured it is the steady state
                log.warning("the fleet outbox is full: the oldest unsent sessions are let go")
            self.outbox_dropped += dropped

    def _refused(self, exc: sqlite3.Error) -> StoreError:
        return StoreError(
            f"Cannot write to the history database {self.path} ({exc}); free disk space "
            "or make the file writable for the user running retrotread."
        )

    def _clear(self) -> None:
        self._buffer.clear()
        self._buffered_samples = 0
        self._totals.clear()
        self._oldest_buffered_t = None

    def _write_row(self, what: str, row: tuple) -> None:
        db = self._db
        if what == "sample":
            db.execute(_INSERT_SAMPLE, row)
        elif what == "event":
            db.execute(_INSERT_EVENT, row)
        elif what == "session":
            db.execute(_INSERT_SESSION, row)
        elif what == "segment":
            self._open_segment(*row)
        elif what == "turn":
            session_id, t, mode = row
            self._close_segments(session_id, t)
            self._open_segment(session_id, t, mode)
        elif what == "end":
            self._end(*row)
        elif what == "profile":
            db.execute(_UPSERT_PROFILE, row)

    def _open_segment(self, session_id: int, t: float, mode: Mode) -> None:
        self._db.execute(
            "INSERT INTO segments (session_id, mode, started_at) VALUES (?, ?, ?)",
            (session_id, mode, t),
        )

    def _close_segments(self, session_id: int, t: float) -> None:
        open_segments = self._db.execute(
            "SELECT id, started_at FROM segments WHERE session_id = ? AND ended_at IS NULL",
            (session_id,),
        ).fetchall()
        for segment_id, started_at in open_segments:
            ended_at = max(t, started_at)
            distance_m = self._distance(session_id, started_at, ended_at)
            self._db.execute(
                "UPDATE segments SET ended_at = ?, distance_m = ? WHERE id = ?",
                (ended_at, distance_m, segment_id),
            )

    def _end(self, session_id: int, ended_at: float, end_reason: EndReason) -> None:
        self._close_segments(session_id, ended_at)
        self._db.execute(
            "UPDATE sessions SET ended_at = ?, end_reason = ? WHERE id = ?",
            (ended_at, end_reason, session_id),
        )

    def _distance(self, session_id: int, start: float, end: float) -> float:
        """Metres integrated from the stored samples between `start` and `end`: trapezoids
        between neighbours, skipping unknown speeds and gaps longer than MAX_SAMPLE_GAP_S."""
        (metres,) = self._db.execute(
            "SELECT COALESCE(SUM((speed_kmh + prev_speed) / 7.2 * (t - prev_t)), 0) FROM ("
            " SELECT t, speed_kmh, LAG(t) OVER w AS prev_t, LAG(speed_kmh) OVER w AS prev_speed"
            " FROM samples WHERE session_id = ? AND t BETWEEN ? AND ? WINDOW w AS (ORDER BY t)"
            ") WHERE t - prev_t <= ?",
            (session_id, start, end, MAX_SAMPLE_GAP_S),
        ).fetchone()
        return float(metres)
