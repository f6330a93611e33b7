"""Levels, the unlock of backward running and the 4-week program, per profile.

A walker starts at walking level 1, whose cap is the first of [backward] level_caps_kmh.
`level_up_sessions` completed backward sessions at a level move them up one level, to the
last walking level at most. Backward running (cap [backward] running_cap_kmh) unlocks once
they have done `running_unlock_sessions` completed backward sessions in all and, in one
session, `running_unlock_s` of backward walking at `running_unlock_kmh` or faster: run only
once walking is mastered. The program is `weeks` 7-day blocks from the profile's first session,
each asking for `sessions_per_week` sessions of at least `session_min_s` backward. Defaults and
their reasons: config.example.toml, [program].

In a gym (`single_user = false`) every walk-up user is the profile `guest` and starts every
session as a beginner; at home the one walker's profile keeps its level.

Pure: the controller passes the times (epoch seconds for the history, its monotonic seconds
for events) and stores the profile it gets back.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from device.config import Config
from device.events import Event, EventKind
from device.modes import EndReason

__all__ = [
    "GUEST",
    "WEEK_S",
    "Profile",
    "SessionSummary",
    "WeekProgress",
    "after_session",
    "level_cap_kmh",
    "profile_name",
    "qualifies",
    "session_profile",
    "week_progress",
]

GUEST = "guest"  # the walk-up user of a gym treadmill
WEEK_S = 7 * 24 * 3600.0


@dataclass(frozen=True)
class Profile:
    """One walker's progress, as the profiles table keeps it.

    `level` is 1-based and indexes [backward] level_caps_kmh. `qualifying_at_level` counts
    the qualifying sessions (completed, at least [program] qualifying_backward_s backward)
    at the current level (it restarts at each level up), `qualifying_total` all of them.
    `fast_session_done` remembers that one completed session held `running_unlock_s` at
    `running_unlock_kmh` or faster. `program_started_at` is the
    epoch start of the profile's first session (None before it); the program's weeks count
    from it. `weight_kg` is the body weight for the energy estimate.
    """

    name: str
    level: int = 1
    weight_kg: float = 70.0
    qualifying_at_level: int = 0
    qualifying_total: int = 0
    running_unlocked: bool = False
    fast_session_done: bool = False
    program_started_at: float | None = None

    def __post_init__(self) -> None:
        if self.level < 1:
            raise ValueError(f"profile {self.name!r}: level {self.level} is below level 1")


@dataclass(frozen=True)
class SessionSummary:
    """What the program needs to know of one finished session.

    Times are epoch seconds. `backward_s` is the time walked backward, `backward_fast_s` the
    part of it at [program] running_unlock_kmh or faster. `level` is the walking level the
    session was walked at (None for sessions stored before levels existed).
    """

    started_at: float
    ended_at: float
    end_reason: str
    backward_s: float
    backward_fast_s: float = 0.0
    level: int | None = None


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


def qualifies(summary: SessionSummary, *, min_backward_s: float) -> bool:
    """A completed session with at least `min_backward_s` seconds walked backward.

    A session closed as interrupted (found open after a crash or a power cut) never counts:
    its totals stop at the last write before the cut, and nobody saw how it ended.
    """
    completed = summary.end_reason != EndReason.INTERRUPTED
    return completed and summary.backward_s >= min_backward_s


def after_session(
    profile: Profile, summary: SessionSummary, config: Config, *, t: float
) -> tuple[Profile, list[Event]]:
    """The profile after one more finished session, and the events it earned (LEVEL_UP,
    RUNNING_UNLOCKED, in that order) stamped with the controller's monotonic `t`.

    The first session of a profile, whatever it holds, starts its program.
    """
    p, events = profile, []
    if p.program_started_at is None:
        p = replace(p, program_started_at=summary.started_at)
    program = config.program
    if summary.end_reason == EndReason.INTERRUPTED:
        return p, events

    # The fast stretch need not come from a full-length session: the reference asks for
    # 5 minutes at 5 km/h "in one session", and the session count is a separate condition.
    if summary.backward_fast_s >= program.running_unlock_s:
        p = replace(p, fast_session_done=True)
    if qualifies(summary, min_backward_s=program.qualifying_backward_s):
        p = replace(
            p,
            qualifying_at_level=p.qualifying_at_level + 1,
            qualifying_total=p.qualifying_total + 1,
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
    [program] session_min_s backward. Sessions outside the program's weeks are ignored.
    """
    program = config.program
    target = program.sessions_per_week
    counts = [0] * program.weeks
    if program_started_at is None:
        return WeekProgress(None, 0, target, tuple(counts), False)
    for session in sessions:
        week = _week_index(session.started_at, program_started_at)
        if 0 <= week < program.weeks and qualifies(session, min_backward_s=program.session_min_s):
            counts[week] += 1
    # A wall clock set back before the first session (NTP at boot) still reads as week 1.
    now_week = max(_week_index(now_epoch, program_started_at), 0)
    current = now_week + 1 if now_week < program.weeks else None
    done = counts[now_week] if current is not None else 0
    finished = all(count >= target for count in counts)
    return WeekProgress(current, done, target, tuple(counts), finished)


def _week_index(epoch: float, started_at: float) -> int:
    """0 for the program's first week; negative before it."""
    return int((epoch - started_at) // WEEK_S)
