"""Profiles and the program in the history file: the progress a walker keeps between sessions,
the sessions the program counts, and the upgrades that added them (schema versions 2 and 3)."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from datetime import date, datetime
from pathlib import Path

import pytest

from device.config.load import config_from_mapping
from device.core.events import EventKind
from device.core.modes import EndReason, Mode, SessionState
from device.core.program import (
    Profile,
    SessionSummary,
    after_session,
    calendar_day,
    profile_name,
    session_profile,
    week_progress,
)
from device.core.session import Totals
from device.core.tick import Sample
from device.history import schema
from device.history.reader import History
from device.history.store import Store, StoreError

T0 = 1_760_000_000.0  # epoch seconds
DAY = 86400.0


def reader(path: Path) -> sqlite3.Connection:
    """The web's connection: read-only, opened beside the daemon's."""
    return sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "retrotread.db"


def test_version_1_file_upgrades_to_the_current_version_keeping_sessions_and_profiles(
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
            SessionSummary(T0, T0 + 800, "button", 720, 0.0, None, backward_paced_s=0.0)
        ]
    with reader(db_path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == len(schema.MIGRATIONS) == 4


def test_version_2_file_upgrades_to_version_3_keeping_the_levels_earned(db_path: Path) -> None:
    # the file exactly as schema version 2 wrote it: a walker at level 3, twelve sessions
    # counted and running unlocked, and one session walked at level 3
    db_path.parent.mkdir()
    with sqlite3.connect(db_path) as db:
        db.executescript("\n".join(schema.MIGRATIONS[:2]) + "\nPRAGMA user_version = 2;")
        db.execute(
            "INSERT INTO sessions (started_at, ended_at, end_reason, backward_s, backward_fast_s,"
            " machine_id, profile, level) VALUES (?, ?, 'button', 720, 300, 'treadmill-1',"
            " 'ana', 3)",
            (T0, T0 + 800),
        )
        db.execute(
            "INSERT INTO profiles (name, level, weight_kg, qualifying_at_level, qualifying_total,"
            " running_unlocked, fast_session_done, program_started_at)"
            " VALUES ('ana', 3, 82, 2, 12, 1, 1, ?)",
            (T0 - 20 * DAY,),
        )
    db.close()

    with Store(db_path) as store:
        ana = store.profile("ana")
        assert ana == Profile("ana", 3, 82, 2, 12, True, True, T0 - 20 * DAY)
        assert ana.last_qualifying_day is None  # the next qualifying session counts
        # nobody measured the old session's pace: it counts for nothing it did not earn
        assert store.session_summaries("ana") == [
            SessionSummary(T0, T0 + 800, "button", 720, 300.0, 3, backward_paced_s=0.0)
        ]
        assert store.profile("guest") == Profile("guest")
    with reader(db_path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == len(schema.MIGRATIONS)
        assert db.execute("SELECT backward_paced_s FROM sessions").fetchall() == [(0.0,)]


def walked(
    store: Store,
    start: float,
    *,
    profile: str = "ana",
    backward_s: float = 720,
    fast_s: float = 0,
    paced_s: float | None = None,
    level: int = 1,
) -> int:
    """One ended backward session of `profile` starting at epoch `start`, `paced_s` of its
    backward seconds (all unless told) at [program] qualifying_share of the cap or faster."""
    session_id = store.open_session(
        start, mode=Mode.BACKWARD, machine_id="treadmill-1", profile=profile, level=level
    )
    end = start + backward_s + 30
    paced = backward_s if paced_s is None else paced_s
    totals = Totals(backward_s=backward_s, backward_fast_s=fast_s, backward_paced_s=paced)
    store.end_session(session_id, end, EndReason.BUTTON, totals)
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
            last_qualifying_day=date(2025, 10, 9).toordinal(),
        )
        store.save_profile(unlocked)  # the same walker again: updated, not duplicated
        with History(db_path) as web:
            assert web.profile("ana") == unlocked
            assert web.profile("guest") == Profile("guest")


def test_web_history_reads_the_last_counted_day(db_path: Path) -> None:
    ana = Profile("ana", qualifying_total=1, last_qualifying_day=date(2025, 10, 9).toordinal())
    with Store(db_path) as store:
        store.save_profile(ana)
    with History(db_path) as web:
        assert web.profile("ana") == ana


def test_saving_a_profile_writes_the_buffered_samples_too(db_path: Path) -> None:
    with Store(db_path) as store:
        session_id = store.open_session(T0, mode=Mode.BACKWARD, machine_id="treadmill-1")
        store.add_sample(session_id, Sample(T0, 2.0, Mode.BACKWARD, SessionState.RUNNING, 2.0))
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
        store.update_totals(
            session_id, Totals(backward_s=400, backward_fast_s=120, backward_paced_s=90)
        )
        store.flush()
        with History(db_path) as web:
            live = web.session(session_id)
            assert live is not None and (live.backward_fast_s, live.level) == (120, 3)
            assert web.session_summaries("ana") == []  # not a finished session yet
        # the final totals: backward_s as held, the fast and paced seconds grown
        final = Totals(backward_s=400, backward_fast_s=310, backward_paced_s=380)
        store.end_session(session_id, T0 + 700, EndReason.BUTTON, final)
        ended = store.session(session_id)
        assert ended is not None and (ended.backward_s, ended.backward_fast_s) == (400, 310)
        [summary] = store.session_summaries("ana")
        assert (summary.backward_paced_s, summary.level) == (380, 3)


def test_program_reads_the_ended_sessions_of_one_walker_since_a_time(db_path: Path) -> None:
    with Store(db_path) as store:
        walked(store, T0 - 10 * DAY)  # before the window
        walked(store, T0 + 2 * DAY, fast_s=300, paced_s=610, level=2)
        walked(store, T0, backward_s=540)
        walked(store, T0 + DAY, profile="guest")  # someone else
        # still on the belt: not a finished session yet
        store.open_session(T0 + 3 * DAY, mode=Mode.BACKWARD, machine_id="treadmill-1")
        summaries = store.session_summaries("ana", T0)
    assert summaries == [
        SessionSummary(T0, T0 + 570, EndReason.BUTTON, 540, 0.0, 1, backward_paced_s=540),
        SessionSummary(T0 + 2 * DAY, T0 + 2 * DAY + 750, EndReason.BUTTON, 720, 300.0, 2, 610),
    ]


def test_home_walkers_first_week_read_back_from_the_file(db_path: Path) -> None:
    config = config_from_mapping({"program": {"single_user": True, "profile": "ana"}})
    earned, first = [], datetime(2025, 10, 9, 8, 0).timestamp()  # 8:00 local, in any zone
    # four days, at 8:00 and 14:00: the daemon restarts between sessions and reads the profile
    # back, last counted day included, so the second session of a day counts for nothing
    for start in (first + day * DAY + hour * 3600 for day in range(4) for hour in (0, 6)):
        with Store(db_path) as store:
            ana = session_profile(store.profile(profile_name(config)), config)
            walked(store, start, level=ana.level)
            [summary] = store.session_summaries("ana", start)
            ana, events = after_session(ana, summary, config, t=start)
            earned += events
            store.save_profile(ana)
    with History(db_path) as web:
        ana = web.profile("ana")
        assert (ana.level, ana.qualifying_total, ana.program_started_at) == (2, 4, first)
        assert ana.last_qualifying_day == calendar_day(first + 3 * DAY)
        assert [e.kind for e in earned] == [EventKind.LEVEL_UP]
    with History(db_path) as web:
        progress = week_progress(
            ana.program_started_at, web.session_summaries("ana", first), first + 5 * DAY, config
        )
        # the program's weeks count every completed session of session_min_s
        assert (progress.week, progress.sessions_done, progress.per_week) == (1, 8, (8, 0, 0, 0))
