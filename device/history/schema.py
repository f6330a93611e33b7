"""The history file's format: its tables, the migrations between versions and the one-sentence
errors both its writer (device.history.store) and its readers (device.history.reader) give
about the file.

`PRAGMA user_version` holds the schema version: the number of MIGRATIONS applied, and
`PRAGMA application_id` says the file is retrotread's: the daemon refuses, and never changes,
a SQLite file that some other program made.
"""

from __future__ import annotations

import sqlite3

from device.errors import RetrotreadError

BUSY_TIMEOUT_S = 5.0  # how long a reader waits for another's lock before giving up
# The daemon writes from its tick loop: waiting 5 s on a lock held by another process would
# hold up the guard for as long. It gives up sooner and tries again at the next flush (the
# buffer keeps the rows).
WRITER_BUSY_TIMEOUT_S = 0.05
# "rtrd" in the header's application id field (offset 68), as `file` and sqlite3 show it
APPLICATION_ID = int.from_bytes(b"rtrd", "big")
# the tables every version of our schema has: an unmarked file with them is an older ours
OUR_TABLES = frozenset({"sessions", "segments", "samples", "events", "profiles"})
ELSEWHERE = "or set db in the [storage] table of the config to another path"

_SCHEMA_V1 = """
CREATE TABLE sessions (
    id INTEGER PRIMARY KEY, started_at REAL NOT NULL, ended_at REAL, end_reason TEXT,
    distance_m REAL NOT NULL DEFAULT 0, backward_s REAL NOT NULL DEFAULT 0,
    forward_s REAL NOT NULL DEFAULT 0, backward_distance_m REAL NOT NULL DEFAULT 0,
    top_speed_kmh REAL NOT NULL DEFAULT 0, machine_id TEXT NOT NULL,
    profile TEXT NOT NULL DEFAULT 'guest', kcal REAL, last_sample_at REAL);
CREATE INDEX sessions_by_start ON sessions (started_at);
CREATE INDEX sessions_by_profile ON sessions (profile, started_at);
CREATE TABLE segments (
    id INTEGER PRIMARY KEY,
    session_id INTEGER NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    mode TEXT NOT NULL, started_at REAL NOT NULL, ended_at REAL,
    distance_m REAL NOT NULL DEFAULT 0);
CREATE INDEX segments_by_session ON segments (session_id, started_at);
CREATE TABLE samples (
    session_id INTEGER NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    t REAL NOT NULL, speed_kmh REAL, mode TEXT NOT NULL, state TEXT NOT NULL, cap_kmh REAL);
CREATE INDEX samples_by_session ON samples (session_id, t);
CREATE TABLE events (
    id INTEGER PRIMARY KEY, session_id INTEGER REFERENCES sessions (id) ON DELETE CASCADE,
    t REAL NOT NULL, kind TEXT NOT NULL, details TEXT NOT NULL DEFAULT '{}');
CREATE INDEX events_by_session ON events (session_id, t);
CREATE INDEX events_by_time ON events (t);
CREATE TABLE profiles (
    name TEXT PRIMARY KEY, level INTEGER NOT NULL DEFAULT 1, weight_kg REAL NOT NULL DEFAULT 70);
INSERT INTO profiles (name) VALUES ('guest');
"""

# Levels and the program (device/core/program.py): a profile's progress, and per session the level
# it was walked at and its backward seconds at the running-unlock speed.
_SCHEMA_V2 = """
ALTER TABLE profiles ADD COLUMN qualifying_at_level INTEGER NOT NULL DEFAULT 0;
ALTER TABLE profiles ADD COLUMN qualifying_total INTEGER NOT NULL DEFAULT 0;
ALTER TABLE profiles ADD COLUMN running_unlocked INTEGER NOT NULL DEFAULT 0;
ALTER TABLE profiles ADD COLUMN fast_session_done INTEGER NOT NULL DEFAULT 0;
ALTER TABLE profiles ADD COLUMN program_started_at REAL;
ALTER TABLE sessions ADD COLUMN backward_fast_s REAL NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN level INTEGER;
"""

# Progression needs days (device/core/program.py): a profile's last counted calendar day, and per
# session its backward seconds at [program] qualifying_share of the cap in force.
# A profile upgraded from v2 has no last day (NULL): its next qualifying session counts, so an
# upgrade lets through at most one more session on the day it happens. Sessions stored before
# v3 get backward_paced_s 0, not their backward_s: nobody measured their pace, and they may be
# the very crawl this version stops counting. The value decides nothing already earned: the
# level, the counts and the running unlock are kept in the profile row, and the program's
# weeks count backward_s.
_SCHEMA_V3 = """
ALTER TABLE profiles ADD COLUMN last_qualifying_day INTEGER;
ALTER TABLE sessions ADD COLUMN backward_paced_s REAL NOT NULL DEFAULT 0;
"""

# The fleet (device.fleet): each session gets a UUID, its name across every machine and broker,
# and a finished session waits in the outbox until the broker acknowledges it. ALTER TABLE
# cannot add a UNIQUE column, so a unique index makes it one. Sessions stored before v4 get a
# random UUID4 here (the SQL below spells one out: version nibble 4, variant 8-b) but no outbox
# row: the fleet starts with this version, and a year of history flooding a gym's broker on
# the upgrade is nobody's wish. `outbox_by_sent` keeps the publisher's "WHERE sent_at IS NULL"
# (and the pruning of old sent rows) off the payloads: they are large enough to spill into
# overflow pages, which a table scan would read through.
_NEW_UUID4 = (
    "lower(hex(randomblob(4))) || '-' || lower(hex(randomblob(2))) || '-4'"
    " || substr(lower(hex(randomblob(2))), 2) || '-' || substr('89ab', 1 + (random() & 3), 1)"
    " || substr(lower(hex(randomblob(2))), 2) || '-' || lower(hex(randomblob(6)))"
)
_SCHEMA_V4 = f"""
ALTER TABLE sessions ADD COLUMN uuid TEXT;
UPDATE sessions SET uuid = {_NEW_UUID4};
CREATE UNIQUE INDEX sessions_by_uuid ON sessions (uuid);
CREATE TABLE outbox (
    uuid TEXT PRIMARY KEY, payload BLOB NOT NULL, created_at REAL, sent_at REAL);
CREATE INDEX outbox_by_sent ON outbox (sent_at);
"""

# Entry i is the SQL script that takes a file from user_version i to i + 1, so a new schema
# version is one new entry. Never edit an entry that has shipped.
MIGRATIONS: list[str] = [_SCHEMA_V1, _SCHEMA_V2, _SCHEMA_V3, _SCHEMA_V4]


class StoreError(RetrotreadError):
    """The history file cannot be opened or written; str() is one sentence with the fix."""


def migrate(db: sqlite3.Connection, *, path: str) -> None:
    """Bring the file open on `db` (a writer, autocommit) up to len(MIGRATIONS), one committed
    step per version; StoreError for a file newer than this code or a step that fails."""
    version = db.execute("PRAGMA user_version").fetchone()[0]
    refuse_newer(version, path=path)
    for target in range(version + 1, len(MIGRATIONS) + 1):
        # Each step commits with its version number, so a failed step leaves the file
        # intact at the version before it.
        script = f"BEGIN IMMEDIATE;\n{MIGRATIONS[target - 1]}\nPRAGMA user_version = {target};"
        try:
            db.executescript(script + "\nCOMMIT;")
        except sqlite3.Error as exc:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise StoreError(
                f"Cannot upgrade the history database {path} to schema version "
                f"{target} ({exc}); it stays at version {target - 1}, so keep running the "
                "previous retrotread and report this with the file."
            ) from None


def require_ours(db: sqlite3.Connection, *, path: str) -> None:
    """Before the writer changes anything (WAL mode, tables): refuse a file that is not ours,
    or one SQLite finds damaged. An empty file is ours to make; an unmarked one with our
    tables and a version we know was made before files were marked, and is ours too."""
    (app_id,) = db.execute("PRAGMA application_id").fetchone()
    (version,) = db.execute("PRAGMA user_version").fetchone()
    tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    older_ours = app_id == 0 and tables >= OUR_TABLES and version > 0
    if app_id != APPLICATION_ID and not older_ours and (app_id or tables or version):
        raise StoreError(
            f"{path} is another program's SQLite database, not retrotread's history; "
            f"retrotread leaves it untouched: move it away {ELSEWHERE}."
        )
    # quick_check, not integrity_check: it skips the index-content cross-checks, so a year of
    # history on an SD card is checked in about a second at start-up
    try:
        problems = [row[0] for row in db.execute("PRAGMA quick_check(3)")]
    except sqlite3.OperationalError:
        raise  # locked, unreadable: open_error says which
    except sqlite3.DatabaseError as exc:  # malformed beyond what quick_check can report
        problems = [str(exc)]
    if problems != ["ok"]:
        raise damaged(path, problems[0])


def damaged(path: str, why: str) -> StoreError:
    # quick_check reports on several lines, starting with which database: one line, the point
    why = " ".join(why.replace("*** in database main ***", "").split())[:160]
    return StoreError(
        f"The history database {path} is damaged (SQLite says: {why}); move it away and "
        f"start again (a new one is made), or restore a backup, {ELSEWHERE}."
    )


def mark_ours(db: sqlite3.Connection) -> None:
    db.execute(f"PRAGMA application_id = {APPLICATION_ID}")


def require_current(version: int, *, path: str) -> None:
    """A reader cannot upgrade the file, so it refuses any version but the current one."""
    refuse_newer(version, path=path)
    if version < len(MIGRATIONS):
        raise StoreError(
            f"The history database {path} has schema version {version}, older than "
            f"this retrotread's {len(MIGRATIONS)}; start retrotread-device once to upgrade it."
        )


def refuse_newer(version: int, *, path: str) -> None:
    if version > len(MIGRATIONS):
        raise StoreError(
            f"The history database {path} has schema version {version}, newer than "
            f"the {len(MIGRATIONS)} this retrotread knows; upgrade retrotread {ELSEWHERE}."
        )


def open_error(exc: sqlite3.Error, *, path: str) -> StoreError:
    """The one sentence for a file SQLite refused to open."""
    if "not a database" in str(exc):
        return StoreError(f"{path} is not a history database; move it away {ELSEWHERE}.")
    if "malformed" in str(exc):
        return damaged(path, str(exc))
    return StoreError(
        f"Cannot open the history database {path} ({exc}); make the file and its "
        f"directory writable for the user running retrotread, {ELSEWHERE}."
    )
