"""/settings: the keys a gym operator tunes from a phone (the name, the backward caps, what
happens over the cap, where the speed comes from and the sensor's calibration), validated by
exactly the code that `retrotread check-config` runs, written into the config file keeping its
comments, and handed to the daemon with a reload. Pins stay in the file: they need a
screwdriver anyway. A console's port is on the page, since a gym sets one up with no tools;
like every sensor change it takes effect when the device restarts (the reload says so).
The history says whether the console was found to ignore SetSpeed; the page shows it beside
[enforce] soft.

Anyone may look at the page; saving needs the admin login unless [web] open_controls = true.
"""

from __future__ import annotations

import os
import sqlite3
from datetime import datetime
from typing import Any

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from device.config.kinds import ConfigError, show_number
from device.config.load import DEFAULT_PATH, config_to_dict, load_config, merge_overrides
from device.config.model import CheckSensorConfig, Config
from device.config.write import ConfigWriteError, write_config_changes
from device.history.reader import History, StoreError
from device.ipc.client import DeviceClient, DeviceOffline
from web.auth import LOG_IN, controls_allowed, login_hint
from web.settings_fields import CHECK, FIELDS, NO_CHECK, SECTIONS, Field, parsed, shown
from web.site import site

__all__ = ["FIELDS", "SECTIONS", "Field", "bp", "console_notice", "enforcement"]

bp = Blueprint("settings", __name__)

SOURCE = "settings"  # starts each validation message; cut off where it shows beside a field


def enforcement(config: Config) -> tuple[bool, str]:
    """Whether the cap is enforced on this treadmill, and the sentence that says how."""
    rule, relay = config.enforce, config.outputs.relay_pin
    if rule.action == "relay" and relay is not None:
        how = (
            f"opens the safety-key loop for {show_number(rule.pulse_s)} s"
            if rule.mode == "pulse"
            else "opens the safety-key loop until the device releases it"
        )
        grace = show_number(config.backward.grace_s)
        sentence = (
            f"The cap is enforced: {grace} s after the warning, the relay on GPIO {relay} {how}."
        )
        if rule.soft == "csafe":
            sentence += (
                " Before it, the console is asked to slow the belt to the cap, which can add up "
                "to 2 s."
            )
        return True, sentence
    return False, (
        "The cap is not enforced on this treadmill: over the cap the device only warns "
        '([enforce] action = "none").'
    )


def console_notice() -> str | None:
    """The sentence for a console the history found to ignore SetSpeed, with the day it was
    found and why; None when it never was, or there is no history to ask (the history page
    and /healthz say why)."""
    try:
        with History(site(current_app).db_path) as history:
            found = history.console_ignores_speed()
    except (StoreError, sqlite3.Error):
        return None
    if found is None:
        return None
    at, why = found
    day = datetime.fromtimestamp(at)
    sentence = (
        f"This console ignores SetSpeed: the relay stops the belt. Found on {day.day} {day:%B %Y}"
    )
    return sentence + (f": {why.rstrip('.')}." if why else ".")


def _with_check(
    config: Config, overrides: dict[str, dict[str, Any]]
) -> tuple[dict[str, dict[str, Any]], str | None]:
    """The form's [sensor.check] keys as the file holds them, inside [sensor] (its pin and
    magnets as they were), or left out for "none"; or the sentence why not."""
    check = overrides.pop(CHECK)
    present = config_to_dict(config)["sensor"].get("check")
    if check["kind"] != NO_CHECK:
        overrides["sensor"]["check"] = {**(present or {}), **check}
    elif present is not None:
        return overrides, (
            "The settings page cannot take out [sensor.check]; delete that table from the "
            'config file by hand (retrotread check-config shows the result), or keep it as "hall" '
            'or "csafe".'
        )
    return overrides, None


def _new_check(check: dict[str, Any]) -> dict[str, Any]:
    """A new [sensor.check] table as the file gets it: its kind and what differs from the
    defaults, so a console's check names no pin that a reader would take for one in use."""
    shipped = vars(CheckSensorConfig())
    return {key: value for key, value in check.items() if key == "kind" or value != shipped[key]}


def _target_path() -> tuple[str | None, str | None]:
    """The file to write and, when there is none we may write, the sentence saying so."""
    path = site(current_app).config_path
    if path is not None:
        return path, None
    folder = os.path.dirname(DEFAULT_PATH)
    if os.path.exists(DEFAULT_PATH) or os.access(folder, os.W_OK):
        return DEFAULT_PATH, None
    return None, (
        f"The device runs on the built-in defaults and {folder} is not writable, so there is "
        f"no config file to save to; create {DEFAULT_PATH} (copy config.example.toml) writable "
        "by the dashboard's user, or start the dashboard with --config PATH."
    )


def _current() -> tuple[Config, str | None]:
    """The config as the file holds it now (it may have been edited by hand since start);
    without a file, the config the dashboard was started with."""
    here = site(current_app)
    if here.config_path is None:
        return here.config, None
    try:
        config, _ = load_config(here.config_path)
    except ConfigError as exc:
        return here.config, f"{exc} Saving is off until the file is fixed by hand."
    return config, None


def _page(
    config: Config,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    problem: str | None = None,
    status: int = 200,
) -> ResponseReturnValue:
    values = values or {f.name: shown(f, config) for f in FIELDS}
    enforced, how = enforcement(config)
    allowed = controls_allowed()
    notice = console_notice()
    page = render_template(
        "settings.html",
        sections=[(s, [f for f in FIELDS if f.section == s]) for s in SECTIONS],
        values=values,
        errors=errors or {},
        notes={"enforce.soft": notice} if notice else {},
        problem=problem,
        enforced=enforced,
        enforcement=how,
        allowed=allowed,
        hint=None if allowed else login_hint(),
        can_log_in=not allowed and login_hint() == LOG_IN,
        config_path=site(current_app).config_path,
    )
    return page, status


@bp.get("/settings")
def page() -> ResponseReturnValue:
    config, problem = _current()
    return _page(config, problem=problem)


@bp.post("/settings")
def save() -> ResponseReturnValue:
    config, problem = _current()
    values = {f.name: request.form.get(f.name, shown(f, config)) for f in FIELDS}
    if not controls_allowed():
        return _page(config, values=values, status=401)
    if problem is not None:
        return _page(config, values=values, problem=problem, status=409)
    overrides: dict[str, dict[str, Any]] = {}
    for field in FIELDS:
        overrides.setdefault(field.table, {})[field.key] = parsed(field, values[field.name])
    overrides, cannot = _with_check(config, overrides)
    if cannot is not None:
        return _page(config, values=values, errors={f"{CHECK}.kind": cannot}, status=400)
    try:
        new = merge_overrides(config, overrides, source=SOURCE)
    except ConfigError as exc:
        sentence = str(exc).removeprefix(f"{SOURCE}: ")
        sentence = sentence[:1].upper() + sentence[1:]
        if exc.key in values:
            return _page(config, values=values, errors={exc.key: sentence}, status=400)
        return _page(config, values=values, problem=sentence, status=400)
    before, after = config_to_dict(config), config_to_dict(new)
    changes: dict[str, dict[str, Any]] = {}
    for table, entries in after.items():
        for key, value in entries.items():
            if before[table].get(key) != value:  # None: [sensor.check] added
                changes.setdefault(table, {})[key] = value
    if config.sensor.check is None and "check" in changes.get("sensor", {}):
        changes["sensor"]["check"] = _new_check(changes["sensor"]["check"])
    if not changes:
        flash("Nothing changed.", "ok")
        return redirect(url_for("settings.page"))
    path, refusal = _target_path()
    if path is None:
        return _page(config, values=values, problem=refusal, status=409)
    try:
        saved = write_config_changes(path, changes, base=config)
    except (ConfigWriteError, ConfigError) as exc:
        return _page(config, values=values, problem=str(exc), status=500)
    here = site(current_app)
    here.config, here.config_path = saved, path
    flash(*_reload(path))
    return redirect(url_for("settings.page"))


def _reload(path: str) -> tuple[str, str]:
    """Ask the daemon to re-read the file; return the flash message and its category."""
    try:
        reply = DeviceClient(site(current_app).socket_path).request({"cmd": "reload"})
    except DeviceOffline:
        return (
            f"Saved to {path}. The device is offline, so the new settings take effect when "
            "it starts.",
            "note",
        )
    if not reply.get("ok"):
        return f"Saved to {path}, but the device did not take it: {reply.get('error')}", "error"
    note = reply.get("note")
    if note:
        return f"Saved to {path}; the device took the new settings, but {note}.", "note"
    return f"Saved to {path}; the device uses the new settings now.", "ok"
