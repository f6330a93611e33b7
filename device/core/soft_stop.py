"""A soft stop: the console asked to slow the belt before the relay cuts it.

Where a CSAFE console may listen ([enforce] soft = "csafe"), the grace running out first
sends SetSpeed to the cap. The console has SOFT_WINDOW_S to bring the belt under the cap +
tolerance; the relay follows if it has not, at once if the console refuses the command, and
at once if the speed cannot be vouched for. No public source confirms that any treadmill
honours SetSpeed, so a console that refuses it, or leaves the belt running as it was, is
remembered as one that ignores it (the store keeps the event) and later stops go straight to
the relay. A belt that did slow but too slowly to make it in time (a fast belt, a slow
console) is stopped by the relay without that verdict.

Once the belt came down, the warning stays until the 3 s mean is under the cap; a walker who
speeds the belt up again meanwhile (the budget is spent) is stopped by the relay once the
belt has been over the line for SPED_UP_FOR_S in all, counted with memory (over, under and
over again does not start the count afresh). And a soft stop is a favour granted once per
refill of the budget: the next one is asked only after as long as a spent budget takes to
refill whole (30 x grace, 150 s at the 5 s default); before that the relay does it. So a
soft stop costs at most SOFT_WINDOW_S + SPED_UP_FOR_S beyond the grace, once per refill.

Pure: time is an argument; the guard asks and carries out.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from device.config.model import Config, SensorKind
from device.core.console import SpeedAnswer
from device.core.events import Event, EventKind
from device.core.overspeed import REFILL_PER_S, Decision
from device.core.sensor_trust import STOP_RATE_KMH_PER_S

SOFT_WINDOW_S = 2.0  # the console's time to bring the belt under the line
# Where the speed is the console's own word (it reports the speed it is set to, at once, up or
# down), the belt is taken to slow no faster than this, the gentlest a console is assumed to
# slow a belt: the fastest it may still run is the highest word since, less this rate since
# then, and it is believed down only as long after the ask as it takes to slow from there. A
# hall sensor measures the belt itself.
REPORTED_SLOWING_KMH_PER_S = 1.0
# A belt this much slower at the end of the window than when asked was obeying, only slowly.
SLOWING_KMH = 0.5
# After a soft stop, the display over the line this long in all means the belt was sped up
# again. Longer than a few foot strikes' ripple (the belt is at the cap, so +-7 % of it can
# cross the line for a moment), short beside the grace.
SPED_UP_FOR_S = 1.0


class SoftOutcome(StrEnum):
    WAITING = "waiting"  # within the window, the belt still over the line
    CAME_DOWN = "came down"  # under the line: no relay
    REFUSED = "refused"  # the console said no: the relay now
    TOO_SLOW = "too slow"  # slowing, but not under the line in time: the relay now
    IGNORED = "ignored"  # the belt runs on as it was: the relay now
    UNKNOWN = "speed unknown"  # nothing can vouch for the belt: the relay now
    SPED_UP = "sped up again"  # it came down, then ran over the line again: the relay now
    RELEASED = "released"  # the watch after a soft stop that worked is over


@dataclass
class SlowDown:
    """One SetSpeed sent, and what the belt did since."""

    asked_at: float
    target_kmh: float  # what the console was asked for: the cap
    line_kmh: float  # under this the belt has come down: cap + tolerance
    from_kmh: float | None  # the belt when asked
    down_from: float  # a speed under the line is believed from then on
    answer: SpeedAnswer | None = None

    @property
    def deadline(self) -> float:
        return self.asked_at + SOFT_WINDOW_S

    def outcome(self, t: float, speed_kmh: float | None, *, guarded: bool) -> SoftOutcome:
        """The word at t on a belt at `speed_kmh` (the display, None: unknown); `guarded`:
        the mode is backward, so a belt still fast must be stopped."""
        if speed_kmh is not None and speed_kmh <= self.line_kmh and t >= self.down_from:
            return SoftOutcome.CAME_DOWN
        if not guarded:
            return SoftOutcome.WAITING  # forward: nothing to stop; judged if it turns back
        if self.answer is SpeedAnswer.REJECTED:
            return SoftOutcome.REFUSED
        if speed_kmh is None:
            return SoftOutcome.UNKNOWN
        if t < self.deadline:
            return SoftOutcome.WAITING
        slowed = self.from_kmh is not None and self.from_kmh - speed_kmh >= SLOWING_KMH
        return SoftOutcome.TOO_SLOW if slowed else SoftOutcome.IGNORED


# The outcomes that show the console does not act on SetSpeed: remembered.
IGNORING = frozenset({SoftOutcome.REFUSED, SoftOutcome.IGNORED})
# The outcomes the relay follows.
STOPPING = IGNORING | {SoftOutcome.TOO_SLOW, SoftOutcome.UNKNOWN, SoftOutcome.SPED_UP}


class SoftStops:
    """The soft stops of one guard: the one under way, the watch after one that worked, and
    whether this console is known to ignore SetSpeed."""

    def __init__(self) -> None:
        self.pending: SlowDown | None = None
        self.ignored = False  # remembered: later stops go straight to the relay
        self.last_answer: SpeedAnswer | None = None
        self._slowed_line: float | None = None  # after a soft stop that worked
        self._over_s = 0.0  # ... the time over its line since
        self._last_t: float | None = None
        self._asked_at: float | None = None  # the last SetSpeed
        self._word: tuple[float, float] | None = None  # the console's highest recent word

    def rested(self, t: float, *, rest_s: float) -> bool:
        """Whether `rest_s` have passed since the last soft stop was asked (or none was)."""
        return self._asked_at is None or t - self._asked_at >= rest_s

    @property
    def busy(self) -> bool:
        """A soft stop is under way, or one just worked and its warning is not over: no
        second one is asked; the relay does what is left."""
        return self.pending is not None or self._slowed_line is not None

    def track(self, t: float, speed_kmh: float | None) -> None:
        """The speed the guard sees, each step: where it is the console's word, the fastest
        the belt may still run is remembered (`fastest`). An unknown speed keeps the memory:
        it still fades at the gentlest slowing."""
        if speed_kmh is None:
            return
        before = self._belt_may_run(t)
        if before is None or speed_kmh >= before:
            self._word = (t, speed_kmh)

    def fastest(self, t: float, speed_kmh: float, config: Config) -> float:
        """The fastest the belt may be running at t, given the speed the guard sees: that
        speed itself when it is measured, else also what the console said lately, slowed at
        REPORTED_SLOWING_KMH_PER_S since."""
        may_run = None if _measured(config) else self._belt_may_run(t)
        return speed_kmh if may_run is None else max(speed_kmh, may_run)

    def _belt_may_run(self, t: float) -> float | None:
        if self._word is None:
            return None
        said_at, kmh = self._word
        return kmh - REPORTED_SLOWING_KMH_PER_S * max(0.0, t - said_at)

    def may_ask(self, t: float, config: Config, *, speed_kmh: float | None, cap_kmh: float) -> bool:
        """Whether the grace running out now may ask the console first: soft = "csafe", a
        console not known to ignore it, no soft stop under way and none within a budget's
        refill (30 x grace), and a speed that is known and near enough the line to come down
        within the window (a belt far over it gets the relay at once)."""
        b = config.backward
        return (
            config.enforce.soft == "csafe"
            and not (self.ignored or self.busy)
            and self.rested(t, rest_s=b.grace_s / REFILL_PER_S)
            and speed_kmh is not None
            and slowing_s(
                self.fastest(t, speed_kmh, config),
                cap_kmh + b.tolerance_kmh,
                measured=_measured(config),
            )
            <= SOFT_WINDOW_S
        )

    def ask(self, t: float, decision: Decision, config: Config, *, speed_kmh: float) -> Event:
        """The grace ran out (`decision`): SetSpeed to the cap goes out now; the event says so.
        A console's own word on the speed is believed under the line only as long after the
        ask as the belt takes to slow; a hall sensor's at once."""
        cap = decision.cap_kmh or 0.0
        line_kmh = cap + config.backward.tolerance_kmh
        fastest = self.fastest(t, speed_kmh, config)
        down_from = t if _measured(config) else t + slowing_s(fastest, line_kmh, measured=False)
        self.pending = SlowDown(t, cap, line_kmh, fastest, down_from)
        self._asked_at = t
        self.last_answer = None
        details = {
            "speed_kmh": _round(decision.speed_kmh),
            "cap_kmh": decision.cap_kmh,
            "reason": decision.reason,
            "scope": decision.scope,
            "within_s": SOFT_WINDOW_S,
        }
        return Event(t, EventKind.SLOWDOWN_ASKED, details)

    def answered(self, answer: SpeedAnswer) -> None:
        """The console's word on the last SetSpeed (an UNANSWERED changes nothing: the
        window runs on)."""
        self.last_answer = answer
        if self.pending is not None and answer is SpeedAnswer.REJECTED:
            self.pending.answer = answer

    def deadline(self) -> float | None:
        return None if self.pending is None else self.pending.deadline

    def follow(
        self, t: float, speed_kmh: float | None, *, guarded: bool, warning: bool
    ) -> tuple[SoftOutcome | None, list[Event]]:
        """What became of the soft stop at t (None: nothing to say), and its events; an
        outcome in STOPPING is the relay's turn. `speed_kmh` is the display (None: unknown),
        `guarded`: backward mode with a limit that stops the belt, `warning`: the over-limit
        warning is on."""
        pending = self.pending
        if pending is None:
            return self._after(t, speed_kmh, guarded=guarded and warning), []
        outcome = pending.outcome(t, speed_kmh, guarded=guarded)
        events: list[Event] = []
        if outcome is SoftOutcome.CAME_DOWN:
            self.pending, self._slowed_line = None, pending.line_kmh
            self._over_s, self._last_t = 0.0, t
            details = {"speed_kmh": _round(speed_kmh), "cap_kmh": pending.target_kmh,
                       "after_s": round(t - pending.asked_at, 2)}  # fmt: skip
            events.append(Event(t, EventKind.SLOWED, details))
        elif outcome is not SoftOutcome.WAITING:
            self.pending = None
        if outcome in IGNORING and not self.ignored:
            self.ignored = True
            why = "it refused SetSpeed" if outcome is SoftOutcome.REFUSED else "the belt ran on"
            events.append(Event(t, EventKind.CONSOLE_IGNORES_SPEED, {"why": why}))
        return outcome, events

    def _after(self, t: float, speed_kmh: float | None, *, guarded: bool) -> SoftOutcome | None:
        """After a soft stop that worked, while its warning lasts: the belt sped up again?"""
        line = self._slowed_line
        if line is None:
            return None
        if not guarded:  # the warning is over (or nothing is guarded): done
            self._slowed_line = None
            return SoftOutcome.RELEASED
        if speed_kmh is None:
            self._slowed_line = None
            return SoftOutcome.UNKNOWN
        last, self._last_t = self._last_t, t
        if speed_kmh > line and last is not None:
            self._over_s += max(0.0, t - last)  # the stretch since the last look, as over
        if self._over_s < SPED_UP_FOR_S:
            return None
        self._slowed_line = None
        return SoftOutcome.SPED_UP

    def cleared(self) -> None:
        """The relay cut the belt: nothing soft is left to follow."""
        self.pending = self._slowed_line = self._last_t = None
        self._over_s = 0.0


def slowing_s(speed_kmh: float, line_kmh: float, *, measured: bool) -> float:
    """How long a console takes to bring the belt from `speed_kmh` under the line at the
    quickest ordinary stop (a measured speed) or at the gentlest assumed slowing (the
    console's word, which must not be believed sooner)."""
    rate = STOP_RATE_KMH_PER_S if measured else REPORTED_SLOWING_KMH_PER_S
    return max(0.0, speed_kmh - line_kmh) / rate


def _measured(config: Config) -> bool:
    """Whether the speed the guard sees is measured on the belt (a hall sensor), not the
    word of a console that reports the speed it is set to."""
    return config.sensor.kind == SensorKind.HALL


def _round(kmh: float | None) -> float | None:
    return None if kmh is None else round(kmh, 2)
