"""What the fleet service needs from the config file's `[fleet]` table, with plain defaults
where a key is not there (the device's publisher reads the same table):

    broker = "mqtt://host:1883" or "mqtts://host:8883"   (default mqtt://127.0.0.1:1883)
    site = "..."            one site's treadmills; empty: every site (a chain's head office)
    username, password_file, ca_file
    dashboards = "http://{machine_id}.local:8080/"
        where each treadmill's own dashboard is: the fleet cannot know a Pi's address, so a
        tile links to this pattern with {machine_id} (and {site}) filled in. Not a key of the
        device's [fleet] rules yet: until it is, the default applies.

and `[web] listen` for the dashboard (default 0.0.0.0:8090 beside a treadmill's 8080).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from string import Formatter
from typing import Any
from urllib.parse import urlsplit

from device.config.model import Config, WebConfig
from device.config.rules import EVERY_SITE
from device.errors import RetrotreadError
from device.fleet.topics import valid_level

DEFAULT_BROKER = "mqtt://127.0.0.1:1883"
DEFAULT_DASHBOARDS = "http://{machine_id}.local:8080/"
DEFAULT_DB = "/var/lib/retrotread-fleet/fleet.db"
DEFAULT_LISTEN = "0.0.0.0:8090"
PORTS = {"mqtt": 1883, "mqtts": 8883}


class FleetConfigError(RetrotreadError):
    """A `[fleet]` value the fleet service cannot use; str() is one sentence with the fix."""


@dataclass(frozen=True)
class FleetSettings:
    host: str = "127.0.0.1"
    port: int = 1883
    tls: bool = False
    site: str | None = None  # None: every site
    username: str | None = None
    password: str | None = None
    ca_file: str | None = None
    dashboards: str = DEFAULT_DASHBOARDS
    db: str = DEFAULT_DB
    listen: str = DEFAULT_LISTEN
    client_id: str = "retrotread-fleet"

    def dashboard_url(self, site: str, machine_id: str) -> str:
        return self.dashboards.format(site=site, machine_id=machine_id)


def parse_broker(url: str) -> tuple[str, int, bool]:
    """(host, port, tls) from "mqtt://host:1883" or "mqtts://host:8883"."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = -1
    if parts.scheme not in PORTS or not parts.hostname or port == -1 or parts.path not in ("", "/"):
        raise FleetConfigError(
            f'[fleet] broker = "{url}" is not a broker address; write it like '
            '"mqtt://192.168.1.10:1883" or "mqtts://broker.gym.lan:8883".'
        )
    return parts.hostname, port or PORTS[parts.scheme], parts.scheme == "mqtts"


def check_dashboards(pattern: str) -> str:
    fields = {name for _, name, _, _ in Formatter().parse(pattern) if name is not None}
    if urlsplit(pattern).scheme not in ("http", "https") or not fields <= {"machine_id", "site"}:
        raise FleetConfigError(
            f'[fleet] dashboards = "{pattern}" is not a dashboard address pattern; write it '
            'like "http://{machine_id}.local:8080/" ({machine_id} and {site} are filled in).'
        )
    return pattern


def _read_password(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not text"
        raise FleetConfigError(
            f"[fleet] password_file = {path}: cannot read it ({why}); make it readable by the "
            "fleet's user (and nobody else), or leave password_file out."
        ) from None


def _text(table: Any, key: str, default: str = "") -> str:
    value = getattr(table, key, default) if table is not None else default
    return str(value) if value is not None else default


def fleet_settings(config: Config, *, db: str | None = None) -> FleetSettings:
    """The fleet service's settings from `config` (its `[fleet]` table, if this version has
    one). FleetConfigError, one sentence, for a value it cannot use."""
    table = getattr(config, "fleet", None)
    host, port, tls = parse_broker(_text(table, "broker") or DEFAULT_BROKER)
    site = _text(table, "site") or None
    if site == EVERY_SITE:
        site = None  # a chain's head office: every site's treadmills
    if site is not None and not valid_level(site):
        raise FleetConfigError(
            f'[fleet] site = "{site}" cannot be a topic level; use letters, digits, ".", "_" '
            'and "-" only, or leave it empty to follow every site.'
        )
    password_file = _text(table, "password_file")
    return FleetSettings(
        host=host,
        port=port,
        tls=tls,
        site=site,
        username=_text(table, "username") or None,
        password=_read_password(password_file) if password_file else None,
        ca_file=_text(table, "ca_file") or None,
        dashboards=check_dashboards(_text(table, "dashboards") or DEFAULT_DASHBOARDS),
        db=db or _text(table, "db") or DEFAULT_DB,
        # [web] listen, as fleet.toml sets it; left at the device's default (8080, where a
        # treadmill's own dashboard is, perhaps on this very Pi) the fleet takes 8090
        listen=config.web.listen if config.web.listen != WebConfig().listen else DEFAULT_LISTEN,
        client_id=f"retrotread-fleet-{site or 'all'}",
    )
