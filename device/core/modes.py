"""Which way the walker faces on the belt and what a session is doing, in the treadmill's words."""

from __future__ import annotations

from enum import StrEnum


class Mode(StrEnum):
    """Which way the walker faces on the belt (the DIRECTION button toggles it)."""

    FORWARD = "forward"
    BACKWARD = "backward"

    def toggled(self) -> Mode:
        return Mode.FORWARD if self is Mode.BACKWARD else Mode.BACKWARD


class ButtonName(StrEnum):
    """The treadmill's two buttons."""

    START = "start"  # short press: start, pause, resume; long press: end
    DIRECTION = "direction"  # toggles the mode


class SessionState(StrEnum):
    IDLE = "idle"
    RUNNING = "running"
    PAUSED = "paused"


class EndReason(StrEnum):
    """Why a session ended; stored in sessions.end_reason."""

    BUTTON = "button"  # START held for hold_s
    COMMAND = "command"  # the dashboard or the socket asked
    PAUSE_TIMEOUT = "pause_timeout"  # paused longer than end_after_pause_s
    CONSOLE = "console"  # the console's workout ended ([session] follow_console)
    SHUTDOWN = "shutdown"  # the daemon was stopped (SIGTERM) or the scenario ended
    INTERRUPTED = "interrupted"  # found open after a crash or power cut
