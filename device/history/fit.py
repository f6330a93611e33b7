"""One stored session as a FIT activity file, the format Garmin Connect, Strava and the watch
apps import, written with Garmin's own SDK (garmin_fit_sdk.Encoder).

The file carries, in this order: file_id (an activity, manufacturer "development", product
FIT_PRODUCT, a serial number derived from the machine id), the developer data id and the field
description of the lap's direction, device_info (retrotread and its version), the records
(one per stored sample: timestamp, cumulative distance, speed in m/s when it was known; no
position) with the timer events among them (start at the session's start, stop_all at each
pause and at the end, start at each resume, so the timer leaves the pauses out), one lap per
segment (its direction, backward or forward, in the developer field: the lap message has no
name field), the session (walking, or running when the running cap was in force; sub_sport
treadmill; elapsed and timer time, distance, kcal, speeds) and the activity.

FIT times are whole seconds since 1989-12-31 00:00 UTC (garmin_fit_sdk.FIT_EPOCH_S); the
Encoder takes them as such. Durations are seconds, distances m, speeds m/s.
"""

from __future__ import annotations

import hashlib
import re
import time
import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from importlib import metadata
from typing import Any

from garmin_fit_sdk import BASE_TYPE, FIT_EPOCH_S, Encoder, Profile

from device.config.model import BackwardConfig
from device.core.speed import KMH_PER_MPS
from device.errors import RetrotreadError
from device.history.fit_timeline import (
    Lap,
    SampleRow,
    TimerSpan,
    laps,
    record_distances,
    timer_spans,
    used_running_cap,
)
from device.history.reader import EventRow, History, SegmentRow, SessionRow

MESG = Profile["mesg_num"]
FIT_PRODUCT = 1  # products of manufacturer "development" are ours to number: retrotread is 1
PRODUCT_NAME = "retrotread"
# The developer data's application id: one fixed UUID names retrotread's fields to every reader.
APPLICATION_ID = uuid.UUID("6f1c2a4e-5b7d-4e1a-9c3f-726574726f74").bytes
DIRECTION_KEY = 0  # the lap's direction: developer field 0 of developer data index 0
DIRECTION_FIELD_NAME = "direction"
RUNNING_CAP_KMH = BackwardConfig().running_cap_kmh  # the config's default, [backward]


class SessionRunning(RetrotreadError):
    """A session that has not ended has no totals to export yet."""

    @classmethod
    def of(cls, session: SessionRow) -> SessionRunning:
        return cls(f"Session {session.id} is still running; export it once it ends.")


def activity_file(
    session: SessionRow,
    segments: Sequence[SegmentRow],
    samples: Iterable[SampleRow],
    events: Iterable[EventRow],
    *,
    running_cap_kmh: float = RUNNING_CAP_KMH,
    utc_offset_s: int | None = None,
) -> bytes:
    """The bytes of the FIT activity file of an ended `session`, from its stored segments,
    samples (History.sample_rows) and events. `utc_offset_s` is the local time's offset at
    the session (the machine's own zone when None). SessionRunning while it runs."""
    if session.ended_at is None:
        raise SessionRunning.of(session)
    ended_at = max(session.ended_at, session.started_at)
    rows = list(samples)
    spans = timer_spans(session.started_at, ended_at, events)
    found_laps = laps(session, ended_at, segments, spans, rows)
    sport = "running" if used_running_cap(rows, running_cap_kmh) else "walking"
    offset = local_offset_s(ended_at) if utc_offset_s is None else utc_offset_s

    encoder = Encoder(field_descriptions={DIRECTION_KEY: _direction_description()})
    for mesg in _header(session):
        encoder.write_mesg(mesg)
    for mesg in _records_and_timer(rows, spans, session.distance_m):
        encoder.write_mesg(mesg)
    for index, lap in enumerate(found_laps):
        last = index == len(found_laps) - 1
        encoder.write_mesg(_lap(index, lap, sport, last=last))
    encoder.write_mesg(_session(session, ended_at, sport, len(found_laps)))
    encoder.write_mesg(
        {
            "mesg_num": MESG["ACTIVITY"],
            "timestamp": fit_time(ended_at),
            "total_timer_time": session.active_s,
            "num_sessions": 1,
            "local_timestamp": fit_time(ended_at) + offset,
            "type": "manual",
            "event": "activity",
            "event_type": "stop",
        }
    )
    return bytes(encoder.close())


def session_activity(
    history: History, session: SessionRow, *, running_cap_kmh: float = RUNNING_CAP_KMH
) -> bytes:
    """activity_file for a session read from `history`."""
    if session.ended_at is None:  # before reading hours of samples for nothing
        raise SessionRunning.of(session)
    return activity_file(
        session,
        history.segments(session.id),
        history.sample_rows(session.id),
        history.events(session.id),
        running_cap_kmh=running_cap_kmh,
    )


def fit_filename(session: SessionRow) -> str:
    """retrotread-<machine>-<session id>-<YYYYMMDD-HHMM>.fit, the start in the local time."""
    machine = re.sub(r"[^A-Za-z0-9_-]+", "-", session.machine_id) or "treadmill"
    started = time.strftime("%Y%m%d-%H%M", time.localtime(session.started_at))
    return f"retrotread-{machine}-{session.id}-{started}.fit"


def fit_time(epoch: float) -> int:
    """Epoch seconds as a FIT timestamp: whole seconds since 1989-12-31 00:00 UTC."""
    return int(epoch) - FIT_EPOCH_S


def local_offset_s(epoch: float) -> int:
    """The machine's local UTC offset at `epoch`, in seconds (summer time included)."""
    offset = datetime.fromtimestamp(epoch, UTC).astimezone().utcoffset()
    return 0 if offset is None else int(offset.total_seconds())


def serial_number(machine_id: str) -> int:
    """A serial number that stays the same for one machine id across files and versions:
    the first four bytes of its SHA-256 (a uint32z, where 0 means none, so never 0)."""
    digest = hashlib.sha256(machine_id.encode()).digest()
    return int.from_bytes(digest[:4], "big") or 1


def software_version() -> float | None:
    """retrotread's version as FIT's software_version (major.minor), None if unknown."""
    try:
        found = re.match(r"(\d+)\.(\d+)", metadata.version("retrotread"))
    except metadata.PackageNotFoundError:
        return None
    return float(f"{found.group(1)}.{found.group(2)}") if found else None


def _direction_description() -> dict[str, Any]:
    return {
        "developer_data_id_mesg": _developer_data_id(),
        "field_description_mesg": _direction_field(),
    }


def _developer_data_id() -> dict[str, Any]:
    return {
        "mesg_num": MESG["DEVELOPER_DATA_ID"],
        "application_id": list(APPLICATION_ID),
        "application_version": 1,
        "developer_data_index": 0,
    }


def _direction_field() -> dict[str, Any]:
    return {
        "mesg_num": MESG["FIELD_DESCRIPTION"],
        "developer_data_index": 0,
        "field_definition_number": DIRECTION_KEY,
        "fit_base_type_id": BASE_TYPE["STRING"],
        "field_name": DIRECTION_FIELD_NAME,
        "native_mesg_num": MESG["LAP"],
    }


def _header(session: SessionRow) -> list[dict[str, Any]]:
    """file_id, the developer field's declaration, device_info."""
    serial = serial_number(session.machine_id)
    created = fit_time(session.started_at)  # as a watch does: the file begins with the walk
    device: dict[str, Any] = {
        "mesg_num": MESG["DEVICE_INFO"],
        "timestamp": created,
        "device_index": "creator",
        "manufacturer": "development",
        "product": FIT_PRODUCT,
        "product_name": PRODUCT_NAME,
        "serial_number": serial,
        "software_version": software_version(),  # None: the Encoder leaves it out
    }
    file_id = {
        "mesg_num": MESG["FILE_ID"],
        "type": "activity",
        "manufacturer": "development",
        "product": FIT_PRODUCT,
        "product_name": PRODUCT_NAME,
        "serial_number": serial,
        "time_created": created,
    }
    return [file_id, _developer_data_id(), _direction_field(), device]


def _records_and_timer(
    rows: Sequence[SampleRow], spans: Sequence[TimerSpan], distance_m: float
) -> Iterable[dict[str, Any]]:
    """The records in time order with each timer event before the first record at or after
    its time."""
    timer = [("start", span.start) for span in spans] + [("stop_all", span.end) for span in spans]
    timer.sort(key=lambda event: event[1])  # a stop and the next start at one time keep order
    pending = iter(timer)
    upcoming = next(pending, None)
    for (t, speed_kmh, *_), metres in zip(rows, record_distances(rows, distance_m), strict=True):
        while upcoming is not None and upcoming[1] <= t:
            yield _timer_event(*upcoming)
            upcoming = next(pending, None)
        record: dict[str, Any] = {
            "mesg_num": MESG["RECORD"],
            "timestamp": fit_time(t),
            "distance": metres,
        }
        if speed_kmh is not None:
            record["speed"] = speed_kmh / KMH_PER_MPS
        yield record
    while upcoming is not None:
        yield _timer_event(*upcoming)
        upcoming = next(pending, None)


def _timer_event(event_type: str, t: float) -> dict[str, Any]:
    return {
        "mesg_num": MESG["EVENT"],
        "timestamp": fit_time(t),
        "event": "timer",
        "event_type": event_type,
    }


def _lap(index: int, lap: Lap, sport: str, *, last: bool) -> dict[str, Any]:
    mesg: dict[str, Any] = {
        "mesg_num": MESG["LAP"],
        "message_index": index,
        "timestamp": fit_time(lap.end),
        "start_time": fit_time(lap.start),
        "event": "lap",
        "event_type": "stop",
        # a lap ends where the walker turned round (the DIRECTION button) or the session ended
        "lap_trigger": "session_end" if last else "manual",
        "total_elapsed_time": lap.end - lap.start,
        "total_timer_time": lap.timer_s,
        "total_distance": lap.distance_m,
        "sport": sport,
        "sub_sport": "treadmill",
    }
    if lap.timer_s > 0:
        mesg["avg_speed"] = lap.distance_m / lap.timer_s
    if lap.max_speed_kmh is not None:
        mesg["max_speed"] = lap.max_speed_kmh / KMH_PER_MPS
    if lap.mode is not None:
        mesg["developer_fields"] = {DIRECTION_KEY: lap.mode.value}
    return mesg


def _session(session: SessionRow, ended_at: float, sport: str, num_laps: int) -> dict[str, Any]:
    mesg: dict[str, Any] = {
        "mesg_num": MESG["SESSION"],
        "message_index": 0,
        "timestamp": fit_time(ended_at),
        "start_time": fit_time(session.started_at),
        "event": "session",
        "event_type": "stop",
        "trigger": "activity_end",
        "sport": sport,
        "sub_sport": "treadmill",
        "total_elapsed_time": ended_at - session.started_at,
        "total_timer_time": session.active_s,
        "total_distance": session.distance_m,
        "max_speed": session.top_speed_kmh / KMH_PER_MPS,
        "first_lap_index": 0,
        "num_laps": num_laps,
    }
    if session.active_s > 0:
        mesg["avg_speed"] = session.distance_m / session.active_s
    if session.kcal is not None:
        mesg["total_calories"] = round(session.kcal)
    return mesg
