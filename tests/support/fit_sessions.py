"""What the FIT export tests share: sessions recorded into a real history file (walked through
the simulator, or written row by row through the daemon's Store), and FIT files read back by
both readers, Garmin's own Decoder and the independent fitdecode, each of which must find the
file whole and free of errors.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import fitdecode
from garmin_fit_sdk import Decoder, Stream

from device.core.events import EventKind
from device.core.modes import EndReason, Mode, SessionState
from device.core.session import Totals
from device.core.speed import KMH_PER_MPS
from device.core.tick import Sample
from device.history.store import Store
from device.sim.scenario import parse_scenario
from device.sim.simulate import Simulation

T0 = 1_760_000_000.0  # an afternoon in October 2025, epoch seconds

# Five minutes and a bit: backward at 1.5 km/h, a drink with the belt stopped (the session
# pauses by itself 5 s after the belt stands and resumes when it runs again), then the walker
# turns round and walks forward at 4.5 km/h, and holds START to end.
WALK_PAUSE_TURN = [
    {"at": 0, "belt_kmh": 1.5},
    {"at": 3, "press": "start"},
    {"at": 90, "belt_kmh": 0},
    {"at": 130, "belt_kmh": 1.5},
    {"at": 200, "press": "direction"},
    {"at": 201, "belt_kmh": 4.5},
    {"at": 320, "press": "start", "hold": 2.5},
    {"at": 325, "end": True},
]


def simulate_into(
    db_path: Path | str,
    steps: list[dict[str, Any]],
    *,
    config: dict[str, Any] | None = None,
    wall0: float = T0,
) -> list[int]:
    """Walk `steps` (a scenario's [[step]] tables) through the simulator, the daemon's own
    Controller and Recorder, into the history file at `db_path`; the ids of its sessions."""
    scenario = parse_scenario({"config": config or {}, "step": steps})
    simulation = Simulation(scenario, Store(db_path), wall0=wall0)
    simulation.run()  # flushes and closes the store
    return simulation.recorder.session_ids


@dataclass(frozen=True)
class Stretch:
    """Part of a session as Store rows: `walk_s` seconds of 1 Hz samples facing `mode` at
    `kmh` (the last `unknown_s` of them with the speed unknown, a lost sensor), then a pause
    of `pause_s` seconds with the belt stopped. A change of mode from the stretch before is a
    turn: a new segment."""

    mode: Mode
    walk_s: int
    kmh: float = 2.0
    unknown_s: int = 0
    pause_s: int = 0
    cap_kmh: float | None = 2.0


def record_walk(store: Store, stretches: list[Stretch], *, start: float = T0,
                pulses_per_sample_m: float = 1.0, kcal: float | None = 12.0,
                ended: bool = True, machine_id: str = "treadmill-1") -> int:  # fmt: skip
    """One session written the way the daemon's Recorder writes it: the session and its first
    segment, a segment per turn, samples flushed as they come, pause and resume events, the
    totals at the end. Its distance is what the samples give times `pulses_per_sample_m` (the
    belt's pulses never agree with the speed samples exactly). A last stretch's pause ends the
    session paused (no resume, as a pause timeout does). Left open when not `ended`."""
    mode = stretches[0].mode
    sid = store.open_session(start, mode=mode, machine_id=machine_id)
    t, metres, top = start, 0.0, 0.0
    walked = {Mode.BACKWARD: 0.0, Mode.FORWARD: 0.0}
    for number, stretch in enumerate(stretches, 1):
        if stretch.mode is not mode:
            mode = stretch.mode
            store.start_segment(sid, t, mode)
        for second in range(stretch.walk_s):
            t += 1
            known = second < stretch.walk_s - stretch.unknown_s
            speed = stretch.kmh if known else None
            store.add_sample(sid, Sample(t, speed, mode, SessionState.RUNNING, stretch.cap_kmh))
            store.maybe_flush(t)
            walked[mode] += 1
            metres += stretch.kmh / KMH_PER_MPS if known else 0.0
            top = max(top, stretch.kmh if known else 0.0)
        if stretch.pause_s:
            store.add_event(t, EventKind.SESSION_PAUSED, {"reason": "belt stopped"},
                            session_id=sid)  # fmt: skip
            for _ in range(stretch.pause_s):
                t += 1
                store.add_sample(sid, Sample(t, 0.0, mode, SessionState.PAUSED, stretch.cap_kmh))
                store.maybe_flush(t)
            if number < len(stretches):
                store.add_event(t, EventKind.SESSION_RESUMED, {"reason": "belt running"},
                                session_id=sid)  # fmt: skip
    totals = Totals(distance_m=metres * pulses_per_sample_m, backward_s=walked[Mode.BACKWARD],
                    forward_s=walked[Mode.FORWARD], top_speed_kmh=top, kcal=kcal)  # fmt: skip
    if not ended:
        store.update_totals(sid, totals)
        store.flush()
        return sid
    reason = EndReason.PAUSE_TIMEOUT if stretches[-1].pause_s else EndReason.BUTTON
    store.end_session(sid, t, reason, totals)
    return sid


@dataclass
class ReadBack:
    """One FIT file as both readers saw it: message name -> messages, each a dict of field
    name -> value (developer fields by their field name in fitdecode, by key in Garmin's)."""

    garmin: dict[str, list[dict[str, Any]]]
    fitdecode: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def one(self, name: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """The one message `name` as (Garmin's, fitdecode's)."""
        (garmin,) = self.garmin[f"{name}_mesgs"]
        (other,) = self.fitdecode[name]
        return garmin, other


def read_both(data: bytes) -> ReadBack:
    """Decode `data` with both readers; AssertionError unless both read it cleanly."""
    checker = Decoder(Stream.from_byte_array(bytearray(data)))
    assert checker.is_fit(), "Garmin's Decoder: not a FIT file"
    assert checker.check_integrity(), "Garmin's Decoder: header or file CRC is wrong"
    # a second Decoder: one that has checked the integrity reads no messages afterwards
    messages, errors = Decoder(Stream.from_byte_array(bytearray(data))).read()
    assert errors == [], errors
    found: dict[str, list[dict[str, Any]]] = {}
    with fitdecode.FitReader(
        io.BytesIO(data),
        check_crc=fitdecode.CrcCheck.RAISE,
        error_handling=fitdecode.ErrorHandling.RAISE,
    ) as reader:
        for frame in reader:
            if isinstance(frame, fitdecode.FitDataMessage):
                values = {f.name: f.value for f in frame.fields}
                found.setdefault(frame.name, []).append(values)
    return ReadBack(garmin=dict(messages), fitdecode=found)


def close_to(value: float, expected: float, *, within_pct: float = 1.0, floor: float) -> bool:
    """Within `within_pct` % of `expected`, or `floor` of it where 1 % is less than the FIT
    field's resolution (a few centimetres, a millisecond, one kcal)."""
    return abs(value - expected) <= max(abs(expected) * within_pct / 100, floor)
