"""The 4-week plan as the plan page shows it: the weeks and what counts (from [program]), and
for a member the sessions done per week, the level and what unlocks the next one, and the
backward minutes per week.

The counting is device.core.program's (week_progress, walking_level, level_cap_kmh) on the
rows device.history.reader.History gives (the profile and its session summaries), so the page
says what the device will decide. Only the minutes per week are summed here: the core counts
sessions, not minutes.

A gym's walk-up user is the profile `guest` and starts every session as a beginner, so a
guest sees the plan without progress; a member is the one walker of a home treadmill
([program] single_user = true).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from device.config.model import Config
from device.core.program import (
    WEEK_S,
    Profile,
    SessionSummary,
    level_cap_kmh,
    profile_name,
    walking_level,
    week_index,
    week_progress,
)
from device.history.reader import History
from web.formats import setting_kmh, setting_min
from web.guide.chart import WeekChart, week_chart
from web.history.queries import week_target_min

MEMBERS_ONLY = (
    "Progress is kept only for members: on a home treadmill the operator sets [program] "
    "single_user = true (and [program] profile to the walker's name) in the config, and the "
    "device then keeps that one walker's sessions, level and weeks."
)


@dataclass(frozen=True)
class PlanRules:
    """What the program asks and what counts, in the page's words."""

    weeks: int
    sessions_per_week: int
    session_min: str
    session_max: str
    target_min: float  # backward minutes a week: sessions_per_week x session_min_s
    levels: tuple[str, ...]  # the walking levels' caps, level 1 first
    level_up_days: int
    qualifying_min: str
    qualifying_share_pct: int
    running_days: int
    running_for: str
    running_at: str
    running_cap: str


@dataclass(frozen=True)
class PlanWeek:
    number: int
    starts: str  # "Mon 3 Nov", "" before the program started or without progress
    sessions_done: int | None  # None: no progress to show (a guest, no history)
    target: int
    backward_min: float | None
    current: bool
    met: bool


@dataclass(frozen=True)
class Standing:
    """A member's level and how far the next unlocks are."""

    level: int
    top_level: int
    cap: str
    next_cap: str | None  # None at the top walking level
    days_at_level: int
    running_unlocked: bool
    qualifying_total: int
    fast_session_done: bool


@dataclass(frozen=True)
class Plan:
    profile: str
    member: bool
    rules: PlanRules
    weeks: tuple[PlanWeek, ...]
    week: int | None  # the current program week, None before the first session or after
    started: bool
    finished: bool
    standing: Standing | None  # None without progress
    chart: WeekChart | None  # None without progress
    unavailable: str  # why a member's progress cannot be read, "" when it can


def plan_rules(config: Config) -> PlanRules:
    program, backward = config.program, config.backward
    return PlanRules(
        weeks=program.weeks,
        sessions_per_week=program.sessions_per_week,
        session_min=setting_min(program.session_min_s),
        session_max=setting_min(program.session_max_s),
        target_min=round(week_target_min(config), 1),
        levels=tuple(setting_kmh(cap) for cap in backward.level_caps_kmh),
        level_up_days=program.level_up_sessions,
        qualifying_min=setting_min(program.qualifying_backward_s),
        qualifying_share_pct=round(program.qualifying_share * 100),
        running_days=program.running_unlock_sessions,
        running_for=setting_min(program.running_unlock_s),
        running_at=setting_kmh(program.running_unlock_kmh),
        running_cap=setting_kmh(backward.running_cap_kmh),
    )


def plan_for(
    config: Config, history: History | None, *, now_epoch: float, unavailable: str = ""
) -> Plan:
    """The plan page for this treadmill's walker at `now_epoch`; `history` None (with the
    `unavailable` sentence) when the history file cannot be read. A guest's plan never reads
    the history."""
    rules = plan_rules(config)
    member = config.program.single_user
    profile = profile_name(config)
    if not member or history is None:
        weeks = tuple(PlanWeek(n, "", None, rules.sessions_per_week, None, False, False)
                      for n in range(1, rules.weeks + 1))  # fmt: skip
        return Plan(profile, member, rules, weeks, None, False, False, None, None,
                    unavailable if member else "")  # fmt: skip
    walker = history.profile(profile)
    started_at = walker.program_started_at
    sessions = history.session_summaries(profile, started_at) if started_at is not None else []
    progress = week_progress(started_at, sessions, now_epoch, config)
    backward_min = _backward_minutes(sessions, started_at, rules.weeks)
    weeks = tuple(
        PlanWeek(
            number=n + 1,
            starts=_week_start(started_at, n),
            sessions_done=progress.per_week[n],
            target=progress.sessions_target,
            backward_min=round(backward_min[n], 1),
            current=progress.week == n + 1,
            met=progress.per_week[n] >= progress.sessions_target,
        )
        for n in range(rules.weeks)
    )
    chart = week_chart(backward_min, rules.target_min, progress.week)
    return Plan(profile, member, rules, weeks, progress.week, started_at is not None,
                progress.finished, _standing(walker, config), chart, "")  # fmt: skip


def _backward_minutes(
    sessions: list[SessionSummary], started_at: float | None, weeks: int
) -> list[float]:
    """Backward minutes of every ended session, per program week (the week it started in)."""
    totals = [0.0] * weeks
    if started_at is None:
        return totals
    for session in sessions:
        week = week_index(session.started_at, started_at)  # as the core counts the weeks
        if 0 <= week < weeks:
            totals[week] += session.backward_s / 60
    return totals


def _week_start(started_at: float | None, index: int) -> str:
    if started_at is None:
        return ""
    day = datetime.fromtimestamp(started_at + index * WEEK_S)
    return f"{day:%a} {day.day} {day:%b}"


def _standing(walker: Profile, config: Config) -> Standing:
    caps = config.backward.level_caps_kmh
    level = walking_level(walker, config)
    return Standing(
        level=level,
        top_level=len(caps),
        cap=setting_kmh(level_cap_kmh(walker, config)),
        next_cap=setting_kmh(caps[level]) if level < len(caps) else None,
        days_at_level=walker.qualifying_at_level,
        running_unlocked=walker.running_unlocked,
        qualifying_total=walker.qualifying_total,
        fast_session_done=walker.fast_session_done,
    )
