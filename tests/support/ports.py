"""A TCP port for a dashboard a test starts as a subprocess (one that binds its own port
from `--port`, so it cannot be handed port 0)."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on now. Another process may take it before
    the dashboard binds it; on a test machine that is rare enough to live with."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
