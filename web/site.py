"""What every blueprint knows of this treadmill: the config, the paths and the demo, kept in
app.extensions by create_app."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask import Flask

from device.config.model import Config

# base.html's bar: (endpoint, label, the endpoints it stands for). The guide and the plan are
# a walker's, one tap away from every page.
NAV_LINKS = (
    ("live.page", "Live", "live.page"),
    ("history.page", "History", "history."),
    ("guide.guide", "Guide", "guide.guide"),
    ("guide.plan", "Plan", "guide.plan"),
    ("settings.page", "Settings", "settings.page"),
)


@dataclass
class Site:
    """What every blueprint needs to know about this treadmill, kept in app.extensions."""

    config: Config
    config_path: str | None  # the file the settings page writes (None: built-in defaults)
    socket_path: str
    db_path: str
    state_dir: Path  # the secret key and the admin password hash live here
    demo: Any = None  # the demo's simulated treadmill (web/demo_panel.py), None on a real one
    extras: dict[str, Any] = field(default_factory=dict)


def site(app: Flask) -> Site:
    return app.extensions["retrotread"]
