"""The history file, driven the way the daemon and the web use it: real SQLite files, the
clock passed in, a real crash in a child process."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from device.core.events import EventKind
from device.core.modes import EndReason, Mode, SessionState
from device.core.session import Totals
from device.core.tick import Sample
from device.history import schema
from device.history.store import FLUSH_DUE_S, FLUSH_EVERY_S, Store, StoreError

T0 = 1_760_000_000.0  # an afternoon in October 2025, epoch seconds
WALK_KMH = 2.0
M_PER_S = WALK_KMH / 3.6


def walking(t: float, mode: Mode = Mode.BACKWARD) -> Sample:
    return Sample(t, WALK_KMH, mode, SessionState.RUNNING, 2.0)


def reader(path: Path) -> sqlite3.Connection:
    """The web's connection: read-only, opened beside the daemon's."""
    return sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)


def stored_samples(path: Path) -> int:
    with reader(path) as db:
        return db.execute("SELECT COUNT(*) FROM samples").fetchone()[0]


def assert_one_sentence(message: str, path: object) -> None:
    assert str(path) in message
    assert "\n" not in message and "Traceback" not in message
    assert message.endswith(".") and ". " not in message


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "retrotread.db"


CURRENT = len(schema.MIGRATIONS)


def test_new_file_is_created_in_wal_mode_at_the_current_schema_version(db_path: Path) -> None:
    with Store(db_path), reader(db_path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("PRAGMA user_version").fetchone()[0] == CURRENT == 4
        assert db.execute("SELECT name, level, weight_kg FROM profiles").fetchall() == [
            ("guest", 1, 70)
        ]


def test_empty_file_left_by_a_failed_install_is_given_the_schema(db_path: Path) -> None:
    db_path.parent.mkdir()
    db_path.touch()
    with Store(db_path) as store:
        assert store.sessions() == []
    with reader(db_path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == CURRENT


def test_file_upgrades_to_a_next_version_keeping_its_sessions(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Store(db_path) as store:
        session_id = store.open_session(T0, mode=Mode.BACKWARD, machine_id="treadmill-1")
        store.end_session(session_id, T0 + 60, EndReason.BUTTON, Totals(distance_m=33.0))

    next_version = "ALTER TABLE sessions ADD COLUMN note TEXT NOT NULL DEFAULT '';"
    monkeypatch.setattr(schema, "MIGRATIONS", [*schema.MIGRATIONS, next_version])
    with pytest.raises(StoreError) as web_refused:  # the web waits for the daemon to upgrade
        Store(db_path, read_only=True)
    assert "start retrotread-device" in str(web_refused.value)
    with Store(db_path) as store:
        kept = store.session(session_id)
        assert kept is not None and kept.distance_m == 33.0 and kept.ended_at == T0 + 60
    with reader(db_path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == CURRENT + 1
        assert db.execute("SELECT note FROM sessions").fetchall() == [("",)]


def test_failed_upgrade_leaves_the_file_at_its_old_version(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Store(db_path) as store:
        store.open_session(T0, mode=Mode.FORWARD, machine_id="treadmill-1")
    broken = "ALTER TABLE sessions ADD COLUMN note TEXT; ALTER TABLE nowhere ADD COLUMN x;"
    monkeypatch.setattr(schema, "MIGRATIONS", [*schema.MIGRATIONS, broken])
    with pytest.raises(StoreError) as refused:
        Store(db_path)
    assert_one_sentence(str(refused.value), db_path)
    with reader(db_path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == CURRENT
        columns = [row[1] for row in db.execute("PRAGMA table_info(sessions)")]
        assert "note" not in columns
        assert db.execute("SELECT COUNT(*) FROM sessions").fetchone()[0] == 1


def test_file_from_a_newer_retrotread_is_refused_untouched(db_path: Path) -> None:
    Store(db_path).close()
    with sqlite3.connect(db_path) as db:
        db.execute("PRAGMA user_version = 7")
    with pytest.raises(StoreError) as refused:
        Store(db_path)
    assert "newer" in str(refused.value)
    assert_one_sentence(str(refused.value), db_path)
    with reader(db_path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 7


def test_samples_reach_the_file_in_batches_never_more_than_5_s_behind(db_path: Path) -> None:
    with Store(db_path) as store:
        session_id = store.open_session(T0, mode=Mode.BACKWARD, machine_id="treadmill-1")
        flushes = 0
        for second in range(31):
            now = T0 + second
            store.add_sample(session_id, walking(now))
            flushes += store.maybe_flush(now)
            # every sample at least FLUSH_DUE_S old is on disk: with the next one a second
            # later, a kill never takes more than FLUSH_EVERY_S
            assert stored_samples(db_path) >= second + 1 - FLUSH_DUE_S
            assert FLUSH_DUE_S + 1 <= FLUSH_EVERY_S
        assert 7 <= flushes <= 11  # batches of three or four, not one write a second


def test_totals_are_written_with_the_samples_of_the_same_batch(db_path: Path) -> None:
    with Store(db_path) as store:
        session_id = store.open_session(T0, mode=Mode.BACKWARD, machine_id="treadmill-1")
        for second in range(4):
            store.add_sample(session_id, walking(T0 + second))
            store.update_totals(session_id, Totals(distance_m=second * M_PER_S, backward_s=second))
            store.maybe_flush(T0 + second)
        with Store(db_path, read_only=True) as web:
            seen = web.session(session_id)
            assert seen is not None
            assert seen.backward_s == 3 and seen.last_sample_at == T0 + 3
            assert seen.distance_m == pytest.approx(3 * M_PER_S)


CRASHING_DAEMON = textwrap.dedent(
    """
    import os, sys
    from device.core.modes import Mode, SessionState
    from device.core.session import Totals
    from device.core.tick import Sample
    from device.history.store import Store

    store = Store(sys.argv[1])
    session_id = store.open_session({t0}, mode=Mode.BACKWARD, machine_id="treadmill-1")
    for second in range({seconds}):
        t = {t0} + second
        store.add_sample(session_id, Sample(t, {kmh}, Mode.BACKWARD, SessionState.RUNNING, 2.0))
        store.update_totals(session_id, Totals(distance_m=second * {kmh} / 3.6, backward_s=second))
        if store.maybe_flush(t):
            print(t, flush=True)
    os._exit(1)  # the power cut: no end_session, no close
    """
)


def crash_daemon(path: Path, *, seconds: int) -> list[float]:
    """Run a daemon that walks `seconds` of samples and dies; returns its flush times."""
    script = CRASHING_DAEMON.format(t0=T0, seconds=seconds, kmh=WALK_KMH)
    done = subprocess.run(
        [sys.executable, "-c", script, str(path)], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 1, done.stderr
    return [float(line) for line in done.stdout.split()]


def test_power_cut_session_is_closed_as_interrupted_at_its_last_flushed_sample(
    db_path: Path,
) -> None:
    flushed_at = crash_daemon(db_path, seconds=14)
    last_flush = flushed_at[-1]
    assert T0 + 13 - last_flush < FLUSH_EVERY_S  # the cut took less than 5 s of samples

    with Store(db_path) as store:
        [session_id] = store.recover_interrupted()
        session = store.session(session_id)
        assert session is not None
        assert session.end_reason == EndReason.INTERRUPTED
        assert session.ended_at == last_flush
        # totals as of the last flush, kept together with its samples
        assert session.backward_s == last_flush - T0
        assert session.distance_m == pytest.approx((last_flush - T0) * M_PER_S)
        # only the unflushed samples are lost
        assert [s.t for s in store.samples(session_id)] == [
            T0 + second for second in range(int(last_flush - T0) + 1)
        ]
        [segment] = store.segments(session_id)
        assert segment.ended_at == last_flush
        assert segment.distance_m == pytest.approx(session.distance_m)
        ended = [e for e in store.events(session_id) if e.kind == EventKind.SESSION_ENDED]
        assert [(e.t, e.details) for e in ended] == [(last_flush, {"reason": "interrupted"})]
        assert store.recover_interrupted() == []


def test_power_cut_before_the_first_sample_ends_the_session_at_its_start(db_path: Path) -> None:
    crash_daemon(db_path, seconds=0)
    with Store(db_path) as store:
        [session_id] = store.recover_interrupted()
        session = store.session(session_id)
        assert session is not None and session.ended_at == T0
        assert session.end_reason == EndReason.INTERRUPTED


def test_recovery_leaves_the_session_this_daemon_is_running(db_path: Path) -> None:
    with Store(db_path) as store:
        session_id = store.open_session(T0, mode=Mode.BACKWARD, machine_id="treadmill-1")
        assert store.recover_interrupted() == []
        assert store.session(session_id).ended_at is None  # type: ignore[union-attr]


def test_web_reads_the_history_while_the_daemon_writes(db_path: Path) -> None:
    with Store(db_path) as daemon:
        session_id = daemon.open_session(T0, mode=Mode.BACKWARD, machine_id="treadmill-1")
        web = reader(db_path)
        assert web.execute("SELECT id FROM sessions").fetchall() == [(session_id,)]
        for second in range(3):
            daemon.add_sample(session_id, walking(T0 + second))
        daemon.flush()
        assert web.execute("SELECT COUNT(*) FROM samples").fetchone()[0] == 3

        # a write transaction in progress does not hold the reader up
        writer = sqlite3.connect(db_path, isolation_level=None)
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("INSERT INTO profiles (name) VALUES ('ana')")
        with Store(db_path, read_only=True) as history:
            assert [s.id for s in history.sessions()] == [session_id]
            assert len(history.samples(session_id)) == 3
        writer.execute("ROLLBACK")
        writer.close()
        web.close()


def test_read_only_store_refuses_to_write(db_path: Path) -> None:
    Store(db_path).close()
    with Store(db_path, read_only=True) as web:
        with pytest.raises(StoreError) as refused:
            web.add_event(T0, EventKind.CONFIG_RELOADED, urgent=True)
        assert_one_sentence(str(refused.value), db_path)


def test_reader_before_the_daemon_ever_ran_is_told_what_to_do(db_path: Path) -> None:
    with pytest.raises(StoreError) as refused:
        Store(db_path, read_only=True)
    assert "retrotread-device" in str(refused.value)
    assert_one_sentence(str(refused.value), db_path)


def test_unwritable_state_directory_gives_one_sentence(tmp_path: Path) -> None:
    # a file where the directory should be stops even root, unlike a chmod
    blocker = tmp_path / "var"
    blocker.write_text("not a directory")
    with pytest.raises(StoreError) as refused:
        Store(blocker / "lib" / "retrotread.db")
    assert_one_sentence(str(refused.value), blocker / "lib")


def test_path_that_is_a_directory_gives_one_sentence(tmp_path: Path) -> None:
    with pytest.raises(StoreError) as refused:
        Store(tmp_path)
    assert_one_sentence(str(refused.value), tmp_path)


@pytest.mark.parametrize("repeat", [1, 100])
def test_file_that_is_not_a_database_is_refused_and_kept(tmp_path: Path, repeat: int) -> None:
    notes = tmp_path / "notes.db"
    notes.write_bytes(b"eggs, milk, a slower treadmill\n" * repeat)
    with pytest.raises(StoreError) as refused:
        Store(notes)
    assert "not a history database" in str(refused.value)
    assert_one_sentence(str(refused.value), notes)
    assert notes.read_bytes() == b"eggs, milk, a slower treadmill\n" * repeat


def test_backward_then_forward_session_is_stored_with_its_segments(db_path: Path) -> None:
    with Store(db_path) as store:
        session_id = store.open_session(
            T0, mode=Mode.BACKWARD, machine_id="treadmill-1", profile="ana"
        )
        store.add_event(
            T0, EventKind.SESSION_STARTED, {"mode": Mode.BACKWARD}, session_id=session_id
        )
        for second in range(11):
            store.add_sample(session_id, walking(T0 + second))
        store.start_segment(session_id, T0 + 10, Mode.FORWARD)
        store.add_event(
            T0 + 10, EventKind.MODE_CHANGED, {"mode": Mode.FORWARD}, session_id=session_id
        )
        for second in range(10, 31):
            store.add_sample(session_id, walking(T0 + second, Mode.FORWARD))
        store.end_session(
            session_id,
            T0 + 30,
            EndReason.BUTTON,
            Totals(
                distance_m=30 * M_PER_S,
                backward_s=10,
                forward_s=20,
                backward_distance_m=10 * M_PER_S,
                top_speed_kmh=WALK_KMH,
                kcal=4.2,
            ),
        )

        session = store.session(session_id)
        assert session is not None
        assert (session.ended_at, session.end_reason) == (T0 + 30, EndReason.BUTTON)
        assert (session.backward_s, session.forward_s, session.kcal) == (10, 20, 4.2)
        assert (session.profile, session.machine_id) == ("ana", "treadmill-1")
        backward, forward = store.segments(session_id)
        assert (backward.mode, backward.started_at, backward.ended_at) == (
            Mode.BACKWARD,
            T0,
            T0 + 10,
        )
        assert backward.distance_m == pytest.approx(10 * M_PER_S)
        assert (forward.mode, forward.ended_at) == (Mode.FORWARD, T0 + 30)
        assert forward.distance_m == pytest.approx(20 * M_PER_S)
        samples = store.samples(session_id)
        assert len(samples) == 32  # the turn at T0 + 10 was sampled in both modes
        assert samples[0] == walking(T0)
        assert [(e.kind, e.details) for e in store.events(session_id)] == [
            (EventKind.SESSION_STARTED, {"mode": "backward"}),
            (EventKind.MODE_CHANGED, {"mode": "forward"}),
        ]


def test_unknown_speed_and_gaps_add_no_distance(db_path: Path) -> None:
    with Store(db_path) as store:
        session_id = store.open_session(T0, mode=Mode.BACKWARD, machine_id="treadmill-1")
        lost = Sample(T0 + 2, None, Mode.BACKWARD, SessionState.RUNNING, 2.0)
        for sample in (walking(T0), walking(T0 + 1), lost):
            store.add_sample(session_id, sample)
        store.add_sample(session_id, walking(T0 + 3))
        store.add_sample(session_id, walking(T0 + 60))  # the belt was paused in between
        store.end_session(session_id, T0 + 60, EndReason.BUTTON, None)
        [segment] = store.segments(session_id)
        assert segment.distance_m == pytest.approx(1 * M_PER_S)
        assert store.samples(session_id)[2].speed_kmh is None


def test_safety_event_is_on_disk_at_once_and_routine_ones_wait_for_the_batch(
    db_path: Path,
) -> None:
    def stored_kinds() -> list[str]:
        with reader(db_path) as db:
            return [row[0] for row in db.execute("SELECT kind FROM events ORDER BY id")]

    with Store(db_path) as store:
        session_id = store.open_session(T0, mode=Mode.BACKWARD, machine_id="treadmill-1")
        store.add_event(T0 + 1, EventKind.SESSION_PAUSED, session_id=session_id)
        assert stored_kinds() == []
        store.add_event(T0 + 2, EventKind.ENFORCED_STOP, {"speed_kmh": 3.1}, session_id=session_id)
        assert stored_kinds() == ["session_paused", "enforced_stop"]
        store.add_event(T0 + 3, EventKind.CONFIG_RELOADED)
        assert not store.maybe_flush(T0 + 3 + FLUSH_DUE_S - 0.5)
        assert store.maybe_flush(T0 + 3 + FLUSH_DUE_S)
        assert stored_kinds()[-1] == "config_reloaded"
        assert store.events(session_id=None)[-1].session_id is None


def test_clock_set_back_by_ntp_does_not_hold_samples_back(db_path: Path) -> None:
    with Store(db_path) as store:
        session_id = store.open_session(T0, mode=Mode.BACKWARD, machine_id="treadmill-1")
        store.add_sample(session_id, walking(T0))
        assert store.maybe_flush(T0 - 3600)
        assert stored_samples(db_path) == 1


def test_samples_only_for_the_session_that_is_running(db_path: Path) -> None:
    with Store(db_path) as store:
        session_id = store.open_session(T0, mode=Mode.BACKWARD, machine_id="treadmill-1")
        store.end_session(session_id, T0 + 5, EndReason.BUTTON, None)
        with pytest.raises(ValueError):
            store.add_sample(session_id, walking(T0 + 6))
        with pytest.raises(ValueError):
            store.add_event(T0 + 6, EventKind.LEVEL_UP, session_id=session_id + 1)


def test_history_lists_sessions_newest_first_a_page_at_a_time(db_path: Path) -> None:
    with Store(db_path) as store:
        ids = []
        for day in range(5):
            session_id = store.open_session(
                T0 + day * 86400, mode=Mode.BACKWARD, machine_id="treadmill-1"
            )
            store.end_session(session_id, T0 + day * 86400 + 600, EndReason.BUTTON, None)
            ids.append(session_id)
        assert [s.id for s in store.sessions()] == ids[::-1]
        assert [s.id for s in store.sessions(limit=2, offset=1)] == [ids[3], ids[2]]
        assert [s.id for s in store.sessions(profile="nobody")] == []


@pytest.mark.parametrize(
    "query",
    [
        "SELECT * FROM sessions ORDER BY started_at DESC, id DESC LIMIT 20 OFFSET 40",
        "SELECT * FROM samples WHERE session_id = 7 ORDER BY t",
        "SELECT * FROM events WHERE session_id = 7 ORDER BY t",
    ],
)
def test_history_pages_are_read_through_an_index_not_a_scan(db_path: Path, query: str) -> None:
    Store(db_path).close()
    with reader(db_path) as db:
        plan = " ".join(row[-1] for row in db.execute(f"EXPLAIN QUERY PLAN {query}"))
    assert "INDEX" in plan and "TEMP B-TREE" not in plan, plan


def test_simulation_keeps_its_history_in_memory() -> None:
    with Store(":memory:") as store:
        session_id = store.open_session(T0, mode=Mode.FORWARD, machine_id="sim")
        store.add_sample(session_id, walking(T0, Mode.FORWARD))
        store.end_session(session_id, T0 + 1, EndReason.SHUTDOWN, Totals(distance_m=0.5))
        assert [(s.id, s.distance_m) for s in store.sessions()] == [(session_id, 0.5)]
        assert len(store.samples(session_id)) == 1


def test_a_new_history_file_is_shared_with_the_dashboards_group(tmp_path):
    # The dashboard runs as another user in the file's group; its read-only WAL reader may
    # create -shm/-wal with the database's mode, which the daemon must still be able to write.
    import stat as stat_module

    path = tmp_path / "history.db"
    Store(path).close()
    assert stat_module.S_IMODE(path.stat().st_mode) & 0o060 == 0o060
