"""The admin logins this dashboard handed out, kept on the server, so that logging out ends a
login for good: a session cookie copied before the logout no longer opens the controls, on
this dashboard or on one restarted since.

Each login gets a random id that rides in the signed session cookie. The state directory's
`web-logins` (mode 0600, written atomically like the secret key) holds one line per live
login: the id's SHA-256 (so the file alone forges nothing) and the login's epoch second.
Logging out removes the line. A login older than LOGIN_LIFETIME_S ends by itself, and past
MAX_LOGINS the oldest ends, so the file stays a few kilobytes whatever happens.

One dashboard process writes the file (web.auth's login limit is per process anyway); a lock
keeps its threads from losing each other's changes.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from pathlib import Path

from web.state_files import StateDirError, state_problem, write_private

LOGINS_FILE = "web-logins"
LOGIN_LIFETIME_S = 30 * 24 * 3600  # a month: the front desk's tablet logs in again monthly
MAX_LOGINS = 32  # more devices than a gym's staff carries; the 33rd login ends the oldest
LOGIN_ID_BYTES = 32

_lock = threading.Lock()


def _digest(login_id: str) -> str:
    return hashlib.sha256(login_id.encode("utf-8", "surrogatepass")).hexdigest()


def _read(path: Path) -> dict[str, float]:
    """digest -> epoch of every line that reads as one; an unreadable line is no login."""
    try:
        text = path.read_text(encoding="ascii", errors="replace")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise state_problem(path, exc, "read the dashboard's logins") from None
    logins: dict[str, float] = {}
    for line in text.splitlines():
        digest, _, epoch = line.partition(" ")
        if len(digest) == 64 and epoch.isascii() and epoch.isdigit():
            logins[digest] = float(epoch)
    return logins


def _write(path: Path, logins: dict[str, float]) -> None:
    text = "".join(f"{digest} {int(epoch)}\n" for digest, epoch in logins.items())
    try:
        write_private(path, text.encode("ascii"), clobber=True)
    except OSError as exc:
        raise state_problem(path, exc, "write the dashboard's logins") from None


def _current(logins: dict[str, float], now: float) -> dict[str, float]:
    live = {d: t for d, t in logins.items() if now - LOGIN_LIFETIME_S <= t <= now + 60}
    newest = sorted(live.items(), key=lambda item: item[1])[-MAX_LOGINS:]
    return dict(newest)


def start_login(state_dir: Path, *, now: float) -> str:
    """A new login's id, recorded in `state_dir`. StateDirError when it cannot be."""
    login_id = secrets.token_urlsafe(LOGIN_ID_BYTES)
    path = Path(state_dir) / LOGINS_FILE
    with _lock:
        logins = _current(_read(path), now)
        if len(logins) >= MAX_LOGINS:
            del logins[min(logins, key=logins.__getitem__)]
        logins[_digest(login_id)] = now
        _write(path, logins)
    return login_id


def is_live(state_dir: Path, login_id: object, *, now: float) -> bool:
    """Whether `login_id` (from a session cookie) is a login that has not ended. Any doubt
    (an odd value, an unreadable file) is no."""
    if not isinstance(login_id, str) or not login_id:
        return False
    try:
        logins = _read(Path(state_dir) / LOGINS_FILE)
    except StateDirError:
        return False
    return _digest(login_id) in _current(logins, now)


def end_login(state_dir: Path, login_id: object, *, now: float) -> None:
    """End `login_id` everywhere (a logout). StateDirError when the file cannot be written:
    the login would outlive the logout, so the caller must say so."""
    if not isinstance(login_id, str) or not login_id:
        return
    path = Path(state_dir) / LOGINS_FILE
    with _lock:
        logins = _read(path)
        kept = _current(logins, now)
        kept.pop(_digest(login_id), None)
        if kept != logins:
            _write(path, kept)
