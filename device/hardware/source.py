"""Speed sources: thin adapters that turn the treadmill's hardware into timed readings.

Sources only report upward through callbacks (OctoPrint style) and never touch the estimator
or the controller: the daemon wires hall pulses to `SpeedEstimator.pulse(t)` on its tick
thread and serial readings to the controller's direct-speed input. Every time they report is
monotonic seconds on the clock they were given.
"""

from __future__ import annotations

from device.errors import RetrotreadError


class SourceError(RetrotreadError):
    """A speed source cannot start for a reason the user can fix; the message is one sentence
    naming the pin or port and the fix, fit to print without a traceback."""
