"""A CSAFE treadmill console for the tests: the emulator on a pty or socket:// (the
`console_emulator` fixture), and a host that speaks raw CSAFE to it (`CsafeHost`), for the
tests that want to see the bytes rather than the console link's readings.

    def test_...(console_emulator):
        console = console_emulator(unit=0x11, quirks=ConsoleQuirks(rejects_set_speed=True))
        console.set_target_kmh(3.0, abrupt=True)
        ... ConsoleLink(console.url) ...        # a pty path; tcp=True: socket://127.0.0.1:N
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import serial

from device.hardware.csafe_codec import Frame, FrameReader, Item, Response, parse_response, request
from device.sim.console import EmulatedTreadmill
from device.sim.console_serve import ConsoleEmulator

from .waiting import wait_until

ANSWER_WITHIN_S = 5.0  # a deadline for a slow machine, not a measure: answers take ms


@pytest.fixture
def console_emulator() -> Iterator[Callable[..., ConsoleEmulator]]:
    """A factory of running console emulators, all closed at the end of the test:
    `console_emulator(treadmill=None, *, pty=True, tcp=False, paced=False, **options)`, where
    options go to EmulatedTreadmill (unit, distance_unit, quirks, rate_kmh_per_s, max_kmh)
    when no treadmill is given."""
    running: list[ConsoleEmulator] = []

    def start(
        treadmill: EmulatedTreadmill | None = None,
        *,
        pty: bool = True,
        tcp: bool | int = False,
        paced: bool = False,
        **options: Any,
    ) -> ConsoleEmulator:
        if treadmill is None:
            treadmill = EmulatedTreadmill(**options)
        elif options:
            raise TypeError("give either a treadmill or its options, not both")
        console = ConsoleEmulator(treadmill, pty=pty, tcp=tcp, paced=paced)
        running.append(console)
        return console.start()

    yield start
    for console in running:
        console.close()


class CsafeHost:
    """The host's end of the line in raw bytes: what it sends, the frames it gets back, and
    what its FrameReader skipped on the way."""

    def __init__(self, url: str) -> None:
        self.port = serial.serial_for_url(url, baudrate=9600, timeout=0.05)
        self.reader = FrameReader()
        self.heard = bytearray()  # every byte that came back, garbage included
        self._frames: list[Frame] = []

    def close(self) -> None:
        self.port.close()

    def __enter__(self) -> CsafeHost:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def send(self, wire: bytes) -> None:
        self.port.write(wire)
        self.port.flush()

    def frames(self, count: int, *, within_s: float = ANSWER_WITHIN_S) -> list[Frame]:
        """The next `count` good frames off the line, waiting for them as long as it takes."""

        def arrived() -> bool:
            data = self.port.read(self.port.in_waiting or 1)
            self.heard += data
            self._frames += self.reader.feed(data)
            return len(self._frames) >= count

        wait_until(
            arrived,
            within_s=within_s,
            what=f"{count} CSAFE frame(s) from the console",
            showing=lambda: f"heard {bytes(self.heard).hex(' ')}; skipped {self.reader.counts}",
        )
        taken, self._frames = self._frames[:count], self._frames[count:]
        return taken

    def hung_up(self) -> bool:
        """Whether the console's end of a socket:// line has closed it."""
        try:
            self.port.read(1)
        except serial.SerialException:
            return True
        return False

    def ask(self, *items: Item) -> Response:
        """Send one request frame of `items` and read the console's answer."""
        self.send(request(*items))
        (frame,) = self.frames(1)
        return parse_response(frame.contents)
