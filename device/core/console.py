"""A gym console's word on itself, in the treadmill's terms: the machine state a CSAFE
console reports, and whether it took a speed command. Pure values; the CSAFE codec
(device/hardware/csafe_codec.py) reads them off the wire, the controller acts on them.
"""

from __future__ import annotations

from enum import StrEnum

from device.core.session import SessionAction


class ConsoleState(StrEnum):
    """The machine state in a CSAFE status byte (bits 3-0), as the dashboard names it."""

    ERROR = "error"
    READY = "ready"
    IDLE = "idle"
    HAVE_ID = "have id"
    IN_USE = "in use"  # a workout is running on the console
    PAUSED = "paused"
    FINISHED = "finished"
    MANUAL = "manual"
    OFFLINE = "offline"


class SpeedAnswer(StrEnum):
    """What became of a SetSpeed sent to the console: the status byte of the answer to the
    frame after it says (CSAFE has no acknowledgement of its own)."""

    ACCEPTED = "accepted"
    REJECTED = "rejected"  # the console refused it, found it bad, or was not ready
    UNANSWERED = "unanswered"  # no answer came within the timeout


# What the console's own workout says of the session, with [session] follow_console: a
# member who presses Go on the console starts one, its pause pauses it, and its end (or a
# console back at rest after a workout) ends it. START works as ever beside it.
_RESTING = frozenset({ConsoleState.READY, ConsoleState.IDLE, ConsoleState.FINISHED})


def followed(before: ConsoleState | None, now: ConsoleState, *, in_session: bool,
             running: bool) -> SessionAction | None:  # fmt: skip
    """The session step the console's change from `before` to `now` asks for, if any."""
    if now is before:
        return None
    if now is ConsoleState.IN_USE and not in_session:
        return SessionAction.START
    if now is ConsoleState.IN_USE:
        return None if running else SessionAction.RESUME
    if now is ConsoleState.PAUSED:
        return SessionAction.PAUSE if running else None
    if now in _RESTING and in_session and before in (ConsoleState.IN_USE, ConsoleState.PAUSED):
        return SessionAction.END
    return None


class ConsoleFollower:
    """The console's machine state as the controller heard it, and, with follow_console, the
    session step its workout asks for. A start asked while the belt's speed is not known yet
    (the console's state and its speed come in one answer, after an outage the state may be
    read first) waits up to `wait_s` for the speed, as the belt's own auto start does, rather
    than being refused for good: the console will not ask again."""

    def __init__(self) -> None:
        self.state: ConsoleState | None = None
        self._waiting: tuple[float, SessionAction] | None = None

    def changed(
        self, t: float, state: ConsoleState, *, follow: bool, in_session: bool, running: bool,
        speed_known: bool,
    ) -> SessionAction | None:  # fmt: skip
        """The step to take now for the console's change to `state`, if any."""
        before, self.state = self.state, state
        self._waiting = None
        action = followed(before, state, in_session=in_session, running=running) if follow else None
        if action in (SessionAction.START, SessionAction.RESUME) and not speed_known:
            self._waiting = (t, action)
            return None
        return action

    @property
    def waiting(self) -> bool:
        """A start the console asked for waits for the belt's speed."""
        return self._waiting is not None

    def due(self, t: float, *, speed_known: bool, wait_s: float) -> SessionAction | None:
        """A start that waited for the speed, once it is known or the wait is over (then the
        start gate says why not)."""
        if self._waiting is None:
            return None
        at, action = self._waiting
        if speed_known or t - at >= wait_s:
            self._waiting = None
            return action
        return None
