"""Opening the history file for writing: its directory, its mode, and whether it is ours.

The daemon refuses, one sentence and exit 2, a path it cannot write, a file that is not a
SQLite database, another program's database (it never adds tables to one, nor switches it to
WAL) and a damaged one (quick_check); device.history.schema says each in words.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from device.history import schema
from device.history.schema import ELSEWHERE, StoreError


def open_writer(path: str) -> sqlite3.Connection:
    """The daemon's connection to the history file at `path` (or ":memory:"), made and
    migrated, after refusing a file that is not ours or is damaged: StoreError, one sentence."""
    if path != ":memory:":
        parent = Path(path).parent
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            blocker = next((p for p in (parent, *parent.parents) if p.exists()), None)
            if blocker is not None and not blocker.is_dir():
                raise StoreError(
                    f"Cannot put the history database at {path}: {blocker} is a file, "
                    f"not a directory; move that file, {ELSEWHERE}."
                ) from None
            raise StoreError(
                f"Cannot create the directory {parent} for the history database "
                f"({exc.strerror}); make it writable for the user running retrotread, "
                f"{ELSEWHERE}."
            ) from None
        if not _looks_like_sqlite(path):  # SQLite would write its schema over it
            not_sqlite = sqlite3.DatabaseError("file is not a database")
            raise schema.open_error(not_sqlite, path=path)
        _make_for_group(path)
    db = None
    try:
        # check_same_thread off: opened (and read) at start-up on the main thread, then
        # written by the history writer's thread alone
        db = sqlite3.connect(
            path,
            timeout=schema.WRITER_BUSY_TIMEOUT_S,
            isolation_level=None,
            check_same_thread=False,
        )
        schema.require_ours(db, path=path)  # before anything below changes the file
        if path != ":memory:":
            _open_to_group(path)
        db.execute("PRAGMA journal_mode = WAL")
        # FULL, not NORMAL: in WAL mode NORMAL may roll committed batches back after a
        # power cut, and one fsync per FLUSH_EVERY_S costs the SD card next to nothing.
        db.execute("PRAGMA synchronous = FULL")
        db.execute("PRAGMA journal_size_limit = 4194304")
        db.execute("PRAGMA foreign_keys = ON")
        schema.migrate(db, path=path)
        schema.mark_ours(db)  # also the write a read-only file or directory refuses now
    except (sqlite3.Error, StoreError) as exc:
        if db is not None:
            db.close()
        if isinstance(exc, StoreError):
            raise
        raise schema.open_error(exc, path=path) from None
    return db


def _looks_like_sqlite(path: str) -> bool:
    """False for a file that has content but no SQLite header."""
    try:
        with open(path, "rb") as file:
            header = file.read(16)
    except OSError:  # no file yet, or one SQLite will describe better
        return True
    return header in (b"", b"SQLite format 3\x00")


def _make_for_group(path: str) -> None:
    """A new history file, mode 0660, made before SQLite opens it. The dashboard runs as
    another user in the file's group and, even read-only, a WAL reader may create the -shm
    and -wal files, which SQLite makes with the database file's own mode: at 0640 the daemon
    could no longer write beside them."""
    try:
        if not os.path.exists(path):
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o660))
            os.chmod(path, 0o660)  # os.open's mode passes through the umask
    except OSError:
        pass  # SQLite's own open reports what matters, in one sentence


def _open_to_group(path: str) -> None:
    """g+w on a history file we own, for the same reason; only once it is known to be ours."""
    try:
        if os.stat(path).st_uid == os.geteuid():
            os.chmod(path, os.stat(path).st_mode | 0o060)
    except OSError:
        pass  # not ours to change
