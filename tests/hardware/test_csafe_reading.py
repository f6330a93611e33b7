"""What a CSAFE console's answers mean, read without a port or a thread: the belt speed and
distance or why they are skipped, machine state changes, a console that gives no speed,
SetSpeed's fate from the next answer and frame toggles that do not alternate."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from device.core.console import ConsoleState, SpeedAnswer
from device.hardware.csafe_codec import Command, Item, PreviousFrame, Response, Status, status_byte
from device.hardware.csafe_reading import (
    STATUS_ONLY_BEFORE_PROBE,
    Ask,
    Conversation,
    NoAnswer,
    Rejected,
    Speed,
    fate,
    read_distance_m,
    read_speed,
    silence_sentence,
    unsupported_sentence,
)

SIX_AND_A_HALF = bytes.fromhex("410031")  # GetSpeed's data: 65 x 0.1 km/h
FIVE_TWENTY_M = bytes.fromhex("340023")  # GetHorizontal's: 52 x 0.01 km


def answer(
    state: ConsoleState = ConsoleState.IN_USE,
    *,
    speed: bytes | None = SIX_AND_A_HALF,
    distance: bytes | None = FIVE_TWENTY_M,
    previous: PreviousFrame = PreviousFrame.OK,
    toggle: bool = False,
) -> Response:
    """The console's answer to a poll; speed or distance None: the answer lacks that item."""
    items = [Item(Command.GET_SPEED, speed)] if speed is not None else []
    items += [Item(Command.GET_HORIZONTAL, distance)] if distance is not None else []
    return Response(Status.from_byte(status_byte(toggle, previous, state)), tuple(items))


@pytest.mark.parametrize(
    ("data", "read"),
    [
        (SIX_AND_A_HALF, Speed(6.5, 0x31)),
        (bytes.fromhex("FA0012"), Speed(pytest.approx(4.02336), 0x12)),  # 250 x 0.01 mph
        (bytes.fromhex("4F0052"), Rejected("a GetSpeed answer in unit 0x52, no belt speed")),
        (bytes.fromhex("F40131"), Rejected("a GetSpeed answer past 40 km/h")),  # 50.0 km/h
        (bytes.fromhex("4100"), Rejected("a GetSpeed answer in not 3 bytes")),
    ],
)
def test_a_speed_is_read_in_kmh_or_rejected_with_its_cause(data, read):
    assert read_speed(answer(speed=data)) == read


def test_an_answer_without_get_speed_has_no_speed_to_reject():
    assert read_speed(answer(speed=None)) is None


def test_distance_is_read_in_metres_or_rejected():
    assert read_distance_m(answer()) == pytest.approx(520.0)
    unknown = Rejected("a GetHorizontal answer in no known distance unit")
    assert read_distance_m(answer(distance=bytes.fromhex("340099"))) == unknown
    assert read_distance_m(answer(distance=None)) is None


@given(st.sampled_from(PreviousFrame))
def test_set_speed_is_accepted_only_when_the_next_answer_says_ok(previous):
    accepted = fate(answer(previous=previous)) is SpeedAnswer.ACCEPTED
    assert accepted == (previous is PreviousFrame.OK)


@given(st.lists(st.sampled_from(ConsoleState), max_size=20))
def test_a_state_is_reported_once_per_change_not_once_per_answer(states):
    talk = Conversation()
    reported = [talk.heard(Ask.POLL, 0.0, answer(state)).state for state in states]
    changes = [now for before, now in itertools.pairwise([None, *states]) if now != before]
    assert [state for state in reported if state is not None] == changes
    assert talk.state == (states[-1] if states else None) and talk.polls == len(states)


def test_a_console_that_answers_with_its_status_only_is_probed_then_only_followed():
    talk = Conversation()
    for _ in range(STATUS_ONLY_BEFORE_PROBE):
        assert talk.next_ask(set_speed_wanted=False) is Ask.POLL
        assert talk.heard(Ask.POLL, 0.0, answer(speed=None, distance=None)).speed is None
    assert talk.next_ask(set_speed_wanted=False) is Ask.PROBE
    assert talk.heard(Ask.PROBE, 0.0, answer(speed=None, distance=None)).unsupported
    assert talk.next_ask(set_speed_wanted=False) is Ask.STATUS and talk.unsupported
    assert talk.next_ask(set_speed_wanted=True) is Ask.SET_SPEED  # it may still take one

    talk.reopened()  # another console behind the cable, perhaps: ask it afresh
    assert talk.next_ask(set_speed_wanted=False) is Ask.POLL and talk.unsupported
    talk.heard(Ask.POLL, 7.0, answer())
    assert talk.last_speed == (7.0, Speed(6.5, 0x31)) and not talk.unsupported


def test_a_rejected_speed_still_counts_as_a_speed_said():
    talk = Conversation()
    for _ in range(STATUS_ONLY_BEFORE_PROBE + 1):
        heard = talk.heard(Ask.POLL, 0.0, answer(speed=bytes.fromhex("4F0052")))
        assert isinstance(heard.speed, Rejected) and heard.distance_m == pytest.approx(520.0)
    assert talk.next_ask(set_speed_wanted=False) is Ask.POLL  # no probe: it does say a speed
    assert talk.last_speed is None and talk.distance_m == pytest.approx(520.0)


@pytest.mark.parametrize(
    ("previous", "verdict"),
    [(PreviousFrame.OK, SpeedAnswer.ACCEPTED), (PreviousFrame.NOT_READY, SpeedAnswer.REJECTED)],
)
def test_the_answer_after_set_speed_carries_its_fate_once(previous, verdict):
    talk = Conversation()
    assert talk.heard(Ask.SET_SPEED, 0.0, answer(speed=None, distance=None)).fate is None
    assert talk.heard(Ask.POLL, 0.1, answer(previous=previous)).fate is verdict
    assert talk.heard(Ask.POLL, 0.2, answer()).fate is None


def test_a_set_speed_whose_answers_go_missing_is_unanswered():
    talk = Conversation()
    assert talk.missed(Ask.SET_SPEED, NoAnswer.SILENCE) == 1  # no answer to SetSpeed itself
    talk.heard(Ask.SET_SPEED, 0.0, answer(speed=None, distance=None))
    assert talk.missed(Ask.POLL, NoAnswer.FLAWED) == 1  # its verdict lost with that answer
    assert talk.missed(Ask.POLL, NoAnswer.SILENCE) == 0
    talk.heard(Ask.SET_SPEED, 0.0, answer(speed=None, distance=None))
    assert talk.hung_up() and not talk.hung_up()  # the port closed before its verdict came


def test_missed_answers_count_as_timeouts_unless_a_broken_frame_came():
    talk = Conversation()
    for why in (NoAnswer.SILENCE, NoAnswer.FLAWED, NoAnswer.NOISE):
        talk.missed(Ask.POLL, why)
    assert (talk.timeouts, talk.unanswered, talk.heard_bytes) == (2, 3, True)
    talk.heard(Ask.POLL, 0.0, answer())
    assert (talk.unanswered, talk.heard_bytes) == (0, False)


@given(st.lists(st.booleans(), min_size=1, max_size=30))
def test_toggles_that_do_not_alternate_are_counted_and_nothing_more(toggles):
    talk = Conversation()
    for toggle in toggles:
        assert talk.heard(Ask.POLL, 0.0, answer(toggle=toggle)).speed == Speed(6.5, 0x31)
    repeats = sum(a == b for a, b in itertools.pairwise(toggles))
    assert talk.repeated_toggles == repeats


def test_a_lost_answer_leaves_no_toggle_to_compare_with():
    talk = Conversation()
    talk.heard(Ask.POLL, 0.0, answer(toggle=True))
    talk.missed(Ask.POLL, NoAnswer.SILENCE)
    talk.heard(Ask.POLL, 0.0, answer(toggle=True))
    assert talk.repeated_toggles == 0


def test_the_sentences_name_the_port_the_config_table_and_the_fix():
    assert unsupported_sentence("/dev/ttyUSB0", "[sensor]") == (
        "the console on /dev/ttyUSB0 answers GetSpeed with its status only: it does not give "
        'its speed over CSAFE; fit a hall sensor ([sensor] kind = "hall").'
    )
    babble = silence_sentence("/dev/ttyUSB0", "[sensor.check]", 10, heard_bytes=True)
    assert "(10 frames in a row" in babble and "[sensor.check] baud" in babble
    silent = silence_sentence("/dev/ttyUSB0", "[sensor]", 10, heard_bytes=False)
    assert silent.startswith("the console on /dev/ttyUSB0 does not answer")
