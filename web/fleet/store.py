"""The fleet's own SQLite file: every treadmill it has heard of, every session they finished,
and how many messages it turned away, by reason.

Like the device's history (device/history/schema.py), `PRAGMA user_version` is the number of
MIGRATIONS applied and `PRAGMA application_id` marks the file as the fleet's: another
program's database, or one newer than this code, is refused in one sentence, never changed.
A session is stored under its uuid once: a device resends a session until the broker
acknowledges it, so a duplicate is normal and changes nothing.

One connection, shared by the receiver's thread (writes) and the dashboard's (reads) behind a
lock; every write is one statement, so a reader never sees half a session.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from device.errors import RetrotreadError

# "rtfl" in the header, as `file` shows it; the device's history is "rtrd"
APPLICATION_ID = int.from_bytes(b"rtfl", "big")
BUSY_TIMEOUT_S = 5.0
ELSEWHERE = "or give `retrotread fleet` another file with --db"

_SCHEMA_V1 = """
CREATE TABLE machines (
    site TEXT NOT NULL, machine_id TEXT NOT NULL, name TEXT NOT NULL DEFAULT '',
    online INTEGER, last_seen REAL, status TEXT,
    PRIMARY KEY (site, machine_id));
CREATE TABLE sessions (
    uuid TEXT PRIMARY KEY, site TEXT NOT NULL, machine_id TEXT NOT NULL,
    profile TEXT NOT NULL, started_at REAL NOT NULL, ended_at REAL NOT NULL,
    end_reason TEXT NOT NULL, level INTEGER,
    distance_m REAL NOT NULL, backward_s REAL NOT NULL, forward_s REAL NOT NULL,
    backward_distance_m REAL NOT NULL, top_speed_kmh REAL NOT NULL, kcal REAL,
    backward_fast_s REAL NOT NULL, backward_paced_s REAL NOT NULL,
    enforced_stops INTEGER NOT NULL, received_at REAL NOT NULL, payload TEXT NOT NULL);
CREATE INDEX sessions_by_start ON sessions (started_at);
CREATE INDEX sessions_by_machine ON sessions (site, machine_id, started_at);
CREATE INDEX sessions_by_profile ON sessions (profile, started_at);
CREATE TABLE rejections (
    reason TEXT PRIMARY KEY, count INTEGER NOT NULL, last_at REAL NOT NULL);
"""

# Entry i takes a file from user_version i to i + 1. Never edit an entry that has shipped.
MIGRATIONS: list[str] = [_SCHEMA_V1]

_TOTALS = (
    "distance_m",
    "backward_s",
    "forward_s",
    "backward_distance_m",
    "top_speed_kmh",
    "kcal",
    "backward_fast_s",
    "backward_paced_s",
)


class FleetStoreError(RetrotreadError):
    """The fleet's database cannot be opened or upgraded; str() is one sentence with the fix."""


@dataclass(frozen=True)
class MachineRow:
    site: str
    machine_id: str
    name: str
    online: bool | None  # None: no availability heard yet
    last_seen: float | None  # epoch seconds of its last message
    status: dict[str, Any] | None  # its last valid status payload


@dataclass(frozen=True)
class SessionRow:
    uuid: str
    site: str
    machine_id: str
    profile: str
    started_at: float
    ended_at: float
    end_reason: str
    level: int | None
    distance_m: float
    backward_s: float
    forward_s: float
    kcal: float | None
    enforced_stops: int


@dataclass(frozen=True)
class SessionFilter:
    """Which sessions a history page shows; None is no restriction. Times are epoch seconds."""

    machine_id: str | None = None
    profile: str | None = None
    since: float | None = None
    until: float | None = None  # exclusive

    def where(self) -> tuple[str, list[Any]]:
        clauses, values = [], []
        for clause, value in (
            ("machine_id = ?", self.machine_id),
            ("profile = ?", self.profile),
            ("started_at >= ?", self.since),
            ("started_at < ?", self.until),
        ):
            if value is not None:
                clauses.append(clause)
                values.append(value)
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", values


@dataclass(frozen=True)
class WeekSummary:
    """One machine's or one profile's week: `who` is the machine id or the profile."""

    who: str
    week: str  # "2026-W48", by the fleet's local time
    sessions: int
    backward_min: float
    enforced_stops: int


class FleetStore:
    """The fleet's database at `path` (or ":memory:"). Raises FleetStoreError, one sentence."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.Lock()
        if path != ":memory:":
            try:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise FleetStoreError(
                    f"Cannot create the directory {Path(path).parent} for the fleet database "
                    f"({exc.strerror}); make it writable for the fleet's user, {ELSEWHERE}."
                ) from None
        try:
            self._db = sqlite3.connect(
                path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise self._cannot(exc) from None
        try:
            self._prepare()
        except (sqlite3.Error, FleetStoreError) as exc:
            self._db.close()
            if isinstance(exc, FleetStoreError):
                raise
            raise self._cannot(exc) from None

    def _cannot(self, exc: sqlite3.Error) -> FleetStoreError:
        if "not a database" in str(exc):
            return FleetStoreError(
                f"{self.path} is not a SQLite database; move it away {ELSEWHERE}."
            )
        return FleetStoreError(
            f"Cannot open the fleet database {self.path} ({exc}); make the file and its "
            f"directory writable for the fleet's user, {ELSEWHERE}."
        )

    def _prepare(self) -> None:
        db = self._db
        (app_id,) = db.execute("PRAGMA application_id").fetchone()
        (version,) = db.execute("PRAGMA user_version").fetchone()
        tables = db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        if app_id != APPLICATION_ID and (app_id or version or tables):
            raise FleetStoreError(
                f"{self.path} is another program's SQLite database, not the fleet's; it is "
                f"left untouched: move it away {ELSEWHERE}."
            )
        if version > len(MIGRATIONS):
            raise FleetStoreError(
                f"The fleet database {self.path} has schema version {version}, newer than the "
                f"{len(MIGRATIONS)} this retrotread knows; upgrade retrotread {ELSEWHERE}."
            )
        db.execute("PRAGMA journal_mode = WAL")
        # FULL: a device forgets a session once the broker has it, so a session this file
        # loses in a power cut is lost for good
        db.execute("PRAGMA synchronous = FULL")
        for target in range(version + 1, len(MIGRATIONS) + 1):
            script = f"BEGIN IMMEDIATE;\n{MIGRATIONS[target - 1]}\nPRAGMA user_version = {target};"
            try:
                db.executescript(script + f"\nPRAGMA application_id = {APPLICATION_ID};\nCOMMIT;")
            except sqlite3.Error as exc:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise FleetStoreError(
                    f"Cannot upgrade the fleet database {self.path} to schema version {target} "
                    f"({exc}); it stays at version {target - 1}: keep running the previous "
                    "retrotread and report this with the file."
                ) from None

    @contextmanager
    def _locked(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            yield self._db

    def close(self) -> None:
        with self._locked() as db:
            db.close()

    # -- writes (the receiver's thread) ----------------------------------------------------

    def record_availability(self, site: str, machine_id: str, *, online: bool, at: float) -> None:
        with self._locked() as db:
            db.execute(
                "INSERT INTO machines (site, machine_id, online, last_seen) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (site, machine_id) DO UPDATE SET online = excluded.online, "
                "last_seen = excluded.last_seen",
                (site, machine_id, int(online), at),
            )

    def record_status(
        self, site: str, machine_id: str, status: dict[str, Any], *, at: float
    ) -> None:
        with self._locked() as db:
            db.execute(
                "INSERT INTO machines (site, machine_id, name, last_seen, status) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (site, machine_id) DO UPDATE SET "
                "name = excluded.name, last_seen = excluded.last_seen, status = excluded.status",
                (site, machine_id, str(status["machine_name"]), at, json.dumps(status)),
            )

    def add_session(self, site: str, session: dict[str, Any], *, at: float) -> bool:
        """Store a validated session payload; False when its uuid was stored already."""
        totals = session["totals"]
        stops = sum(1 for event in session["events"] if event["kind"] == "enforced_stop")
        row = (
            session["uuid"],
            site,
            session["machine_id"],
            session["profile"],
            session["started_at"],
            session["ended_at"],
            session["end_reason"],
            session["level"],
            *(totals[name] for name in _TOTALS),
            stops,
            at,
            json.dumps(session, separators=(",", ":")),
        )
        with self._locked() as db:
            cursor = db.execute(
                "INSERT INTO sessions (uuid, site, machine_id, profile, started_at, ended_at, "
                f"end_reason, level, {', '.join(_TOTALS)}, enforced_stops, received_at, payload) "
                f"VALUES ({', '.join('?' * len(row))}) ON CONFLICT (uuid) DO NOTHING",
                row,
            )
            return cursor.rowcount == 1

    def count_rejection(self, reason: str, *, at: float) -> None:
        with self._locked() as db:
            db.execute(
                "INSERT INTO rejections (reason, count, last_at) VALUES (?, 1, ?) "
                "ON CONFLICT (reason) DO UPDATE SET count = count + 1, last_at = excluded.last_at",
                (reason, at),
            )

    # -- reads (the dashboard's threads) ---------------------------------------------------

    def rejections(self) -> dict[str, int]:
        with self._locked() as db:
            return dict(db.execute("SELECT reason, count FROM rejections ORDER BY reason"))

    def machines(self) -> list[MachineRow]:
        with self._locked() as db:
            rows = db.execute(
                "SELECT site, machine_id, name, online, last_seen, status FROM machines "
                "ORDER BY site, machine_id"
            ).fetchall()
        return [
            MachineRow(
                site=site,
                machine_id=machine_id,
                name=name,
                online=None if online is None else bool(online),
                last_seen=last_seen,
                status=json.loads(status) if status else None,
            )
            for site, machine_id, name, online, last_seen, status in rows
        ]

    def session_count(self) -> int:
        with self._locked() as db:
            return int(db.execute("SELECT count(*) FROM sessions").fetchone()[0])

    def sessions(self, chosen: SessionFilter, *, limit: int = 500) -> list[SessionRow]:
        where, values = chosen.where()
        with self._locked() as db:
            rows = db.execute(
                "SELECT uuid, site, machine_id, profile, started_at, ended_at, end_reason, level, "
                "distance_m, backward_s, forward_s, kcal, enforced_stops FROM sessions"
                f"{where} ORDER BY started_at DESC LIMIT ?",
                (*values, limit),
            ).fetchall()
        return [SessionRow(*row) for row in rows]

    def weeks(self, chosen: SessionFilter, *, by: str) -> list[WeekSummary]:
        """Backward minutes and enforced stops per week, `by` "machine_id" or "profile"."""
        if by not in ("machine_id", "profile"):
            raise ValueError(f"weeks by {by!r}")
        where, values = chosen.where()
        week = "strftime('%Y-W%W', started_at, 'unixepoch', 'localtime')"
        with self._locked() as db:
            rows = db.execute(
                f"SELECT {by}, {week} AS week, count(*), sum(backward_s) / 60.0, "
                f"sum(enforced_stops) FROM sessions{where} GROUP BY {by}, week "
                f"ORDER BY week DESC, {by}",
                values,
            ).fetchall()
        return [
            WeekSummary(who, week_, n, minutes, stops) for who, week_, n, minutes, stops in rows
        ]

    def choices(self) -> tuple[list[str], list[str]]:
        """The machine ids and the profiles that have sessions, for the history's filters."""
        with self._locked() as db:
            machines = [
                r[0] for r in db.execute("SELECT DISTINCT machine_id FROM sessions ORDER BY 1")
            ]
            profiles = [
                r[0] for r in db.execute("SELECT DISTINCT profile FROM sessions ORDER BY 1")
            ]
        return machines, profiles
