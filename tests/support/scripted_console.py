"""A gym console's CSAFE port for the tests of ConsoleLink: a console scripted by the test on a
pty behind a stable path (a cable we can pull), which answers byte for byte what the test
says and logs when each frame arrived and when it answered; and what those tests share:
QUICK settings, the `console` and `line` fixtures, and `link_on`, a running link with the
records of its three callbacks.

    def test_...(console, line):
        console.speed = bytes.fromhex("1E0031")  # GetSpeed's data: 3.0 km/h
        with link_on(line.url) as (link, speeds, states, answers):
            wait(lambda: speeds.calls, "a speed")
        assert line.frames()[0] == POLL
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import select
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import serial

from device.core.console import ConsoleState
from device.hardware.csafe import ConsoleLink
from device.hardware.csafe_codec import (
    Command,
    FrameError,
    FrameReader,
    Item,
    PreviousFrame,
    encode_response,
    parse_request,
    parse_response,
    request,
    short,
    status_byte,
)

from .waiting import wait_until

# retries, answers and polls short enough that a file of link tests runs in seconds
QUICK = {
    "backoff_s": (0.01, 0.05),
    "poll_every_s": 0.03,
    "gap_s": 0.01,
    "answer_timeout_s": 0.2,
    "reopen_after": 3,
}
WITHIN_S = 3.0  # a poll thread that gets there at all gets there well within this
# the link's poll, as the console receives it: GetStatus, GetSpeed, GetHorizontal
POLL = request(short(Command.GET_STATUS), short(Command.GET_SPEED), short(Command.GET_HORIZONTAL))


class ScriptedConsole:
    """What the console says, set by the test: its state, its speed and distance as the
    three bytes CSAFE sends, the commands it knows, and what it makes of SetSpeed."""

    def __init__(self) -> None:
        self.state = ConsoleState.IN_USE
        self.speed = bytes.fromhex("410031")  # GetSpeed's data: 65 x 0.1 km/h
        self.distance = bytes.fromhex("340023")  # GetHorizontal's: 52 x 0.01 km
        self.knows = {Command.GET_STATUS, Command.GET_SPEED, Command.GET_HORIZONTAL}
        self.takes_set_speed = True
        self.silent = False
        self.silent_after_set_speed = False
        self.before_next = b""  # bytes on the line before the next answer (garbage)
        self.broken = False  # every answer's checksum is wrong
        self.babbles = False  # noise instead of frames, as at the wrong baud rate
        self.delay_s = 0.0  # how long it thinks before answering
        self._toggle = False
        self._previous = PreviousFrame.OK

    def answer(self, items: tuple[Item, ...]) -> bytes | None:
        if self.silent:
            return None
        status = status_byte(self._toggle, self._previous, self.state)
        self._toggle = not self._toggle
        self._previous = PreviousFrame.OK
        data = {Command.GET_SPEED: self.speed, Command.GET_HORIZONTAL: self.distance}
        out = [Item(i.command, data[i.command]) for i in items if i.command in data]
        if any(i.command == Command.SET_SPEED for i in items):
            self._previous = PreviousFrame.OK if self.takes_set_speed else PreviousFrame.REJECTED
            self.silent = self.silent_after_set_speed
        elif any(i.command not in self.knows for i in items):
            out = []  # what consoles do with a command they lack: the status byte alone
        wire = encode_response(status, out)
        if self.babbles:
            return bytes(b & 0x7F for b in wire)  # no flag byte survives
        if self.broken:
            wire = wire[:-2] + bytes((wire[-2] ^ 0x01,)) + wire[-1:]
        garbage, self.before_next = self.before_next, b""
        return garbage + wire


@dataclass
class Heard:
    """One frame the console received: its bytes, when they arrived, when it answered."""

    wire: bytes
    arrived_s: float
    answered_s: float | None


class PtyLine(threading.Thread):
    """The console's end of a pty behind a stable path, like /dev/serial/by-id: it cuts
    requests at their end flag, logs them and answers. Unplugging closes the pty and removes
    the path; plugging in again makes a new pty behind the same path."""

    def __init__(self, console: ScriptedConsole, path: Path):
        super().__init__(daemon=True)
        self.console = console
        self.path = path
        self.url = str(path)
        self.heard: list[Heard] = []
        self._buffer = b""
        self._fds: tuple[int, int] | None = None
        self._lock = threading.Lock()
        self._closed = threading.Event()

    def plug(self) -> None:
        with self._lock:
            master, slave = os.openpty()  # the slave stays open: the master reads no EIO
            self.path.symlink_to(os.ttyname(slave))
            self._fds = (master, slave)

    def unplug(self) -> None:
        with self._lock:
            for fd in self._fds or ():
                os.close(fd)
            self._fds, self._buffer = None, b""
            self.path.unlink(missing_ok=True)

    def run(self) -> None:
        while not self._closed.is_set():
            with self._lock:
                if self._fds is not None and select.select([self._fds[0]], [], [], 0.005)[0]:
                    self._hear(os.read(self._fds[0], 4096))
            time.sleep(0.001)

    def _hear(self, data: bytes) -> None:
        assert self._fds is not None
        self._buffer += data
        while (end := self._buffer.find(0xF2)) >= 0:  # stuffing keeps F2 out of contents
            wire, self._buffer = self._buffer[: end + 1], self._buffer[end + 1 :]
            heard = Heard(wire, time.monotonic(), None)
            frames = FrameReader().feed(wire)
            reply = self.console.answer(parse_request(frames[0].contents)) if frames else None
            if reply is not None:
                time.sleep(self.console.delay_s)
                heard.answered_s = time.monotonic()
                os.write(self._fds[0], reply)
            self.heard.append(heard)

    def frames(self) -> list[bytes]:
        return [heard.wire for heard in self.heard]

    def close(self) -> None:
        self._closed.set()
        self.join(2)
        self.unplug()


# What a line can carry in place of an answer, or before one: every one flawed
BROKEN = [
    bytes.fromhex("F1 85 A5 03 63 00 31 53 F2"),  # 9.9 km/h with the checksum of 6.5: bad
    bytes.fromhex("F1 85 A5 03 63"),  # cut short by the next start flag
    bytes.fromhex("F1 85 F3 07 F2"),  # stuffing that stuffs nothing
    bytes.fromhex("F1") + bytes(100) + bytes.fromhex("F2"),  # longer than any frame
    bytes.fromhex("00 13 37 FF 42"),  # line noise
    bytes.fromhex("F1 85 A5 05 63 00 46 F2"),  # checksum right, the item runs past the end
]


def reads_as_an_answer(line_bytes: bytes) -> bool:
    """Whether bytes meant as garbage hold an answer that checks out (no garbage then)."""
    for frame in FrameReader().feed(line_bytes):
        with contextlib.suppress(FrameError):
            parse_response(frame.contents)
            return True
    return False


class Recorder:
    """Collects a callback's calls from the poll thread; `values` are their last arguments."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def __call__(self, *args) -> None:
        self.calls.append(args)

    @property
    def values(self) -> list:
        return [args[-1] for args in self.calls]


class CountingOpener:
    """pyserial's serial_for_url, counting how often the link tries to open the port."""

    def __init__(self) -> None:
        self.attempts = 0

    def __call__(self, url, **kwargs):
        self.attempts += 1
        return serial.serial_for_url(url, **kwargs)


@pytest.fixture
def console() -> ScriptedConsole:
    return ScriptedConsole()


@pytest.fixture
def line(console, tmp_path) -> Iterator[PtyLine]:
    line = PtyLine(console, tmp_path / "ttyCONSOLE")
    line.plug()
    line.start()
    yield line
    line.close()


@contextlib.contextmanager
def link_on(url: str, **kwargs) -> Iterator[tuple[ConsoleLink, Recorder, Recorder, Recorder]]:
    """A running link on `url` (QUICK settings unless overridden) and its three callbacks'
    records: speeds, states, SetSpeed answers."""
    speeds, states, answers = Recorder(), Recorder(), Recorder()
    options = {**QUICK, **kwargs}
    with ConsoleLink(url, on_speed=speeds, on_state=states, on_answer=answers, **options) as link:
        yield link, speeds, states, answers


def csafe_warnings(caplog) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "retrotread.csafe" and r.levelno == logging.WARNING
    ]


def wait(condition: Callable[[], object], what: str, **kwargs) -> None:
    wait_until(condition, within_s=WITHIN_S, what=what, **kwargs)


def pairs(heard: list[Heard]) -> list[tuple[Heard, Heard]]:
    return list(itertools.pairwise(heard))
