"""Payloads as a treadmill publishes them, built by hand (valid against device/fleet/schema/),
for tests of the receiving side that need no real daemon."""

from __future__ import annotations

import time
from typing import Any


def status_payload(machine_id: str, **changes: Any) -> dict[str, Any]:
    """What a device publishes as its status: walking backward at 2.1 km/h under a 2.5 cap."""
    status = {
        "v": 1,
        "at": time.time(),
        "machine_id": machine_id,
        "machine_name": f"Treadmill {machine_id}",
        "speed_kmh": 2.1,
        "mode": "backward",
        "state": "running",
        "cap_kmh": 2.5,
        "warning": None,
        "enforcement": "relay",
        "sensor": {"ok": True, "state": "ok"},
        "elapsed_s": 300.0,
        "distance_m": 175.0,
        "kcal": 12.0,
        "profile": "anna",
        "level": 2,
    }
    status.update(changes)
    return status


def session_payload(machine_id: str, session_uuid: str, **changes: Any) -> dict[str, Any]:
    """A finished ten-minute session, mostly backward, with one enforced stop."""
    start = time.time() - 700
    session = {
        "v": 1,
        "uuid": session_uuid,
        "machine_id": machine_id,
        "started_at": start,
        "ended_at": start + 600,
        "end_reason": "button",
        "profile": "anna",
        "level": 2,
        "totals": {
            "distance_m": 350.0,
            "backward_s": 480.0,
            "forward_s": 120.0,
            "backward_distance_m": 260.0,
            "top_speed_kmh": 2.6,
            "kcal": 25.0,
            "backward_fast_s": 0.0,
            "backward_paced_s": 400.0,
        },
        "segments": [
            {"mode": "backward", "started_at": start, "ended_at": start + 480, "distance_m": 260.0}
        ],
        "events": [{"t": start + 200, "kind": "enforced_stop", "details": {"speed_kmh": 3.4}}],
        "samples": [
            [start, 2.0, "backward", "running", 2.5],
            [start + 1, 2.1, "backward", "running", 2.5],
        ],
    }
    session.update(changes)
    return session
