"""Reading the session history: the rows the daemon wrote, as dataclasses.

`History(path)` opens the file read-only, the way the web dashboard reads it while the daemon
writes (WAL mode lets both run at once); device.store.Store is the daemon's writer and reads
through the same methods. Reads see flushed rows only. All times here are wall-clock Unix
epoch seconds, speeds km/h, distances m.
"""

from __future__ import annotations

import json
import os
import sqlite3
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Self

from device import schema
from device.events import EventKind
from device.modes import EndReason, Mode, SessionState
from device.program import Profile, SessionSummary
from device.schema import ELSEWHERE, StoreError

__all__ = ["EventRow", "History", "Sample", "SegmentRow", "SessionRow", "StoreError"]


@dataclass(frozen=True, slots=True)
class Sample:
    """The belt once a second: `speed_kmh` None means unknown (sensor lost), `cap_kmh` None
    means no cap applied."""

    t: float
    speed_kmh: float | None
    mode: Mode
    state: SessionState
    cap_kmh: float | None
    session_id: int


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
        where, args = ("WHERE profile = ?", (profile,)) if profile is not None else ("", ())
        rows = self._db.execute(
            f"SELECT {_columns(SessionRow)} FROM sessions {where}"
            " ORDER BY started_at DESC, id DESC LIMIT ? OFFSET ?",
            (*args, -1 if limit is None else limit, offset),
        ).fetchall()
        return [_session_row(row) for row in rows]

    def session(self, session_id: int) -> SessionRow | None:
        row = self._db.execute(
            f"SELECT {_columns(SessionRow)} FROM sessions WHERE id = ?", (session_id,)
        ).fetchone()
        return _session_row(row) if row else None

    def session_summaries(self, profile: str, since_epoch: float = 0.0) -> list[SessionSummary]:
        """The ended sessions of `profile` that started at or after `since_epoch`, oldest
        first, as the program counts them (device.program.week_progress)."""
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
        name, level, weight_kg, at_level, total, unlocked, fast_done, started_at = row
        return Profile(name, level, weight_kg, at_level, total, bool(unlocked), bool(fast_done),
                       started_at)  # fmt: skip

    def samples(self, session_id: int) -> list[Sample]:
        """One session's samples, oldest first."""
        rows = self._db.execute(
            f"SELECT {_columns(Sample)} FROM samples WHERE session_id = ? ORDER BY t",
            (session_id,),
        ).fetchall()
        return [Sample(t, v, Mode(m), SessionState(s), cap, sid)
                for t, v, m, s, cap, sid in rows]  # fmt: skip

    def segments(self, session_id: int) -> list[SegmentRow]:
        rows = self._db.execute(
            f"SELECT {_columns(SegmentRow)} FROM segments WHERE session_id = ?"
            " ORDER BY started_at, id",
            (session_id,),
        ).fetchall()
        return [SegmentRow(i, sid, Mode(m), *rest) for i, sid, m, *rest in rows]

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


def _session_row(row: tuple) -> SessionRow:
    return SessionRow(*row[:3], row[3] and EndReason(row[3]), *row[4:])
