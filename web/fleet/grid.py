"""The live grid of every treadmill: the page (GET /), every machine's last status as JSON
(GET /api/fleet) and a Server-Sent Events stream that keeps the page current
(GET /api/fleet/stream). All three read the Board in memory, never the broker or the disk.

Readable on the LAN without a login, like a device's live page: nothing here names a walker.
A status passes on only the keys its schema declares, minus the profile.

The blueprint is called "live", as the device's live page is: the shared templates
(base.html, problem.html, login.html) and web.auth's redirects find the fleet's front page by
that name.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import Blueprint, Flask, Response, current_app, jsonify, render_template, request

from web.fleet.board import Board, Tile
from web.fleet.payloads import STATUS_KEYS
from web.fleet.receiver import FleetReceiver
from web.fleet.settings import FleetSettings
from web.formats import km_h
from web.live import json_safe

bp = Blueprint("live", __name__)

PRIVATE_KEYS = frozenset({"profile"})  # who walks: for the history behind the login only
PUBLIC_STATUS_KEYS = STATUS_KEYS - PRIVATE_KEYS
RETRY_MS = 2000
PING_EVERY_S = 2.0
MIN_GAP_S = 0.5  # a grid of 50 treadmills at 1 Hz each: at most two pushes a second a viewer
STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
EVENT_WORDS = {
    "overspeed_warning": "over the cap",
    "enforced_stop": "enforced stop",
    "not_enforced": "cap not enforced",
    "sensor_lost": "sensor lost",
    "sensor_restored": "sensor back",
    "start_refused": "start refused",
    "stop_held": "stop held",
    "slowdown_asked": "console asked to slow the belt",
    "slowed": "slowed by the console",
    "console_ignores_speed": "console ignores SetSpeed",
}


@dataclass(frozen=True)
class FleetParts:
    """What the fleet's blueprints share, kept in app.extensions["retrotread_fleet"]."""

    settings: FleetSettings
    board: Board
    receiver: FleetReceiver | None  # None: a dashboard over the database alone (tests)


def parts(app: Flask) -> FleetParts:
    return app.extensions["retrotread_fleet"]


def _seen(epoch: float | None, now: float) -> str:
    if epoch is None:
        return "never heard"
    ago = max(0.0, now - epoch)
    if ago < 90:
        return f"{ago:.0f} s ago"
    if ago < 90 * 60:
        return f"{ago / 60:.0f} min ago"
    return datetime.fromtimestamp(epoch).strftime("%d %b %H:%M")


def _number(status: dict[str, Any], key: str) -> float | None:
    value = status.get(key)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def tile_view(tile: Tile, settings: FleetSettings, now: float) -> dict[str, Any]:
    """The words of one tile, for the page and for each streamed update alike."""
    status = tile.status or {}
    speed, cap = _number(status, "speed_kmh"), _number(status, "cap_kmh")
    warning = status.get("warning")
    alert_text = ""
    if isinstance(warning, dict):
        alert_text = str(warning.get("reason") or "over the cap")
    elif status.get("latched") is True:
        alert_text = "enforced stop: the belt is held"
    elif tile.alert(now) and tile.events:
        alert_text = EVENT_WORDS.get(tile.events[-1].kind, tile.events[-1].kind)
    online = "online" if tile.online else ("offline" if tile.online is False else "not heard")
    return {
        "key": f"{tile.site}/{tile.machine_id}",
        "site": tile.site,
        "machine_id": tile.machine_id,
        "name": tile.name or tile.machine_id,
        "online": tile.online is True,
        "availability": f"{online} · {_seen(tile.last_seen, now)}",
        "mode": str(status.get("mode") or ""),
        "state": str(status.get("state") or ""),
        "speed": km_h(speed) if speed is not None else "speed unknown" if tile.status else "",
        "cap": f"cap {km_h(cap)}" if cap is not None else "",
        "alert": tile.alert(now),
        "alert_text": alert_text,
        "events": [
            {"kind": e.kind, "words": EVENT_WORDS.get(e.kind, e.kind), "t": e.t}
            for e in list(tile.events)[-3:]
        ],
        "dashboard": settings.dashboard_url(tile.site, tile.machine_id),
    }


def public_status(status: dict[str, Any] | None) -> dict[str, Any] | None:
    if status is None:
        return None
    return {key: value for key, value in status.items() if key in PUBLIC_STATUS_KEYS}


@bp.get("/")
def page() -> str:
    here = parts(current_app)
    now = time.time()
    tiles = [tile_view(tile, here.settings, now) for tile in here.board.tiles()]
    broker = here.receiver.stats().problem if here.receiver is not None else None
    return render_template(
        "fleet_grid.html",
        tiles=tiles,
        broker_problem=broker,
        stream_url=request.script_root + "/api/fleet/stream",
        dashboards=here.settings.dashboards,
    )


@bp.get("/api/fleet")
def machines() -> Response:
    here = parts(current_app)
    now = time.time()
    body = {
        "ok": True,
        "broker": _broker(here),
        "machines": [
            {
                "site": tile.site,
                "machine_id": tile.machine_id,
                "name": tile.name,
                "online": tile.online,
                "last_seen": tile.last_seen,
                "alert": tile.alert(now),
                "dashboard": here.settings.dashboard_url(tile.site, tile.machine_id),
                "status": public_status(tile.status),
            }
            for tile in here.board.tiles()
        ],
    }
    response = jsonify(json_safe(body))
    response.headers["Cache-Control"] = "no-store"
    return response


def _broker(here: FleetParts) -> dict[str, Any]:
    if here.receiver is None:
        return {"connected": False, "problem": "this dashboard follows no broker."}
    stats = here.receiver.stats()
    return {
        "connected": stats.connected,
        "problem": stats.problem,
        "rejected": {reason.value: n for reason, n in stats.rejected.items()},
    }


@bp.get("/api/fleet/stream")
def stream() -> Response:
    here = parts(current_app)
    return Response(_events(here), mimetype="text/event-stream", headers=STREAM_HEADERS)


def _grid_event(here: FleetParts, tiles: list[Tile]) -> str:
    now = time.time()
    body = {
        "broker": _broker(here),
        "tiles": [tile_view(tile, here.settings, now) for tile in tiles],
    }
    data = json.dumps(json_safe(body), separators=(",", ":"), allow_nan=False)
    return f"event: grid\ndata: {data}\n\n"


def _events(here: FleetParts) -> Iterator[str]:
    """`event: grid` with every tile on each change (at most one per MIN_GAP_S), a comment
    ping when nothing happens for PING_EVERY_S (a tile's "last seen" ages on the page)."""
    yield f"retry: {RETRY_MS}\n\n"
    seq, tiles = here.board.snapshot()
    yield _grid_event(here, tiles)
    while not here.board.closed:
        newer, tiles = here.board.wait_newer(seq, PING_EVERY_S)
        if here.board.closed:
            break
        if newer != seq:
            seq = newer
            yield _grid_event(here, tiles)
            time.sleep(MIN_GAP_S)
        else:
            yield _grid_event(here, tiles)  # the ages of "last seen" move on
