"""The history writer's store when the disk refuses writes: nothing is lost that fits in the
buffer, what does not fit is counted, and files that are not ours are never touched."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from device.core.events import EventKind
from device.core.modes import EndReason, Mode, SessionState
from device.core.program import Profile
from device.core.session import Totals
from device.core.tick import Sample
from device.history import schema, store
from device.history.store import Store, StoreError

T0 = 1_760_000_000.0


def walking(t: float) -> Sample:
    return Sample(t, 1.5, Mode.BACKWARD, SessionState.RUNNING, 2.0)


class Disk:
    """Makes the store's writes fail like a full SD card while `full` is set."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.full = False
        real = Store._commit

        def commit(the_store: Store) -> None:
            if self.full:
                raise the_store._refused(sqlite3.OperationalError("database or disk is full"))
            real(the_store)

        monkeypatch.setattr(Store, "_commit", commit)


@pytest.fixture
def disk(monkeypatch: pytest.MonkeyPatch) -> Disk:
    return Disk(monkeypatch)


def read(path: Path, sql: str) -> list[tuple]:
    db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


def test_a_whole_session_walked_on_a_full_disk_is_written_once_space_returns(
    tmp_path: Path, disk: Disk
) -> None:
    path = tmp_path / "history.db"
    with Store(path) as history:
        disk.full = True
        session_id = history.open_session(T0, mode=Mode.BACKWARD, machine_id="treadmill-1")
        assert history.error is not None and "disk is full" in history.error
        for second in range(1, 11):
            history.add_sample(session_id, walking(T0 + second))
        history.start_segment(session_id, T0 + 10, Mode.FORWARD)
        history.add_event(T0 + 10.5, EventKind.ENFORCED_STOP, session_id=session_id)
        history.save_profile(Profile("guest", qualifying_total=1))
        history.end_session(session_id, T0 + 11, EndReason.BUTTON, Totals(distance_m=4.2))
        assert read(path, "SELECT COUNT(*) FROM sessions") == [(0,)]
        assert history.unsaved_rows > 10 and history.lost_rows == 0

        disk.full = False
        assert history.try_flush()
        assert history.error is None and not history.pending
    assert read(path, "SELECT id, end_reason, distance_m FROM sessions") == [
        (session_id, "button", 4.2)
    ]
    assert read(path, "SELECT COUNT(*) FROM samples") == [(10,)]
    segments = read(path, "SELECT mode, round(distance_m, 2) FROM segments ORDER BY id")
    assert segments == [("backward", round(9 * 1.5 / 3.6, 2)), ("forward", 0.0)]
    assert ("enforced_stop",) in read(path, "SELECT kind FROM events")
    assert read(path, "SELECT qualifying_total FROM profiles WHERE name = 'guest'") == [(1,)]


def test_a_full_buffer_lets_the_oldest_samples_go_and_counts_them(
    tmp_path: Path, disk: Disk, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store, "MAX_BUFFERED_ROWS", 5)
    with Store(tmp_path / "history.db") as history:
        session_id = history.open_session(T0, mode=Mode.BACKWARD, machine_id="treadmill-1")
        disk.full = True
        for second in range(8):
            history.add_sample(session_id, walking(T0 + second))
        history.add_event(T0 + 8, EventKind.ENFORCED_STOP, session_id=session_id)
        assert history.lost_rows == 3
        disk.full = False
        history.flush()
        kept = read(tmp_path / "history.db", "SELECT t - 1760000000 FROM samples ORDER BY t")
        assert kept == [(3.0,), (4.0,), (5.0,), (6.0,), (7.0,)]  # the newest
        assert ("enforced_stop",) in read(tmp_path / "history.db", "SELECT kind FROM events")


def test_after_a_failed_write_the_next_try_waits_a_second(tmp_path: Path, disk: Disk) -> None:
    with Store(tmp_path / "history.db") as history:
        session_id = history.open_session(T0, mode=Mode.BACKWARD, machine_id="treadmill-1")
        disk.full = True
        history.add_sample(session_id, walking(T0 + 1))
        assert not history.maybe_flush(T0 + 10)  # due, but the disk refused it
        disk.full = False
        assert not history.maybe_flush(T0 + 10)  # not asked again within RETRY_EVERY_S
        history._retry_at = 0.0  # a second later
        assert history.maybe_flush(T0 + 11)


def test_new_files_are_marked_as_ours(tmp_path: Path) -> None:
    Store(tmp_path / "history.db").close()
    assert read(tmp_path / "history.db", "PRAGMA application_id") == [(schema.APPLICATION_ID,)]


def test_a_file_made_before_files_were_marked_is_ours_and_gets_marked(tmp_path: Path) -> None:
    path = tmp_path / "history.db"
    Store(path).close()
    db = sqlite3.connect(path)
    db.execute("PRAGMA application_id = 0")  # as every retrotread before this one left it
    db.close()
    Store(path).close()
    assert read(path, "PRAGMA application_id") == [(schema.APPLICATION_ID,)]


@pytest.mark.parametrize(
    "make",
    [
        "CREATE TABLE groceries (item TEXT)",
        "PRAGMA application_id = 1",  # another program's mark, no tables yet
        "PRAGMA user_version = 3",  # looks like our version, has none of our tables
    ],
)
def test_a_database_that_is_not_ours_is_refused_untouched(tmp_path: Path, make: str) -> None:
    path = tmp_path / "theirs.db"
    db = sqlite3.connect(path)
    db.execute(make)
    db.commit()
    db.close()
    before = path.read_bytes()
    with pytest.raises(StoreError) as refused:
        Store(path)
    assert "another program's SQLite database" in str(refused.value)
    assert path.read_bytes() == before
