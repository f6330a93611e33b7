"""Whether the walker on the belt still needs the first-session card on the live page.

A gym's walk-up user is always the profile `guest` (device.core.program.GUEST), and any guest
may be a first-timer: the card is always shown to them. A member profile sees it until the
history holds a session of theirs with backward time in it. When the device is offline or the
history cannot be read, the card is shown too: reading it twice does no harm, missing it might.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable

from device.core.program import GUEST
from device.history.reader import History, StoreError

log = logging.getLogger("retrotread.web.guide")

PAGE = 200  # sessions read at a time, newest first: a regular walker's newest has backward time


def walked_backward(history: History, profile: str) -> bool:
    """Whether `profile` has any session (ended or still open) with backward time recorded."""
    offset = 0
    while rows := history.sessions(PAGE, offset, profile=profile):
        if any(row.backward_s > 0 for row in rows):
            return True
        offset += len(rows)
    return False


def needs_first_session_card(profile: str | None, history: Callable[[], History]) -> bool:
    """Whether the live page shows the first-session card to the walker `profile` (None: the
    device is offline or did not say). `history` opens the history file, raising StoreError
    when there is none; it is called only for a member profile."""
    if profile is None or profile == GUEST:
        return True
    try:
        return not walked_backward(history(), profile)
    except StoreError:
        return True
    except sqlite3.Error:  # a file the daemon is rewriting, a disk error: never the live page
        log.exception("the first-session card could not read the history of %r", profile)
        return True
