"""Sessions as the program counts them (a SessionSummary built from minutes walked), and a
profile taken through a run of them: shared by the program and progression tests."""

from __future__ import annotations

from device.config.load import config_from_mapping
from device.config.model import Config
from device.core.events import Event
from device.core.modes import EndReason
from device.core.program import Profile, SessionSummary, after_session

# a treadmill at home: one walker, whose level is kept from session to session
HOME = config_from_mapping({"program": {"single_user": True, "profile": "ana"}})


def walked_at(
    start: float,
    *,
    backward_min: float = 12,
    fast_min: float = 0,
    paced_min: float | None = None,
    reason: EndReason = EndReason.BUTTON,
    level: int = 1,
) -> SessionSummary:
    """A session starting at epoch `start` with `backward_min` minutes walked backward, of
    them `paced_min` (all unless told) at [program] qualifying_share of the cap or faster."""
    return SessionSummary(
        started_at=start,
        ended_at=start + backward_min * 60 + 60,
        end_reason=reason,
        backward_s=backward_min * 60,
        backward_fast_s=fast_min * 60,
        level=level,
        backward_paced_s=(backward_min if paced_min is None else paced_min) * 60,
    )


def walk_all(
    profile: Profile, sessions: list[SessionSummary], config: Config | None = None
) -> tuple[Profile, list[Event]]:
    """The profile after these sessions (under the built-in config unless given), and every
    event they earned."""
    events: list[Event] = []
    for number, summary in enumerate(sessions):
        profile, earned = after_session(profile, summary, config or Config(), t=float(number))
        events += earned
    return profile, events
