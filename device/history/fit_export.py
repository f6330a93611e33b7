"""`retrotread export --fit ID|--all --out DIR [--db P] [--config P]`: sessions of the history
file as FIT activity files (device.history.fit), one file per session in DIR, for Garmin
Connect, Strava or a watch app.

It reads the history the way the dashboard does (read-only, beside a running daemon), prints
one line per file written and one sentence per session it skips (a session still running).
Exit 0 when every session asked for was written (with --all, running ones are skipped and
still 0), 1 when the one session asked for is still running, 2 with one sentence for a bad
config, a missing or unreadable history file, an unknown session or a folder it cannot write.
"""

from __future__ import annotations

import os
import sqlite3
import sys
from collections.abc import Iterable
from pathlib import Path

from device.config.files import write_atomically
from device.config.kinds import ConfigError
from device.config.load import load_config
from device.errors import RetrotreadError
from device.history.fit import SessionRunning, fit_filename, session_activity
from device.history.reader import History, SessionRow
from device.history.schema import open_error

FILE_MODE = 0o644  # a walker's own training record: theirs to copy anywhere


class ExportError(RetrotreadError):
    """One sentence: what could not be exported, and the fix."""


def export_main(
    *,
    session_id: int | None,
    out: str,
    db_path: str | None = None,
    config_path: str | None = None,
) -> int:
    """Export session `session_id`, or every session when it is None, into folder `out`."""
    try:
        config, _ = load_config(config_path)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    path = db_path or config.storage.db
    cap = config.backward.running_cap_kmh
    written = skipped = 0
    try:
        with History(path) as history:
            sessions = _sessions(history, session_id, path)
            folder = _folder(out)
            for session in sessions:
                try:
                    data = session_activity(history, session, running_cap_kmh=cap)
                except SessionRunning as exc:
                    print(exc, file=sys.stderr)
                    skipped += 1
                    continue
                target = folder / fit_filename(session)
                _write(target, data)
                print(f"{target}: session {session.id}, {session.distance_m:.0f} m, "
                      f"{session.active_s / 60:.1f} min")  # fmt: skip
                written += 1
    except sqlite3.Error as exc:  # a file that opened but is damaged or not ours inside
        print(open_error(exc, path=path), file=sys.stderr)
        return 2
    except RetrotreadError as exc:  # StoreError, ExportError
        print(exc, file=sys.stderr)
        return 2
    if session_id is None and not written and not skipped:
        print(f"There are no sessions in {path} yet; walk one first.", file=sys.stderr)
    return 1 if session_id is not None and skipped else 0


def _sessions(history: History, session_id: int | None, path: str) -> Iterable[SessionRow]:
    """The one session asked for (ExportError now if there is none), or every session newest
    first, read a batch at a time as they are exported."""
    if session_id is None:
        return (row for batch in history.sessions_in_batches() for row in batch)
    found = history.session(session_id)
    if found is None:
        raise ExportError(
            f"There is no session {session_id} in {path}; the dashboard's history lists them, "
            "or use --all."
        )
    return [found]


def _folder(out: str) -> Path:
    folder = Path(out)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExportError(
            f"Cannot create the folder {out} ({exc.strerror}); choose another --out or make "
            "its parent writable."
        ) from None
    return folder


def _write(target: Path, data: bytes) -> None:
    try:
        write_atomically(target, data, mode=FILE_MODE)
    except OSError as exc:
        raise ExportError(
            f"Cannot write {target} ({exc.strerror or exc}); choose another --out or make "
            f"{os.path.dirname(target) or '.'} writable."
        ) from None
