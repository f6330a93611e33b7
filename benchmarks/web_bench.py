"""How fast the dashboard's history answers from a history of years: 10,000 sessions and about
3 million 1 Hz samples, one of the sessions four hours long.

The database is built once (executemany in one transaction) into .bench-cache/ and reused
while the schema version and the sizes match; the build time is printed. Every request goes
through Flask's test client into the real app (web.create_app) reading the file read-only,
as the dashboard does on the Pi; each URL is asked WARMUP times, then timed RUNS times,
body read to the last byte.
"""

from __future__ import annotations

import math
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from benchmarks.table import Row
from device.config.model import Config
from device.core.events import EventKind
from device.core.modes import EndReason, Mode, SessionState
from device.history import schema
from device.history.store import Store

TITLE = "Web: history pages and API on 10,000 sessions and 3 million samples"
TARGET_MS = 100.0
# A FIT file is a download a walker asks for once, not a page: Garmin's encoder writes the
# 14,400 records of the four-hour session in Python, and a second is still a prompt download.
FIT_TARGET_MS = 1000.0
RUNS = 20
WARMUP = 2
SESSIONS = 10_000
LONG_SESSION = 5_000  # the id of the four-hour session, in the middle of the history
LONG_S = 4 * 3600
SHORT_S = (60, 537)  # the others: 1 to 9 minutes, about 3 million samples in all
SPAN_S = 3 * 365 * 86400.0  # the history covers three years up to now
CACHE = Path(__file__).resolve().parent.parent / ".bench-cache"


def cached_database() -> Path:
    """The benchmark's history file, built on first use."""
    path = CACHE / f"web-history-v{len(schema.MIGRATIONS)}-{SESSIONS}.db"
    if path.exists():
        print(f"web bench: reusing {path}", file=sys.stderr)
        return path
    CACHE.mkdir(exist_ok=True)
    building = path.with_name(f"{path.stem}-building.db")  # renamed once complete
    building.unlink(missing_ok=True)
    started = time.perf_counter()
    Store(building).close()  # the real schema, at the current version
    samples = build(building)
    took = time.perf_counter() - started
    print(f"web bench: built {path} ({SESSIONS:,} sessions, {samples:,} samples) in "
          f"{took:.1f} s", file=sys.stderr)  # fmt: skip
    building.rename(path)
    return path


def build(path: Path) -> int:
    """Fill the empty history file at `path`; returns the number of samples."""
    rng = random.Random(7)
    now = time.time()
    sessions, segments, events, counts = [], [], [], []
    for sid in range(1, SESSIONS + 1):
        start = now - SPAN_S * (SESSIONS - sid + 1) / SESSIONS
        length = LONG_S if sid == LONG_SESSION else rng.randint(*SHORT_S)
        forward_from = length * 0.7 if rng.random() < 0.4 else length
        stops = 12 if sid == LONG_SESSION else int(rng.random() < 0.1)
        end = start + length
        sessions.append((sid, start, end, EndReason.BUTTON, length * 0.6, forward_from,
                         length - forward_from, forward_from * 0.6, 3.4, "treadmill-1", "guest",
                         length * 0.05, end, 0.0, 1))  # fmt: skip
        segments.append((sid, Mode.BACKWARD, start, start + forward_from))
        if forward_from < length:
            segments.append((sid, Mode.FORWARD, start + forward_from, end))
        events.append((sid, start, EventKind.SESSION_STARTED, '{"mode": "backward"}'))
        for k in range(stops):
            at = start + length * (k + 0.5) / (stops + 1)
            warning = '{"speed_kmh": 2.6, "cap_kmh": 2.0, "grace_s": 5.0, "reason": "3 s mean"}'
            stop = '{"speed_kmh": 2.6, "cap_kmh": 2.0, "reason": "3 s mean", "action": "relay"}'
            events.append((sid, at, EventKind.OVERSPEED_WARNING, warning))
            events.append((sid, at + 5, EventKind.ENFORCED_STOP, stop))
        events.append((sid, end, EventKind.SESSION_ENDED, '{"reason": "button"}'))
        counts.append((sid, start, length, forward_from))

    def samples() -> Iterator[tuple]:
        for sid, start, length, forward_from in counts:
            for i in range(length):
                mode = Mode.BACKWARD if i < forward_from else Mode.FORWARD
                cap = min(2.0 + i // 30 * 0.1, 3.0) if mode is Mode.BACKWARD else None
                speed = 1.8 + 0.6 * math.sin(i / 40.0)
                yield (sid, start + i, speed, mode, SessionState.RUNNING, cap)

    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode = OFF")  # one bulk load; WAL again once it is in
    db.execute("PRAGMA synchronous = OFF")
    db.execute("BEGIN")
    db.executemany(
        "INSERT INTO sessions (id, started_at, ended_at, end_reason, distance_m, backward_s,"
        " forward_s, backward_distance_m, top_speed_kmh, machine_id, profile, kcal,"
        " last_sample_at, backward_fast_s, level) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        sessions,
    )
    db.executemany(
        "INSERT INTO segments (session_id, mode, started_at, ended_at) VALUES (?,?,?,?)", segments
    )
    db.executemany("INSERT INTO events (session_id, t, kind, details) VALUES (?,?,?,?)", events)
    db.executemany(
        "INSERT INTO samples (session_id, t, speed_kmh, mode, state, cap_kmh) VALUES (?,?,?,?,?,?)",
        samples(),
    )
    db.execute("COMMIT")
    (total,) = db.execute("SELECT MAX(rowid) FROM samples").fetchone()
    db.execute("PRAGMA journal_mode = WAL")
    db.close()
    return total


def _time(client, url: str) -> tuple[list[float], list[float]]:
    """Milliseconds to the first chunk of the body and to its last byte, per timed run."""
    first, whole = [], []
    for run in range(WARMUP + RUNS):
        started = time.perf_counter()
        response = client.get(url)
        chunks = response.iter_encoded()
        head = next(chunks, b"")
        got_first = time.perf_counter()
        size = len(head) + sum(len(chunk) for chunk in chunks)
        done = time.perf_counter()
        response.close()
        if response.status_code != 200 or not size:
            raise RuntimeError(f"{url} answered {response.status_code}: {head[:200]!r}")
        if run >= WARMUP:
            first.append((got_first - started) * 1000)
            whole.append((done - started) * 1000)
    return first, whole


def _row(label: str, timings: list[float], target_ms: float = TARGET_MS) -> Row:
    timings = sorted(timings)
    p50, p95 = statistics.median(timings), timings[math.ceil(0.95 * len(timings)) - 1]
    return Row(f"  {label}", f"{p50:.1f} / {p95:.1f} ms", f"p95 < {target_ms:.0f} ms",
               p95 < target_ms)  # fmt: skip


def rows() -> list[Row]:
    from web import create_app  # the web's dependencies are not the other benches' concern
    from web.serve import freeze_start_up

    db = cached_database()
    with tempfile.TemporaryDirectory(dir="/tmp") as state:
        app = create_app(Config(), db_path=str(db), socket_path=f"{state}/no-daemon.sock",
                         state_dir=state)  # fmt: skip
        freeze_start_up()  # as `retrotread web` does before it serves
        client = app.test_client()
        deepest = math.ceil(SESSIONS / 25)
        asked = [
            ("/history, page 1", "/history"),
            (f"/history, page {deepest} (the oldest)", f"/history?page={deepest}"),
            ("/api/sessions", "/api/sessions"),
            ("/api/sessions, 200 from offset 9,800", "/api/sessions?limit=200&offset=9800"),
            ("/sessions/<id>, 4 h session page", f"/sessions/{LONG_SESSION}"),
            ("/api/sessions/<id>, 4 h session JSON", f"/api/sessions/{LONG_SESSION}"),
            ("samples.csv, 4 h session", f"/api/sessions/{LONG_SESSION}/samples.csv"),
        ]
        out = [Row(f"{RUNS} runs each after {WARMUP} warm-ups; p50 / p95, whole answer")]
        out += [_row(label, _time(client, url)[1]) for label, url in asked]
        fit = _time(client, f"/sessions/{LONG_SESSION}.fit")[1]
        out.append(_row("FIT file, 4 h session (14,400 records)", fit, FIT_TARGET_MS))
        first, whole = _time(client, "/api/sessions.csv")
        out.append(_row(f"sessions.csv, all {SESSIONS:,}: first chunk", first))
        out.append(Row("  sessions.csv: the whole export (streamed; grows with the history)",
                       f"{statistics.median(whole):.0f} ms"))  # fmt: skip
    return out
