"""The session history: one SQLite file the daemon writes and the web reads at the same time.

The daemon is the only writer. Samples arrive at 1 Hz and are buffered in memory, then
written with the buffered events and the session totals in one transaction at least every
`FLUSH_EVERY_S` seconds, so a power cut loses at most that much. Session starts and ends and
safety events are written at once. WAL mode lets the web's read-only connections read while
the daemon writes. All times here are wall-clock Unix epoch seconds, speeds km/h, distances m.

This module is the writer; Store reads through device.history.History, which the web uses on
its own, and device.schema holds the tables and their migrations.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections import deque
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from typing import Any

from device import schema
from device.events import EventKind
from device.history import EventRow, History, Sample, SegmentRow, SessionRow
from device.modes import EndReason, Mode
from device.program import Profile
from device.schema import ELSEWHERE, StoreError

# The read side and the rows moved to device.history; they stay importable from here.
__all__ = ["EventRow", "History", "Sample", "SegmentRow", "SessionRow", "Store", "StoreError"]

FLUSH_EVERY_S = 5.0  # the most history a power cut may take
FLUSH_AT_ROWS = 64  # flush sooner if rows pile up faster than 1 Hz
MAX_BUFFERED_ROWS = 3600  # while the disk refuses writes, keep the newest hour of rows
MAX_SAMPLE_GAP_S = 3.0  # samples further apart than this say nothing about the belt between

# Losing one of these to a power cut would hide a safety decision or a whole session.
URGENT_KINDS = frozenset({EventKind.SESSION_STARTED, EventKind.SESSION_ENDED,
    EventKind.START_REFUSED, EventKind.OVERSPEED_WARNING, EventKind.ENFORCED_STOP,
    EventKind.NOT_ENFORCED, EventKind.SENSOR_LOST})  # fmt: skip
TOTALS = ("distance_m", "backward_s", "forward_s", "backward_distance_m", "top_speed_kmh", "kcal",
          "backward_fast_s", "backward_paced_s")  # fmt: skip
_INSERT_SAMPLE = (
    "INSERT INTO samples (t, speed_kmh, mode, state, cap_kmh, session_id) VALUES (?, ?, ?, ?, ?, ?)"
)
_INSERT_EVENT = "INSERT INTO events (session_id, t, kind, details) VALUES (?, ?, ?, ?)"
_NOTE_LAST_SAMPLE = (
    "UPDATE sessions SET last_sample_at = MAX(COALESCE(last_sample_at, ?1), ?1) WHERE id = ?2"
)
_PROFILE_COLUMNS = tuple(f.name for f in fields(Profile))  # the profiles table's, since v3


class Store(History):
    """The history file for the daemon: `Store(path)` opens it, creating and migrating it, and
    reads it back through the History methods. `":memory:"` keeps history in memory for a
    simulation without a file. Reads see flushed rows only. `Store(path, read_only=True)`
    opens it like `History(path)`, and then every write fails with StoreError."""

    def __init__(self, path: str | os.PathLike[str], *, read_only: bool = False) -> None:
        self.read_only = read_only
        self._samples: deque[tuple] = deque(maxlen=MAX_BUFFERED_ROWS)
        self._events: deque[tuple] = deque(maxlen=MAX_BUFFERED_ROWS)
        self._totals: dict[int, dict[str, float]] = {}
        self._oldest_buffered_t: float | None = None
        self._open_sessions: set[int] = set()
        super().__init__(path)  # opens self._db through _connect

    def _connect(self) -> sqlite3.Connection:
        return super()._connect() if self.read_only else self._connect_writer()

    def _connect_writer(self) -> sqlite3.Connection:
        if self.path != ":memory:":
            parent = Path(self.path).parent
            try:
                parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                blocker = next((p for p in (parent, *parent.parents) if p.exists()), None)
                if blocker is not None and not blocker.is_dir():
                    raise StoreError(
                        f"Cannot put the history database at {self.path}: {blocker} is a file, "
                        f"not a directory; move that file, {ELSEWHERE}."
                    ) from None
                raise StoreError(
                    f"Cannot create the directory {parent} for the history database "
                    f"({exc.strerror}); make it writable for the user running retrotread, "
                    f"{ELSEWHERE}."
                ) from None
            if not _looks_like_sqlite(self.path):  # SQLite would write its schema over it
                not_sqlite = sqlite3.DatabaseError("file is not a database")
                raise schema.open_error(not_sqlite, path=self.path)
            _share_with_group(self.path)
        db = None
        try:
            db = sqlite3.connect(
                self.path, timeout=schema.WRITER_BUSY_TIMEOUT_S, isolation_level=None
            )
            db.execute("PRAGMA journal_mode = WAL")
            # FULL, not NORMAL: in WAL mode NORMAL may roll committed batches back after a
            # power cut, and one fsync per FLUSH_EVERY_S costs the SD card next to nothing.
            db.execute("PRAGMA synchronous = FULL")
            db.execute("PRAGMA journal_size_limit = 4194304")
            db.execute("PRAGMA foreign_keys = ON")
            schema.migrate(db, path=self.path)
        except (sqlite3.Error, StoreError) as exc:
            if db is not None:
                db.close()
            if isinstance(exc, StoreError):
                raise
            raise schema.open_error(exc, path=self.path) from None
        return db

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

        def insert() -> int:
            cursor = self._db.execute(
                "INSERT INTO sessions (started_at, machine_id, profile, level) VALUES (?, ?, ?, ?)",
                (started_at, machine_id, profile, level),
            )
            self._open_segment(cursor.lastrowid, started_at, mode)
            return int(cursor.lastrowid)

        session_id = self._commit(insert)
        self._open_sessions.add(session_id)
        return session_id

    def start_segment(self, session_id: int, t: float, mode: Mode) -> None:
        """The walker turned round at `t`: close the open segment there (its distance
        integrated from the samples) and open one in `mode`; written at once."""
        self._require_open(session_id)

        def turn() -> None:
            self._close_segments(session_id, t)
            self._open_segment(session_id, t, mode)

        self._commit(turn)

    def add_sample(self, sample: Sample) -> None:
        """Buffer one sample for the next flush."""
        self._require_open(sample.session_id)
        self._samples.append(tuple(getattr(sample, f.name) for f in fields(Sample)))
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
        # Checked and serialised now so a bad event fails here, not every later flush.
        known = session_id is None or session_id in self._open_sessions
        if not known and self.session(session_id) is None:
            raise ValueError(f"there is no session {session_id}")
        self._events.append((session_id, t, kind, json.dumps(details or {}, default=str)))
        self._note_buffered(t)
        if urgent or (urgent is None and kind in URGENT_KINDS):
            self.flush()

    def update_totals(
        self,
        session_id: int,
        *,
        distance_m: float | None = None,
        backward_s: float | None = None,
        forward_s: float | None = None,
        backward_distance_m: float | None = None,
        top_speed_kmh: float | None = None,
        kcal: float | None = None,
        backward_fast_s: float | None = None,
        backward_paced_s: float | None = None,
    ) -> None:
        """Hold the session's running totals; the next flush writes them in the same
        transaction as the samples, so after a crash the two agree. None leaves one as is.
        `backward_fast_s` is the backward time at [program] running_unlock_kmh or faster,
        `backward_paced_s` the backward time at [program] qualifying_share of the cap in force
        or faster (SessionTotals.backward_paced_s)."""
        self._require_open(session_id)
        values = (distance_m, backward_s, forward_s, backward_distance_m, top_speed_kmh, kcal,
                  backward_fast_s, backward_paced_s)  # fmt: skip
        given = {name: v for name, v in zip(TOTALS, values, strict=True) if v is not None}
        if given:
            self._totals.setdefault(session_id, {}).update(given)

    def save_profile(self, profile: Profile) -> None:
        """Write a profile's progress (device.program.after_session's result); written at
        once, with everything buffered, so a level earned is never lost to a power cut."""
        columns = _PROFILE_COLUMNS
        updates = ", ".join(f"{c} = excluded.{c}" for c in columns[1:])
        values = tuple(getattr(profile, c) for c in columns)
        sql = (
            f"INSERT INTO profiles ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
            f" ON CONFLICT (name) DO UPDATE SET {updates}"
        )
        self._commit(lambda: self._db.execute(sql, values))

    @property
    def pending(self) -> bool:
        """Whether rows wait in the buffer for a write (after a failed one, until it works)."""
        return bool(self._samples or self._events or self._totals)

    def maybe_flush(self, now: float) -> bool:
        """Flush once the oldest buffered row is FLUSH_EVERY_S old (or the wall clock jumped
        back that far). Call it every tick with epoch `now`; returns whether it wrote."""
        oldest = self._oldest_buffered_t
        rows = len(self._samples) + len(self._events)
        if oldest is None or (abs(now - oldest) < FLUSH_EVERY_S and rows < FLUSH_AT_ROWS):
            return False
        self.flush()
        return True

    def flush(self) -> None:
        """Write the buffered samples and events and the held totals in one transaction."""
        if self._samples or self._events or self._totals:
            self._commit(None)

    def end_session(
        self, session_id: int, ended_at: float, end_reason: EndReason, **totals: float
    ) -> None:
        """End the session and its open segment at `ended_at`, writing everything buffered.
        `totals` takes the keywords of update_totals."""
        self.update_totals(session_id, **totals)
        self._commit(lambda: self._end(session_id, ended_at, end_reason))
        self._open_sessions.discard(session_id)

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
        if left_open:
            self._commit(lambda: [self._end(s, t, EndReason.INTERRUPTED) for s, t in left_open])
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

    def _note_buffered(self, t: float) -> None:
        if self._oldest_buffered_t is None or t < self._oldest_buffered_t:
            self._oldest_buffered_t = t

    def _commit(self, then: Callable[[], Any] | None) -> Any:
        """One transaction, rolled back whole on any error: the buffered rows, the held
        totals, then `then()`. If it fails the buffer is kept for the next flush to retry."""
        db, newest = self._db, {}
        for t, *_, session_id in self._samples:
            newest[session_id] = max(t, newest.get(session_id, t))
        try:
            with db:  # commits, or rolls back on an exception
                db.execute("BEGIN IMMEDIATE")
                db.executemany(_INSERT_SAMPLE, self._samples)
                db.executemany(_INSERT_EVENT, self._events)
                for session_id, staged in self._totals.items():
                    assignments = ", ".join(f"{name} = ?" for name in staged)
                    db.execute(f"UPDATE sessions SET {assignments} WHERE id = ?",
                               (*staged.values(), session_id))  # fmt: skip
                db.executemany(_NOTE_LAST_SAMPLE, [(t, sid) for sid, t in newest.items()])
                result = then() if then else None
        except sqlite3.Error as exc:
            raise StoreError(
                f"Cannot write to the history database {self.path} ({exc}); free disk space "
                "or make the file writable for the user running retrotread."
            ) from None
        self._samples.clear()
        self._events.clear()
        self._totals.clear()
        self._oldest_buffered_t = None
        return result

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


def _looks_like_sqlite(path: str) -> bool:
    """False for a file that has content but no SQLite header."""
    try:
        with open(path, "rb") as file:
            header = file.read(16)
    except OSError:  # no file yet, or one SQLite will describe better
        return True
    return header in (b"", b"SQLite format 3\x00")


def _share_with_group(path: str) -> None:
    """The history file, mode 0660 (or g+w on one we own). The dashboard runs as another user
    in the file's group and, even read-only, a WAL reader may create the -shm and -wal files,
    which SQLite makes with the database file's own mode: at 0640 the daemon could no longer
    write beside them."""
    try:
        if not os.path.exists(path):
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o660))
            os.chmod(path, 0o660)  # os.open's mode passes through the umask
        elif os.stat(path).st_uid == os.geteuid():
            os.chmod(path, os.stat(path).st_mode | 0o060)
    except OSError:
        pass  # not ours to change: SQLite's own open reports what matters, in one sentence
