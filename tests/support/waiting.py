"""Waiting for another thread or process (a reader thread, the daemon, a socket's peer) to
get somewhere, on the real clock."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

# short enough that a test waits little past the moment, long enough not to starve the
# thread it waits for (the daemon answers a status request at every poll)
POLL_S = 0.01


def wait_until(
    condition: Callable[[], T | None],
    *,
    within_s: float,
    what: str,
    showing: Callable[[], object] | None = None,
) -> T:
    """Poll `condition` until it returns something truthy and return that; fail the test,
    naming `what` it waited for (and what `showing` reads then), if it has not within
    `within_s` seconds. The last look is taken after the deadline, so a slow machine that
    gets there just in time passes."""
    deadline = time.monotonic() + within_s
    while not (result := condition()):
        if time.monotonic() > deadline:
            seen = "" if showing is None else f"; {showing()}"
            raise AssertionError(f"waited {within_s} s for {what}{seen}")
        time.sleep(POLL_S)
    return result
