"""retrotread's dashboard (Flask). It reads history from SQLite and live status from the
daemon's socket; it never touches pins or the serial port, and it keeps serving history
when the daemon is down.

`create_app` is the factory (flaskr style): one blueprint per area, the paths it needs passed
in, never a fixed secret key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Flask

from device.config.load import load_config
from device.config.model import Config
from device.ipc.protocol import default_socket_path
from web.site import NAV_LINKS, Site, site


def create_app(
    config: Config | None = None,
    *,
    config_path: str | None = None,
    socket_path: str | None = None,
    db_path: str | None = None,
    state_dir: str | None = None,
    demo: Any = None,
    test_config: dict[str, Any] | None = None,
) -> Flask:
    """The dashboard for one treadmill. Without `config` the config file is read from
    `config_path` (default /etc/retrotread/config.toml, or the built-in defaults)."""
    if config is None:
        config, _ = load_config(config_path)
    db = db_path or config.storage.db
    app = Flask(__name__)
    app.extensions["retrotread"] = Site(
        config=config,
        config_path=config_path,
        socket_path=str(socket_path or default_socket_path()),
        db_path=db,
        state_dir=Path(state_dir) if state_dir else Path(db).parent,
        demo=demo,
    )
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
    )
    # keep the status in the order the daemon wrote it (Flask's provider has the attribute)
    app.json.sort_keys = False  # type: ignore[attr-defined]
    if test_config:
        app.config.update(test_config)

    @app.context_processor
    def the_treadmill() -> dict[str, Any]:
        here = site(app)
        return {
            "machine_name": here.config.machine.name,
            "demo_mode": here.demo is not None,
            "nav_links": NAV_LINKS,
        }

    from web import auth, control, health, live, protect, settings
    from web.guide import pages as guide
    from web.history import blueprint as history

    protect.init_app(app)  # the body limit, the security headers, the one-sentence errors
    auth.init_app(app)  # the secret key, CSRF protection and the login rate limit
    for blueprint in (live.bp, history.bp, guide.bp, control.bp, settings.bp, auth.bp, health.bp):
        app.register_blueprint(blueprint)
    if demo is not None:
        from web import demo_panel

        app.register_blueprint(demo_panel.bp)
    return app
