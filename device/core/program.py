"""Levels, the unlock of backward running and the 4-week program, per profile.

A walker starts at walking level 1, whose cap is the first of [backward] level_caps_kmh.
A session qualifies when it was completed (not interrupted) and held `qualifying_backward_s`
of backward walking on a moving belt at `qualifying_share` of the cap in force or faster
(SessionSummary.backward_paced_s). Qualifying sessions count once per local calendar day, the
day a session started: the seed's "4 days a week", so twelve sessions in one afternoon count
as one. `level_up_sessions` counted days at a level move the walker up one level, to the last
walking level at most. Backward running (cap [backward] running_cap_kmh) unlocks once they
have `running_unlock_sessions` counted days in all and, in one session, `running_unlock_s` of
backward walking at `running_unlock_kmh` or faster: run only once walking is mastered. The
program is `weeks` 7-day blocks from the profile's first session, each asking for
`sessions_per_week` completed sessions of at least `session_min_s` backward at any speed.
Defaults and their reasons: config.example.toml, [program].

In a gym (`single_user = false`) every walk-up user is the profile `guest` and starts every
session as a beginner; at home the one walker's profile keeps its level.

Pure: the controller passes the times (epoch seconds for the history, its monotonic seconds
for events) and stores the profile it gets back.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date

from device.config.model import Config
from device.core.events import Event, EventKind
from device.core.modes import EndReason

__all__ = [
    "GUEST",
    "WEEK_S",
    "Profile",
    "SessionSummary",
    "WeekProgress",
    "after_session",
    "calendar_day",
    "completed",
    "level_cap_kmh",
    "profile_name",
    "qualifies",
    "session_profile",
    "walking_level",
    "week_index",
    "week_progress",
]

GUEST = "guest"  # the walk-up user of a gym treadmill
WEEK_S = 7 * 24 * 3600.0


@dataclass(frozen=True)
class Profile:
    """One walker's progress, as the profiles table keeps it.

    `level` is 1-based and indexes [backward] level_caps_kmh. `qualifying_at_level` counts
    the calendar days with a qualifying session (see `qualifies`) at the current level (it
    restarts at each level up), `qualifying_total` all of them. `last_qualifying_day` is the
    local calendar day (`calendar_day`) of the last session counted, None before the first:
    a qualifying session counts only on a later day. `fast_session_done` remembers that one
    completed session held `running_unlock_s` at `running_unlock_kmh` or faster.
    `program_started_at` is the epoch start of the profile's first session (None before it);
    the program's weeks count from it. `weight_kg` is the body weight for the energy estimate.
    """

    name: str
    level: int = 1
    weight_kg: float = 70.0
    qualifying_at_level: int = 0
    qualifying_total: int = 0
    running_unlocked: bool = False
    fast_session_done: bool = False
    program_started_at: float | None = None
    last_qualifying_day: int | None = None

    def __post_init__(self) -> None:
        if self.level < 1:
            raise ValueError(f"profile {self.name!r}: level {self.level} is below level 1")


@dataclass(frozen=True)
class SessionSummary:
    """What the program needs to know of one finished session.

    Times are epoch seconds. `backward_s` is the time walked backward, `backward_fast_s` the
    part of it at [program] running_unlock_kmh or faster, `backward_paced_s` the part on a
    moving belt at [program] qualifying_share of the cap in force or faster (0 for sessions
    stored before it was measured). `level` is the walking level the session was walked at
    (None for sessions stored before levels existed).
    """

    started_at: float
    ended_at: float
    end_reason: str
    backward_s: float
    backward_fast_s: float = 0.0
    level: int | None = None
    backward_paced_s: float = 0.0


@dataclass(frozen=True)
class WeekProgress:
    """Where a profile stands in the program at one moment.

    `week` is the current program week, 1..weeks, or None before the first session or once
    the last week is over. `sessions_done` counts this week's sessions of at least
    session_min_s backward (0 when `week` is None), against `sessions_target`. `per_week`
    holds that count for every program week, future weeks 0. `finished` is true once every
    week reached its target.
    """

    week: int | None
    sessions_done: int
    sessions_target: int
    per_week: tuple[int, ...]
    finished: bool


def profile_name(config: Config) -> str:
    """The profile a session on this treadmill belongs to: the home walker's when
    [program] single_user, else the walk-up `guest`."""
    return config.program.profile if config.program.single_user else GUEST


def session_profile(profile: Profile, config: Config) -> Profile:
    """The profile as the next session walks it.

    In a gym the walk-up `guest` may be anyone, first-timers included, so the guest always
    gets a fresh beginner: level 1, nothing counted, running locked. Every profile takes its
    weight from [program] weight_kg, the one place a walker's weight is set today.
    """
    weight = config.program.weight_kg
    if profile.name == GUEST and not config.program.single_user:
        return Profile(GUEST, weight_kg=weight)
    return replace(profile, weight_kg=weight)


def walking_level(profile: Profile, config: Config) -> int:
    """The profile's level within the walking levels the config has now (an operator may
    have removed levels since the profile earned its level)."""
    return min(max(profile.level, 1), len(config.backward.level_caps_kmh))


def level_cap_kmh(profile: Profile, config: Config) -> float:
    """The highest cap the profile's backward sessions ramp to, km/h: its walking level's
    cap, or [backward] running_cap_kmh once running is unlocked."""
    if profile.running_unlocked:
        return config.backward.running_cap_kmh
    return config.backward.level_caps_kmh[walking_level(profile, config) - 1]


def calendar_day(epoch: float) -> int:
    """The local calendar day of epoch seconds, as a proleptic Gregorian ordinal (1 is
    1 January of year 1), the way Profile.last_qualifying_day keeps it."""
    return date.fromtimestamp(epoch).toordinal()


def completed(summary: SessionSummary) -> bool:
    """A session that ended as the walker or the rules ended it.

    A session closed as interrupted (found open after a crash or a power cut) never counts:
    its totals stop at the last write before the cut, and nobody saw how it ended.
    """
    return summary.end_reason != EndReason.INTERRUPTED


def qualifies(summary: SessionSummary, config: Config) -> bool:
    """A completed session with at least [program] qualifying_backward_s of backward walking
    at qualifying_share of the cap in force or faster: one that may count toward a level and
    the running unlock (if no session counted on its day yet, see `after_session`).

    The pace is the point: ten minutes at a crawl is not the walking a faster cap asks for.
    """
    paced = summary.backward_paced_s >= config.program.qualifying_backward_s
    return completed(summary) and paced


def after_session(
    profile: Profile, summary: SessionSummary, config: Config, *, t: float
) -> tuple[Profile, list[Event]]:
    """The profile after one more finished session, and the events it earned (LEVEL_UP,
    RUNNING_UNLOCKED, in that order) stamped with the controller's monotonic `t`.

    The first session of a profile, whatever it holds, starts its program. A qualifying
    session counts toward the level and the running unlock only when it started on a later
    local calendar day than the last one counted.
    """
    p, events = profile, list[Event]()
    if p.program_started_at is None:
        p = replace(p, program_started_at=summary.started_at)
    program = config.program
    if not completed(summary):
        return p, events

    # The fast stretch need not come from a full-length session: the reference asks for
    # 5 minutes at 5 km/h "in one session", and the session count is a separate condition.
    if summary.backward_fast_s >= program.running_unlock_s:
        p = replace(p, fast_session_done=True)
    day = calendar_day(summary.started_at)
    # Later, not merely other: a wall clock set back (NTP at boot, a Pi without a real-time
    # clock) must not make an already counted day count again. A clock that once ran ahead
    # holds counting back until that day has passed; that errs on the slow side.
    new_day = p.last_qualifying_day is None or day > p.last_qualifying_day
    if new_day and qualifies(summary, config):
        p = replace(
            p,
            qualifying_at_level=p.qualifying_at_level + 1,
            qualifying_total=p.qualifying_total + 1,
            last_qualifying_day=day,
        )
        top = len(config.backward.level_caps_kmh)
        if p.qualifying_at_level >= program.level_up_sessions and p.level < top:
            p = replace(p, level=p.level + 1, qualifying_at_level=0)
            cap = config.backward.level_caps_kmh[p.level - 1]
            events.append(
                Event(t, EventKind.LEVEL_UP, {"profile": p.name, "level": p.level, "cap_kmh": cap})
            )
    if (
        not p.running_unlocked
        and p.fast_session_done
        and p.qualifying_total >= program.running_unlock_sessions
    ):
        p = replace(p, running_unlocked=True)
        cap = config.backward.running_cap_kmh
        events.append(Event(t, EventKind.RUNNING_UNLOCKED, {"profile": p.name, "cap_kmh": cap}))
    return p, events


def week_progress(
    program_started_at: float | None,
    sessions: Iterable[SessionSummary],
    now_epoch: float,
    config: Config,
) -> WeekProgress:
    """The program's standing at epoch `now_epoch`, from the profile's sessions.

    Weeks are 7-day blocks from `program_started_at`; a session belongs to the week it
    started in. A session counts when it is completed (not interrupted) and holds at least
    [program] session_min_s backward at any speed, several on one day included: the weeks
    show the walker's habit, while the level and the running unlock ask for paced sessions on
    distinct days (`after_session`). Sessions outside the program's weeks are ignored.
    """
    program = config.program
    target = program.sessions_per_week
    counts = [0] * program.weeks
    if program_started_at is None:
        return WeekProgress(None, 0, target, tuple(counts), False)
    for session in sessions:
        week = week_index(session.started_at, program_started_at)
        long_enough = session.backward_s >= program.session_min_s
        if 0 <= week < program.weeks and completed(session) and long_enough:
            counts[week] += 1
    # A wall clock set back before the first session (NTP at boot) still reads as week 1.
    now_week = max(week_index(now_epoch, program_started_at), 0)
    current = now_week + 1 if now_week < program.weeks else None
    done = counts[now_week] if current is not None else 0
    finished = all(count >= target for count in counts)
    return WeekProgress(current, done, target, tuple(counts), finished)


def week_index(epoch: float, started_at: float) -> int:
    """The program week (0 for the first) that `epoch` falls in; negative before it."""
    return int((epoch - started_at) // WEEK_S)
