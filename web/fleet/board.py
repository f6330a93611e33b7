"""The live grid in memory: every treadmill's availability, last status and last few safety
events, as the receiver heard them, with a sequence number that every SSE stream waits on.

The receiver's thread writes, the dashboard's threads read; a Tile handed out is a copy.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Any

EVENTS_KEPT = 10  # per treadmill: what the front desk scrolls back through on a tile
# A tile stays red this long after a warning or an enforced stop, even once the status says
# the belt has come down: the front desk must have a chance to see it and walk over.
ALERT_HOLD_S = 60.0
ALARM_KINDS = frozenset({"overspeed_warning", "enforced_stop"})


@dataclass(frozen=True)
class HeardEvent:
    kind: str
    t: float  # epoch seconds, the device's clock


@dataclass
class Tile:
    """One treadmill as the grid shows it."""

    site: str
    machine_id: str
    name: str = ""
    online: bool | None = None  # None: its availability has not been heard
    last_seen: float | None = None  # epoch seconds of its last message, the fleet's clock
    status: dict[str, Any] | None = None  # its last valid status payload
    events: deque[HeardEvent] = field(default_factory=lambda: deque(maxlen=EVENTS_KEPT))
    alarm_at: float | None = None  # the fleet's clock when the last alarm event arrived

    @property
    def key(self) -> tuple[str, str]:
        return self.site, self.machine_id

    def alert(self, now: float) -> bool:
        """Red: the device reports a warning or a held enforced stop, or sent an alarm event
        within ALERT_HOLD_S."""
        status = self.status or {}
        if status.get("warning") is not None or status.get("latched") is True:
            return True
        return self.alarm_at is not None and now - self.alarm_at < ALERT_HOLD_S


class Board:
    """Every tile, keyed by (site, machine_id)."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._tiles: dict[tuple[str, str], Tile] = {}
        self._seq = 0
        self._closed = False

    def _tile(self, site: str, machine_id: str) -> Tile:
        tile = self._tiles.get((site, machine_id))
        if tile is None:
            tile = self._tiles[(site, machine_id)] = Tile(site, machine_id, name=machine_id)
        return tile

    def _bump(self) -> None:
        self._seq += 1
        self._changed.notify_all()

    # -- the receiver ----------------------------------------------------------------------

    def restore(
        self,
        site: str,
        machine_id: str,
        *,
        name: str,
        online: bool | None,
        last_seen: float | None,
        status: dict[str, Any] | None,
    ) -> None:
        """A tile as the database last knew it, at start-up; the broker's retained messages
        bring it up to date."""
        with self._changed:
            tile = self._tile(site, machine_id)
            tile.name, tile.online, tile.last_seen, tile.status = (
                name or machine_id,
                online,
                last_seen,
                status,
            )
            self._bump()

    def heard_availability(self, site: str, machine_id: str, *, online: bool, at: float) -> None:
        with self._changed:
            tile = self._tile(site, machine_id)
            tile.online, tile.last_seen = online, at
            self._bump()

    def heard_status(
        self, site: str, machine_id: str, status: dict[str, Any], *, at: float
    ) -> None:
        with self._changed:
            tile = self._tile(site, machine_id)
            tile.status, tile.last_seen = status, at
            tile.name = str(status.get("machine_name") or machine_id)
            self._bump()

    def heard_event(self, site: str, machine_id: str, *, kind: str, t: float, at: float) -> None:
        with self._changed:
            tile = self._tile(site, machine_id)
            tile.events.append(HeardEvent(kind, t))
            tile.last_seen = at
            if kind in ALARM_KINDS:
                tile.alarm_at = at
            self._bump()

    # -- the dashboard ---------------------------------------------------------------------

    def tiles(self) -> list[Tile]:
        """Copies of every tile, by site and machine id."""
        with self._changed:
            return [
                replace(self._tiles[key], events=deque(self._tiles[key].events, maxlen=EVENTS_KEPT))
                for key in sorted(self._tiles)
            ]

    def snapshot(self) -> tuple[int, list[Tile]]:
        with self._changed:
            return self._seq, self.tiles()

    def wait_newer(self, seq: int, timeout: float) -> tuple[int, list[Tile]]:
        """Block until something changes after `seq`, the board closes, or `timeout` passes."""
        with self._changed:
            self._changed.wait_for(lambda: self._seq != seq or self._closed, timeout)
            return self._seq, self.tiles()

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Wake every stream so it ends (the server is stopping)."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()
