"""Reading the session history: the rows the daemon wrote, as dataclasses.

`History(path)` opens the file read-only, the way the web dashboard reads it while the daemon
writes (WAL mode lets both run at once); device.history.store.Store is the daemon's writer and reads
through the same methods. Reads see flushed rows only. All times here are wall-clock Unix
epoch seconds, speeds km/h, distances m.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Self

from device.core.events import EventKind
from device.core.modes import EndReason, Mode, SessionState
from device.core.program import Profile, SessionSummary
from device.core.tick import Sample
from device.history import schema
from device.history.schema import ELSEWHERE, StoreError

__all__ = ["EventRow", "History", "SegmentRow", "SessionRow", "StoreError"]


@dataclass(frozen=True, slots=True)
class SessionRow:
    id: int
    started_at: float
    ended_at: float | None
    end_reason: EndReason | None
    distance_m: float
    backward_s: float
    forward_s: float
    backward_distance_m: float
    top_speed_kmh: float
    machine_id: str
    profile: str
    kcal: float | None
    last_sample_at: float | None  # the newest flushed sample
    backward_fast_s: float  # backward at [program] running_unlock_kmh or faster
    level: int | None  # the walking level it was walked at; None before schema version 2

    @property
    def active_s(self) -> float:
        """Time walked, either way (pauses are not in it)."""
        return self.backward_s + self.forward_s


@dataclass(frozen=True, slots=True)
class SegmentRow:
    id: int
    session_id: int
    mode: Mode
    started_at: float
    ended_at: float | None
    distance_m: float


@dataclass(frozen=True, slots=True)
class EventRow:
    id: int
    session_id: int | None
    t: float
    kind: EventKind
    details: dict[str, Any]


class History:
    """The history file opened read-only. StoreError, one sentence, if there is no file yet,
    it is not a history database, or its schema version is not this retrotread's."""

    read_only: bool = True  # Store, the writer, sets this per instance

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self._db = self._connect()

    def _connect(self) -> sqlite3.Connection:
        if self.path == ":memory:" or not Path(self.path).is_file():
            raise StoreError(
                f"There is no history database at {self.path} yet; start retrotread-device "
                f"once to create it, {ELSEWHERE}."
            )
        try:
            uri = Path(self.path).resolve().as_uri() + "?mode=ro"
            db = sqlite3.connect(uri, uri=True, timeout=schema.BUSY_TIMEOUT_S, isolation_level=None)
            version = db.execute("PRAGMA user_version").fetchone()[0]
        except sqlite3.Error as exc:
            raise schema.open_error(exc, path=self.path) from None
        try:
            schema.require_current(version, path=self.path)
        except StoreError:
            db.close()
            raise
        return db

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def sessions(
        self, limit: int | None = None, offset: int = 0, *, profile: str | None = None
    ) -> list[SessionRow]:
        """Sessions newest first: `limit` of them (None: all) after skipping `offset`."""
        sql, args = (SESSIONS_PAGE, ()) if profile is None else (PROFILE_PAGE, (profile,))
        rows = self._db.execute(sql, (*args, -1 if limit is None else limit, offset)).fetchall()
        return [_session_row(row) for row in rows]

    def session_count(self, *, profile: str | None = None) -> int:
        """How many sessions there are (of `profile`), counted on an index of sessions."""
        sql, args = (SESSION_COUNT, ()) if profile is None else (PROFILE_COUNT, (profile,))
        return int(self._db.execute(sql, args).fetchone()[0])

    def sessions_in_batches(self, batch: int = 500) -> Iterator[list[SessionRow]]:
        """Every session newest first, `batch` at a time, read lazily from one query: an
        export of years of history never holds them all."""
        cursor = self._db.execute(SESSIONS_PAGE, (-1, 0))
        while rows := cursor.fetchmany(batch):
            yield [_session_row(row) for row in rows]

    def enforced_stops(self, session_ids: Iterable[int]) -> dict[int, int]:
        """How many enforced stops each of these sessions had; sessions without one are left
        out. One query over the events_by_session index, however many ids."""
        ids = json.dumps([int(i) for i in session_ids])
        return dict(self._db.execute(ENFORCED_STOPS, (ids, EventKind.ENFORCED_STOP)).fetchall())

    def session(self, session_id: int) -> SessionRow | None:
        row = self._db.execute(
            f"SELECT {_columns(SessionRow)} FROM sessions WHERE id = ?", (session_id,)
        ).fetchone()
        return _session_row(row) if row else None

    def session_summaries(self, profile: str, since_epoch: float = 0.0) -> list[SessionSummary]:
        """The ended sessions of `profile` that started at or after `since_epoch`, oldest
        first, as the program counts them (device.core.program.week_progress)."""
        rows = self._db.execute(
            f"SELECT {_columns(SessionSummary)} FROM sessions WHERE profile = ?"
            " AND started_at >= ? AND ended_at IS NOT NULL ORDER BY started_at, id",
            (profile, since_epoch),
        ).fetchall()
        return [SessionSummary(start, end, EndReason(reason), *rest)
                for start, end, reason, *rest in rows]  # fmt: skip

    def profile(self, name: str) -> Profile:
        """The stored progress of profile `name`, or a new walker's (level 1, nothing
        counted) when there is no such row yet; Store.save_profile writes it."""
        row = self._db.execute(
            f"SELECT {_columns(Profile)} FROM profiles WHERE name = ?", (name,)
        ).fetchone()
        if row is None:
            return Profile(name)
        stored = dict(zip((f.name for f in fields(Profile)), row, strict=True))
        flags = {"running_unlocked", "fast_session_done"}  # INTEGER 0/1 in SQLite
        values: dict[str, Any] = {c: bool(v) if c in flags else v for c, v in stored.items()}
        return Profile(**values)

    def samples(self, session_id: int) -> list[Sample]:
        """One session's samples, oldest first."""
        rows = self._db.execute(
            f"SELECT {_columns(Sample)} FROM samples WHERE session_id = ? ORDER BY t",
            (session_id,),
        ).fetchall()
        return [Sample(t, v, Mode(m), SessionState(s), cap) for t, v, m, s, cap in rows]

    def sample_rows(
        self, session_id: int
    ) -> Iterator[tuple[float, float | None, float | None, str, str]]:
        """One session's samples oldest first as plain (t, speed_kmh, cap_kmh, mode, state)
        tuples, read lazily: the exports' way through hours of 1 Hz rows, where a dataclass
        per second would cost more than the query."""
        yield from self._db.execute(SAMPLE_ROWS, (session_id,))

    def sample_envelope(
        self, session_id: int, *, start: float, bucket_s: float
    ) -> list[tuple[float, float | None, float | None, float | None]]:
        """One session's samples in buckets of `bucket_s` seconds counted from epoch `start`,
        oldest first: per bucket its first t, lowest and highest speed and highest cap (None
        where every sample in it was unknown). A chart of hours draws these, not every row."""
        return self._db.execute(SAMPLE_ENVELOPE, (session_id, start, bucket_s)).fetchall()

    def segments(self, session_id: int) -> list[SegmentRow]:
        rows = self._db.execute(
            f"SELECT {_columns(SegmentRow)} FROM segments WHERE session_id = ?"
            " ORDER BY started_at, id",
            (session_id,),
        ).fetchall()
        return [SegmentRow(i, sid, Mode(m), *rest) for i, sid, m, *rest in rows]

    def last_event_at(self, kind: EventKind) -> float | None:
        """When the newest event of this kind happened (epoch seconds), None if never."""
        row = self._db.execute(
            "SELECT t FROM events WHERE kind = ? ORDER BY t DESC LIMIT 1", (kind.value,)
        ).fetchone()
        return None if row is None else row[0]

    def console_ignores_speed(self) -> tuple[float, str] | None:
        """When the console was first found to ignore SetSpeed (epoch seconds) and why, from
        the oldest console_ignores_speed event; None if it never was. The settings page says
        so: from then on every stop is the relay's."""
        row = self._db.execute(FIRST_OF_KIND, (EventKind.CONSOLE_IGNORES_SPEED.value,)).fetchone()
        if row is None:
            return None
        t, details = row
        try:
            why = json.loads(details).get("why")
        except (ValueError, AttributeError):  # details that are no JSON object: no reason
            why = None
        return t, why if isinstance(why, str) else ""

    def events(self, session_id: int | None = None, *, limit: int | None = None) -> list[EventRow]:
        """Events oldest first: one session's, or every event when `session_id` is None;
        `limit` keeps only the newest ones."""
        where, args = (
            ("WHERE session_id = ?", (session_id,)) if session_id is not None else ("", ())
        )
        rows = self._db.execute(
            f"SELECT * FROM (SELECT {_columns(EventRow)} FROM events {where}"
            " ORDER BY t DESC, id DESC LIMIT ?) ORDER BY t, id",
            (*args, -1 if limit is None else limit),
        ).fetchall()
        return [EventRow(i, sid, t, EventKind(k), json.loads(d)) for i, sid, t, k, d in rows]


def _columns(row_type: type) -> str:
    return ", ".join(f.name for f in fields(row_type))


# The queries the dashboard runs on every page view, named so a test can EXPLAIN them: each
# walks an index (sessions_by_start, sessions_by_profile, events_by_session,
# samples_by_session) and none reads the samples of more than one session.
_NEWEST_FIRST = " ORDER BY started_at DESC, id DESC LIMIT ? OFFSET ?"
SESSIONS_PAGE = f"SELECT {_columns(SessionRow)} FROM sessions" + _NEWEST_FIRST
PROFILE_PAGE = f"SELECT {_columns(SessionRow)} FROM sessions WHERE profile = ?" + _NEWEST_FIRST
SESSION_COUNT = "SELECT COUNT(*) FROM sessions"
PROFILE_COUNT = "SELECT COUNT(*) FROM sessions WHERE profile = ?"
ENFORCED_STOPS = (
    "SELECT session_id, COUNT(*) FROM events"
    " WHERE session_id IN (SELECT value FROM json_each(?)) AND kind = ? GROUP BY session_id"
)
FIRST_OF_KIND = "SELECT t, details FROM events WHERE kind = ? ORDER BY t, id LIMIT 1"
SAMPLE_ROWS = (
    "SELECT t, speed_kmh, cap_kmh, mode, state FROM samples WHERE session_id = ? ORDER BY t"
)
SAMPLE_ENVELOPE = (
    "SELECT MIN(t), MIN(speed_kmh), MAX(speed_kmh), MAX(cap_kmh) FROM samples"
    " WHERE session_id = ?1 GROUP BY CAST((t - ?2) / ?3 AS INTEGER) ORDER BY 1"
)


def _session_row(row: tuple[Any, ...]) -> SessionRow:
    values = list(row)
    values[3] = values[3] and EndReason(values[3])  # end_reason: NULL while it runs
    return SessionRow(*values)
