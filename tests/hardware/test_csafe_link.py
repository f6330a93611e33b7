"""A gym console's CSAFE port, polled by ConsoleLink over real pyserial: against a scripted
console on a pty (a cable we can pull; support/scripted_console.py) that answers byte for byte
what each test says and logs when each frame arrived, and against the emulated treadmill on a
pty and socket://."""

from __future__ import annotations

import socket
import statistics
import threading
import time

import pytest
import serial
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from support import scripted_console as scripted
from support.scripted_console import BROKEN, POLL, csafe_warnings, link_on, pairs, wait
from support.virtual_clock import VirtualClock

from device.core.console import ConsoleState, SpeedAnswer
from device.hardware.csafe import ConsoleLink
from device.hardware.csafe_codec import Command, request, short
from device.sim.console import ConsoleQuirks

console, line = scripted.console, scripted.line  # the fixtures (console_emulator: conftest)


def test_polls_status_speed_and_distance_four_times_a_second(line):
    with link_on(line.url, poll_every_s=0.2, gap_s=0.05) as (link, *_):
        wait(lambda: len(line.heard) >= 8, "eight polls")
    heard = line.heard[:8]
    assert [h.wire for h in heard] == [POLL] * 8
    assert bytes.fromhex("F1 80 A5 A1 84 F2") == POLL  # GetStatus, GetSpeed, GetHorizontal
    # the console's own log of when each poll arrived
    assert statistics.median(b.arrived_s - a.arrived_s for a, b in pairs(heard)) <= 0.25
    assert link.polls >= 8 and link.timeouts == 0 and link.rejected_frames == 0


def test_a_slow_console_gets_gap_s_of_quiet_after_each_answer(console, line):
    console.delay_s = 0.15  # answers late in the poll's 0.2 s: the next poll must wait
    with link_on(line.url, poll_every_s=0.2, gap_s=0.1):
        wait(lambda: len(line.heard) >= 5, "five polls")
    for before, after in pairs(line.heard[:5]):  # the console's log: answered, then heard
        assert before.answered_s is not None
        assert after.arrived_s - before.answered_s >= 0.1


@pytest.mark.parametrize(
    ("speed", "kmh", "unit"),
    [
        (bytes.fromhex("410031"), 6.5, 0x31),  # 65 x 0.1 km/h, the reference's answer
        (bytes.fromhex("FA0012"), 4.02336, 0x12),  # 250 x 0.01 mph
        (bytes.fromhex("640033"), 6.0, 0x33),  # 100 m/min
    ],
)
def test_speed_in_each_unit_is_reported_in_kmh(console, line, speed, kmh, unit):
    console.speed = speed
    clock = VirtualClock(50.0)
    with link_on(line.url, clock=clock) as (link, speeds, _, _):
        wait(lambda: speeds.calls, "a speed")
        assert speeds.calls[0] == (50.0, pytest.approx(kmh))
        assert link.speed_kmh(50.0) == pytest.approx(kmh)
        assert link.speed_unit == unit


def test_the_machine_state_is_followed_through_a_workout(console, line):
    console.state = ConsoleState.READY
    with link_on(line.url) as (link, _, states, _):
        wait(lambda: states.values == [ConsoleState.READY], "READY")
        for state in (ConsoleState.IN_USE, ConsoleState.PAUSED, ConsoleState.FINISHED):
            console.state = state
            wait(lambda s=state: link.state is s, f"{state}")
        polls = link.polls
        wait(lambda: link.polls >= polls + 3, "three more polls")
    # one call per change, not one per poll
    assert states.values == ["ready", "in use", "paused", "finished"]


def test_distance_comes_from_get_horizontal(console, line):
    with link_on(line.url) as (link, *_):
        wait(lambda: link.distance_m is not None, "a distance")
        assert link.distance_m == pytest.approx(520.0)  # 52 x 0.01 km
        console.distance = bytes.fromhex("E80324")  # 1000 m
        wait(lambda: link.distance_m == pytest.approx(1000.0), "1000 m")


@pytest.mark.parametrize(
    "speed",
    [
        bytes.fromhex("4F0052"),  # the Life Fitness cross-trainer's log: 79 rpm
        bytes.fromhex("F40131"),  # 50.0 km/h: no belt runs that fast
        bytes.fromhex("4100"),  # a value without its unit
    ],
)
def test_a_speed_that_is_no_belt_speed_is_rejected(console, line, speed):
    console.speed = speed
    with link_on(line.url) as (link, speeds, _, _):
        wait(lambda: link.rejected_frames >= 3, "three rejected answers")
        assert speeds.calls == [] and link.speed_unit is None
        assert link.distance_m == pytest.approx(520.0)  # the rest of the answer still counts
        assert link.unsupported is None  # it does give a speed, only not a belt's


def test_a_failing_consumer_does_not_silence_the_console(line, caplog):
    seen: list[float] = []

    def flaky(t: float, kmh: float) -> None:
        seen.append(kmh)
        if len(seen) == 1:
            raise RuntimeError("bug downstream")

    with ConsoleLink(line.url, on_speed=flaky, **scripted.QUICK):
        wait(lambda: len(seen) >= 2, "two speeds")
    assert any("on_speed failed" in r.getMessage() for r in caplog.records)


# -- garbage on the line -------------------------------------------------------------------


def test_garbage_and_bad_checksums_are_counted_never_read_as_a_speed(console, line):
    with link_on(line.url) as (link, speeds, _, _):
        for garbage in BROKEN:
            answered = link.polls
            console.before_next = garbage
            wait(lambda n=answered: link.polls >= n + 2, "two more answers")
        assert link.connected and link.last_error is None
        assert link.rejected_frames >= len(BROKEN)
    assert set(speeds.values) == {6.5}


def test_random_garbage_before_an_answer_never_becomes_a_speed(console, line):
    with link_on(line.url) as (link, speeds, _, _):

        @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
        @given(garbage=st.binary(max_size=120) | st.lists(st.sampled_from(BROKEN)).map(b"".join))
        def before_an_answer(garbage: bytes) -> None:
            # an answer that checks out is no garbage
            assume(not scripted.reads_as_an_answer(garbage))
            answered = link.polls
            console.before_next = garbage
            wait(lambda: link.polls >= answered + 2, "two more answers")

        before_an_answer()
        assert link.connected
    assert set(speeds.values) == {6.5}


def test_a_broken_answer_is_counted_and_does_not_hold_up_the_polls(console, line):
    console.broken = True
    with link_on(line.url, answer_timeout_s=30.0) as (link, speeds, _, _):
        wait(lambda: len(line.heard) >= 3, "three polls, each broken answer cut short")
        console.broken = False
        wait(lambda: speeds.calls, "a speed")
        assert link.timeouts == 0  # it did answer, only not readably
        assert link.rejected_frames >= 3
    assert set(speeds.values) == {6.5}


def test_a_console_at_the_wrong_baud_rate_is_said_so(console, line):
    console.babbles = True
    with link_on(line.url) as (link, speeds, _, _):
        wait(lambda: link.last_error, "an error")
        assert link.last_error.startswith(f"the console on {line.url} sends nothing readable")
        assert "[sensor] baud" in link.last_error
        assert link.connected and link.rejected_frames > 0
    assert speeds.calls == []


# -- a console that does not say its speed -------------------------------------------------


@pytest.mark.parametrize(
    "knows",
    [
        {Command.GET_STATUS},  # a frame with a command it lacks: the status byte alone
        {Command.GET_STATUS, Command.GET_HORIZONTAL},
    ],
)
def test_a_console_that_answers_status_only_is_said_unsupported_and_still_followed(
    console, line, caplog, knows
):
    console.knows = knows
    console.state = ConsoleState.READY
    probe, status = request(short(Command.GET_SPEED)), request(short(Command.GET_STATUS))
    with link_on(line.url) as (link, speeds, states, _):
        wait(lambda: link.unsupported, "the console said unsupported")
        console.state = ConsoleState.IN_USE
        wait(lambda: link.state is ConsoleState.IN_USE, "IN_USE followed")
        polls = link.polls
        wait(lambda: link.polls >= polls + 3, "three more polls")
    assert link.unsupported == (
        f"the console on {line.url} answers GetSpeed with its status only: it does not give "
        'its speed over CSAFE; fit a hall sensor ([sensor] kind = "hall").'
    )
    frames = line.frames()
    assert frames[:4] == [POLL, POLL, POLL, probe] and set(frames[4:]) == {status}
    assert speeds.calls == [] and link.is_stale(time.monotonic())
    assert states.values == ["ready", "in use"]
    assert len(csafe_warnings(caplog)) == 1


# -- a console that stops answering, a cable pulled ----------------------------------------


def test_a_silent_console_is_counted_reopened_and_its_speed_goes_stale(console, line, caplog):
    opener = scripted.CountingOpener()
    clock = VirtualClock(100.0)
    with link_on(line.url, clock=clock, serial_for_url=opener, stale_s=2.0) as (link, s, _, _):
        wait(lambda: s.calls, "a speed")
        console.silent = True
        wait(lambda: opener.attempts >= 3, "the port reopened twice")
        assert link.timeouts >= 6  # reopen_after = 3, twice
        assert link.speed_kmh(100.0) == 6.5  # the last speed, read at 100.0 ...
        clock.advance(2.01)
        assert link.speed_kmh(clock()) is None  # ... is unknown once older than stale_s
        assert link.is_stale(clock())
        assert link.last_error.startswith(f"the console on {line.url} does not answer")
        assert len(csafe_warnings(caplog)) == 1  # one outage, however many reopens

        console.silent = False
        wait(lambda: link.speed_kmh(clock()) == 6.5, "speed again")
        assert link.last_error is None


def test_a_pulled_cable_is_said_in_one_sentence_and_the_console_read_again(console, line, caplog):
    with link_on(line.url) as (link, speeds, _, _):
        wait(lambda: speeds.calls, "a speed")
        line.unplug()
        wait(lambda: not link.connected, "the port lost")
        error = link.last_error
        assert line.url in error and error.endswith(".") and "\n" not in error

        console.speed = bytes.fromhex("1E0031")  # 3.0 km/h
        line.plug()
        wait(lambda: speeds.values[-1] == 3.0, "3.0 km/h read", showing=lambda: link)
        assert link.last_error is None
        assert len(csafe_warnings(caplog)) == 1
        line.unplug()  # the next outage is news again
        wait(lambda: len(csafe_warnings(caplog)) == 2, "a second warning")


def test_a_port_missing_at_start_names_the_config_table_and_the_fix(tmp_path):
    path = tmp_path / "ttyNONE"
    with link_on(str(path), what="[sensor.check]") as (link, *_):
        wait(lambda: link.last_error, "an error")
    assert link.last_error.startswith(f"serial port {path} does not exist")
    assert "[sensor.check] url" in link.last_error


# -- SetSpeed ------------------------------------------------------------------------------


def test_set_speed_goes_out_in_tenths_of_a_kmh_and_is_accepted(line):
    with link_on(line.url) as (link, _, _, answers):
        wait(lambda: link.polls >= 2, "two polls")
        link.set_speed(24.2)
        wait(lambda: answers.calls, "SetSpeed's fate")
    frames = line.frames()
    at = frames.index(bytes.fromhex("F1 25 03 F3 02 00 31 E5 F2"))  # 242, the F2 stuffed
    assert frames[at + 1] == POLL  # whose answer says what became of it
    assert answers.values == [SpeedAnswer.ACCEPTED]


@pytest.mark.parametrize(
    ("console_does", "answer"),
    [
        ("rejects", SpeedAnswer.REJECTED),
        ("falls silent", SpeedAnswer.UNANSWERED),
    ],
)
def test_set_speed_refused_or_unanswered_is_said(console, line, console_does, answer):
    console.takes_set_speed = console_does != "rejects"
    console.silent_after_set_speed = console_does == "falls silent"
    with link_on(line.url) as (link, _, _, answers):
        wait(lambda: link.polls >= 1, "a poll")
        link.set_speed(5.0)
        wait(lambda: answers.calls, "SetSpeed's fate")
        assert answers.values == [answer]


def test_set_speed_with_the_port_closed_is_unanswered_not_sent_later(tmp_path, console):
    line = scripted.PtyLine(console, tmp_path / "ttyLATER")
    line.start()
    try:
        with link_on(line.url) as (link, _, _, answers):
            wait(lambda: link.last_error, "the port missing")
            link.set_speed(5.0)
            wait(lambda: answers.values == [SpeedAnswer.UNANSWERED], "UNANSWERED")
            line.plug()
            wait(lambda: link.polls >= 3, "three polls")
        assert set(line.frames()) == {POLL}  # a late SetSpeed could start a stopped belt
    finally:
        line.close()


def test_set_speed_asked_while_the_port_opens_slowly_is_dropped_not_sent_late(line):
    opened = threading.Event()

    def slow_to_open(url, **kwargs):  # a serial-to-network box that takes its time
        opened.wait(scripted.WITHIN_S)
        return serial.serial_for_url(url, **kwargs)

    with link_on(line.url, serial_for_url=slow_to_open, answer_timeout_s=0.05) as links:
        link, _, _, answers = links
        asked_at = time.monotonic()
        link.set_speed(5.0)
        wait(lambda: time.monotonic() - asked_at > 0.2, "the SetSpeed to grow old")
        opened.set()
        wait(lambda: answers.values == [SpeedAnswer.UNANSWERED], "UNANSWERED")
        wait(lambda: link.polls >= 2, "two polls")
    assert set(line.frames()) == {POLL}


def test_a_speed_no_frame_can_carry_is_refused_at_once(line):
    with link_on(line.url) as (link, *_), pytest.raises(ValueError):
        link.set_speed(-1.0)


# -- a converter that refuses, and closing ---------------------------------------------------------


def test_a_converter_that_refuses_the_connection_is_said_so():
    server = socket.create_server(("127.0.0.1", 0))
    url = f"socket://127.0.0.1:{server.getsockname()[1]}"
    server.close()  # nothing listens there now
    with link_on(url) as (link, *_):
        wait(lambda: link.last_error, "an error")
    assert link.last_error.startswith(f"cannot reach serial port {url}")
    assert "[sensor] url" in link.last_error


def test_close_ends_the_thread_even_while_it_waits_for_an_answer(console, line):
    console.silent = True
    link = ConsoleLink(line.url, answer_timeout_s=30.0)
    link.start()
    wait(lambda: line.heard, "a poll out")
    link.close()
    assert f"csafe {line.url}" not in [thread.name for thread in threading.enumerate()]
    assert not link.connected


# -- the emulated treadmill, on a pty and behind a serial-to-network box -----------------

QUICK_BELT = {"rate_kmh_per_s": 30.0}  # a belt that gets there in a tenth of a second


@pytest.mark.parametrize("tcp", [False, True], ids=["pty", "socket"])
def test_the_emulated_belt_follows_set_speed_in_any_unit(console_emulator, tcp):
    console = console_emulator(unit=0x12, tcp=tcp, **QUICK_BELT)  # 0.01 mph
    assert console.url.startswith("socket://") == tcp
    with link_on(console.url) as (link, speeds, states, answers):
        link.set_speed(3.0)
        wait(lambda: answers.calls, "SetSpeed's fate")
        wait(lambda: speeds.values[-1:] == [pytest.approx(3.0, abs=0.01)], "3 km/h")
        assert answers.values == [SpeedAnswer.ACCEPTED]
        assert states.values == ["ready", "in use"][-len(states.values) :]
        assert link.state is ConsoleState.IN_USE and link.speed_unit == 0x12
        assert link.repeated_toggles == 0 and link.rejected_frames == 0


def test_an_emulated_console_that_refuses_set_speed_keeps_its_belt(console_emulator):
    console = console_emulator(quirks=ConsoleQuirks(rejects_set_speed=True), **QUICK_BELT)
    console.set_target_kmh(4.0, abrupt=True)
    with link_on(console.url) as (link, speeds, _, answers):
        wait(lambda: speeds.calls, "a speed")
        link.set_speed(2.0)
        wait(lambda: answers.calls, "SetSpeed's fate")
        assert answers.values == [SpeedAnswer.REJECTED]
        assert speeds.values[-1] == pytest.approx(4.0)


def test_a_noisy_emulated_line_that_never_toggles_gives_only_the_belts_speed(console_emulator):
    quirks = ConsoleQuirks(garbage_every=2, never_toggles=True)
    console = console_emulator(quirks=quirks, **QUICK_BELT)
    console.set_target_kmh(5.0, abrupt=True)
    with link_on(console.url) as (link, speeds, _, _):
        wait(lambda: len(speeds.calls) >= 10, "ten speeds")
        assert link.rejected_frames >= 5 * 3  # noise, a bad checksum, a frame cut short
        assert link.repeated_toggles >= 8  # counted, not held against the answers
    assert speeds.values == [pytest.approx(5.0)] * len(speeds.values)


def test_an_emulated_console_without_get_speed_is_said_unsupported(console_emulator):
    quirks = ConsoleQuirks(status_only=frozenset({Command.GET_SPEED}))
    console = console_emulator(quirks=quirks, **QUICK_BELT)
    with link_on(console.url, what="[sensor.check]") as (link, speeds, _, _):
        wait(lambda: link.unsupported, "unsupported")
        console.set_target_kmh(3.0)
        wait(lambda: link.state is ConsoleState.IN_USE, "the workout seen starting")
    assert '[sensor.check] kind = "hall"' in link.unsupported
    assert speeds.calls == []


@pytest.mark.parametrize("tcp", [False, True], ids=["pty", "socket"])
def test_an_unplugged_emulated_console_is_said_so_and_read_again(console_emulator, tcp):
    console = console_emulator(tcp=tcp, **QUICK_BELT)
    console.set_target_kmh(3.0, abrupt=True)
    with link_on(console.url) as (link, speeds, _, _):
        wait(lambda: speeds.calls, "a speed")
        console.unplug()  # pty: no more answers; socket: the converter drops us
        wait(lambda: link.last_error, "an error")
        assert console.url in link.last_error
        console.plug()
        polls = link.polls
        wait(lambda: link.polls > polls and link.last_error is None, "answers again")
