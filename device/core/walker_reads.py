"""What the walker reads on the dashboard after each guard event: one short line that says
what happened and what to do. Pure words; the controller keeps the last one as its message.
"""

from __future__ import annotations

from device.core.events import Event, EventKind

# What the walker reads after each guard event ("" clears the last message).
WALKER_READS = {
    EventKind.ENFORCED_STOP: "Stopped: {speed_kmh} km/h is over the {cap_kmh} km/h cap. "
    "Press START to walk on at the start cap.",
    EventKind.NOT_ENFORCED: "Over the {cap_kmh} km/h cap: slow down. The cap is not enforced "
    "on this machine.",
    EventKind.OVERSPEED_CLEARED: "",
    EventKind.SENSOR_LOST: "{why}",
    EventKind.SENSOR_RESTORED: "",
    EventKind.STILL_GUARDED: "Still guarded: slow the belt to {start_cap_kmh} km/h, or press "
    "DIRECTION for forward walking.",
    EventKind.STOP_HELD: "{why} The belt stays stopped in backward mode until then.",
    EventKind.GUARD_RELEASED: "",
    EventKind.SLOWDOWN_ASKED: "Over the {cap_kmh} km/h cap: the treadmill is slowing the "
    "belt to {cap_kmh} km/h.",
    EventKind.SLOWED: "Slowed to the {cap_kmh} km/h cap: walk on at this pace.",
}
# What a warning without a session says: no stop will come, so it says what to do instead.
NO_SESSION_READS = "Backward mode: press DIRECTION for forward walking, or slow down."


def walker_reads(events: list[Event], message: str) -> str:
    """The message after these guard events, starting from the one shown now."""
    for event in events:
        warn_only = event.details.get("stop_coming") is False or (
            event.details.get("action") == "warn"
        )
        if event.details.get("scope") == "no session" and warn_only:
            message = NO_SESSION_READS  # no stop comes: say what to do instead
        else:
            message = WALKER_READS.get(event.kind, message).format(**event.details)
    return message
