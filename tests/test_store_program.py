"""Profiles and the program in the history file: the progress a walker keeps between sessions,
the sessions the program counts, and the upgrade that added them (schema version 2)."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest

from device import schema
from device.config import config_from_mapping
from device.events import EventKind
from device.history import History
from device.modes import EndReason, Mode, SessionState
from device.program import (
    Profile,
    SessionSummary,
    after_session,
    profile_name,
    session_profile,
    week_progress,
)
from device.store import Sample, Store, StoreError

T0 = 1_760_000_000.0  # epoch seconds
DAY = 86400.0


def reader(path: Path) -> sqlite3.Connection:
    """The web's connection: read-only, opened beside the daemon's."""
    return sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "retrotread.db"


def test_version_1_file_upgrades_to_version_2_keeping_sessions_and_profiles(
    db_path: Path,
) -> None:
    # the file exactly as the first release wrote it
    db_path.parent.mkdir()
    with sqlite3.connect(db_path) as db:
        db.executescript(schema.MIGRATIONS[0] + "\nPRAGMA user_version = 1;")
        db.execute(
            "INSERT INTO sessions (started_at, ended_at, end_reason, backward_s, machine_id,"
            " profile) VALUES (?, ?, 'button', 720, 'treadmill-1', 'ana')",
            (T0, T0 + 800),
        )
        db.execute("INSERT INTO profiles (name, level, weight_kg) VALUES ('ana', 3, 82)")
    db.close()

    with Store(db_path) as store:
        assert store.profile("ana") == Profile("ana", level=3, weight_kg=82)
        assert store.profile("guest") == Profile("guest")
        [session] = store.sessions()
        assert (session.backward_s, session.backward_fast_s, session.level) == (720, 0, None)
        assert store.session_summaries("ana") == [
            SessionSummary(T0, T0 + 800, "button", 720, 0.0, None)
        ]
    with reader(db_path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 2


def walked(
    store: Store,
    start: float,
    *,
    profile: str = "ana",
    backward_s: float = 720,
    fast_s: float = 0,
    level: int = 1,
) -> int:
    """One ended backward session of `profile` starting at epoch `start`."""
    session_id = store.open_session(
        start, mode=Mode.BACKWARD, machine_id="treadmill-1", profile=profile, level=level
    )
    end = start + backward_s + 30
    store.end_session(
        session_id, end, EndReason.BUTTON, backward_s=backward_s, backward_fast_s=fast_s
    )
    return session_id


def test_new_walker_reads_as_level_1_until_their_progress_is_saved(db_path: Path) -> None:
    with Store(db_path) as store:
        assert store.profile("ana") == Profile("ana")
        with reader(db_path) as db:  # reading did not write a row
            assert db.execute("SELECT name FROM profiles").fetchall() == [("guest",)]


def test_profile_progress_survives_a_restart_and_the_web_reads_it(db_path: Path) -> None:
    ana = Profile("ana", level=2, weight_kg=64.5, qualifying_at_level=1, qualifying_total=5)
    with Store(db_path) as store:
        store.save_profile(ana)
    with Store(db_path) as store:
        assert store.profile("ana") == ana
        unlocked = replace(
            ana,
            level=3,
            qualifying_total=12,
            running_unlocked=True,
            fast_session_done=True,
            program_started_at=T0,
        )
        store.save_profile(unlocked)  # the same walker again: updated, not duplicated
        with History(db_path) as web:
            assert web.profile("ana") == unlocked
            assert web.profile("guest") == Profile("guest")


def test_saving_a_profile_writes_the_buffered_samples_too(db_path: Path) -> None:
    with Store(db_path) as store:
        session_id = store.open_session(T0, mode=Mode.BACKWARD, machine_id="treadmill-1")
        store.add_sample(Sample(T0, 2.0, Mode.BACKWARD, SessionState.RUNNING, 2.0, session_id))
        store.save_profile(Profile("guest", qualifying_total=1))
        with reader(db_path) as db:
            assert db.execute("SELECT COUNT(*) FROM samples").fetchone()[0] == 1


def test_web_cannot_save_a_profile(db_path: Path) -> None:
    Store(db_path).close()
    with Store(db_path, read_only=True) as web:
        with pytest.raises(StoreError) as refused:
            web.save_profile(Profile("ana", level=4))
        message = str(refused.value)
        assert str(db_path) in message and "\n" not in message and message.endswith(".")
        assert web.profile("ana") == Profile("ana")


def test_session_keeps_its_level_and_fast_backward_seconds(db_path: Path) -> None:
    with Store(db_path) as store:
        session_id = store.open_session(
            T0, mode=Mode.BACKWARD, machine_id="treadmill-1", profile="ana", level=3
        )
        store.update_totals(session_id, backward_s=400, backward_fast_s=120)
        store.flush()
        with History(db_path) as web:
            live = web.session(session_id)
            assert live is not None and (live.backward_fast_s, live.level) == (120, 3)
        store.end_session(session_id, T0 + 700, EndReason.BUTTON, backward_fast_s=310)
        ended = store.session(session_id)
        assert ended is not None and (ended.backward_s, ended.backward_fast_s) == (400, 310)


def test_program_reads_the_ended_sessions_of_one_walker_since_a_time(db_path: Path) -> None:
    with Store(db_path) as store:
        walked(store, T0 - 10 * DAY)  # before the window
        walked(store, T0 + 2 * DAY, fast_s=300, level=2)
        walked(store, T0, backward_s=540)
        walked(store, T0 + DAY, profile="guest")  # someone else
        # still on the belt: not a finished session yet
        store.open_session(T0 + 3 * DAY, mode=Mode.BACKWARD, machine_id="treadmill-1")
        summaries = store.session_summaries("ana", T0)
    assert summaries == [
        SessionSummary(T0, T0 + 570, EndReason.BUTTON, 540, 0.0, 1),
        SessionSummary(T0 + 2 * DAY, T0 + 2 * DAY + 750, EndReason.BUTTON, 720, 300.0, 2),
    ]


def test_home_walkers_first_week_read_back_from_the_file(db_path: Path) -> None:
    config = config_from_mapping({"program": {"single_user": True, "profile": "ana"}})
    with Store(db_path) as store:
        for day in range(4):
            ana = session_profile(store.profile(profile_name(config)), config)
            walked(store, T0 + day * DAY, level=ana.level)
            [summary] = store.session_summaries("ana", T0 + day * DAY)
            ana, events = after_session(ana, summary, config, t=float(day))
            store.save_profile(ana)
    with History(db_path) as web:
        ana = web.profile("ana")
        assert (ana.level, ana.qualifying_total, ana.program_started_at) == (2, 4, T0)
        assert [e.kind for e in events] == [EventKind.LEVEL_UP]
        progress = week_progress(
            ana.program_started_at, web.session_summaries("ana", T0), T0 + 5 * DAY, config
        )
        assert (progress.week, progress.sessions_done, progress.per_week) == (1, 4, (4, 0, 0, 0))
