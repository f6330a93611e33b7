"""The real Daemon on a thread of the test's process, on mock pins: the whole device with
nothing but the test between it and the socket. (device_process runs it as a subprocess.)"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from device.config.model import Config
from device.daemon import Daemon


@contextmanager
def daemon_running(
    config: Config,
    *,
    socket_path: str | Path,
    db_path: str | Path,
    pin_factory: object,
    config_path: str | Path | None = None,
    within_s: float = 10.0,
) -> Iterator[Daemon]:
    """A Daemon running until the block ends, ready (socket listening, pins set up) when the
    block starts. The pin factory stays the caller's to reset and close."""
    daemon = Daemon(
        config,
        socket_path=str(socket_path),
        db_path=str(db_path),
        config_path=None if config_path is None else str(config_path),
        pin_factory=pin_factory,
    )
    thread = threading.Thread(target=daemon.run, daemon=True)
    thread.start()
    try:
        assert daemon.ready.wait(within_s), "the daemon did not get ready"
        yield daemon
    finally:
        daemon.stop()
        thread.join(within_s)
