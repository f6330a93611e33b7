"""Sessions as FIT activity files: walked through the simulator (or written by the daemon's own
Store) into a real history file, exported by device.history.fit, and read back by Garmin's
Decoder and by fitdecode, which must both read every file cleanly and agree with the history
on the totals."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.fit_sessions import (
    T0,
    WALK_PAUSE_TURN,
    ReadBack,
    Stretch,
    close_to,
    read_both,
    record_walk,
    simulate_into,
)

from device.core.modes import Mode
from device.history.fit import (
    FIT_PRODUCT,
    SessionRunning,
    activity_file,
    fit_time,
    serial_number,
    session_activity,
)
from device.history.reader import History, SessionRow
from device.history.store import Store

B, F = Mode.BACKWARD, Mode.FORWARD


def exported(db_path: Path, session_id: int, **options: float) -> tuple[SessionRow, ReadBack]:
    with History(db_path) as history:
        row = history.session(session_id)
        assert row is not None
        return row, read_both(session_activity(history, row, **options))


def segments_of(db_path: Path, session_id: int) -> list[tuple[str, float]]:
    with History(db_path) as history:
        return [(s.mode.value, s.distance_m) for s in history.segments(session_id)]


def samples_of(db_path: Path, session_id: int) -> list[tuple]:
    with History(db_path) as history:
        return list(history.sample_rows(session_id))


def assert_totals_match(row: SessionRow, back: ReadBack) -> None:
    """The session message of both readers against the history's row, within 1 %."""
    assert row.ended_at is not None
    for session in back.one("session"):
        assert close_to(session["total_distance"], row.distance_m, floor=0.01)
        assert close_to(session["total_timer_time"], row.active_s, floor=0.001)
        assert close_to(session["total_elapsed_time"], row.ended_at - row.started_at,
                        floor=0.001)  # fmt: skip
        if row.kcal is None:
            assert "total_calories" not in session or session["total_calories"] is None
        else:
            assert close_to(session["total_calories"], row.kcal, floor=0.5)
    for activity in back.one("activity"):
        assert close_to(activity["total_timer_time"], row.active_s, floor=0.001)
        assert activity["num_sessions"] == 1


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "retrotread.db"


@pytest.fixture
def walked(db_path: Path) -> int:
    """Backward, a pause with the belt stopped, backward again, a turn, forward, START held."""
    (session_id,) = simulate_into(db_path, WALK_PAUSE_TURN)
    return session_id


def test_a_walk_with_a_pause_and_a_turn_is_a_treadmill_walk_to_both_readers(
    db_path: Path, walked: int
) -> None:
    row, back = exported(db_path, walked)
    assert_totals_match(row, back)
    for session in back.one("session"):
        assert (session["sport"], session["sub_sport"]) == ("walking", "treadmill")
        assert session["num_laps"] == 2 and session["first_lap_index"] == 0
        assert session["start_time"] == datetime.fromtimestamp(int(row.started_at), UTC)
        assert session["total_timer_time"] < session["total_elapsed_time"] - 20  # the drink
    for file_id in back.one("file_id"):
        assert (file_id["type"], file_id["manufacturer"]) == ("activity", "development")
        assert file_id["product"] == FIT_PRODUCT
        assert file_id["serial_number"] == serial_number("treadmill-1")
    assert "position_lat" not in back.fitdecode["record"][0]  # a treadmill goes nowhere


def test_each_segment_is_a_lap_with_its_direction_and_distance(db_path: Path, walked: int) -> None:
    _, back = exported(db_path, walked)
    segments = segments_of(db_path, walked)
    assert [mode for mode, _ in segments] == ["backward", "forward"]
    garmin, other = back.garmin["lap_mesgs"], back.fitdecode["lap"]
    assert [lap["developer_fields"][0] for lap in garmin] == ["backward", "forward"]
    assert [lap["direction"] for lap in other] == ["backward", "forward"]
    for laps in (garmin, other):
        assert len(laps) == len(segments)
        for lap, (_, metres) in zip(laps, segments, strict=True):
            assert close_to(lap["total_distance"], metres, floor=0.01)
            assert lap["sub_sport"] == "treadmill"
        # the pause was in the backward lap: its timer left it out, the forward one had none
        assert laps[0]["total_timer_time"] < laps[0]["total_elapsed_time"] - 20
        assert close_to(laps[1]["total_timer_time"], laps[1]["total_elapsed_time"], floor=0.01)


def test_the_laps_timers_add_up_to_the_sessions_timer(db_path: Path, walked: int) -> None:
    row, back = exported(db_path, walked)
    lap_timer = sum(lap["total_timer_time"] for lap in back.fitdecode["lap"])
    assert close_to(lap_timer, row.active_s, floor=0.01)


def test_the_timer_stops_at_the_pause_and_at_the_end_and_starts_at_the_resume(
    db_path: Path, walked: int
) -> None:
    _, back = exported(db_path, walked)
    with History(db_path) as history:
        stored = {e.kind.value: e.t for e in history.events(walked)}
    for events in (back.garmin["event_mesgs"], back.fitdecode["event"]):
        assert [(e["event"], e["event_type"]) for e in events] == [
            ("timer", "start"), ("timer", "stop_all"), ("timer", "start"), ("timer", "stop_all")
        ]  # fmt: skip
        moments = [e["timestamp"] for e in events]
        expected = [stored[kind] for kind in ("session_started", "session_paused",
                                              "session_resumed", "session_ended")]  # fmt: skip
        assert moments == [datetime.fromtimestamp(int(t), UTC) for t in expected]


def test_one_record_per_sample_its_distance_ending_on_the_pulse_counted_total(
    db_path: Path, walked: int
) -> None:
    row, back = exported(db_path, walked)
    samples = samples_of(db_path, walked)
    for records in (back.garmin["record_mesgs"], back.fitdecode["record"]):
        assert len(records) == len(samples) > 300
        distances = [r["distance"] for r in records]
        assert distances == sorted(distances)
        assert close_to(distances[-1], row.distance_m, floor=0.01)
        assert [r["timestamp"] for r in records] == [
            datetime.fromtimestamp(int(t), UTC) for t, *_ in samples
        ]
        assert [r["speed"] for r in records] == [
            pytest.approx(v / 3.6, abs=0.001) for _, v, *_ in samples
        ]  # m/s, from the km/h stored


def test_records_end_on_the_belts_pulse_count_not_on_the_speed_samples(db_path: Path) -> None:
    with Store(db_path) as store:  # the pulses counted 4 % more than the samples say
        sid = record_walk(store, [Stretch(B, 200, kmh=2.0)], pulses_per_sample_m=1.04)
    row, back = exported(db_path, sid)
    assert row.distance_m == pytest.approx(200 * 2.0 / 3.6 * 1.04)
    for records in (back.garmin["record_mesgs"], back.fitdecode["record"]):
        assert records[-1]["distance"] == pytest.approx(row.distance_m, abs=0.01)
        assert records[100]["distance"] == pytest.approx(row.distance_m / 2, rel=0.01)


def test_the_running_cap_in_force_makes_it_a_treadmill_run(db_path: Path) -> None:
    with Store(db_path) as store:
        ran = record_walk(store, [Stretch(B, 120, kmh=6.0, cap_kmh=6.0)])
        walked = record_walk(store, [Stretch(B, 120, kmh=5.4, cap_kmh=5.5)], start=T0 + 600)
    assert {s["sport"] for s in exported(db_path, ran)[1].one("session")} == {"running"}
    assert {s["sport"] for s in exported(db_path, walked)[1].one("session")} == {"walking"}
    # an operator who set [backward] running_cap_kmh = 5.5: 5.5 is running there
    _, lowered = exported(db_path, walked, running_cap_kmh=5.5)
    assert {s["sport"] for s in lowered.one("session")} == {"running"}
    assert {lap["sport"] for lap in lowered.fitdecode["lap"]} == {"running"}


def test_a_session_still_running_is_not_exported(db_path: Path) -> None:
    with Store(db_path) as store:
        open_id = record_walk(store, [Stretch(B, 30)], ended=False)
    with History(db_path) as history:
        row = history.session(open_id)
        assert row is not None and row.ended_at is None
        with pytest.raises(SessionRunning) as refused:
            session_activity(history, row)
        with pytest.raises(SessionRunning):
            activity_file(row, history.segments(open_id), [], [])
    assert str(refused.value) == f"Session {open_id} is still running; export it once it ends."


def test_a_session_without_samples_is_still_a_valid_activity(db_path: Path) -> None:
    with Store(db_path) as store:
        empty = record_walk(store, [Stretch(B, 0)], kcal=None)
    row, back = exported(db_path, empty)
    assert "record_mesgs" not in back.garmin and "record" not in back.fitdecode
    assert len(back.fitdecode["lap"]) == 1
    assert_totals_match(row, back)


def test_a_lost_sensor_gives_records_without_a_speed(db_path: Path) -> None:
    with Store(db_path) as store:
        sid = record_walk(store, [Stretch(B, 60, unknown_s=20), Stretch(F, 30, kmh=4.0)])
    _, back = exported(db_path, sid)
    for records in (back.garmin["record_mesgs"], back.fitdecode["record"]):
        unknown = [r for r in records if r.get("speed") is None]
        assert len(unknown) == 20
        assert all(r["distance"] is not None for r in unknown)  # the distance goes on


@pytest.fixture
def zone(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "Europe/Berlin")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_the_activitys_local_time_is_the_machines_at_the_session(db_path: Path, zone) -> None:
    with Store(db_path) as store:
        october = record_walk(store, [Stretch(B, 60)])  # summer time: UTC+2
        january = record_walk(store, [Stretch(B, 60)], start=T0 + 100 * 86400)  # UTC+1
    for sid, offset in ((october, 7200), (january, 3600)):
        row, back = exported(db_path, sid)
        assert row.ended_at is not None
        garmin, _ = back.one("activity")
        assert garmin["local_timestamp"] == fit_time(row.ended_at) + offset


def test_the_serial_number_stays_with_the_machine(db_path: Path) -> None:
    with Store(db_path) as store:
        first = record_walk(store, [Stretch(B, 10)])
        second = record_walk(store, [Stretch(B, 10)], start=T0 + 60)
        other = record_walk(store, [Stretch(B, 10)], start=T0 + 120, machine_id="treadmill-2")
    serials = [exported(db_path, sid)[1].one("file_id")[1]["serial_number"]
               for sid in (first, second, other)]  # fmt: skip
    assert serials[0] == serials[1] == serial_number("treadmill-1") != serials[2]
    assert serials[2] == serial_number("treadmill-2") != 0


def test_device_info_names_retrotread_and_its_version(db_path: Path, walked: int) -> None:
    _, back = exported(db_path, walked)
    major, minor = metadata.version("retrotread").split(".")[:2]
    for info in back.one("device_info"):
        assert info["product_name"] == "retrotread"
        assert info["manufacturer"] == "development"
        assert info["software_version"] == pytest.approx(float(f"{major}.{minor}"))


def test_the_same_session_gives_the_same_bytes(db_path: Path, walked: int) -> None:
    with History(db_path) as history:
        row = history.session(walked)
        assert row is not None
        assert session_activity(history, row) == session_activity(history, row)


# --- any session shape ---

stretches = st.builds(
    Stretch,
    mode=st.sampled_from([B, F]),
    walk_s=st.integers(0, 90),
    kmh=st.floats(0.5, 8.0).map(lambda v: round(v, 2)),
    unknown_s=st.integers(0, 10),
    pause_s=st.sampled_from([0, 0, 0, 3, 40]),
    cap_kmh=st.sampled_from([None, 2.0, 3.5, 6.0]),
).map(lambda s: s if s.unknown_s <= s.walk_s else Stretch(s.mode, s.walk_s, s.kmh, s.walk_s))


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(
    shape=st.lists(stretches, min_size=1, max_size=5),
    pulses=st.floats(0.95, 1.05),
    kcal=st.one_of(st.none(), st.floats(0.0, 900.0)),
)
def test_any_session_decodes_cleanly_and_keeps_its_totals(
    tmp_path_factory: pytest.TempPathFactory,
    shape: list[Stretch],
    pulses: float,
    kcal: float | None,
) -> None:
    db_path = tmp_path_factory.mktemp("fit") / "retrotread.db"
    with Store(db_path) as store:
        sid = record_walk(store, shape, pulses_per_sample_m=pulses, kcal=kcal)
    row, back = exported(db_path, sid)
    assert_totals_match(row, back)
    samples = samples_of(db_path, sid)
    segments = segments_of(db_path, sid)
    ran = any(cap is not None and cap >= 6.0 for _, _, cap, *_ in samples)
    for session in back.one("session"):
        assert session["sport"] == ("running" if ran else "walking")
        if any(s.pause_s for s in shape):
            assert session["total_timer_time"] < session["total_elapsed_time"]
    for laps, direction in ((back.garmin["lap_mesgs"], lambda lap: lap["developer_fields"][0]),
                            (back.fitdecode["lap"], lambda lap: lap["direction"])):  # fmt: skip
        assert [(direction(lap), lap["total_distance"]) for lap in laps] == [
            (mode, pytest.approx(metres, abs=0.01)) for mode, metres in segments
        ]
    records = back.fitdecode.get("record", [])
    assert len(records) == len(back.garmin.get("record_mesgs", [])) == len(samples)
    if records:
        assert close_to(records[-1]["distance"], row.distance_m, floor=0.01)
        assert [r["distance"] for r in records] == sorted(r["distance"] for r in records)
