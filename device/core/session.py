"""The session state machine: idle, running, paused; segments by mode; the START button's
short and long press. Pure: every method takes the time (monotonic seconds) as an argument.

The machine only keeps the session's story (states, segments, distance, minutes per mode) and
says what happened as events. Whether a start is allowed at this belt speed is the governor's
call; the controller asks it before calling `start` or `resume`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import Any

from device.config.model import SessionConfig
from device.core.energy import EnergyMeter
from device.core.events import Event, EventKind
from device.core.modes import EndReason, Mode, SessionState


class SessionAction(StrEnum):
    """What a START press asks of the session (and a dashboard command of the same name)."""

    START = "start"
    PAUSE = "pause"
    RESUME = "resume"
    END = "end"  # a long press


@dataclass(frozen=True)
class Totals:
    """A session's figures as the history keeps them (a column each in the sessions table):
    a snapshot of SessionTotals that another thread may write while the session goes on.
    `kcal` is None only for sessions recorded before the energy estimate existed."""

    distance_m: float = 0.0
    backward_s: float = 0.0
    forward_s: float = 0.0
    backward_distance_m: float = 0.0
    top_speed_kmh: float = 0.0
    kcal: float | None = None
    backward_fast_s: float = 0.0
    backward_paced_s: float = 0.0


@dataclass
class Segment:
    """A stretch of one session in one mode."""

    mode: Mode
    started_at: float
    ended_at: float | None = None
    distance_m: float = 0.0
    active_s: float = 0.0
    # seconds walked on a moving belt while running, plus what a quick turn forward and back
    # carried over from the segment before: the clock the backward cap's hold and ramp follow
    walked_s: float = 0.0


@dataclass
class SessionTotals:
    started_at: float
    ended_at: float | None = None
    distance_m: float = 0.0
    backward_distance_m: float = 0.0
    backward_s: float = 0.0
    forward_s: float = 0.0
    top_speed_kmh: float = 0.0
    backward_fast_s: float = 0.0  # backward at or above the running-unlock speed
    # backward on a moving belt at [program] qualifying_share of the cap in force, or faster:
    # the walking a level-up asks for
    backward_paced_s: float = 0.0
    energy: EnergyMeter = field(default_factory=lambda: EnergyMeter(70.0))
    segments: list[Segment] = field(default_factory=list)

    @property
    def kcal(self) -> float:
        """An estimate (+-25 %): see device/core/energy.py."""
        return self.energy.kcal

    @property
    def active_s(self) -> float:
        return self.backward_s + self.forward_s

    def figures(self) -> Totals:
        """What the history keeps of these totals, as of now: every figure Totals names."""
        return Totals(**{f.name: getattr(self, f.name) for f in fields(Totals)})


class SessionMachine:
    """What the walker is doing on the belt, told by buttons, commands and the belt itself.

    - START short press (released before `hold_s`): idle -> running -> paused -> running.
    - START held for `hold_s`: ends the session at once, while the button is still down.
    - DIRECTION: toggles the mode at any time; inside a session it opens a new segment.
    - The belt stopped for `pause_after_stop_s` pauses; when the belt runs again after such a
      pause the session resumes by itself (the walker only stepped off to drink), but a pause
      from the button waits for the button.
    - A pause longer than `end_after_pause_s` ends the session.
    - With `auto_start`, a belt running for `auto_start_after_s` while idle starts a session.
    """

    def __init__(
        self,
        config: SessionConfig,
        *,
        hold_s: float,
        mode: Mode | None = None,
        fast_kmh: float = 5.0,
    ):
        self.config = config
        self.hold_s = hold_s
        self.fast_kmh = fast_kmh  # backward at this speed or faster counts towards running
        # backward at this speed or faster counts toward a level; the controller sets it each
        # tick from the cap in force (None: nothing counts)
        self.paced_kmh: float | None = None
        # whether walking now counts toward the cap's hold and ramp; the controller clears it
        # while the belt is over the limit, so going too fast never earns a higher cap
        self.walk_counts = True
        self.mode = mode or Mode(config.initial_mode)
        self.state = SessionState.IDLE
        self.totals: SessionTotals | None = None
        self.last_totals: SessionTotals | None = None  # the session that ended last
        self.paused_at: float | None = None
        self.paused_by_belt = False
        self._start_down_at: float | None = None
        self._hold_fired = False
        self._belt_stopped_since: float | None = None
        self._belt_moving_since: float | None = None
        self._last_tick: float | None = None
        self._speed_kmh = 0.0  # at the last tick; unknown counts as standing still

    # -- what the rest of the device reads ------------------------------------------------

    @property
    def segment(self) -> Segment | None:
        return self.totals.segments[-1] if self.totals and self.totals.segments else None

    @property
    def in_session(self) -> bool:
        return self.state is not SessionState.IDLE

    # -- the START button ------------------------------------------------------------------

    def start_down(self, t: float) -> None:
        self._start_down_at = t
        self._hold_fired = False

    def start_up(self, t: float) -> SessionAction | None:
        """The START button was released. Returns the action the press asks for ("start",
        "pause", "resume", or "end" for a hold no tick has seen yet), or None when the hold was
        already acted on or no press was seen. The controller decides whether it goes ahead."""
        down_at, self._start_down_at = self._start_down_at, None
        if down_at is None or self._hold_fired:
            return None
        if t - down_at >= self.hold_s:
            # held long enough but released before a tick saw it: still a long press
            self._hold_fired = True
            return SessionAction.END
        return self.short_press_action()

    def short_press_action(self) -> SessionAction:
        return {
            SessionState.IDLE: SessionAction.START,
            SessionState.RUNNING: SessionAction.PAUSE,
            SessionState.PAUSED: SessionAction.RESUME,
        }[self.state]

    def start_held(self, t: float) -> bool:
        """True once, at the tick where START has been down for `hold_s`."""
        if self._start_down_at is None or self._hold_fired:
            return False
        if t - self._start_down_at >= self.hold_s:
            self._hold_fired = True
            return True
        return False

    # -- transitions -------------------------------------------------------------------------

    def start(
        self,
        t: float,
        *,
        reason: str = "button",
        body_kg: float = 70.0,
        walker: dict[str, Any] | None = None,
    ) -> list[Event]:
        """Start a session; `walker` (profile, level) is told in the started event."""
        if self.state is not SessionState.IDLE:
            return []
        self.state = SessionState.RUNNING
        self.totals = SessionTotals(
            started_at=t, energy=EnergyMeter(body_kg), segments=[Segment(self.mode, t)]
        )
        self._belt_stopped_since = None
        self._last_tick = t
        details = {"mode": self.mode.value, "reason": reason, **(walker or {})}
        return [Event(t, EventKind.SESSION_STARTED, details)]

    def pause(self, t: float, *, reason: str = "button") -> list[Event]:
        if self.state is not SessionState.RUNNING:
            return []
        self._account(t)
        self.state = SessionState.PAUSED
        self.paused_at = t
        self.paused_by_belt = reason == "belt stopped"
        return [Event(t, EventKind.SESSION_PAUSED, {"reason": reason})]

    def resume(self, t: float, *, reason: str = "button") -> list[Event]:
        if self.state is not SessionState.PAUSED:
            return []
        self._account(t)  # moves the accounting clock past the pause
        self.state = SessionState.RUNNING
        self.paused_at = None
        self.paused_by_belt = False
        self._belt_stopped_since = None
        return [Event(t, EventKind.SESSION_RESUMED, {"reason": reason})]

    def end(self, t: float, reason: EndReason) -> list[Event]:
        if self.totals is None:
            return []
        self._account(t)
        totals = self.totals
        if totals.segments and totals.segments[-1].ended_at is None:
            totals.segments[-1].ended_at = t
        totals.ended_at = t
        self.last_totals, self.totals = totals, None
        self.state = SessionState.IDLE
        self.paused_at = None
        self.paused_by_belt = False
        self._belt_moving_since = None
        return [
            Event(
                t,
                EventKind.SESSION_ENDED,
                {
                    "reason": reason.value,
                    "distance_m": round(totals.distance_m, 1),
                    "backward_s": round(totals.backward_s, 1),
                    "forward_s": round(totals.forward_s, 1),
                },
            )
        ]

    def set_mode(self, t: float, mode: Mode, *, reason: str = "button") -> list[Event]:
        """Face the other way. Inside a session this closes the segment and opens a new one,
        so a backward segment entered at speed starts its caps from the beginning."""
        if mode is self.mode:
            return []
        self._account(t)  # the time so far belongs to the mode the walker had
        previous, self.mode = self.mode, mode
        if self.totals is not None:
            self.totals.segments[-1].ended_at = t
            self.totals.segments.append(Segment(mode, t))
        return [
            Event(
                t,
                EventKind.MODE_CHANGED,
                {"mode": mode.value, "from": previous.value, "reason": reason},
            )
        ]

    def restart_segment(self, t: float) -> None:
        """Open a fresh segment in the same mode (after an enforced stop the backward ramp
        begins again at the start cap)."""
        if self.totals is not None:
            self._account(t)
            self.totals.segments[-1].ended_at = t
            self.totals.segments.append(Segment(self.mode, t))

    # -- the belt ----------------------------------------------------------------------------

    def tick(self, t: float, speed_kmh: float | None) -> list[Event]:
        """Account the time since the last tick and apply the belt rules. `speed_kmh` is the
        displayed speed; None means unknown (a serial source gone stale), which neither
        pauses nor starts anything: the governor deals with an unknown speed."""
        events: list[Event] = []
        # the speed read now is the belt's over the stretch that just ended
        self._speed_kmh = speed_kmh or 0.0
        self._account(t)
        moving = speed_kmh is not None and speed_kmh >= self.config.moving_kmh
        stopped = speed_kmh is not None and not moving
        if not moving:
            self._belt_moving_since = None
        elif self._belt_moving_since is None:
            self._belt_moving_since = t
        if not stopped:
            self._belt_stopped_since = None
        elif self._belt_stopped_since is None:
            self._belt_stopped_since = t

        if self.state is SessionState.RUNNING:
            if (
                self._belt_stopped_since is not None
                and t - self._belt_stopped_since >= self.config.pause_after_stop_s
            ):
                events += self.pause(t, reason="belt stopped")
        elif self.state is SessionState.PAUSED:
            assert self.paused_at is not None
            if t - self.paused_at >= self.config.end_after_pause_s:
                events += self.end(t, EndReason.PAUSE_TIMEOUT)
        return events

    def belt_running_for(self, t: float) -> float:
        """Seconds the belt has been moving without a stop (0 when stopped or unknown)."""
        return 0.0 if self._belt_moving_since is None else t - self._belt_moving_since

    def wants_auto_start(self, t: float) -> bool:
        return (
            self.config.auto_start
            and self.state is SessionState.IDLE
            and self.belt_running_for(t) >= self.config.auto_start_after_s
        )

    def wants_auto_resume(self, t: float) -> bool:
        """A pause the belt caused ends when the belt has run again for a second."""
        return (
            self.state is SessionState.PAUSED
            and self.paused_by_belt
            and self.belt_running_for(t) >= 1.0
        )

    def _account(self, t: float) -> None:
        """Add the time since the last accounting to the open session at the belt speed the
        latest tick read. Called by every tick and before every transition, so each stretch
        is counted once, in the state and mode it was walked in."""
        last, self._last_tick = self._last_tick, t
        if self.totals is None or self.state is not SessionState.RUNNING or last is None:
            return
        dt = max(0.0, t - last)
        kmh = self._speed_kmh
        meters = kmh / 3.6 * dt
        totals, segment = self.totals, self.totals.segments[-1]
        totals.distance_m += meters
        segment.distance_m += meters
        segment.active_s += dt
        moving = kmh >= self.config.moving_kmh
        if moving and self.walk_counts:
            segment.walked_s += dt
        totals.top_speed_kmh = max(totals.top_speed_kmh, kmh)
        totals.energy.add(dt, kmh, self.mode)
        if self.mode is Mode.BACKWARD:
            totals.backward_s += dt
            totals.backward_distance_m += meters
            if kmh >= self.fast_kmh:
                totals.backward_fast_s += dt
            if moving and self.paced_kmh is not None and kmh >= self.paced_kmh:
                totals.backward_paced_s += dt
        else:
            totals.forward_s += dt
