"""A serial speed bridge on a pty, as a treadmill's console tap would be: the belt's speed,
ten lines a second, until the test pulls its cable (close)."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator


class SerialBelt(threading.Thread):
    """A serial speed bridge on a pty: the belt's speed, ten lines a second."""

    def __init__(self, kmh: float = 0.5) -> None:
        super().__init__(daemon=True)
        self.master, self._slave = os.openpty()
        self.url = os.ttyname(self._slave)
        self.kmh = kmh
        self._pulled = threading.Event()

    def run(self) -> None:
        while not self._pulled.wait(0.1):
            with contextlib.suppress(OSError):
                os.write(self.master, f"{self.kmh:.2f}\n".encode())

    def close(self) -> None:
        """Pull the bridge's cable: its pty is gone."""
        if self._pulled.is_set():
            return
        self._pulled.set()
        self.join(2)
        os.close(self.master)
        os.close(self._slave)


@contextlib.contextmanager
def serial_belt(kmh: float = 0.5) -> Iterator[SerialBelt]:
    bridge = SerialBelt(kmh)
    bridge.start()
    try:
        yield bridge
    finally:
        bridge.close()
