"""CSAFE frames as bytes and values: the pure codec the console link and its emulator share.

A CSAFE frame is a start flag (0xF1, or 0xF0 and two address bytes), the contents, an XOR
checksum of the contents and an end flag (0xF2); any byte 0xF0-0xF3 between the flags is sent
as 0xF3, (byte & 0x03). A request's contents are commands; a response's are a status byte
(toggle, the fate of the previous frame, the machine state) and items of (command, length,
data). The facts come from /work/shared/reference/protocols.md (CSAFE), which summarises the
public CSAFE protocol and a Life Fitness console's logged answers.

No I/O and no clock here: FrameReader is fed whatever bytes a port delivered.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from functools import reduce

from device.core.console import ConsoleState

FRAME_START = 0xF1
EXTENDED_START = 0xF0
FRAME_END = 0xF2
STUFF = 0xF3
FLAGS = frozenset({EXTENDED_START, FRAME_START, FRAME_END, STUFF})
MAX_FRAME_BYTES = 96  # on the wire, flags included
# The top of the finest km/h scale (65535 x 0.01 km/h). A larger reading, possible only in a
# coarse unit (65535 mph), is a corrupted value, never a belt: read_speed declines it.
MAX_READABLE_KMH = 655.35


class Command(IntEnum):
    GET_STATUS = 0x80
    RESET = 0x81
    GO_IDLE = 0x82
    GO_HAVE_ID = 0x83
    GO_IN_USE = 0x85
    GO_FINISHED = 0x86
    GO_READY = 0x87
    BAD_ID = 0x88
    GET_VERSION = 0x91
    GET_UNITS = 0x93
    GET_HORIZONTAL = 0xA1
    GET_SPEED = 0xA5
    GET_GRADE = 0xA8
    GET_HR_CUR = 0xB0
    SET_SPEED = 0x25
    SET_GRADE = 0x28
    ID_DIGITS = 0x10


class PreviousFrame(IntEnum):
    """Status bits 5-4: what the console made of the frame before this answer."""

    OK = 0
    REJECTED = 1
    BAD = 2
    NOT_READY = 3


STATES: dict[int, ConsoleState] = {
    0: ConsoleState.ERROR,
    1: ConsoleState.READY,
    2: ConsoleState.IDLE,
    3: ConsoleState.HAVE_ID,
    5: ConsoleState.IN_USE,
    6: ConsoleState.PAUSED,
    7: ConsoleState.FINISHED,
    8: ConsoleState.MANUAL,
    9: ConsoleState.OFFLINE,
}
_NIBBLES = {state: nibble for nibble, state in STATES.items()}

MPH_KMH = 1.609344
KMH_PER_SPEED_UNIT: dict[int, float] = {
    0x10: MPH_KMH,
    0x11: MPH_KMH / 10,
    0x12: MPH_KMH / 100,
    0x30: 1.0,
    0x31: 0.1,
    0x32: 0.01,
    0x33: 0.06,  # metres per minute
}
MILE_M = 1609.344
FOOT_M = 0.3048
M_PER_DISTANCE_UNIT: dict[int, float] = {
    0x01: MILE_M,
    0x02: MILE_M / 10,
    0x03: MILE_M / 100,
    0x04: MILE_M / 1000,
    0x05: FOOT_M,
    0x0A: FOOT_M * 10,
    0x21: 1000.0,
    0x22: 100.0,
    0x23: 10.0,
    0x24: 1.0,
    0x25: 0.1,
    0x26: 0.01,
}


class FrameError(ValueError):
    """Contents that do not hold a well-formed request or response; `reason` names the flaw."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"CSAFE frame contents {reason}")
        self.reason = reason


@dataclass(frozen=True)
class Status:
    toggle: bool
    previous: PreviousFrame
    state: ConsoleState | None  # None: a state nibble the protocol does not define (4, 10-15)
    byte: int

    @classmethod
    def from_byte(cls, byte: int) -> Status:
        return cls(
            toggle=bool(byte & 0x80),
            previous=PreviousFrame((byte >> 4) & 0x03),
            state=STATES.get(byte & 0x0F),
            byte=byte,
        )


def status_byte(toggle: bool, previous: PreviousFrame, state: ConsoleState) -> int:
    return (0x80 if toggle else 0) | (previous << 4) | _NIBBLES[state]


@dataclass(frozen=True)
class Item:
    command: int
    data: bytes = b""


@dataclass(frozen=True)
class Frame:
    contents: bytes  # unstuffed, checksum verified and removed
    address: tuple[int, int] | None = None  # extended frames: (destination, source)


@dataclass(frozen=True)
class Response:
    status: Status
    items: tuple[Item, ...]

    def item(self, command: int) -> Item | None:
        return next((i for i in self.items if i.command == command), None)


def checksum(contents: bytes) -> int:
    return reduce(operator.xor, contents, 0)


def _stuff(raw: bytes) -> bytes:
    return b"".join(bytes((STUFF, b & 0x03)) if b in FLAGS else bytes((b,)) for b in raw)


def encode_frame(contents: bytes, *, address: tuple[int, int] | None = None) -> bytes:
    """A whole frame on the wire. ValueError on empty contents or a frame over
    MAX_FRAME_BYTES: the console could not take it, nor our own reader."""
    if not contents:
        raise ValueError("a CSAFE frame needs contents")
    if address is None:
        wire = bytes((FRAME_START,)) + _stuff(contents + bytes((checksum(contents),)))
    else:
        head = bytes(address) + contents + bytes((checksum(contents),))
        wire = bytes((EXTENDED_START,)) + _stuff(head)
    wire += bytes((FRAME_END,))
    if len(wire) > MAX_FRAME_BYTES:
        raise ValueError(f"a CSAFE frame of {len(wire)} bytes is over {MAX_FRAME_BYTES}")
    return wire


def short(command: int) -> Item:
    return Item(command)  # an id >= 0x80: no data


def long(command: int, data: bytes) -> Item:
    return Item(command, bytes(data))


def encode_commands(items: Sequence[Item]) -> bytes:
    out = bytearray()
    for it in items:
        if it.command >= 0x80:
            if it.data:
                raise ValueError(f"short CSAFE command 0x{it.command:02X} carries no data")
            out.append(it.command)
        else:
            if len(it.data) > 255:
                raise ValueError(f"CSAFE command 0x{it.command:02X} data over 255 bytes")
            out += bytes((it.command, len(it.data))) + it.data
    return bytes(out)


def request(*items: Item) -> bytes:
    return encode_frame(encode_commands(items))


def set_speed(kmh: float, unit: int = 0x31) -> Item:
    """SetSpeed in `unit`, rounded to it (24.2 km/h in 0.1 km/h: 242)."""
    if unit not in KMH_PER_SPEED_UNIT:
        raise ValueError(f"0x{unit:02X} is no CSAFE speed unit")
    value = kmh / KMH_PER_SPEED_UNIT[unit] if math.isfinite(kmh) else -1.0
    if not 0 <= round(value) <= 0xFFFF:
        raise ValueError(f"{kmh} km/h does not fit a CSAFE speed in unit 0x{unit:02X}")
    return long(Command.SET_SPEED, round(value).to_bytes(2, "little") + bytes((unit,)))


def _read_items(body: bytes, *, every_item_has_length: bool) -> tuple[Item, ...]:
    items: list[Item] = []
    i = 0
    while i < len(body):
        command = body[i]
        if command >= 0x80 and not every_item_has_length:
            items.append(Item(command))
            i += 1
            continue
        if i + 1 >= len(body):
            raise FrameError("truncated item")
        end = i + 2 + body[i + 1]
        if end > len(body):
            raise FrameError("truncated item")
        items.append(Item(command, body[i + 2 : end]))
        i = end
    return tuple(items)


def parse_response(contents: bytes) -> Response:
    if not contents:
        raise FrameError("empty")
    # Every item in an answer carries a length, short commands' too (F1 85 A5 03 ...).
    items = _read_items(contents[1:], every_item_has_length=True)
    return Response(Status.from_byte(contents[0]), items)


def parse_request(contents: bytes) -> tuple[Item, ...]:
    if not contents:
        raise FrameError("empty")
    return _read_items(contents, every_item_has_length=False)


def encode_response(status: int, items: Sequence[Item]) -> bytes:
    body = bytearray((status,))
    for it in items:
        if len(it.data) > 255:
            raise ValueError(f"CSAFE answer to 0x{it.command:02X} over 255 bytes")
        body += bytes((it.command, len(it.data))) + it.data
    return encode_frame(bytes(body))


def _read_scaled(data: bytes, scale: dict[int, float]) -> tuple[float, int] | None:
    if len(data) != 3 or data[2] not in scale:
        return None
    return int.from_bytes(data[:2], "little") * scale[data[2]], data[2]


def read_speed(data: bytes) -> tuple[float, int] | None:
    """(km/h, unit) from GetSpeed's 3 bytes; None for a unit that is no belt speed (rpm,
    watts...), data of another length, or a value no scale of belt speed reaches."""
    reading = _read_scaled(data, KMH_PER_SPEED_UNIT)
    if reading is None or reading[0] > MAX_READABLE_KMH:
        return None
    return reading


def read_distance(data: bytes) -> tuple[float, int] | None:
    """(metres, unit) from GetHorizontal's 3 bytes, on the same rules as read_speed."""
    return _read_scaled(data, M_PER_DISTANCE_UNIT)


@dataclass
class Counts:
    """What FrameReader skipped: frames by flaw, and stray bytes outside any frame."""

    bad_checksum: int = 0
    bad_stuffing: int = 0
    truncated: int = 0
    noise: int = 0


class FrameReader:
    """Cuts a byte stream into checked frames, fed in whatever pieces the port delivers.
    Never raises on wire input: every flaw is counted in `counts` and the reader resyncs at
    the next start flag."""

    def __init__(self) -> None:
        self.counts = Counts()
        self._raw = bytearray()  # unstuffed bytes of the frame under way
        self._wire = 0  # its bytes on the wire so far, start flag included
        self._extended = False
        self._in_frame = False
        self._escaped = False
        self._discarding = False  # a flawed frame: skip to its end, counted once

    @property
    def total_skipped(self) -> int:
        c = self.counts
        return c.bad_checksum + c.bad_stuffing + c.truncated + c.noise

    def _begin(self, flag: int) -> None:
        if self._in_frame:
            # A start flag cannot appear inside a frame: the one under way was cut short.
            self.counts.truncated += 1
        self._raw.clear()
        self._wire = 1
        self._extended = flag == EXTENDED_START
        self._in_frame = True
        self._escaped = False
        self._discarding = False

    def _drop(self) -> None:
        self._in_frame = False
        self._discarding = True

    def feed(self, data: bytes) -> list[Frame]:
        frames: list[Frame] = []
        for b in data:
            if b in (FRAME_START, EXTENDED_START):
                self._begin(b)
            elif not self._in_frame:
                if b == FRAME_END and self._discarding:
                    self._discarding = False
                elif not self._discarding:
                    self.counts.noise += 1
            elif self._escaped and b > 0x03:
                # Only 0-3 may follow the stuffing byte (F3 F2 included: a dangling F3).
                self.counts.bad_stuffing += 1
                self._drop()
                self._discarding = b != FRAME_END
            elif b == FRAME_END and not self._escaped:
                self._in_frame = False
                frame = self._finish()
                if frame is not None:
                    frames.append(frame)
            else:
                self._wire += 1
                if self._wire >= MAX_FRAME_BYTES:  # no room left for the end flag
                    self.counts.truncated += 1
                    self._drop()
                elif self._escaped:
                    self._escaped = False
                    self._raw.append(0xF0 | b)
                elif b == STUFF:
                    self._escaped = True
                else:
                    self._raw.append(b)
        return frames

    def _finish(self) -> Frame | None:
        head = 2 if self._extended else 0
        raw = bytes(self._raw)
        if len(raw) < head + 2:  # no contents: nothing between the flags, or the checksum alone
            self.counts.truncated += 1
            return None
        contents, check = raw[head:-1], raw[-1]
        if checksum(contents) != check:
            self.counts.bad_checksum += 1
            return None
        address = (raw[0], raw[1]) if self._extended else None
        return Frame(contents, address)
