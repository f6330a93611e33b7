"""Over the limit: the warning, the grace budget with memory, and when to enforce.

The limit is the cap in force plus the tolerance; over it means the 3 s mean above it, or a
speed the device cannot vouch for. Time over the limit draws on one budget of `grace_s`
seconds. Only time not over it refills the budget, and slowly: REFILL_PER_S of a second per
second. Nothing else refills it: no button, command, pause, end, mode switch, new segment or
reload. The budget running out is the moment to enforce.

Why 1/30: over any 60 s window, starting from a full budget, a belt can run over the limit
for at most O seconds with O <= grace + (60 - O) / 30, so O <= (grace + 2) * 30 / 31. That is
6.8 s at the 5 s grace, and within 2 x grace + 1 s for every grace from 1 s up. An excursion
that ends gives back the whole budget only after 30 x grace of walking under the limit
(2.5 minutes at 5 s). So swinging over and under the line never earns a fresh grace.

A warning begins at the first moment over and clears only once the mean has been at or under
the cap itself (not cap + tolerance) for CLEAR_AFTER_S. One excursion is one warning, not a
chatter of warnings at the line.

Pure: `judge` takes the time, the limit in force (None when there is none: forward mode) and
the mean speed (None when unknown).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

REFILL_PER_S = 1.0 / 30.0
CLEAR_AFTER_S = 1.0
# the daemon wakes exactly at the deadline, and float sums there can land a hair short of it
EPSILON_S = 1e-6


@dataclass(frozen=True)
class Limit:
    """What the belt may do now in backward mode.

    `cap_kmh` is the cap in force and `tolerance_kmh` the margin over it. `enforcing` is false
    when running out of budget only warns (nobody started a session and [enforce]
    without_session is "warn"). `grace_s` is the budget's ceiling: the configured grace, or
    the short one after an enforced stop. `scope` says why this cap holds ("session",
    "paused", "ended", "refused", "no session", "after a stop").
    """

    cap_kmh: float
    tolerance_kmh: float
    grace_s: float
    enforcing: bool = True
    scope: str = "session"

    @property
    def line_kmh(self) -> float:
        return round(self.cap_kmh + self.tolerance_kmh, 2)


class Verdict(StrEnum):
    OK = "ok"
    WARNING = "warning"  # over the limit (or speed unknown) and the budget lasts
    ENFORCED = "enforced"  # the budget ran out while still over


@dataclass(frozen=True)
class Decision:
    """The word on one tick. `began`, `cleared` and `enforce` are true only at the tick where
    that happened, so the guard says each once."""

    verdict: Verdict
    speed_kmh: float | None = None  # the 3 s mean judged; None when unknown
    cap_kmh: float | None = None
    seconds_left: float | None = None  # the budget left, during a warning
    reason: str = ""  # "over the cap" | "speed unknown"
    over: bool = False  # over the limit now (a warning may outlast it: the hysteresis)
    enforcing: bool = True  # a stop comes when the budget runs out
    scope: str = ""
    began: bool = False
    cleared: bool = False
    enforce: bool = False


OK = Decision(Verdict.OK)


class OverspeedWatch:
    def __init__(self, grace_s: float):
        self.budget_s = grace_s  # seconds over the limit still allowed
        self.ceiling_s = grace_s  # the most the budget refills to
        self.warning = False
        self.enforced = False  # the budget ran out during this warning
        # ... and the limit then could stop the belt: a warning that only warned (no session,
        # [enforce] without_session = "warn") still owes the stop once a limit that stops
        # takes over (a session starts, a start is refused), budget or not
        self._enforced_stopping = False
        self.over = False  # at the last judgement
        self._last_t: float | None = None
        self._under_cap_since: float | None = None

    def judge(self, t: float, limit: Limit | None, mean_kmh: float | None) -> Decision:
        self._account(t)
        self.ceiling_s = limit.grace_s if limit is not None else self.ceiling_s
        self.budget_s = min(self.budget_s, self.ceiling_s)
        if limit is None:
            self.over = False
            return self._clear(mean_kmh, None) if self.warning else OK
        over = self.over = mean_kmh is None or mean_kmh > limit.cap_kmh + limit.tolerance_kmh
        began = over and not self.warning
        if began:
            self.warning, self.enforced = True, False
        if not self.warning:
            return OK
        under_cap = mean_kmh is not None and mean_kmh <= limit.cap_kmh
        if not under_cap:
            self._under_cap_since = None
        elif self._under_cap_since is None:
            self._under_cap_since = t
        elif t - self._under_cap_since >= CLEAR_AFTER_S - EPSILON_S:
            return self._clear(mean_kmh, limit.cap_kmh)
        owed = not self.enforced or (limit.enforcing and not self._enforced_stopping)
        enforce = over and self.budget_s <= EPSILON_S and owed
        if enforce:
            self.enforced, self._enforced_stopping = True, limit.enforcing
        return Decision(
            verdict=Verdict.ENFORCED if self.enforced else Verdict.WARNING,
            speed_kmh=mean_kmh,
            cap_kmh=limit.cap_kmh,
            seconds_left=max(0.0, self.budget_s),
            reason="speed unknown" if mean_kmh is None else "over the cap",
            over=over,
            enforcing=limit.enforcing,
            scope=limit.scope,
            began=began,
            enforce=enforce,
        )

    def deadline(self) -> float | None:
        """When the budget runs out if the belt stays over: a tick must run then."""
        # once the budget ran out, what is left to do (a stop still owed when a limit that
        # stops takes over) falls due at that change, which a tick brings
        if not self.over or self.enforced or self._last_t is None:
            return None
        return self._last_t + max(0.0, self.budget_s)

    def stopped(self, ceiling_s: float) -> None:
        """The belt was stopped: the warning is over. The budget stays spent and refills, as
        ever, only with time under the limit, up to `ceiling_s` (the short grace that watches
        a restart): a belt restarted fast at once is stopped at once."""
        self.warning = self.enforced = self.over = self._enforced_stopping = False
        self._under_cap_since = None
        self.budget_s = max(0.0, self.budget_s)
        self.ceiling_s = ceiling_s

    def owe_stop(self) -> None:
        """What stood in for this warning's stop (a soft stop) no longer does: the next
        moment over, with the budget spent, enforces again."""
        self.enforced = self._enforced_stopping = False

    def _account(self, t: float) -> None:
        """The time since the last judgement draws on the budget if the belt was over then,
        and refills it slowly if not."""
        last, self._last_t = self._last_t, t
        if last is None or t <= last:
            return
        if self.over:
            self.budget_s = max(0.0, self.budget_s - (t - last))
        else:
            self.budget_s = min(self.ceiling_s, self.budget_s + (t - last) * REFILL_PER_S)

    def _clear(self, mean_kmh: float | None, cap_kmh: float | None) -> Decision:
        self.warning = self.enforced = self._enforced_stopping = False
        self._under_cap_since = None
        return Decision(Verdict.OK, speed_kmh=mean_kmh, cap_kmh=cap_kmh, cleared=True)
