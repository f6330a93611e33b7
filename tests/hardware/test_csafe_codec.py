"""What a CSAFE console puts on the wire and what we make of it: the worked examples of the
reference byte for byte, every speed and distance unit, and a reader that skips whatever a
noisy RS-232 line brings without ever reading a wrong speed."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from device.core.console import ConsoleState
from device.hardware.csafe_codec import (
    KMH_PER_SPEED_UNIT,
    M_PER_DISTANCE_UNIT,
    MAX_FRAME_BYTES,
    MAX_READABLE_KMH,
    STATES,
    Command,
    Frame,
    FrameError,
    FrameReader,
    Item,
    PreviousFrame,
    Response,
    Status,
    checksum,
    encode_commands,
    encode_frame,
    encode_response,
    long,
    parse_request,
    parse_response,
    read_distance,
    read_speed,
    request,
    set_speed,
    short,
    status_byte,
)

FUZZ = settings(max_examples=200, deadline=None)
IN_USE_AT_6_5_KMH = bytes.fromhex("F1 85 A5 03 41 00 31 53 F2")
# A Life Fitness cross-trainer's logged answers (protocols.md), status 0x09: offline.
LIFE_FITNESS_VERSION = bytes.fromhex("F1 09 91 05 09 02 06 09 0B 92 F2")
LIFE_FITNESS_HORIZONTAL = bytes.fromhex("F1 09 A1 03 34 00 23 BC F2")
LIFE_FITNESS_SPEED_AS_LOGGED = bytes.fromhex("F1 09 A5 03 4F 00 52 32 F2")
STATUS_ONLY = bytes.fromhex("F1 09 09 F2")


def read_one(wire: bytes) -> Frame:
    reader = FrameReader()
    frames = reader.feed(wire)
    assert reader.total_skipped == 0, reader.counts
    assert len(frames) == 1
    return frames[0]


def answer(wire: bytes) -> Response:
    return parse_response(read_one(wire).contents)


def speed_answer(kmh_units: int, unit: int = 0x31, status: int = 0x85) -> bytes:
    data = kmh_units.to_bytes(2, "little") + bytes((unit,))
    return encode_response(status, [Item(Command.GET_SPEED, data)])


# --- the worked examples -----------------------------------------------------------------


def test_get_speed_request_is_f1_a5_a5_f2():
    assert request(short(Command.GET_SPEED)) == bytes.fromhex("F1 A5 A5 F2")


def test_console_in_use_answers_6_5_kmh():
    response = answer(IN_USE_AT_6_5_KMH)
    assert response.status == Status(True, PreviousFrame.OK, ConsoleState.IN_USE, 0x85)
    speed = response.item(Command.GET_SPEED)
    assert speed == Item(Command.GET_SPEED, bytes.fromhex("41 00 31"))
    assert read_speed(speed.data) == (pytest.approx(6.5), 0x31)
    assert checksum(bytes.fromhex("85 A5 03 41 00 31")) == 0x53
    assert speed_answer(65) == IN_USE_AT_6_5_KMH


def test_set_speed_24_2_kmh_stuffs_the_f2_of_its_value():
    item = set_speed(24.2)
    assert encode_commands([item]) == bytes.fromhex("25 03 F2 00 31")
    assert checksum(bytes.fromhex("25 03 F2 00 31")) == 0xE5
    wire = request(item)
    assert wire == bytes.fromhex("F1 25 03 F3 02 00 31 E5 F2")
    # the emulator's side: the console reads it back as the same command
    assert parse_request(read_one(wire).contents) == (Item(Command.SET_SPEED, b"\xf2\x00\x31"),)


def test_life_fitness_version_answer_is_five_bytes():
    assert request(short(Command.GET_VERSION)) == bytes.fromhex("F1 91 91 F2")
    response = answer(LIFE_FITNESS_VERSION)
    assert response.status.state is ConsoleState.OFFLINE
    assert response.items == (Item(Command.GET_VERSION, bytes.fromhex("09 02 06 09 0B")),)


def test_life_fitness_horizontal_is_520_m():
    assert request(short(Command.GET_HORIZONTAL)) == bytes.fromhex("F1 A1 A1 F2")
    horizontal = answer(LIFE_FITNESS_HORIZONTAL).item(Command.GET_HORIZONTAL)
    assert horizontal is not None
    assert read_distance(horizontal.data) == (pytest.approx(520.0), 0x23)


def test_life_fitness_speed_in_rpm_is_no_belt_speed():
    # The logged bytes check out only with the toggle bit set (status 0x89: the console was
    # toggling 09/89); as transcribed with 0x09 they fail their checksum and are skipped.
    reader = FrameReader()
    assert reader.feed(LIFE_FITNESS_SPEED_AS_LOGGED) == []
    assert reader.counts.bad_checksum == 1
    sent = bytes.fromhex("F1 89 A5 03 4F 00 52 32 F2")
    speed = answer(sent).item(Command.GET_SPEED)
    assert speed == Item(Command.GET_SPEED, bytes.fromhex("4F 00 52"))
    assert read_speed(speed.data) is None


def test_unsupported_command_is_answered_with_the_status_byte_alone():
    response = answer(STATUS_ONLY)
    assert response.items == ()
    assert response.item(Command.GET_SPEED) is None
    assert response.status.state is ConsoleState.OFFLINE
    assert encode_response(0x09, []) == STATUS_ONLY


# --- units --------------------------------------------------------------------------------


SPEED_CASES = [
    (0x10, 5, 8.04672),  # mph
    (0x11, 32, 5.1499008),  # 0.1 mph
    (0x12, 320, 5.1499008),  # 0.01 mph
    (0x30, 6, 6.0),  # km/h
    (0x31, 65, 6.5),  # 0.1 km/h
    (0x32, 650, 6.5),  # 0.01 km/h
    (0x33, 100, 6.0),  # m/min
]
DISTANCE_CASES = [
    (0x01, 2, 3218.688),  # mile
    (0x02, 5, 804.672),  # 0.1 mile
    (0x03, 50, 804.672),  # 0.01 mile
    (0x04, 500, 804.672),  # 0.001 mile
    (0x05, 1000, 304.8),  # ft
    (0x0A, 100, 304.8),  # 10 ft
    (0x21, 3, 3000.0),  # km
    (0x22, 52, 5200.0),  # 0.1 km
    (0x23, 52, 520.0),  # 0.01 km
    (0x24, 520, 520.0),  # m
    (0x25, 5200, 520.0),  # 0.1 m
    (0x26, 52000, 520.0),  # cm
]


def test_the_cases_cover_every_unit():
    assert sorted(unit for unit, _, _ in SPEED_CASES) == sorted(KMH_PER_SPEED_UNIT)
    assert sorted(unit for unit, _, _ in DISTANCE_CASES) == sorted(M_PER_DISTANCE_UNIT)


@pytest.mark.parametrize(("unit", "value", "kmh"), SPEED_CASES)
def test_belt_speed_in_every_unit(unit: int, value: int, kmh: float):
    assert read_speed(value.to_bytes(2, "little") + bytes((unit,))) == (pytest.approx(kmh), unit)
    # set in the same unit, it reads back to within half a step of the unit
    sent = read_speed(set_speed(kmh, unit).data)
    assert sent is not None
    assert sent[0] == pytest.approx(kmh, abs=KMH_PER_SPEED_UNIT[unit] / 2)


@pytest.mark.parametrize(("unit", "value", "metres"), DISTANCE_CASES)
def test_distance_in_every_unit(unit: int, value: int, metres: float):
    data = value.to_bytes(2, "little") + bytes((unit,))
    assert read_distance(data) == (pytest.approx(metres), unit)


def test_speeds_that_are_no_belt_speed_read_as_none():
    assert read_speed(bytes.fromhex("4F 00 52")) is None  # rpm
    assert read_speed(bytes.fromhex("41 00")) is None  # too short
    assert read_speed(bytes.fromhex("41 00 31 00")) is None  # too long
    assert read_speed(bytes.fromhex("FF FF 10")) is None  # 65535 mph: corruption, not a belt
    assert read_speed(bytes.fromhex("FF FF 32")) == (pytest.approx(MAX_READABLE_KMH), 0x32)
    assert read_distance(bytes.fromhex("34 00 99")) is None


def test_set_speed_refuses_what_no_unit_can_carry():
    with pytest.raises(ValueError, match="0x52"):
        set_speed(5.0, 0x52)
    for kmh in (-0.1, 655.36, math.nan, math.inf):
        with pytest.raises(ValueError):
            set_speed(kmh, 0x32)
    assert set_speed(0.0).data == bytes.fromhex("00 00 31")


# --- status byte --------------------------------------------------------------------------


def test_status_byte_round_trips_every_toggle_previous_and_state():
    for toggle in (False, True):
        for previous in PreviousFrame:
            for state in STATES.values():
                byte = status_byte(toggle, previous, state)
                assert Status.from_byte(byte) == Status(toggle, previous, state, byte)


def test_a_state_nibble_no_state_has_reads_as_none():
    assert Status.from_byte(0x04).state is None
    assert Status.from_byte(0x9F).state is None
    assert Status.from_byte(0x9F).previous is PreviousFrame.REJECTED


# --- framing ------------------------------------------------------------------------------


def test_a_checksum_that_is_a_flag_is_stuffed_too():
    # 22.9 km/h: contents 25 03 E5 00 31, whose XOR is 0xF2
    wire = request(set_speed(22.9))
    assert wire == bytes.fromhex("F1 25 03 E5 00 31 F3 02 F2")
    assert parse_request(read_one(wire).contents) == (set_speed(22.9),)


def test_extended_frame_carries_its_addresses_stuffed():
    contents = encode_commands([short(Command.GET_SPEED)])
    wire = encode_frame(contents, address=(0xF1, 0x00))
    assert wire == bytes.fromhex("F0 F3 01 00 A5 A5 F2")
    assert read_one(wire) == Frame(contents, (0xF1, 0x00))
    assert read_one(request(short(Command.GET_SPEED))).address is None


def test_commands_are_encoded_short_alone_and_long_with_a_length():
    items = [short(Command.GET_STATUS), long(Command.SET_GRADE, b"\x20\x00\x4a")]
    assert encode_commands(items) == bytes.fromhex("80 28 03 20 00 4A")
    assert parse_request(encode_commands(items)) == tuple(items)
    with pytest.raises(ValueError, match="0xA5"):
        encode_commands([Item(Command.GET_SPEED, b"\x01")])
    with pytest.raises(ValueError, match="0x28"):
        encode_commands([long(Command.SET_GRADE, bytes(256))])
    with pytest.raises(ValueError):
        encode_frame(b"")


@pytest.mark.parametrize(
    ("contents", "reason"),
    [
        (b"", "empty"),
        (bytes.fromhex("85 A5"), "truncated item"),  # no length byte
        (bytes.fromhex("85 A5 03 41 00"), "truncated item"),  # length runs past
    ],
)
def test_answers_that_do_not_hold_together_are_frame_errors(contents: bytes, reason: str):
    with pytest.raises(FrameError) as raised:
        parse_response(contents)
    assert raised.value.reason == reason
    assert isinstance(raised.value, ValueError)


def test_a_request_whose_length_runs_past_is_a_frame_error():
    with pytest.raises(FrameError, match="truncated item"):
        parse_request(bytes.fromhex("80 25 03 F2 00"))


def test_the_largest_frame_fits_and_one_byte_more_does_not():
    # 6 bytes of frame around the data: flags, status, command, length, checksum
    biggest = encode_response(0x85, [Item(Command.GET_VERSION, bytes(MAX_FRAME_BYTES - 6))])
    assert len(biggest) == MAX_FRAME_BYTES
    assert read_one(biggest).contents[0] == 0x85
    with pytest.raises(ValueError, match="over 96"):
        encode_response(0x85, [Item(Command.GET_VERSION, bytes(MAX_FRAME_BYTES - 5))])


# --- the reader on a noisy line -------------------------------------------------------------


def read_between_good_answers(flawed: bytes) -> FrameReader:
    """Feeds a 6.5 km/h answer, `flawed`, and a 7.0 km/h answer; both answers must come
    through. Returns the reader for its counts."""
    reader = FrameReader()
    frames = reader.feed(speed_answer(65) + flawed + speed_answer(70))
    speeds = [read_speed(parse_response(f.contents).items[0].data) for f in frames]
    assert speeds == [(pytest.approx(6.5), 0x31), (pytest.approx(7.0), 0x31)]
    return reader


def test_bad_checksum_is_counted_and_skipped():
    reader = read_between_good_answers(bytes.fromhex("F1 85 A5 03 41 00 31 54 F2"))
    assert reader.counts.bad_checksum == 1
    assert reader.total_skipped == 1


def test_stuffing_byte_followed_by_anything_but_0_to_3_is_bad_stuffing():
    reader = read_between_good_answers(bytes.fromhex("F1 25 03 F3 07 00 31 E5 F2"))
    assert reader.counts.bad_stuffing == 1
    assert reader.total_skipped == 1  # the rest of that frame is not noise as well
    # a dangling F3: its F2 still ends the frame, so the byte after it is noise
    reader = read_between_good_answers(bytes.fromhex("F1 85 A5 F3 F2 00"))
    assert reader.counts.bad_stuffing == 1
    assert reader.counts.noise == 1
    assert reader.total_skipped == 2


def test_start_flag_inside_a_frame_drops_the_frame_so_far():
    reader = read_between_good_answers(bytes.fromhex("F1 85 A5 03 41"))
    assert reader.counts.truncated == 1
    assert reader.total_skipped == 1


def test_end_flag_with_nothing_before_it_is_truncated():
    reader = read_between_good_answers(bytes.fromhex("F1 F2 F1 00 F2"))
    assert reader.counts.truncated == 2  # no contents; a checksum alone
    assert reader.total_skipped == 2


def test_overlong_frame_is_truncated_and_its_tail_skipped():
    # one byte over: 97 on the wire
    reader = read_between_good_answers(b"\xf1" + bytes(MAX_FRAME_BYTES - 1) + b"\xf2")
    assert reader.counts.truncated == 1
    assert reader.total_skipped == 1


def test_noise_between_frames_is_counted_by_the_byte():
    reader = read_between_good_answers(b"\x00\xffhello\xf2")
    assert reader.counts.noise == 8
    assert reader.total_skipped == 8


def test_a_frame_split_byte_by_byte_is_read_once_whole():
    reader = FrameReader()
    wire = speed_answer(65) + request(set_speed(24.2)) + speed_answer(70)
    frames = [frame for b in wire for frame in reader.feed(bytes((b,)))]
    assert [f.contents for f in frames] == [
        bytes.fromhex("85 A5 03 41 00 31"),
        bytes.fromhex("25 03 F2 00 31"),
        bytes.fromhex("85 A5 03 46 00 31"),
    ]
    assert reader.total_skipped == 0


# --- general rules ------------------------------------------------------------------------

items = st.lists(
    st.builds(Item, command=st.integers(0, 255), data=st.binary(max_size=12)), max_size=3
)
chunk_sizes = st.lists(st.integers(1, 9), min_size=1, max_size=8)


def feed_in_chunks(reader: FrameReader, wire: bytes, sizes: list[int]) -> list[Frame]:
    frames: list[Frame] = []
    i = 0
    while i < len(wire):
        size = sizes[i % len(sizes)]
        frames += reader.feed(wire[i : i + size])
        i += size
    return frames


def assert_no_wrong_speed(frames: list[Frame]) -> None:
    for frame in frames:
        try:
            response = parse_response(frame.contents)
        except FrameError:
            continue
        for item in response.items:
            reading = read_speed(item.data)
            if reading is not None:
                assert math.isfinite(reading[0])
                assert 0 <= reading[0] <= MAX_READABLE_KMH


@FUZZ
@given(status=st.integers(0, 255), items=items, sizes=chunk_sizes)
def test_every_answer_reads_back_as_sent(status: int, items: list[Item], sizes: list[int]):
    reader = FrameReader()
    frames = feed_in_chunks(reader, encode_response(status, items), sizes)
    assert len(frames) == 1
    response = parse_response(frames[0].contents)
    assert response.status == Status.from_byte(status)
    assert response.items == tuple(items)
    assert reader.total_skipped == 0


@FUZZ
@given(garbage=st.binary(max_size=400), sizes=chunk_sizes)
def test_garbage_never_raises_and_never_reads_a_wrong_speed(garbage: bytes, sizes: list[int]):
    reader = FrameReader()
    frames = feed_in_chunks(reader, garbage, sizes)
    assert all(f.contents for f in frames)
    assert_no_wrong_speed(frames)
    # whatever state the garbage left the reader in, the console's next answer is read
    assert [f.contents for f in reader.feed(IN_USE_AT_6_5_KMH)] == [IN_USE_AT_6_5_KMH[1:-2]]


good_answers = st.lists(
    st.builds(
        speed_answer,
        st.integers(0, 0xFFFF),
        st.sampled_from(sorted(KMH_PER_SPEED_UNIT)),
        st.integers(0, 255),
    ),
    min_size=1,
    max_size=5,
)
# Noise leaning on the flag bytes, where a reader goes wrong.
line_noise = st.binary(max_size=40) | st.lists(
    st.sampled_from([0xF0, 0xF1, 0xF2, 0xF3, 0x00, 0x03, 0x85, 0xA5]), max_size=40
).map(bytes)


@FUZZ
@given(answers=good_answers, noise=st.lists(line_noise, min_size=6, max_size=6), sizes=chunk_sizes)
def test_good_answers_come_through_any_noise_between_them(
    answers: list[bytes], noise: list[bytes], sizes: list[int]
):
    """Every answer sent intact is read, in order, whatever lies between them. Any other frame
    read is one the noise happened to hold with a passing checksum (a rare collision no
    framing can rule out); even then no speed read is outside 0..655.35 km/h or not finite."""
    wire = noise[0] + b"".join(a + noise[i + 1] for i, a in enumerate(answers))
    frames = feed_in_chunks(FrameReader(), wire, sizes)
    expected = [read_one(a).contents for a in answers]
    read = iter(f.contents for f in frames)
    assert all(any(c == e for c in read) for e in expected)  # a subsequence, in order
    assert_no_wrong_speed(frames)
