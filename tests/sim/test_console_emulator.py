"""The CSAFE treadmill emulator behaves like a gym console: on its own (time as an
argument), on a pty and over socket:// as pyserial opens them, and as `retrotread
console-emulator`."""

from __future__ import annotations

import os
import re
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support import console as console_support
from support.console import CsafeHost
from support.ports import free_port
from support.waiting import wait_until

from device.core.console import ConsoleState
from device.hardware.csafe_codec import (
    KMH_PER_SPEED_UNIT,
    Command,
    Frame,
    FrameReader,
    Item,
    PreviousFrame,
    Response,
    encode_commands,
    long,
    parse_response,
    read_distance,
    read_speed,
    request,
    set_speed,
    short,
)
from device.sim.console import SPEED_UNITS, ConsoleQuirks, EmulatedTreadmill
from device.sim.console_serve import BYTE_S, ConsoleEmulator

# the fixture, here until tests/conftest.py offers it to every test file
console_emulator = console_support.console_emulator
REPO = Path(__file__).resolve().parents[2]
GET_SPEED = request(short(Command.GET_SPEED))  # F1 A5 A5 F2
POLL = (short(Command.GET_STATUS), short(Command.GET_SPEED), short(Command.GET_HORIZONTAL))


def ask(treadmill: EmulatedTreadmill, t: float, *items: Item) -> Response:
    """One request to the console at t, and its answer as a host reads it."""
    (frame,) = FrameReader().feed(treadmill.answer(encode_commands(items), t))
    return parse_response(frame.contents)


def belt_kmh(answer: Response) -> float:
    item = answer.item(Command.GET_SPEED)
    assert item is not None, answer
    reading = read_speed(item.data)
    assert reading is not None, item
    return reading[0]


def walking(kmh: float, **options) -> EmulatedTreadmill:
    treadmill = EmulatedTreadmill(**options)
    treadmill.step(0.0)
    treadmill.set_target_kmh(kmh, abrupt=True)
    return treadmill


# -- the console on its own -------------------------------------------------------------------


def test_a_belt_at_6_5_kmh_answers_getspeed_as_the_reference_logs_it() -> None:
    # status 0x85: toggle 1, previous OK, in use; 0x0041 = 65 x 0.1 km/h; checksum 0x53
    wire = walking(6.5).answer(bytes((Command.GET_SPEED,)), 1.0)
    assert wire == bytes.fromhex("F1 85 A5 03 41 00 31 53 F2")


@pytest.mark.parametrize("name", list(SPEED_UNITS))
def test_getspeed_is_answered_in_the_console_unit(name: str) -> None:
    unit = SPEED_UNITS[name]
    answer = ask(walking(6.5, unit=unit), 1.0, short(Command.GET_SPEED))
    item = answer.item(Command.GET_SPEED)
    assert item is not None and item.data[2] == unit
    assert int.from_bytes(item.data[:2], "little") == round(6.5 / KMH_PER_SPEED_UNIT[unit])
    # as close as the unit can say it: whole mph are 1.6 km/h apart
    assert belt_kmh(answer) == pytest.approx(6.5, abs=KMH_PER_SPEED_UNIT[unit] / 2)


def test_setspeed_ramps_the_belt_at_the_console_rate() -> None:
    treadmill = EmulatedTreadmill()
    assert ask(treadmill, 0.0, short(Command.GET_STATUS)).status.state is ConsoleState.READY
    assert ask(treadmill, 0.0, set_speed(6.0)).status.state is ConsoleState.IN_USE
    assert belt_kmh(ask(treadmill, 2.0, short(Command.GET_SPEED))) == pytest.approx(3.0)
    assert belt_kmh(ask(treadmill, 4.0, short(Command.GET_SPEED))) == pytest.approx(6.0)
    assert belt_kmh(ask(treadmill, 60.0, short(Command.GET_SPEED))) == pytest.approx(6.0)
    ask(treadmill, 60.0, set_speed(3.0))
    assert belt_kmh(ask(treadmill, 61.0, short(Command.GET_SPEED))) == pytest.approx(4.5)
    assert belt_kmh(ask(treadmill, 70.0, short(Command.GET_SPEED))) == pytest.approx(3.0)


@settings(max_examples=200, deadline=None)
@given(
    start_kmh=st.floats(0, 20),
    target_kmh=st.floats(0, 20),
    after_s=st.floats(0, 30),
)
def test_the_belt_never_changes_faster_than_the_console_rate(
    start_kmh: float, target_kmh: float, after_s: float
) -> None:
    treadmill = walking(start_kmh)
    treadmill.set_target_kmh(target_kmh)
    treadmill.step(after_s)
    expected = start_kmh + max(min(target_kmh - start_kmh, 1.5 * after_s), -1.5 * after_s)
    assert treadmill.belt_kmh == pytest.approx(expected, abs=1e-9)
    low, high = sorted((start_kmh, treadmill.belt_kmh))
    assert low / 3.6 * after_s - 1e-9 <= treadmill.distance_m <= high / 3.6 * after_s + 1e-9


def test_distance_is_answered_in_metres_or_hundredths_of_a_km() -> None:
    for unit, value in ((0x24, 101), (0x23, 10)):
        treadmill = EmulatedTreadmill(distance_unit=unit)
        treadmill.step(0.0)
        treadmill.set_target_kmh(3.6)  # 1 m/s, reached in 2.4 s having gone 1.2 m
        item = ask(treadmill, 102.4, short(Command.GET_HORIZONTAL)).item(Command.GET_HORIZONTAL)
        assert item is not None and int.from_bytes(item.data[:2], "little") == value
        assert read_distance(item.data) == (value * (1.0 if unit == 0x24 else 10.0), unit)


@pytest.mark.parametrize(
    ("quirks", "kmh", "fate"),
    [
        (ConsoleQuirks(ignores_set_speed=True), 6.0, PreviousFrame.OK),
        (ConsoleQuirks(rejects_set_speed=True), 6.0, PreviousFrame.REJECTED),
        (ConsoleQuirks(), 24.2, PreviousFrame.REJECTED),  # past its belt's 20 km/h
    ],
    ids=["ignores", "rejects", "too-fast"],
)
def test_a_setspeed_the_console_does_not_carry_out_leaves_the_belt_and_the_next_answer_says(
    quirks: ConsoleQuirks, kmh: float, fate: PreviousFrame
) -> None:
    treadmill = walking(2.0, quirks=quirks)
    assert ask(treadmill, 0.0, set_speed(kmh)).status.previous is PreviousFrame.OK
    answer = ask(treadmill, 10.0, short(Command.GET_SPEED))
    assert answer.status.previous is fate  # the answer to the frame after SetSpeed
    assert belt_kmh(answer) == pytest.approx(2.0)
    assert ask(treadmill, 11.0, short(Command.GET_SPEED)).status.previous is PreviousFrame.OK


def test_status_only_commands_and_unknown_ones_get_the_status_byte_alone() -> None:
    quirks = ConsoleQuirks(status_only=frozenset({Command.GET_SPEED, Command.GET_HORIZONTAL}))
    treadmill = walking(3.0, quirks=quirks)
    assert ask(treadmill, 1.0, *POLL).items == ()
    answer = ask(treadmill, 2.0, short(Command.GET_SPEED), short(Command.GET_VERSION))
    assert [item.command for item in answer.items] == [Command.GET_VERSION]
    # heart rate, a maker's own 0xD0, incline: this treadmill knows none of them
    for item in (short(Command.GET_HR_CUR), short(0xD0), long(Command.SET_GRADE, b"\x05\x00")):
        wire = EmulatedTreadmill().answer(encode_commands([item]), 0.0)
        assert wire == bytes.fromhex("F1 81 81 F2")
        assert parse_response(FrameReader().feed(wire)[0].contents).items == ()


def test_the_toggle_alternates_with_every_answer_unless_the_console_never_toggles() -> None:
    treadmill = EmulatedTreadmill()
    toggles = [ask(treadmill, t, *POLL).status.toggle for t in range(6)]
    assert toggles == [True, False, True, False, True, False]
    stuck = EmulatedTreadmill(quirks=ConsoleQuirks(never_toggles=True))
    assert {ask(stuck, t, *POLL).status.toggle for t in range(6)} == {False}


def test_a_frame_that_failed_its_checksum_shows_as_bad_in_the_next_answer() -> None:
    treadmill = EmulatedTreadmill()
    treadmill.heard_bad_frame()
    assert ask(treadmill, 0.0, *POLL).status.previous is PreviousFrame.BAD
    assert ask(treadmill, 1.0, *POLL).status.previous is PreviousFrame.OK


def test_the_machine_states_of_a_workout() -> None:
    treadmill = EmulatedTreadmill()
    assert ask(treadmill, 0.0, *POLL).status.state is ConsoleState.READY
    treadmill.set_target_kmh(4.0)
    assert ask(treadmill, 10.0, *POLL).status.state is ConsoleState.IN_USE
    treadmill.pause()
    assert ask(treadmill, 20.0, *POLL).status.state is ConsoleState.PAUSED
    assert treadmill.belt_kmh == 0.0
    treadmill.start()  # goes on at the speed it had
    assert belt_kmh(ask(treadmill, 30.0, *POLL)) == pytest.approx(4.0)
    ask(treadmill, 30.0, short(Command.GO_FINISHED))
    finished = ask(treadmill, 40.0, *POLL)
    assert finished.status.state is ConsoleState.FINISHED and belt_kmh(finished) == 0.0
    walked = read_distance(finished.item(Command.GET_HORIZONTAL).data)
    assert walked is not None and walked[0] > 0  # the workout's distance stays on show
    ask(treadmill, 40.0, short(Command.RESET))
    reset = ask(treadmill, 41.0, *POLL)
    assert reset.status.state is ConsoleState.READY
    assert read_distance(reset.item(Command.GET_HORIZONTAL).data) == (0.0, 0x24)
    ask(treadmill, 42.0, short(Command.GO_IN_USE))
    assert ask(treadmill, 43.0, *POLL).status.state is ConsoleState.IN_USE


def test_getversion_and_getunits() -> None:
    answer = ask(EmulatedTreadmill(unit=0x11), 0.0, short(Command.GET_VERSION))
    version = answer.item(Command.GET_VERSION)
    assert version is not None and len(version.data) == 5
    for unit, english in ((0x11, 1), (0x31, 0), (0x33, 0)):
        units = ask(EmulatedTreadmill(unit=unit), 0.0, short(Command.GET_UNITS))
        assert units.item(Command.GET_UNITS) == Item(Command.GET_UNITS, bytes((english,)))


@settings(max_examples=100, deadline=None)
@given(every=st.integers(1, 5), unit=st.sampled_from(sorted(KMH_PER_SPEED_UNIT)))
def test_garbage_on_the_line_is_counted_and_skipped_and_every_answer_still_reads(
    every: int, unit: int
) -> None:
    treadmill = walking(6.5, unit=unit, quirks=ConsoleQuirks(garbage_every=every))
    line = b"".join(treadmill.answer(encode_commands(POLL), t) for t in range(10))
    reader = FrameReader()
    frames = reader.feed(line)
    assert len(frames) == 10
    assert {belt_kmh(parse_response(f.contents)) for f in frames} == {
        round(6.5 / KMH_PER_SPEED_UNIT[unit]) * KMH_PER_SPEED_UNIT[unit]
    }
    garbled = 10 // every
    assert (reader.counts.bad_checksum, reader.counts.truncated) == (garbled, garbled)
    assert reader.counts.noise == 4 * garbled and reader.total_skipped == 6 * garbled


# -- on a line: the pty and socket:// ---------------------------------------------------------


@pytest.mark.parametrize("tcp", [False, True], ids=["pty", "socket"])
def test_a_host_reads_the_belt_speed_over_the_line(console_emulator, tcp: bool) -> None:
    console = console_emulator(unit=0x12, pty=not tcp, tcp=tcp)
    console.set_target_kmh(5.0, abrupt=True)
    assert console.url.startswith("socket://127.0.0.1:" if tcp else "/dev/")
    with CsafeHost(console.url) as host:
        host.send(GET_SPEED)
        (frame,) = host.frames(1)
        answer = parse_response(frame.contents)
        assert answer.status.state is ConsoleState.IN_USE
        assert belt_kmh(answer) == pytest.approx(5.0, abs=0.01)
        assert answer.item(Command.GET_SPEED).data[2] == 0x12
        assert host.reader.total_skipped == 0


def test_the_pty_is_raw_for_a_host_that_opens_it_without_pyserial(console_emulator) -> None:
    console = console_emulator()
    fd = os.open(console.port, os.O_RDWR | os.O_NOCTTY)
    reader = FrameReader()

    def answered() -> list[Frame]:
        readable, _, _ = select.select([fd], [], [], 0.05)
        return reader.feed(os.read(fd, 64)) if readable else []

    try:
        os.write(fd, request(short(Command.GET_VERSION)))  # F1 91 91 F2: no echo, no CR/LF
        frames = wait_until(answered, within_s=5, what="the GetVersion answer")
    finally:
        os.close(fd)
    assert parse_response(frames[0].contents).item(Command.GET_VERSION) is not None
    assert reader.total_skipped == 0


def test_setspeed_over_socket_moves_the_belt_and_the_next_status_says_ok(console_emulator) -> None:
    console = console_emulator(tcp=True, pty=False, max_kmh=25.0)
    with CsafeHost(console.url) as host:
        host.ask(set_speed(24.2))  # 0xF2 in the value: stuffed on the wire
        answer = host.ask(short(Command.GET_STATUS))
        assert answer.status.previous is PreviousFrame.OK
        assert answer.status.state is ConsoleState.IN_USE
        with console.treadmill_now() as treadmill:
            assert treadmill.target_kmh == pytest.approx(24.2)
        wait_until(lambda: belt_kmh(host.ask(*POLL)) > 0, within_s=5, what="the belt to start")


def test_a_request_with_a_bad_checksum_is_not_answered_and_the_next_answer_says_bad(
    console_emulator,
) -> None:
    console = console_emulator()
    with CsafeHost(console.url) as host:
        host.send(bytes.fromhex("F1 A5 00 F2"))  # GetSpeed, checksum 00 instead of A5
        host.send(GET_SPEED)
        (frame,) = host.frames(1)
        answer = parse_response(frame.contents)
        assert answer.status.previous is PreviousFrame.BAD
        assert answer.status.toggle  # the first answer: the bad frame had none
        assert console.skipped == 1 and console.answered == 1


def test_garbage_before_answers_reaches_the_host_counted_and_skipped(console_emulator) -> None:
    console = console_emulator(quirks=ConsoleQuirks(garbage_every=2))
    console.set_target_kmh(3.0, abrupt=True)
    with CsafeHost(console.url) as host:
        for _ in range(4):
            host.send(GET_SPEED)
            (frame,) = host.frames(1)
            assert belt_kmh(parse_response(frame.contents)) == pytest.approx(3.0)
        counts = host.reader.counts
        assert (counts.bad_checksum, counts.truncated, counts.noise) == (2, 2, 8)


def test_an_unplugged_pty_drops_what_the_host_sends_until_plugged_back(console_emulator) -> None:
    console = console_emulator()
    with CsafeHost(console.url) as host:
        host.ask(short(Command.GET_STATUS))
        console.unplug()
        host.send(request(short(Command.GET_VERSION)))  # into a cable that is not there
        wait_until(lambda: console.lost >= 4, within_s=5, what="the request to fall off")
        console.plug()
        host.send(GET_SPEED)
        (frame,) = host.frames(1)  # the GetSpeed's answer, and no GetVersion's before it
        assert [item.command for item in parse_response(frame.contents).items] == [0xA5]
        assert console.answered == 2


def test_an_unplugged_tcp_console_drops_its_client_and_takes_one_when_plugged(
    console_emulator,
) -> None:
    console = console_emulator(tcp=True, pty=False)
    with CsafeHost(console.url) as host:
        host.ask(short(Command.GET_STATUS))
        console.unplug()
        wait_until(lambda: host.hung_up(), within_s=5, what="the emulator to drop the client")
    with socket.create_connection(("127.0.0.1", console.tcp_port), timeout=5) as refused:
        assert refused.recv(1) == b""  # taken and closed at once while unplugged
    console.plug()
    with CsafeHost(console.url) as host:
        assert host.ask(*POLL).status.state is ConsoleState.READY


def test_a_newer_tcp_client_replaces_the_old_one(console_emulator) -> None:
    console = console_emulator(tcp=True, pty=False)
    with CsafeHost(console.url) as old, CsafeHost(console.url) as new:
        assert new.ask(*POLL).status.state is ConsoleState.READY
        wait_until(lambda: old.hung_up(), within_s=5, what="the emulator to drop the old client")


def test_a_paced_console_sends_no_faster_than_9600_baud(console_emulator) -> None:
    console = console_emulator(paced=True)
    with CsafeHost(console.url) as host:
        begin = time.monotonic()
        answer = host.ask(*POLL, short(Command.GET_VERSION))
        took_s = time.monotonic() - begin
    wire_bytes = len(host.heard)
    assert answer.item(Command.GET_VERSION) is not None and wire_bytes >= 20
    # a lower bound only: a slow machine takes longer, never shorter
    assert took_s >= (wire_bytes - 1) * BYTE_S


def test_a_slow_console_answers_after_its_delay(console_emulator) -> None:
    console = console_emulator(quirks=ConsoleQuirks(answer_delay_s=0.3))
    with CsafeHost(console.url) as host:
        begin = time.monotonic()
        host.ask(*POLL)
        assert time.monotonic() - begin >= 0.3  # a lower bound: never sooner


def test_the_emulator_says_where_it_serves_and_stops_cleanly() -> None:
    console = ConsoleEmulator(EmulatedTreadmill(), tcp=True)
    assert console.port is not None and console.tcp_url is not None
    assert repr(console) == f"ConsoleEmulator({console.port} and {console.tcp_url})"
    console.close()  # never started: nothing to join
    with ConsoleEmulator(EmulatedTreadmill()) as started:
        assert started.url == started.port


# -- `retrotread console-emulator` -------------------------------------------------------------


def _run_emulator(tmp_path: Path, *args: str) -> tuple[subprocess.Popen[bytes], Path, Path]:
    out, err = tmp_path / "emulator.out", tmp_path / "emulator.err"
    argv = [sys.executable, "-m", "device.cli", "console-emulator", *args]
    with open(out, "wb") as stdout, open(err, "wb") as stderr:
        process = subprocess.Popen(argv, cwd=REPO, stdout=stdout, stderr=stderr)
    return process, out, err


@pytest.mark.parametrize(
    ("tcp", "stop"), [(False, signal.SIGINT), (True, signal.SIGTERM)], ids=["pty", "socket"]
)
def test_console_emulator_prints_the_toml_answers_getspeed_and_stops_on_a_signal(
    tmp_path: Path, tcp: bool, stop: signal.Signals
) -> None:
    args = ["--unit", "0.1mph", "--belt-kmh", "4.8"] + (["--tcp", "0"] if tcp else [])
    process, out, err = _run_emulator(tmp_path, *args)
    try:
        url = wait_until(
            lambda: re.search(r'^url = "(.+)"$', out.read_text(), re.M),
            within_s=10,
            what="the emulator to print its url",
            showing=lambda: err.read_text(),
        ).group(1)
        assert url.startswith("socket://127.0.0.1:" if tcp else "/dev/")
        with CsafeHost(url) as host:
            host.send(GET_SPEED)
            (frame,) = host.frames(1)
            item = parse_response(frame.contents).item(Command.GET_SPEED)
            assert item is not None and item.data == bytes((30, 0, 0x11))  # 30 x 0.1 mph
        process.send_signal(stop)  # Ctrl-C, or systemd stopping it
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=5)
    said = out.read_text()
    assert '[sensor]\nkind = "csafe"\n' in said and "console emulator stopped" in said
    assert "Traceback" not in err.read_text()


def test_console_emulator_on_a_taken_port_says_so_in_one_sentence(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", free_port())) as taken:
        port = taken.getsockname()[1]
        process, _, err = _run_emulator(tmp_path, "--tcp", str(port))
        assert process.wait(timeout=10) == 1
    said = err.read_text()
    assert f"Cannot listen on 127.0.0.1:{port}" in said and "pick another --tcp port" in said
    assert "Traceback" not in said and said.count("\n") == 1
