"""The one base of the errors a user can act on: each message is one sentence naming the
problem and the fix, fit to print without a traceback (the daemon, check-config, the web).
"""

from __future__ import annotations


class RetrotreadError(Exception):
    """A problem with one clear sentence for its message."""
