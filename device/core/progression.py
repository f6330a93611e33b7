"""Progression: which walker is on the belt, at what level, and how the program stands.

The controller's link to device/core/program.py. It holds the profile the daemon loaded from the
store and the profile's recent sessions, hands the governor the level and ceiling for each
session, and after each session asks the program what was earned. Pure: epoch times come
from the controller's wall-clock offset, never from a clock read here.
"""

from __future__ import annotations

from device.config.model import Config
from device.core.events import Event
from device.core.program import (
    Profile,
    SessionSummary,
    after_session,
    profile_name,
    session_profile,
    walking_level,
    week_progress,
)
from device.core.session import SessionTotals
from device.core.status import ProgressionStatus, program_status


class Progression:
    def __init__(
        self,
        config: Config,
        *,
        profile: Profile | None = None,
        recent: list[SessionSummary] | None = None,
    ):
        self.config = config
        self.profile = profile or Profile(profile_name(config))
        self.recent = list(recent or [])
        self.walker = session_profile(self.profile, config)  # as the next session walks it

    @property
    def level(self) -> int:
        return walking_level(self.walker, self.config)

    @property
    def running(self) -> bool:
        return self.walker.running_unlocked

    @property
    def keeps_progress(self) -> bool:
        """Only the home walker's profile is kept; a gym's guest is a beginner every time."""
        return self.config.program.single_user

    def reconfigure(self, config: Config) -> None:
        self.config = config
        self.walker = session_profile(self.profile, config)

    def session_started(self) -> Profile:
        self.walker = session_profile(self.profile, self.config)
        return self.walker

    def session_ended(
        self, totals: SessionTotals, *, reason: str, wall_offset: float, t: float
    ) -> tuple[Profile | None, list[Event]]:
        """What the finished session earned. Returns the profile to save (None for the
        guest) and the events (level_up, running_unlocked)."""
        summary = SessionSummary(
            started_at=totals.started_at + wall_offset,
            ended_at=(totals.ended_at or t) + wall_offset,
            end_reason=reason,
            backward_s=totals.backward_s,
            backward_fast_s=totals.backward_fast_s,
            level=self.level,
            backward_paced_s=totals.backward_paced_s,
        )
        updated, events = after_session(self.walker, summary, self.config, t=t)
        self.recent.append(summary)
        if not self.keeps_progress:
            return None, events
        self.profile = self.walker = updated
        return updated, events

    def status(self, now_epoch: float) -> ProgressionStatus:
        progress = week_progress(
            self.profile.program_started_at, self.recent, now_epoch, self.config
        )
        return {
            "profile": self.profile.name,
            "level": self.level,
            "running_unlocked": self.running,
            "program": program_status(progress),
        }
