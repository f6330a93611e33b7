"""Whatever a serial bridge sends, the sensor thread reads a plausible speed or counts the line
as rejected, and keeps reading: never a traceback, never a number the line did not hold.

Each example runs the real SerialSpeedSource (its reader thread, line splitter, pattern and
unit) on a scripted port that hands over the bytes in the chunks a UART would deliver them.
"""

from __future__ import annotations

import itertools
import math
import re
import threading
import time
from collections import deque
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from device.config.model import SensorConfig
from device.hardware.serial_speed import SerialSpeedSource
from device.hardware.speed_line import MAX_LINE_BYTES, UNIT_FACTORS

FUZZ = settings(max_examples=200, deadline=None)
DEFAULT_PATTERN = SensorConfig().pattern
MAX_KMH = 25.0
# Sent after every fuzzed stream (a line of the pattern in use, holding 3.5): the source
# must still read it, so nothing before it stopped the reader thread.
SENTINEL = b"3.5"
SENTINEL_NUMBER = 3.5


class ScriptedPort:
    """A serial port that delivers `chunks` one per read, then reports itself drained and
    idles like a quiet line (read returns b"" after a short wait)."""

    def __init__(self, chunks: list[bytes]):
        self._chunks = deque(c for c in chunks if c)
        self.drained = threading.Event()

    @property
    def in_waiting(self) -> int:
        return len(self._chunks[0]) if self._chunks else 0

    def read(self, size: int = 1) -> bytes:
        if not self._chunks:
            self.drained.set()
            time.sleep(0.001)
            return b""
        chunk = self._chunks.popleft()
        if len(chunk) > size:
            self._chunks.appendleft(chunk[size:])
        return chunk[:size]

    def close(self) -> None:
        pass


@dataclass
class Outcome:
    speeds: list[float]
    rejected: int
    skipped: int  # never matched: the older lines of a read that brought more than 16


def run_source(chunks: list[bytes], *, sentinel: bytes = SENTINEL, **kwargs) -> Outcome:
    """Feed `chunks` then the `sentinel` line through a SerialSpeedSource; the readings before
    the sentinel's, and the lines it rejected."""
    port = ScriptedPort([*chunks, b"\n" + sentinel + b"\n"])
    speeds: list[float] = []
    source = SerialSpeedSource(
        "scripted://",
        on_speed=lambda _t, kmh: speeds.append(kmh),
        serial_for_url=lambda *_a, **_kw: port,
        read_timeout_s=0.01,
        **kwargs,
    )
    with source:
        assert port.drained.wait(10.0), "the reader thread stopped before the stream ended"
    assert speeds, "the reading after the fuzzed stream never arrived"
    assert speeds[-1] == pytest.approx(SENTINEL_NUMBER * _factor(kwargs))
    return Outcome(speeds[:-1], source.rejected_lines, source.skipped_lines)


def _factor(kwargs) -> float:
    return UNIT_FACTORS[kwargs.get("unit", "km/h")] * kwargs.get("scale", 1.0)


def lines_expected(stream: bytes) -> int:
    """How many lines in `stream` must end as a reading or a reject: every piece between
    \\r or \\n that is not blank, and every overlong one (blank or not)."""
    pieces = re.split(rb"[\r\n]", stream)
    return sum(1 for p in pieces if len(p) > MAX_LINE_BYTES or p.strip())


def assert_plausible(speeds: list[float], max_kmh: float) -> None:
    for kmh in speeds:
        assert isinstance(kmh, float)
        assert math.isfinite(kmh)
        assert 0.0 <= kmh <= max_kmh
        assert math.copysign(1.0, kmh) == 1.0  # never "-0.0 km/h" on the dashboard


# ---- what a bridge may send ---------------------------------------------------------------

# Pieces of real bridge output, line noise and the traps of number parsing.
WORDS = [
    "km/h", "mph", "m/s", "SPD:", "speed=", " ", "\t", "-", "+", ".", ",", "e", "E", "_",
    "nan", "inf", "NaN", "Infinity", "1e309", "1e-9", "0x1A", "1_000", "-0", "\x00", "\x7f",
    "١٢", "٣", "٫", "０", "１２", "²", "½", "۵", "٣.٥", "\u2009", "\u00a0", "\ufeff",
    "OK", "ERR", "#", "debug:", "\x1b[0m",
]  # fmt: skip
DIGITLESS_WORDS = [w for w in WORDS if not re.search(r"[0-9]", w)]

digits = st.text(alphabet="0123456789", min_size=1, max_size=12)
fragments = st.sampled_from(WORDS) | digits | st.text(max_size=4)
built_line = st.lists(fragments, max_size=12).map("".join).map(str.encode)
any_line = built_line | st.binary(max_size=40) | st.binary(min_size=250, max_size=600)
stream = st.lists(any_line, max_size=12).map(b"\n".join) | st.binary(max_size=2000)


@st.composite
def chunked(draw, data: bytes) -> list[bytes]:
    """`data` cut at arbitrary points, as reads of a UART deliver it."""
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=8)))
    bounds = [0, *cuts, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


def chunks_of(data_strategy):
    return data_strategy.flatmap(chunked)


# (source keywords, a line of that setup holding 3.5)
SETUPS = [
    ({}, b"3.5"),  # the default pattern, in km/h
    ({"unit": "mph"}, b"3.5 mph"),
    ({"unit": "m/s", "scale": 0.952}, b"3.5"),
    ({"pattern": r"SPD:(?P<speed>\d+(?:\.\d+)?)"}, b"SPD:3.5"),
    ({"pattern": r"(?P<speed>\S+)\s*mph", "unit": "mph", "scale": 1.05}, b"3.5 mph"),
    ({"pattern": r"(?P<speed>.*)"}, b"3.5"),
    # the group may match nothing, or take no part in the match at all
    ({"pattern": r"(?P<speed>[0-9.]*)?"}, b"3.5"),
]


# ---- properties ---------------------------------------------------------------------------


@FUZZ
@given(chunks=chunks_of(stream), setup=st.sampled_from(SETUPS))
def test_any_bytes_give_plausible_readings_or_counted_rejects_and_reading_goes_on(chunks, setup):
    kwargs, sentinel = setup
    outcome = run_source(chunks, sentinel=sentinel, max_kmh=MAX_KMH, **kwargs)
    assert_plausible(outcome.speeds, MAX_KMH)
    # every line ends as exactly one of the two: read or counted
    accounted = len(outcome.speeds) + outcome.rejected + outcome.skipped
    assert accounted == lines_expected(b"".join(chunks) + b"\n")


@FUZZ
@given(st.lists(st.lists(st.sampled_from(DIGITLESS_WORDS), min_size=1, max_size=8), max_size=6))
def test_lines_without_an_ascii_digit_are_all_rejected_and_counted(words):
    lines = ["".join(w).encode() for w in words]
    outcome = run_source([b"\n".join(lines)], max_kmh=MAX_KMH)
    assert outcome.speeds == []
    assert outcome.rejected == sum(1 for line in lines if line.strip())


# A number written as a bridge writes one: ASCII digits, a point or a comma, maybe no
# leading digit (".5"), maybe a "+".
@st.composite
def written_number(draw) -> tuple[str, float]:
    whole = draw(st.integers(0, 60))
    frac = draw(st.text(alphabet="0123456789", max_size=3))
    point = draw(st.sampled_from([".", ","]))
    sign = draw(st.sampled_from(["", "", "+"]))
    if frac and whole == 0 and draw(st.booleans()):
        text = f"{sign}.{frac}"  # ".5" (",5" is refused: see the named lines below)
    elif frac:
        text = f"{sign}{whole}{point}{frac}"
    else:
        text = f"{sign}{whole}"
    return text, float(text.replace(",", "."))


# Text around the number that holds no ASCII digit; before it, nothing that would join the
# number (a point, a comma or a sign right in front of it).
around = st.lists(st.sampled_from(DIGITLESS_WORDS), max_size=4).map("".join)
before = around.filter(lambda s: not s.endswith((".", ",", "-", "+")))


@FUZZ
@given(before, written_number(), around, st.sampled_from(["km/h", "mph", "m/s"]))
def test_the_default_pattern_reads_exactly_the_ascii_number_on_the_line(pre, number, post, unit):
    text, value = number
    outcome = run_source([f"{pre}{text}{post}\n".encode()], unit=unit, max_kmh=MAX_KMH)
    kmh = value * UNIT_FACTORS[unit]
    if kmh <= MAX_KMH:
        assert outcome.speeds == [pytest.approx(kmh)]
        assert outcome.rejected == 0
    else:
        assert outcome.speeds == []
        assert outcome.rejected == 1
    assert_plausible(outcome.speeds, MAX_KMH)


# One word, as a pattern that takes a whole word sees it
words = st.lists(fragments, max_size=5).map(
    lambda parts: "".join(c for c in "".join(parts) if not c.isspace())
)


@FUZZ
@given(words)
def test_a_speed_group_is_read_only_when_it_holds_a_plain_decimal(word):
    # "1_5" is not 15 mph nor "1e1" 10, whatever Python's float() would make of them
    outcome = run_source(
        [f"{word} mph\n".encode()],
        sentinel=b"3.5 mph",
        pattern=r"(?P<speed>\S+)\s*mph",
        unit="mph",
    )
    kmh = None
    if re.fullmatch(r"[-+]?(?:[0-9]+(?:[.,][0-9]*)?|\.[0-9]+)", word):
        kmh = float(word.replace(",", ".")) * UNIT_FACTORS["mph"]
    if kmh is not None and 0 <= kmh <= 40.0:
        assert outcome.speeds == [pytest.approx(kmh)]
    else:
        assert outcome.speeds == []
        assert outcome.rejected == 1
    assert_plausible(outcome.speeds, 40.0)


@FUZZ
@given(st.integers(MAX_LINE_BYTES + 1, 4 * MAX_LINE_BYTES), st.integers(1, 64))
def test_a_line_over_the_limit_is_one_reject_however_it_arrives(length, chunk):
    line = (b"3.5 " * length)[:length]
    data = line + b"\n"
    outcome = run_source([data[i : i + chunk] for i in range(0, len(data), chunk)])
    assert outcome.speeds == []
    assert outcome.rejected == 1


# ---- the cases the issue named, and what fuzzing found ------------------------------------


@pytest.mark.parametrize(
    ("line", "kmh"),
    [
        (b".5", 0.5),
        (b"1,5 km/h", 1.5),
        (b"SPD:.5", 0.5),
        (b",5", None),  # a comma with no digit before it is no decimal point, and never 5
        (b"+2.25", 2.25),
        ("١٢".encode(), None),
        ("١٢ km/h".encode(), None),
        ("٣.٥".encode(), None),
        ("１２".encode(), None),  # fullwidth digits
        (b"nan", None),
        (b"inf km/h", None),
        (b"99999999999999999999999", None),
        (b"-1.5", None),
        (b"3.5\xff", None),  # not UTF-8: noise on the line
    ],
)
def test_named_lines_read_as_documented(line, kmh):
    outcome = run_source([line + b"\n"])
    assert outcome.speeds == ([] if kmh is None else [kmh])
    assert outcome.rejected == (1 if kmh is None else 0)


def test_minus_zero_reads_as_zero_not_minus_zero():
    # found by fuzzing: "-0" was accepted as -0.0, which shows as "-0.0 km/h"
    outcome = run_source([b"-0\n", b"-0.0 km/h\n"])
    assert outcome.speeds == [0.0, 0.0]
    assert all(math.copysign(1.0, kmh) == 1.0 for kmh in outcome.speeds)


@pytest.mark.parametrize("token", [b"1_5", b"1e1", b"0x10", b"infinity", b"1__0"])
def test_a_word_float_would_take_is_no_speed(token):
    # found by fuzzing: with a pattern that takes a whole word, "1_5 mph" read as 15 mph
    outcome = run_source(
        [token + b" mph\n"], sentinel=b"3.5 mph", pattern=r"(?P<speed>\S+)\s*mph", unit="mph"
    )
    assert outcome.speeds == []
    assert outcome.rejected == 1
