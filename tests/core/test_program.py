"""Levels, the running unlock and the 4-week program, as a walker goes through them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from support.program_walks import HOME, walk_all, walked_at

from device.config.kinds import ConfigError
from device.config.load import config_from_mapping
from device.config.model import Config
from device.core.events import EventKind
from device.core.modes import EndReason
from device.core.program import (
    GUEST,
    WEEK_S,
    Profile,
    SessionSummary,
    after_session,
    level_cap_kmh,
    profile_name,
    session_profile,
    week_progress,
)

# epoch seconds: the first session, 9:00 local time, so that sessions whole days apart fall on
# distinct local calendar days in any time zone
T0 = datetime(2025, 10, 9, 9, 0).timestamp()
DAY = 86400.0
CONFIG = Config()


def walk(day: float = 0, **session: Any) -> SessionSummary:
    """A session on `day` of the program (see walked_at)."""
    return walked_at(T0 + day * DAY, **session)


# ---- levels --------------------------------------------------------------------------------


def test_level_up_comes_on_the_fourth_day_with_a_completed_session_not_the_third() -> None:
    after_three, events = walk_all(Profile("ana"), [walk(d) for d in range(3)])
    assert (after_three.level, after_three.qualifying_at_level, events) == (1, 3, [])
    after_four, [event] = after_session(after_three, walk(3), CONFIG, t=42.0)
    assert (after_four.level, after_four.qualifying_at_level) == (2, 0)
    assert after_four.qualifying_total == 4
    assert (event.t, event.kind) == (42.0, EventKind.LEVEL_UP)
    assert event.details == {"profile": "ana", "level": 2, "cap_kmh": 4.0}
    assert level_cap_kmh(after_four, CONFIG) == 4.0


def test_nine_minute_session_does_not_count_toward_the_level() -> None:
    profile, events = walk_all(
        Profile("ana"), [walk(d) for d in range(3)] + [walk(3, backward_min=9)]
    )
    assert (profile.level, profile.qualifying_at_level, profile.qualifying_total) == (1, 3, 3)
    assert events == []


def test_exactly_ten_minutes_backward_counts() -> None:
    profile, _ = after_session(Profile("ana"), walk(backward_min=10), CONFIG, t=0.0)
    assert profile.qualifying_total == 1
    assert profile.last_qualifying_day == datetime(2025, 10, 9).toordinal()


def test_session_cut_by_a_crash_does_not_count() -> None:
    sessions = [walk(d) for d in range(3)] + [
        walk(3, backward_min=30, reason=EndReason.INTERRUPTED)
    ]
    profile, events = walk_all(Profile("ana"), sessions)
    assert (profile.level, profile.qualifying_total, events) == (1, 3, [])


def test_level_stops_at_the_last_walking_level() -> None:
    profile, events = walk_all(Profile("ana"), [walk(d) for d in range(30)])
    assert profile.level == len(CONFIG.backward.level_caps_kmh) == 4
    assert [e.details["level"] for e in events if e.kind is EventKind.LEVEL_UP] == [2, 3, 4]
    assert profile.qualifying_at_level == 30 - 12  # sessions keep counting at the top level
    assert level_cap_kmh(profile, CONFIG) == 5.5


def test_level_earned_under_more_levels_keeps_the_top_cap_when_levels_are_removed() -> None:
    fewer = config_from_mapping({"backward": {"level_caps_kmh": [3.0, 4.0]}})
    profile = Profile("ana", level=4)
    assert level_cap_kmh(profile, fewer) == 4.0
    after, events = walk_all(profile, [walk(d) for d in range(8)], fewer)
    assert after.level == 4 and events == []


def test_level_up_after_a_configured_number_of_sessions() -> None:
    two = config_from_mapping({"program": {"level_up_sessions": 2}})
    profile, events = walk_all(Profile("ana"), [walk(0), walk(1)], two)
    assert profile.level == 2 and len(events) == 1


def test_profile_below_level_1_is_refused() -> None:
    with pytest.raises(ValueError, match="level 0"):
        Profile("ana", level=0)


# ---- the running unlock ------------------------------------------------------------------


def test_twelve_sessions_without_the_fast_one_keep_running_locked() -> None:
    profile, events = walk_all(Profile("ana"), [walk(d) for d in range(12)])
    assert profile.qualifying_total == 12
    assert not profile.running_unlocked
    assert EventKind.RUNNING_UNLOCKED not in [e.kind for e in events]
    assert level_cap_kmh(profile, CONFIG) == 5.5


def test_fast_session_among_the_twelve_unlocks_running_on_the_twelfth() -> None:
    sessions = [walk(d, fast_min=5 if d == 8 else 0) for d in range(12)]
    after_eleven, events = walk_all(Profile("ana"), sessions[:11])
    assert after_eleven.fast_session_done and not after_eleven.running_unlocked
    assert EventKind.RUNNING_UNLOCKED not in [e.kind for e in events]

    after_twelve, events = after_session(after_eleven, sessions[11], CONFIG, t=7.0)
    assert after_twelve.running_unlocked
    assert events[-1].kind is EventKind.RUNNING_UNLOCKED
    assert events[-1].details == {"profile": "ana", "cap_kmh": 6.0}
    assert level_cap_kmh(after_twelve, CONFIG) == 6.0


def test_fast_session_after_the_twelve_unlocks_running_then() -> None:
    profile, _ = walk_all(Profile("ana"), [walk(d) for d in range(14)])
    assert not profile.running_unlocked
    unlocked, [event] = after_session(profile, walk(14, fast_min=6), CONFIG, t=3.0)
    assert unlocked.running_unlocked and event.kind is EventKind.RUNNING_UNLOCKED


def test_four_and_a_half_fast_minutes_are_not_enough() -> None:
    profile, _ = walk_all(Profile("ana"), [walk(d, fast_min=4.5) for d in range(12)])
    assert not profile.fast_session_done and not profile.running_unlocked


def test_fast_stretch_in_a_crashed_session_does_not_count() -> None:
    crashed = walk(0, backward_min=20, fast_min=10, reason=EndReason.INTERRUPTED)
    profile, _ = after_session(Profile("ana"), crashed, CONFIG, t=0.0)
    assert not profile.fast_session_done


def test_running_unlocks_once() -> None:
    sessions = [walk(d, fast_min=5) for d in range(20)]
    _, events = walk_all(Profile("ana"), sessions)
    assert [e.kind for e in events].count(EventKind.RUNNING_UNLOCKED) == 1


# ---- who walks: guest or the home walker --------------------------------------------------


def test_walk_up_guest_always_starts_at_level_1_with_running_locked() -> None:
    seasoned = Profile(
        GUEST,
        level=4,
        qualifying_at_level=3,
        qualifying_total=40,
        running_unlocked=True,
        fast_session_done=True,
        program_started_at=T0,
    )
    assert profile_name(CONFIG) == GUEST
    walking = session_profile(seasoned, CONFIG)
    assert walking == Profile(GUEST, weight_kg=CONFIG.program.weight_kg)
    assert level_cap_kmh(walking, CONFIG) == 3.0
    # three sessions in a row by walk-up users: each one a beginner again
    for day in range(3):
        walking = session_profile(after_session(walking, walk(day), CONFIG, t=0.0)[0], CONFIG)
        assert walking.level == 1 and walking.qualifying_at_level == 0


def test_home_walker_keeps_their_level_from_session_to_session() -> None:
    assert profile_name(HOME) == "ana"
    ana = Profile("ana", level=3, running_unlocked=False, qualifying_total=9)
    assert session_profile(ana, HOME) == ana
    assert level_cap_kmh(session_profile(ana, HOME), HOME) == 5.0


def test_weight_for_the_energy_estimate_comes_from_the_config() -> None:
    heavy = config_from_mapping({"program": {"single_user": True, "weight_kg": 92}})
    assert session_profile(Profile("home", weight_kg=70), heavy).weight_kg == 92.0
    assert session_profile(Profile(GUEST), heavy).weight_kg == 92.0


def test_first_session_starts_the_program_even_when_it_does_not_count() -> None:
    short = walk(0, backward_min=3)
    profile, _ = after_session(Profile("ana"), short, CONFIG, t=0.0)
    assert profile.program_started_at == short.started_at
    later, _ = after_session(profile, walk(2), CONFIG, t=1.0)
    assert later.program_started_at == short.started_at


# ---- the 4-week program ------------------------------------------------------------------


def test_program_not_started_before_the_first_session() -> None:
    progress = week_progress(None, [], T0, CONFIG)
    assert (progress.week, progress.sessions_done, progress.finished) == (None, 0, False)
    assert progress.per_week == (0, 0, 0, 0) and progress.sessions_target == 4


def test_sessions_count_in_the_week_they_started_across_the_week_boundary() -> None:
    sessions = [walk(0), walk(2), walk(6.99), walk(7.0), walk(8)]
    progress = week_progress(T0, sessions, T0 + 9 * DAY, CONFIG)
    assert progress.per_week == (3, 2, 0, 0)
    assert (progress.week, progress.sessions_done) == (2, 2)
    last_moment_of_week_1 = week_progress(T0, sessions, T0 + WEEK_S - 1, CONFIG)
    assert (last_moment_of_week_1.week, last_moment_of_week_1.sessions_done) == (1, 3)


def test_short_and_crashed_sessions_do_not_count_toward_the_week() -> None:
    sessions = [walk(0), walk(1, backward_min=9.9), walk(2, reason=EndReason.INTERRUPTED)]
    assert week_progress(T0, sessions, T0 + 3 * DAY, CONFIG).sessions_done == 1


def test_four_weeks_of_four_sessions_finish_the_program() -> None:
    sessions = [walk(week * 7 + day * 1.5) for week in range(4) for day in range(4)]
    in_week_4 = week_progress(T0, sessions, T0 + 27 * DAY, CONFIG)
    assert (in_week_4.week, in_week_4.sessions_done, in_week_4.finished) == (4, 4, True)
    over = week_progress(T0, [*sessions, walk(29)], T0 + 30 * DAY, CONFIG)
    assert (over.week, over.sessions_done) == (None, 0)  # the program is over
    assert over.per_week == (4, 4, 4, 4) and over.finished


def test_a_missed_week_leaves_the_program_unfinished() -> None:
    sessions = [walk(week * 7 + day) for week in (0, 1, 3) for day in range(4)]
    progress = week_progress(T0, sessions, T0 + 40 * DAY, CONFIG)
    assert progress.per_week == (4, 4, 0, 4)
    assert progress.week is None and not progress.finished


def test_clock_set_back_before_the_first_session_reads_as_week_1() -> None:
    assert week_progress(T0, [walk(0)], T0 - 3600, CONFIG).week == 1


def test_program_length_and_target_come_from_the_config() -> None:
    short = config_from_mapping({"program": {"weeks": 2, "sessions_per_week": 3}})
    progress = week_progress(T0, [walk(d) for d in (0, 1, 2, 7, 8, 9)], T0 + 10 * DAY, short)
    assert progress.per_week == (3, 3) and progress.finished and progress.sessions_target == 3


# ---- the [program] config ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("table", "key"),
    [
        ({"level_up_sessions": 4.0}, "program.level_up_sessions"),
        ({"weight_kg": 20}, "program.weight_kg"),
        ({"profile": "guest"}, "program.profile"),
        ({"session_min_s": 1000, "session_max_s": 900}, "program.session_min_s"),
    ],
)
def test_program_config_mistakes_name_the_key(table: dict, key: str) -> None:
    with pytest.raises(ConfigError) as refused:
        config_from_mapping({"program": table}, source="config.toml")
    assert refused.value.key == key
    assert str(refused.value).startswith("config.toml: [program]")


# ---- properties ------------------------------------------------------------------------------

sessions_st = st.builds(
    SessionSummary,
    started_at=st.floats(T0, T0 + 60 * DAY),
    ended_at=st.just(T0),
    end_reason=st.sampled_from(list(EndReason)),
    backward_s=st.floats(0, 3600),
    backward_fast_s=st.floats(0, 1200),
    level=st.integers(1, 4),
    backward_paced_s=st.floats(0, 3600),
)


@given(st.lists(sessions_st, max_size=60), st.integers(1, 6))
def test_level_and_completed_sessions_never_go_down(
    sessions: list[SessionSummary], start_level: int
) -> None:
    profile = Profile("ana", level=start_level)
    for summary in sessions:
        after, _ = after_session(profile, summary, CONFIG, t=0.0)
        assert after.level >= profile.level
        assert after.qualifying_total >= profile.qualifying_total
        assert after.running_unlocked >= profile.running_unlocked
        assert after.level <= max(start_level, len(CONFIG.backward.level_caps_kmh))
        assert (after.last_qualifying_day or 0) >= (profile.last_qualifying_day or 0)
        profile = after


@given(st.lists(sessions_st, max_size=40), st.floats(T0 - DAY, T0 + 60 * DAY))
def test_week_progress_counts_each_session_at_most_once(
    sessions: list[SessionSummary], now: float
) -> None:
    progress = week_progress(T0, sessions, now, CONFIG)
    assert sum(progress.per_week) <= len(sessions)
    assert progress.week is None or progress.sessions_done == progress.per_week[progress.week - 1]
    assert progress.finished == all(n >= 4 for n in progress.per_week)
