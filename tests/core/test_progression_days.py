"""Progression needs days: level-ups and the running unlock count paced sessions on distinct
local calendar days, so a level cannot be walked off in one afternoon, nor at a crawl."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st
from support.program_walks import HOME, walk_all, walked_at

from device.config.load import config_from_mapping
from device.config.model import Config
from device.core.events import EventKind
from device.core.modes import EndReason
from device.core.program import (
    Profile,
    SessionSummary,
    after_session,
    calendar_day,
    level_cap_kmh,
    qualifies,
)
from device.core.progression import Progression
from device.core.session import SessionTotals

CONFIG = Config()
FIRST_DAY = date(2025, 10, 9)  # a Thursday


def at(day: int, hour: float = 14.0) -> float:
    """Epoch seconds of `hour` o'clock local time, `day` days after FIRST_DAY. Built from
    local wall time, so the tests hold in any time zone and across a DST change."""
    midnight = datetime.combine(FIRST_DAY + timedelta(days=day), datetime.min.time())
    return (midnight + timedelta(hours=hour)).timestamp()


# a session starting at epoch `start` (backward_min, paced_min, fast_min, reason)
walk = walked_at


def one_afternoon(count: int, **kwargs: float) -> list[SessionSummary]:
    """`count` sessions back to back from 13:00 on the first day, one every 15 minutes."""
    return [walk(at(0, 13 + n / 4), **kwargs) for n in range(count)]


# ---- distinct days ---------------------------------------------------------------------------


def test_four_sessions_in_one_afternoon_count_as_one_day() -> None:
    profile, events = walk_all(Profile("ana"), one_afternoon(4))
    assert (profile.level, profile.qualifying_at_level, profile.qualifying_total) == (1, 1, 1)
    assert profile.last_qualifying_day == FIRST_DAY.toordinal()
    assert events == []


def test_twelve_sessions_in_one_afternoon_unlock_nothing() -> None:
    # the attack the rule closes: the whole ladder, fast stretch included, in one afternoon
    afternoon = one_afternoon(12, backward_min=12, fast_min=6)
    profile, events = walk_all(Profile("ana"), afternoon)
    assert (profile.level, profile.qualifying_total, profile.running_unlocked) == (1, 1, False)
    assert events == []
    assert level_cap_kmh(profile, CONFIG) == 3.0


def test_four_sessions_on_four_days_level_up() -> None:
    profile, events = walk_all(Profile("ana"), [walk(at(day)) for day in (0, 1, 3, 4)])
    assert (profile.level, profile.qualifying_at_level, profile.qualifying_total) == (2, 0, 4)
    assert [(e.kind, e.details["level"]) for e in events] == [(EventKind.LEVEL_UP, 2)]
    assert level_cap_kmh(profile, CONFIG) == 4.0


def test_morning_and_evening_sessions_every_day_level_up_no_sooner() -> None:
    twice_a_day = [walk(at(day, hour)) for day in range(4) for hour in (7, 19)]
    after_three_days, events = walk_all(Profile("ana"), twice_a_day[:6])
    assert (after_three_days.level, after_three_days.qualifying_total, events) == (1, 3, [])
    after_four_days, [event] = walk_all(after_three_days, twice_a_day[6:])
    assert after_four_days.level == 2 and event.kind is EventKind.LEVEL_UP


def test_session_after_midnight_counts_on_the_new_day() -> None:
    late, early = walk(at(0, 23.5)), walk(at(1, 0.25))
    profile, _ = walk_all(Profile("ana"), [late, early])
    assert profile.qualifying_total == 2
    assert profile.last_qualifying_day == calendar_day(early.started_at)


def test_session_that_runs_past_midnight_belongs_to_the_day_it_started() -> None:
    late = walk(at(0, 23.9), backward_min=30)  # ends after midnight
    next_morning = walk(at(1, 8))
    profile, _ = walk_all(Profile("ana"), [late, next_morning])
    assert profile.qualifying_total == 2


def test_clock_set_back_does_not_count_a_day_twice() -> None:
    # a Pi without a real-time clock boots at yesterday's time, then NTP puts it right
    today, yesterday_by_the_clock = walk(at(5)), walk(at(4))
    profile, _ = walk_all(Profile("ana"), [today, yesterday_by_the_clock, walk(at(5, 18))])
    assert profile.qualifying_total == 1
    assert profile.last_qualifying_day == calendar_day(today.started_at)


def test_home_walker_keeps_the_day_between_sessions() -> None:
    counted, _ = after_session(Profile("ana"), walk(at(0, 9)), HOME, t=0.0)
    progression = Progression(HOME, profile=counted)
    assert progression.session_started().last_qualifying_day == FIRST_DAY.toordinal()


# ---- what qualifies ----------------------------------------------------------------------


def test_ten_minutes_at_a_crawl_does_not_qualify() -> None:
    crawl = walk(at(0), backward_min=40, paced_min=0)  # 0.4 km/h: never near the cap
    assert not qualifies(crawl, CONFIG)
    profile, events = walk_all(Profile("ana"), [walk(at(d), paced_min=0) for d in range(30)])
    assert (profile.level, profile.qualifying_total, profile.last_qualifying_day) == (1, 0, None)
    assert events == []


def test_ten_paced_minutes_in_a_longer_session_qualify() -> None:
    assert qualifies(walk(at(0), backward_min=25, paced_min=10), CONFIG)
    assert not qualifies(walk(at(0), backward_min=25, paced_min=9.9), CONFIG)


def test_paced_minutes_needed_come_from_the_config() -> None:
    fifteen = config_from_mapping({"program": {"qualifying_backward_s": 900}})
    assert not qualifies(walk(at(0), paced_min=14), fifteen)
    assert qualifies(walk(at(0), backward_min=15), fifteen)


def test_crawl_in_the_morning_leaves_the_day_for_a_paced_session() -> None:
    profile, _ = walk_all(Profile("ana"), [walk(at(0, 8), paced_min=3), walk(at(0, 17))])
    assert profile.qualifying_total == 1


def test_crashed_session_does_not_use_up_the_day() -> None:
    crashed = walk(at(0, 8), backward_min=30, reason=EndReason.INTERRUPTED)
    assert not qualifies(crashed, CONFIG)
    profile, _ = walk_all(Profile("ana"), [crashed, walk(at(0, 17))])
    assert profile.qualifying_total == 1


def test_progression_counts_the_paced_seconds_the_session_measured() -> None:
    start, end = at(0, 9), at(0, 9.5)
    crawled = SessionTotals(started_at=start, ended_at=end, backward_s=1200)
    paced = SessionTotals(started_at=start, ended_at=end, backward_s=1200, backward_paced_s=600)
    for totals, counted in ((crawled, 0), (paced, 1)):
        progression = Progression(HOME, profile=Profile("ana"))
        progression.session_started()
        profile, _ = progression.session_ended(
            totals, reason=EndReason.BUTTON, wall_offset=0.0, t=end
        )
        assert profile is not None and profile.qualifying_total == counted
        assert progression.recent[-1].backward_paced_s == totals.backward_paced_s


# ---- the running unlock ------------------------------------------------------------------


def test_running_unlocks_on_the_twelfth_day_not_the_twelfth_session() -> None:
    sessions = [walk(at(day, hour), fast_min=5) for day in range(12) for hour in (8, 18)]
    before, events = walk_all(Profile("ana"), sessions[:22])  # 11 days, 22 sessions
    assert before.qualifying_total == 11 and not before.running_unlocked
    assert EventKind.RUNNING_UNLOCKED not in [e.kind for e in events]
    unlocked, events = after_session(before, sessions[22], CONFIG, t=1.0)
    assert unlocked.running_unlocked and events[-1].kind is EventKind.RUNNING_UNLOCKED


def test_fast_stretch_on_an_already_counted_day_still_counts_for_the_unlock() -> None:
    # the fast stretch is its own condition, "in one session", whatever the day
    profile, _ = walk_all(Profile("ana"), [walk(at(0, 8)), walk(at(0, 18), fast_min=5)])
    assert profile.fast_session_done and profile.qualifying_total == 1


# ---- properties ------------------------------------------------------------------------------

sessions_st = st.builds(
    walk,
    st.floats(at(0, 0), at(9, 23.99)),
    backward_min=st.floats(0, 60),
    paced_min=st.floats(0, 60),
    fast_min=st.floats(0, 20),
    reason=st.sampled_from(list(EndReason)),
)


@given(st.lists(sessions_st, max_size=80))
def test_however_many_sessions_a_day_the_level_rises_by_no_more_than_its_days(
    sessions: list[SessionSummary],
) -> None:
    profile, events = walk_all(Profile("ana"), sessions)
    days = {calendar_day(s.started_at) for s in sessions if qualifies(s, CONFIG)}
    assert profile.qualifying_total <= len(days)
    assert profile.level - 1 <= len(days) // CONFIG.program.level_up_sessions
    assert len([e for e in events if e.kind is EventKind.LEVEL_UP]) == profile.level - 1
    if len(days) < CONFIG.program.running_unlock_sessions:
        assert not profile.running_unlocked


@given(st.lists(st.floats(at(0, 0), at(0, 23.99)), max_size=40))
def test_sessions_all_on_one_day_count_once_at_most(starts: list[float]) -> None:
    profile, events = walk_all(Profile("ana"), [walk(t, fast_min=10) for t in starts])
    assert profile.qualifying_total == min(len(starts), 1)
    assert events == []
