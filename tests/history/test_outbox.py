"""The outbox in the history file: every finished session waits there, in the very transaction
that ends it, until the fleet publisher marks it sent on the broker's acknowledgement."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from device.core.events import EventKind
from device.core.modes import EndReason, Mode, SessionState
from device.core.session import Totals
from device.core.tick import Sample
from device.fleet import topics
from device.history import outbox, schema
from device.history.outbox import Outbox
from device.history.store import Store

T0 = 1_760_000_000.0  # an afternoon in October 2025, epoch seconds
SCHEMA = json.loads((Path(topics.__file__).parent / "schema" / "session.json").read_text())
UUID4 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "retrotread.db"


def valid_session(payload: bytes) -> dict[str, Any]:
    session = json.loads(payload)
    jsonschema.Draft202012Validator(SCHEMA).validate(session)
    return session


def walk(store: Store, start: float, seconds: int, *, end: bool = True) -> int:
    """A guest walks `seconds` backward at 2 km/h; ended with the button unless `end` is
    False."""
    session_id = store.open_session(start, mode=Mode.BACKWARD, machine_id="treadmill-1")
    for second in range(seconds):
        store.add_sample(
            session_id, Sample(start + second, 2.0, Mode.BACKWARD, SessionState.RUNNING, 2.0)
        )
    if end:
        totals = Totals(distance_m=seconds * 2.0 / 3.6, backward_s=seconds, kcal=1.5)
        store.end_session(session_id, start + seconds, EndReason.BUTTON, totals)
    return session_id


def test_a_finished_session_waits_in_the_outbox_as_the_fleet_schema_describes_it(
    db_path: Path,
) -> None:
    with Store(db_path) as store:
        session_id = store.open_session(
            T0, mode=Mode.BACKWARD, machine_id="treadmill-1", profile="ana", level=2
        )
        for second in range(20):
            mode = Mode.BACKWARD if second < 12 else Mode.FORWARD
            speed = None if second == 5 else 2.0  # a second the sensor could not vouch for
            cap = 2.0 if mode is Mode.BACKWARD else None
            sample = Sample(T0 + second, speed, mode, SessionState.RUNNING, cap)
            store.add_sample(session_id, sample)
            if second == 12:
                store.start_segment(session_id, T0 + 12, Mode.FORWARD)
                store.add_event(T0 + 12, EventKind.MODE_CHANGED, {"mode": Mode.FORWARD},
                                session_id=session_id)  # fmt: skip
        store.add_event(T0 + 8, EventKind.OVERSPEED_WARNING, {"speed_kmh": 2.6, "cap_kmh": 2.0},
                        session_id=session_id)  # fmt: skip
        totals = Totals(10.5, backward_s=12, forward_s=8, backward_distance_m=6.1,
                        top_speed_kmh=2.0, kcal=2.5, backward_paced_s=11)  # fmt: skip
        # the last samples are still buffered: they go in the transaction that ends it
        store.end_session(session_id, T0 + 20, EndReason.BUTTON, totals)

        [(uuid, payload)] = Outbox(db_path).pending(10)
        session = valid_session(payload)
        assert uuid == session["uuid"] == store.session_uuid(session_id)
        assert UUID4.fullmatch(uuid)
        assert session["v"] == topics.PAYLOAD_VERSION
        assert (session["machine_id"], session["profile"], session["level"]) == (
            "treadmill-1", "ana", 2)  # fmt: skip
        assert (session["started_at"], session["ended_at"], session["end_reason"]) == (
            T0, T0 + 20, "button")  # fmt: skip
        stored = store.session(session_id)
        assert stored is not None
        assert session["totals"] == {name: getattr(totals, name) for name in outbox.TOTALS}
        assert session["totals"]["distance_m"] == stored.distance_m
        assert session["segments"] == [
            {"mode": s.mode, "started_at": s.started_at, "ended_at": s.ended_at,
             "distance_m": s.distance_m} for s in store.segments(session_id)
        ]  # fmt: skip
        assert [seg["mode"] for seg in session["segments"]] == ["backward", "forward"]
        assert session["samples"] == [
            [s.t, s.speed_kmh, s.mode, s.state, s.cap_kmh] for s in store.samples(session_id)
        ]
        assert len(session["samples"]) == 20 and session["samples"][5][1] is None
        assert [(e["t"], e["kind"]) for e in session["events"]] == [
            (T0 + 8, "overspeed_warning"), (T0 + 12, "mode_changed")]  # fmt: skip


CRASHING_DAEMON = textwrap.dedent(
    """
    import os, sys
    from device.core.modes import EndReason, Mode, SessionState
    from device.core.session import Totals
    from device.core.tick import Sample
    from device.history import outbox
    from device.history.store import Store

    store = Store(sys.argv[1])
    if sys.argv[2] == "inside":  # the power cut comes while the end is being written
        post = outbox.post_session
        def post_then_die(db, session_id, *, now):
            post(db, session_id, now=now)
            os._exit(1)  # the row is written, the transaction not yet committed
        outbox.post_session = post_then_die
    session_id = store.open_session({t0}, mode=Mode.BACKWARD, machine_id="treadmill-1")
    for second in range(8):
        t = {t0} + second
        store.add_sample(session_id, Sample(t, 2.0, Mode.BACKWARD, SessionState.RUNNING, 2.0))
        store.maybe_flush(t)
    store.end_session(session_id, {t0} + 8, EndReason.BUTTON, Totals(backward_s=8))
    os._exit(1)  # the power cut right after the end: no close, nothing else
    """
)


@pytest.mark.parametrize("cut", ["inside", "after"])
def test_a_power_cut_never_leaves_a_session_ended_without_its_outbox_row(
    db_path: Path, cut: str
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", CRASHING_DAEMON.format(t0=T0), str(db_path), cut],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    with sqlite3.connect(db_path) as db:
        (ended,) = db.execute("SELECT COUNT(*) FROM sessions WHERE ended_at IS NOT NULL").fetchone()
        (posted,) = db.execute("SELECT COUNT(*) FROM outbox").fetchone()
    assert (ended, posted) == ((0, 0) if cut == "inside" else (1, 1))

    with Store(db_path) as store:  # the next start closes what the cut left open
        recovered = store.recover_interrupted()
        [(uuid, payload)] = Outbox(db_path).pending(10)
        session = valid_session(payload)
    assert len(recovered) == (cut == "inside")
    assert session["end_reason"] == ("interrupted" if cut == "inside" else "button")
    assert uuid == session["uuid"]


def test_pending_sessions_go_oldest_first_and_each_is_marked_sent_once(db_path: Path) -> None:
    with Store(db_path) as store:
        uuids = [store.session_uuid(walk(store, T0 + n * 600, 5)) for n in range(3)]
    box = Outbox(db_path)
    assert [u for u, _ in box.pending(2)] == uuids[:2]
    box.mark_sent(uuids[0])
    with sqlite3.connect(db_path) as db:
        [(first_sent_at,)] = db.execute("SELECT sent_at FROM outbox WHERE uuid = ?", uuids[:1])
    box.mark_sent(uuids[0])  # a second acknowledgement (a resend after a reconnect)
    box.mark_sent("00000000-0000-4000-8000-000000000000")  # one this file never had
    assert [u for u, _ in box.pending(10)] == uuids[1:]
    with sqlite3.connect(db_path) as db:
        assert db.execute("SELECT sent_at FROM outbox WHERE uuid = ?", uuids[:1]).fetchall() == [
            (first_sent_at,)
        ]
    assert box.error is None
    box.close()


def test_unsent_sessions_are_still_pending_after_a_daemon_restart(db_path: Path) -> None:
    with Store(db_path) as store:
        first, second = (store.session_uuid(walk(store, T0 + n * 600, 5)) for n in range(2))
    Outbox(db_path).mark_sent(first)  # type: ignore[arg-type]
    with Store(db_path) as store:  # the daemon starts again
        assert store.recover_interrupted() == []
        assert [u for u, _ in Outbox(db_path).pending(10)] == [second]


def test_a_locked_file_is_nothing_pending_now_and_the_acknowledgement_is_kept(
    db_path: Path,
) -> None:
    with Store(db_path) as store:
        first, second = (store.session_uuid(walk(store, T0 + n * 600, 5)) for n in range(2))
    box = Outbox(db_path)
    assert first is not None and second is not None

    # Another writer (the daemon mid-batch, a backup) holds the write lock: WAL lets the
    # publisher read on, and the acknowledgement waits in memory for the lock.
    other = sqlite3.connect(db_path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    box.mark_sent(first)
    assert box.error is not None and "cannot be written now" in box.error
    assert [u for u, _ in box.pending(10)] == [second]  # not offered again meanwhile
    other.execute("COMMIT")
    assert [u for u, _ in box.pending(10)] == [second]  # this call wrote the mark
    assert box.error is None

    # One that keeps even readers out (exclusive locking, taken while the publisher was
    # disconnected): nothing pending now, no exception, and the acknowledgement kept.
    box.close()
    other.execute("PRAGMA locking_mode = EXCLUSIVE")
    other.execute("BEGIN EXCLUSIVE")
    other.execute("COMMIT")  # exclusive mode keeps the lock until the connection closes
    assert box.pending(10) == []
    assert box.error is not None and "cannot be read now" in box.error
    box.mark_sent(second)
    other.close()
    assert box.pending(10) == []  # the kept acknowledgement went in with this call
    with sqlite3.connect(db_path) as db:
        assert db.execute("SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL").fetchone() == (0,)
    box.close()


def test_an_outbox_without_a_history_file_has_nothing_pending_and_makes_no_file(
    tmp_path: Path,
) -> None:
    box = Outbox(tmp_path / "nowhere" / "retrotread.db")
    assert box.pending(10) == []
    box.mark_sent("00000000-0000-4000-8000-000000000000")
    assert box.error is not None and str(tmp_path / "nowhere") in box.error
    assert not (tmp_path / "nowhere").exists()


def test_version_3_sessions_get_uuids_on_the_upgrade_and_no_outbox_rows(db_path: Path) -> None:
    db_path.parent.mkdir()
    with sqlite3.connect(db_path) as db:  # the file exactly as schema version 3 wrote it
        db.executescript("\n".join(schema.MIGRATIONS[:3]) + "\nPRAGMA user_version = 3;")
        for n, ended in enumerate((T0 + 600, T0 + 1800, None)):
            db.execute(
                "INSERT INTO sessions (started_at, ended_at, end_reason, machine_id) VALUES"
                " (?, ?, ?, 'treadmill-1')",
                (T0 + n * 1200, ended, ended and "button"),
            )
    db.close()

    with Store(db_path) as store:
        old = [store.session_uuid(s.id) for s in store.sessions()]
        assert all(u is not None and UUID4.fullmatch(u) for u in old) and len(set(old)) == 3
        # the fleet starts with this version: old history is not sent
        assert Outbox(db_path).pending(10) == []
        # the session the old daemon left open is closed now, and goes to the fleet
        [recovered] = store.recover_interrupted()
        [(uuid, payload)] = Outbox(db_path).pending(10)
        assert uuid == store.session_uuid(recovered) and valid_session(payload)["uuid"] == uuid
        # and a new session's uuid is unique beside them
        assert store.session_uuid(walk(store, T0 + 7200, 3)) not in old


def test_the_unsent_backlog_keeps_the_newest_sessions_and_counts_the_rest(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(outbox, "MAX_UNSENT", 3)
    with Store(db_path) as store:
        uuids = [store.session_uuid(walk(store, T0 + n * 600, 2)) for n in range(5)]
        assert [u for u, _ in Outbox(db_path).pending(10)] == uuids[2:]
        assert store.outbox_dropped == 2
        # and the history itself keeps every session
        assert store.session_count() == 5


def test_sent_sessions_are_pruned_after_a_week(db_path: Path) -> None:
    with Store(db_path) as store:
        old, recent = (store.session_uuid(walk(store, T0 + n * 600, 2)) for n in range(2))
        box = Outbox(db_path)
        box.mark_sent(old)  # type: ignore[arg-type]
        box.mark_sent(recent)  # type: ignore[arg-type]
        with sqlite3.connect(db_path) as db:  # as if sent eight days ago
            db.execute("UPDATE outbox SET sent_at = sent_at - 8 * 86400 WHERE uuid = ?", (old,))
        newest = store.session_uuid(walk(store, T0 + 1800, 2))  # the next end prunes
    with sqlite3.connect(db_path) as db:
        kept = {u for (u,) in db.execute("SELECT uuid FROM outbox")}
    assert kept == {recent, newest}


def test_the_payload_version_is_the_fleets() -> None:
    assert outbox.PAYLOAD_VERSION == topics.PAYLOAD_VERSION
