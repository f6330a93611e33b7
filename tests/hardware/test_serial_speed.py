"""Belt speed from a serial bridge: real pyserial over a pty (a cable we can pull) and loop://."""

from __future__ import annotations

import errno
import logging
import os
import threading
import time
from pathlib import Path

import pytest
import serial
from support.virtual_clock import VirtualClock
from support.waiting import wait_until

from device.config.line_pattern import compile_speed_pattern
from device.config.load import check_config_main
from device.config.model import SensorConfig
from device.hardware.serial_speed import SerialSpeedSource
from device.hardware.source import SourceError
from device.hardware.speed_line import LineSplitter, parse_speed

# retry and read timeouts short enough that the whole file runs in about a second
QUICK = {"backoff_s": (0.01, 0.05), "read_timeout_s": 0.05}
# ... and a reader thread that gets there at all gets there well within this
WITHIN_S = 2.0


class Readings:
    """Collects on_speed(t, kmh) calls from the reader thread."""

    def __init__(self):
        self._lock = threading.Lock()
        self.items: list[tuple[float, float]] = []

    def __call__(self, t: float, kmh: float) -> None:
        with self._lock:
            self.items.append((t, kmh))

    @property
    def speeds(self) -> list[float]:
        with self._lock:
            return [kmh for _, kmh in self.items]


class PtyCable:
    """A bridge on a real pseudo-terminal behind a stable device path, like udev's
    /dev/serial/by-id links: unplugging closes the pty and removes the path, plugging in
    again makes a new pty and points the path at it."""

    def __init__(self, path: Path):
        self.path = path
        self.master: int | None = None

    def plug(self) -> None:
        master, slave = os.openpty()
        self.path.symlink_to(os.ttyname(slave))
        os.close(slave)  # the source opens the slave by name, as it would /dev/ttyUSB0
        self.master = master

    def send(self, data: bytes) -> None:
        assert self.master is not None
        os.write(self.master, data)

    def unplug(self) -> None:
        if self.master is not None:
            os.close(self.master)
            self.master = None
        self.path.unlink(missing_ok=True)


class CountingOpener:
    """pyserial's serial_for_url, counting how often the source tries to open the port."""

    def __init__(self):
        self.attempts = 0
        self.ports: list[serial.SerialBase] = []
        self.settings: list[dict] = []

    def __call__(self, url, **kwargs):
        self.attempts += 1
        self.settings.append(kwargs)
        port = serial.serial_for_url(url, **kwargs)
        self.ports.append(port)
        return port


@pytest.fixture
def cable(tmp_path):
    cable = PtyCable(tmp_path / "ttyTREADMILL")
    yield cable
    cable.unplug()


@pytest.fixture
def readings():
    return Readings()


def serial_warnings(caplog) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "retrotread.serial" and r.levelno == logging.WARNING
    ]


@pytest.mark.parametrize(
    ("unit", "line", "kmh"),
    [("km/h", b"3.5\n", 3.5), ("mph", b"2.0\n", 3.218688), ("m/s", b"1.0\n", 3.6)],
)
def test_speed_in_each_unit_is_reported_in_kmh(unit, line, kmh, readings):
    opener = CountingOpener()
    clock = VirtualClock(50.0)
    source = SerialSpeedSource(
        "loop://", unit=unit, on_speed=readings, clock=clock, serial_for_url=opener, **QUICK
    )
    with source:
        wait_until(lambda: source.connected, within_s=WITHIN_S, what="the port to open")
        opener.ports[-1].write(line)
        wait_until(lambda: readings.speeds, within_s=WITHIN_S, what="a reading")
    assert readings.items == [(50.0, pytest.approx(kmh))]
    assert source.speed_kmh(50.0) == pytest.approx(kmh)


@pytest.mark.parametrize(
    ("line", "kmh"),
    [
        (b"3.20 km/h", 3.2),
        (b"SPD:3.2", 3.2),
        (b"1,5 km/h", 1.5),  # a comma decimal, as a European bridge prints it
        (b".5 km/h", 0.5),  # never 5
        (b"SPD:.5", 0.5),
        ("\u0663.\u0665 km/h".encode(), None),  # Arabic-Indic digits: not a reading
        (b"-1.0", None),  # a belt does not run backward under the walker
    ],
)
def test_the_default_pattern_reads_ascii_decimals_with_a_point_or_a_comma(line, kmh):
    regex = compile_speed_pattern(SensorConfig().pattern)
    assert parse_speed(line, regex, factor=1.0, max_kmh=25.0) == kmh


def test_a_pattern_written_with_backslash_d_still_takes_only_ascii_digits():
    regex = compile_speed_pattern(r"(?P<speed>\d+(?:\.\d+)?)")
    assert parse_speed("\u0663.\u0665".encode(), regex, factor=1.0, max_kmh=25.0) is None
    assert parse_speed(b"3.5", regex, factor=1.0, max_kmh=25.0) == 3.5


@pytest.mark.parametrize(
    "pattern", [r"(?P<speed>(a+)+$)", r"(?P<speed>(\d+\.?\d*)+) km/h", r"(?P<speed>(\d|1)+)x"]
)
def test_a_catastrophic_pattern_answers_a_long_line_at_once(pattern):
    # On Python's re these backtrack for minutes holding the interpreter: the daemon froze.
    regex = compile_speed_pattern(pattern)
    started = time.perf_counter()
    for line in (b"1" * 255, b"a" * 255 + b"!", b"1.1" * 85):
        parse_speed(line, regex, factor=1.0, max_kmh=25.0)
    assert time.perf_counter() - started < 1.0  # three lines; the limit is 20 ms a line


def test_serial_scale_corrects_a_bridge_that_reads_fast(readings):
    opener = CountingOpener()
    source = SerialSpeedSource(
        "loop://", scale=1.05, on_speed=readings, serial_for_url=opener, **QUICK
    )
    with source:
        wait_until(lambda: source.connected, within_s=WITHIN_S, what="the port to open")
        opener.ports[-1].write(b"3.00\n")
        wait_until(lambda: readings.speeds, within_s=WITHIN_S, what="a reading")
    assert readings.speeds == [pytest.approx(3.15)]


def test_a_reading_made_absurd_by_the_scale_is_rejected(readings):
    # 39 km/h is a (fast) belt; scaled by 1.05 it is past what any belt runs
    opener = CountingOpener()
    source = SerialSpeedSource(
        "loop://", scale=1.05, on_speed=readings, serial_for_url=opener, **QUICK
    )
    with source:
        wait_until(lambda: source.connected, within_s=WITHIN_S, what="the port to open")
        opener.ports[-1].write(b"39\n38\n")
        wait_until(lambda: readings.speeds, within_s=WITHIN_S, what="a reading")
        assert readings.speeds == [pytest.approx(39.9)]
        assert source.rejected_lines == 1


def test_source_from_the_sensor_table_carries_every_key(readings):
    sensor = SensorConfig(
        kind="serial",
        url="loop://",
        baud=19200,
        pattern=r"SPD:(?P<speed>\d+(?:\.\d+)?)",
        unit="mph",
        stale_s=0.5,
        serial_scale=1.1,
    )
    opener = CountingOpener()
    clock = VirtualClock(10.0)
    source = SerialSpeedSource.from_config(
        sensor, on_speed=readings, clock=clock, serial_for_url=opener
    )
    assert source.url == "loop://"
    with source:
        wait_until(lambda: source.connected, within_s=WITHIN_S, what="the port to open")
        opener.ports[-1].write(b"boot 9\nSPD:2.0\n")  # the pattern skips the boot line
        wait_until(lambda: readings.speeds, within_s=WITHIN_S, what="a reading")
        assert source.rejected_lines == 1
    assert opener.settings[0]["baudrate"] == 19200
    assert readings.items == [(10.0, pytest.approx(2.0 * 1.609344 * 1.1))]
    assert source.speed_kmh(10.5) == pytest.approx(3.5406, abs=1e-4)
    assert source.speed_kmh(10.51) is None  # stale after 0.5 s, not the default 2 s


def test_bridge_debug_text_and_crlf_lines_are_parsed_with_the_configured_pattern(cable, readings):
    cable.plug()
    source = SerialSpeedSource(
        str(cable.path),
        pattern=r"SPD:(?P<speed>\d+(?:\.\d+)?)",
        on_speed=readings,
        **QUICK,
    )
    with source:
        wait_until(lambda: source.connected, within_s=WITHIN_S, what="the port to open")
        cable.send(b"ESP32 bridge v1.2 boot ok\r\nSPD:3.2\r\n")
        wait_until(lambda: readings.speeds, within_s=WITHIN_S, what="a reading")
        assert readings.speeds == [pytest.approx(3.2)]
        assert source.rejected_lines == 1


def test_garbage_noise_and_an_overlong_line_are_counted_and_parsing_goes_on(cable, readings):
    cable.plug()
    source = SerialSpeedSource(str(cable.path), on_speed=readings, **QUICK)
    with source:
        wait_until(lambda: source.connected, within_s=WITHIN_S, what="the port to open")
        cable.send(b"hello treadmill\n")
        cable.send(bytes(range(0x80, 0x100)) + b"\n")  # line noise, not UTF-8
        cable.send(b"7" * 1000 + b"\n")  # a runaway line: its digits must not become a speed
        cable.send(b"55\n")  # no belt runs at 55 km/h
        cable.send(b"-1.5\n")
        cable.send(b"4.2\n")
        wait_until(lambda: readings.speeds, within_s=WITHIN_S, what="a reading")
        assert readings.speeds == [pytest.approx(4.2)]
        assert source.rejected_lines == 5
        assert source.connected


def test_rejected_lines_are_said_once_per_cause_at_info(cable, readings, caplog):
    caplog.set_level(logging.INFO, logger="retrotread.serial")
    cable.plug()
    source = SerialSpeedSource(str(cable.path), on_speed=readings, **QUICK)
    with source:
        wait_until(lambda: source.connected, within_s=WITHIN_S, what="the port to open")
        for _ in range(3):
            cable.send(b"hello treadmill\n")
            cable.send(b"7" * 1000 + b"\n")
        cable.send(b"4.2\n")
        wait_until(lambda: readings.speeds, within_s=WITHIN_S, what="a reading")
        assert source.rejected_lines == 6
    said = [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.INFO and "rejecting lines" in r.getMessage()
    ]
    assert len(said) == 2  # one for lines that are no speed, one for lines too long
    assert any("hello treadmill" in line for line in said)
    assert any("too long" in line for line in said)


def test_lines_split_across_reads_are_joined():
    stream = b"SPD 1.0\r\nSPD 2.5\n" + b"x" * 300 + b"\nSPD 3.0\n"
    whole = LineSplitter(256).feed(stream)
    splitter = LineSplitter(256)
    lines: list[bytes] = []
    overlong = 0
    for i in range(len(stream)):
        got, dropped = splitter.feed(stream[i : i + 1])
        lines += got
        overlong += dropped
    assert (lines, overlong) == whole
    assert whole == ([b"SPD 1.0", b"SPD 2.5", b"SPD 3.0"], 1)


def test_speed_becomes_unknown_once_the_bridge_is_silent_for_stale_s(readings):
    opener = CountingOpener()
    clock = VirtualClock(200.0)
    source = SerialSpeedSource(
        "loop://", stale_s=2.0, on_speed=readings, clock=clock, serial_for_url=opener, **QUICK
    )
    with source:
        assert source.speed_kmh(200.0) is None  # nothing heard yet
        wait_until(lambda: source.connected, within_s=WITHIN_S, what="the port to open")
        opener.ports[-1].write(b"2.4\n")
        wait_until(lambda: readings.speeds, within_s=WITHIN_S, what="a reading")
    assert source.speed_kmh(202.0) == pytest.approx(2.4)
    assert not source.is_stale(202.0)
    assert source.speed_kmh(202.01) is None
    assert source.is_stale(202.01)


def test_unplugged_cable_is_reopened_and_readings_resume(cable, readings, caplog):
    caplog.set_level(logging.DEBUG, logger="retrotread.serial")
    opener = CountingOpener()
    cable.plug()
    source = SerialSpeedSource(str(cable.path), on_speed=readings, serial_for_url=opener, **QUICK)
    with source:
        wait_until(lambda: source.connected, within_s=WITHIN_S, what="the port to open")
        cable.send(b"3.0\n")
        wait_until(lambda: readings.speeds == [3.0], within_s=WITHIN_S, what="3.0 km/h read")

        cable.unplug()
        wait_until(lambda: not source.connected, within_s=WITHIN_S, what="the port to be lost")
        attempts = opener.attempts
        wait_until(
            lambda: opener.attempts >= attempts + 3, within_s=WITHIN_S, what="it to keep trying"
        )
        assert str(cable.path) in source.last_error

        cable.plug()
        wait_until(lambda: source.connected, within_s=WITHIN_S, what="the port to open")
        assert source.last_error is None
        cable.send(b"2.0\n")
        wait_until(
            lambda: readings.speeds == [3.0, 2.0], within_s=WITHIN_S, what="3.0 then 2.0 km/h read"
        )
        # one warning for the outage, however many retries it took
        assert len(serial_warnings(caplog)) == 1

        cable.unplug()  # the next outage is news again
        wait_until(
            lambda: len(serial_warnings(caplog)) == 2,
            within_s=WITHIN_S,
            what="two warnings about the port",
        )


def test_device_file_vanishing_is_noticed_even_while_the_line_is_quiet(cable, readings):
    cable.plug()
    target = os.readlink(cable.path)
    source = SerialSpeedSource(str(cable.path), on_speed=readings, **QUICK)
    with source:
        wait_until(lambda: source.connected, within_s=WITHIN_S, what="the port to open")
        cable.path.unlink()  # udev removed the link, the bridge sends nothing
        wait_until(lambda: not source.connected, within_s=WITHIN_S, what="the port to be lost")

        cable.path.symlink_to(target)
        wait_until(lambda: source.connected, within_s=WITHIN_S, what="the port to open")
        cable.send(b"1.5\n")
        wait_until(lambda: readings.speeds == [1.5], within_s=WITHIN_S, what="1.5 km/h read")


def test_port_missing_at_start_keeps_retrying_and_says_why(cable, readings, caplog):
    opener = CountingOpener()
    source = SerialSpeedSource(str(cable.path), on_speed=readings, serial_for_url=opener, **QUICK)
    source.start()  # does not raise: the rest of the device must come up without the bridge
    try:
        wait_until(
            lambda: opener.attempts >= 3, within_s=WITHIN_S, what="three tries to open the port"
        )
        assert not source.connected
        message = source.last_error
        assert message.startswith(f"serial port {cable.path} does not exist")
        assert "[sensor] url" in message
        assert message.endswith(".")
        assert "\n" not in message
        assert len(serial_warnings(caplog)) == 1

        cable.plug()
        wait_until(lambda: source.connected, within_s=WITHIN_S, what="the port to open")
        cable.send(b"2.5\n")
        wait_until(lambda: readings.speeds == [2.5], within_s=WITHIN_S, what="2.5 km/h read")
    finally:
        source.close()


def test_port_without_permission_asks_for_the_dialout_group():
    def refused(url, **kwargs):
        # what pyserial raises when the user is not in the dialout group
        raise serial.SerialException(
            errno.EACCES, f"could not open port {url}: [Errno 13] Permission denied: '{url}'"
        )

    source = SerialSpeedSource("/dev/ttyUSB0", serial_for_url=refused, **QUICK)
    with source:
        wait_until(
            lambda: source.last_error is not None, within_s=WITHIN_S, what="an error from the port"
        )
    assert source.last_error.startswith("no permission to open serial port /dev/ttyUSB0")
    assert "dialout group" in source.last_error


def test_unknown_url_scheme_asks_to_fix_the_url():
    source = SerialSpeedSource("tcp-oops://bridge", **QUICK)
    with source:
        wait_until(
            lambda: source.last_error is not None, within_s=WITHIN_S, what="an error from the port"
        )
    assert "tcp-oops://bridge" in source.last_error
    assert "[sensor] url" in source.last_error


def test_close_stops_the_reader_thread(cable):
    cable.plug()
    source = SerialSpeedSource(str(cable.path), **QUICK)
    source.start()
    wait_until(lambda: source.connected, within_s=WITHIN_S, what="the port to open")
    source.close()
    names = [thread.name for thread in threading.enumerate()]
    assert f"serial-speed {cable.path}" not in names
    assert not source.connected


def test_a_failing_consumer_does_not_silence_the_sensor(caplog):
    opener = CountingOpener()
    seen: list[float] = []

    def flaky(t: float, kmh: float) -> None:
        seen.append(kmh)
        if len(seen) == 1:
            raise RuntimeError("bug downstream")

    source = SerialSpeedSource("loop://", on_speed=flaky, serial_for_url=opener, **QUICK)
    with source:
        wait_until(lambda: source.connected, within_s=WITHIN_S, what="the port to open")
        opener.ports[-1].write(b"1.0\n2.0\n")
        wait_until(lambda: len(seen) == 2, within_s=WITHIN_S, what="two readings")
    assert seen == [1.0, 2.0]
    assert any("on_speed failed" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    ("pattern", "unit", "key"),
    [
        (r"SPD:(?P<speed>\d+", "km/h", "[sensor] pattern"),
        (r"SPD:(\d+)", "km/h", "[sensor] pattern"),
        (r"(?P<speed>\d+)", "knots", "[sensor] unit"),
    ],
)
def test_config_mistakes_are_refused_naming_the_key(pattern, unit, key):
    with pytest.raises(SourceError) as caught:
        SerialSpeedSource("loop://", pattern=pattern, unit=unit)
    assert key in str(caught.value)
    assert "\n" not in str(caught.value)


def test_check_config_refuses_a_pattern_that_backtracks_without_end(tmp_path, capsys):
    # (a|aa)+ has exponentially many ways to split a run of a's: even the regex module gives
    # up on 120 of them, so the pattern is refused before any bridge sends such a line
    config = tmp_path / "config.toml"
    config.write_text(
        '[sensor]\nkind = "serial"\nurl = "loop://"\npattern = \'(?P<speed>(a|aa)+b)\'\n'
    )
    assert check_config_main(str(config)) == 2
    err = capsys.readouterr().err
    assert "takes too long" in err and "[sensor] pattern" in err and "Traceback" not in err


def test_check_config_refuses_counted_repeats_that_would_compile_for_hours(tmp_path, capsys):
    # nested {1000}s unroll at compile time, and a compile cannot be stopped: 1000^3 had not
    # compiled after a minute; small counts, as a real bridge's pattern has, still pass
    config = tmp_path / "config.toml"
    slow = r"(?P<speed>(?:(?:a{1000}){1000}){1000})"
    config.write_text(f'[sensor]\nkind = "serial"\nurl = "loop://"\npattern = \'{slow}\'\n')
    started = time.monotonic()
    assert check_config_main(str(config)) == 2
    assert time.monotonic() - started < 2.0
    err = capsys.readouterr().err
    assert "multiply past" in err and "[sensor] pattern" in err and "Traceback" not in err
    assert compile_speed_pattern(r"SPD:(?P<speed>\d{1,3}[.,]\d{1,2})").search("SPD:4.25")


def test_a_flood_is_matched_only_for_its_newest_lines_and_the_rest_counted(readings):
    opener = CountingOpener()
    source = SerialSpeedSource("loop://", on_speed=readings, serial_for_url=opener, **QUICK)
    with source:
        wait_until(lambda: source.connected, within_s=WITHIN_S, what="the port to open")
        # a bridge gone wrong: a thousand lines in one read, the last one the belt's speed now
        opener.ports[-1].write(b"1.0\n" * 999 + b"3.5\n")
        wait_until(lambda: 3.5 in readings.speeds, within_s=WITHIN_S, what="3.5 km/h read")
        assert source.skipped_lines + len(readings.speeds) == 1000
        assert len(readings.speeds) <= 32 * 2  # the newest of each read, a read or two
        assert readings.speeds[-1] == 3.5 and source.rejected_lines == 0
