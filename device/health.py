"""The adapters' health in the status: the sensor's rejects, the tick's inbox, the history
writer and the link to the gym's broker, as the daemon reports them (the "health" part of
device.core.status.DeviceStatus; the live page's health line reads it)."""

from __future__ import annotations

from device.core.status import ConsoleLinkStatus, HealthStatus
from device.fleet.publisher import LinkHealth
from device.history.writer import HistoryHealth


def health_status(
    history: HistoryHealth | None,
    *,
    sensor_rejected: int,
    sensor_error: str | None,
    inputs_dropped: int,
    fleet: LinkHealth | None = None,
    console: ConsoleLinkStatus | None = None,
) -> HealthStatus:
    """The adapters' part of the status: `history` is None before the writer started,
    `fleet` while no broker is configured."""
    return {
        "sensor_rejected": sensor_rejected,
        "sensor_error": sensor_error,
        "inputs_dropped": inputs_dropped,
        "console": console,
        "history": None if history is None else {
            "ok": history.ok,
            "error": history.error,
            "unsaved_rows": history.unsaved_rows,
            "lost_rows": history.lost_rows,
        },
        "fleet": None if fleet is None else {
            "connected": fleet.connected,
            "error": fleet.error,
            "events_waiting": fleet.events_waiting,
            "events_dropped": fleet.events_dropped,
            "sessions_sent": fleet.sessions_sent,
        },
    }  # fmt: skip
