"""`retrotread fleet`: every treadmill of a gym on one screen, from the gym's MQTT broker.

    payloads   a message's topic and payload checked against device/fleet/schema/*.json
    store      the fleet's own SQLite: machines, sessions (upsert by uuid), rejections
    board      the live grid in memory, which SSE streams wait on
    receiver   paho-mqtt on its own thread: broker -> payloads -> board and store
    grid       GET /, /api/fleet, /api/fleet/stream (no login, no personal data)
    history    GET /sessions, /sessions.csv (the admin login of web.auth)
    settings   the [fleet] table; serve: the command

`create_fleet_app` is the factory, like web.create_app: the same security headers and error
pages (web.protect), the same login, CSRF and secret key (web.auth, kept in the fleet
database's directory), the same base page (with the fleet's own links in its bar) and stylesheet.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Flask
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException

from device.config.model import Config
from web.fleet.board import Board
from web.fleet.grid import FleetParts
from web.fleet.receiver import FleetReceiver
from web.fleet.settings import FleetSettings
from web.fleet.store import FleetStore
from web.site import Site

FLEET_ROUTES = "/api/fleet and /api/fleet/stream"
# base.html's bar in the fleet app: (endpoint, label, the endpoints it stands for)
NAV_LINKS = (("live.page", "Treadmills", "live.page"), ("history.page", "Sessions", "history."))


def create_fleet_app(
    settings: FleetSettings,
    *,
    store: FleetStore,
    board: Board,
    receiver: FleetReceiver | None = None,
    config: Config | None = None,
    state_dir: str | Path | None = None,
    test_config: dict[str, Any] | None = None,
) -> Flask:
    """The fleet dashboard over `board` (live) and `store` (history). The secret key and the
    admin password live in `state_dir` (default: the database's directory)."""
    app = Flask("web")  # web/templates and web/static, shared with the device's pages
    app.extensions["retrotread"] = Site(
        config=config or Config(),
        config_path=None,
        socket_path="",
        db_path=store.path,
        state_dir=Path(state_dir) if state_dir else Path(store.path).parent,
    )
    app.extensions["retrotread_fleet"] = FleetParts(
        settings=settings, board=board, receiver=receiver
    )
    app.extensions["retrotread_fleet_store"] = store
    app.config.update(SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Strict")
    app.json.sort_keys = False  # type: ignore[attr-defined]
    if test_config:
        app.config.update(test_config)

    @app.context_processor
    def the_fleet() -> dict[str, Any]:
        where = f"fleet · {settings.site}" if settings.site else "fleet · every site"
        return {"machine_name": where, "demo_mode": False, "nav_links": NAV_LINKS}

    from web import auth, protect
    from web.fleet import grid, history

    protect.init_app(app)
    auth.init_app(app)
    app.register_error_handler(404, _not_found)  # the fleet's own routes, not the device's
    for blueprint in (grid.bp, history.bp, auth.bp):
        app.register_blueprint(blueprint)
    return app


def _not_found(exc: HTTPException) -> ResponseReturnValue:
    from flask import request

    from web.protect import problem

    if request.path.startswith("/api/"):
        return problem(
            f"There is no {request.path[:80]} in the fleet's API; it has {FLEET_ROUTES}.", 404
        )
    return problem(
        "There is no such page on the fleet dashboard; start from the grid or the sessions.",
        404,
        title="No such page",
    )
