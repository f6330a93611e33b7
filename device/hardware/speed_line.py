"""What one line from a serial speed bridge says: the stream cut into lines, bounded, and the
speed a line holds, or None. Pure: no port, no clock; device.hardware.serial_speed reads the
port and feeds these.
"""

from __future__ import annotations

import math
import re

from regex import Pattern

from device.config.line_pattern import search_speed

# km/h per unit of the number the bridge sends
UNIT_FACTORS = {"km/h": 1.0, "mph": 1.609344, "m/s": 3.6}

# No treadmill belt runs this fast; a bigger number is a parse of debug text or line noise.
MAX_PLAUSIBLE_KMH = 40.0

# Longest line worth parsing; a stream without newlines (wrong baud rate, binary protocol)
# must not grow the buffer without bound.
MAX_LINE_BYTES = 256
# What the `speed` group may hold to be read: "3", "3.20", "1,5", ".5", "+2", "-1" (refused
# later as below zero); never an exponent, an underscore, "inf" or a non-ASCII digit.
_PLAIN_DECIMAL = re.compile(r"[-+]?(?:[0-9]+(?:[.,][0-9]*)?|\.[0-9]+)")


class LineSplitter:
    """Cuts a byte stream into lines at \\n or \\r (so \\r\\n and bare \\r both work); blank
    lines are skipped and a line longer than `max_len` bytes is dropped whole, including the
    part still to come."""

    def __init__(self, max_len: int):
        self._max_len = max_len
        self._buf = bytearray()
        self._discarding = False

    def feed(self, data: bytes) -> tuple[list[bytes], int]:
        """The complete lines in data (without terminators) and how many overlong lines were
        dropped."""
        self._buf += data.replace(b"\r", b"\n")
        lines: list[bytes] = []
        overlong = 0
        while (end := self._buf.find(b"\n")) >= 0:
            line = bytes(self._buf[:end])
            del self._buf[: end + 1]
            if self._discarding:
                self._discarding = False  # the tail of an overlong line, already counted
            elif len(line) > self._max_len:
                overlong += 1
            elif line.strip():
                lines.append(line)
        if len(self._buf) > self._max_len:
            if not self._discarding:
                overlong += 1
                self._discarding = True
            self._buf.clear()
        return lines, overlong


def parse_speed(line: bytes, regex: Pattern[str], *, factor: float, max_kmh: float) -> float | None:
    """The speed in km/h in one line, or None when the line holds no plausible speed."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        return None
    number = search_speed(regex, text)
    if number is None:
        return None
    # A plain decimal in ASCII digits only, whatever the pattern let through: float() would
    # take "٣" for 3 (a pattern written with \d), "1_5" for 15 and "1e1" for 10. A comma is
    # a decimal point ("1,5"): a treadmill speed never needs a thousands separator.
    number = number.strip()
    if not _PLAIN_DECIMAL.fullmatch(number):
        return None
    kmh = float(number.replace(",", ".")) * factor
    if not math.isfinite(kmh) or kmh < 0.0 or kmh > max_kmh:
        return None
    return abs(kmh)  # "-0" is 0.0, never -0.0 (shown as "-0.0 km/h")
