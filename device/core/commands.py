"""Which commands from the dashboard (through the socket) the session allows now, and the
sentence that refuses the others. Pure: it reads the session and changes nothing.

It lives apart from the Controller because these rules need none of the Controller's parts,
only the session (its state, what a START press would do) and whether the safety stop is
latched; the Controller carries out what they allow (device/core/controller.py), and the
checks and their sentences can be read and tested on their own. A command is allowed exactly
when a START press would do the same thing: the dashboard gets no transition the treadmill's
own button does not have.
"""

from __future__ import annotations

from device.core.modes import Mode, SessionState
from device.core.session import SessionAction, SessionMachine
from device.errors import RetrotreadError

# What the session's own words for a press are: anything else is no command of ours.
PRESS_COMMANDS = (SessionAction.START, SessionAction.PAUSE, SessionAction.RESUME)


class CommandRefused(RetrotreadError):
    """A command that cannot be carried out now; str() is the sentence for the user."""


def allowed_command(
    cmd: str, mode: Mode | None, session: SessionMachine, *, latched: bool
) -> Mode | SessionAction:
    """What `cmd` asks for, if the session allows it now: the Mode a "mode" command faces,
    SessionAction.END, or the START/PAUSE/RESUME a press would do; `latched` is whether the
    safety stop holds the loop open. Raises CommandRefused with the user's sentence otherwise;
    a start or resume may still be refused by the belt, which only the Controller can judge.
    Reads the session, changes nothing."""
    state = session.state
    if cmd == "mode":
        if mode is None:
            raise CommandRefused('The "mode" command needs "mode": "forward" or "backward".')
        return mode
    if cmd == SessionAction.END:
        if state is SessionState.IDLE:
            raise CommandRefused("There is no session to end.")
        return SessionAction.END
    if cmd not in PRESS_COMMANDS:
        # str(): the name as the client wrote it, whether the daemon passed its Command enum
        # or the simulator a plain string
        raise CommandRefused(f"Unknown command {str(cmd)!r}.")
    action = SessionAction(cmd)
    if action is not session.short_press_action():
        raise CommandRefused(f"Cannot {action} while the session is {state.value}.")
    if action is SessionAction.RESUME and latched:
        raise CommandRefused(
            "The safety stop is latched: press START on the treadmill to release it."
        )
    return action
