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
database's directory), the same base page and stylesheet. The shared templates ask for the
device's base.html; this app hands them fleet_base.html under that name, which has the same
blocks and the fleet's own navigation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Flask
from flask.typing import ResponseReturnValue
from jinja2 import ChoiceLoader, FunctionLoader
from werkzeug.exceptions import HTTPException

from device.config.model import Config
from web.fleet.board import Board
from web.fleet.grid import FleetParts
from web.fleet.receiver import FleetReceiver
from web.fleet.settings import FleetSettings
from web.fleet.store import FleetStore
from web.site import Site

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
FLEET_ROUTES = "/api/fleet and /api/fleet/stream"


def _fleet_base(name: str) -> tuple[str, str, Any] | None:
    if name != "base.html":
        return None
    path = TEMPLATES / "fleet_base.html"
    return path.read_text(encoding="utf-8"), str(path), lambda: True


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
    # fleet_base.html answers for base.html; every other template is the app's own
    shared = [app.jinja_env.loader] if app.jinja_env.loader is not None else []
    app.jinja_env.loader = ChoiceLoader([FunctionLoader(_fleet_base), *shared])
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
        return {"machine_name": where, "demo_mode": False}

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
