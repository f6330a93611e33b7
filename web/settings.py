"""/settings: the keys a gym operator tunes from a phone (the name, the backward caps, what
happens over the cap, the sensor's calibration), validated by exactly the code that
`retrotread check-config` runs, written into the config file keeping its comments, and handed
to the daemon with a reload. Pins and the sensor's wiring stay in the file: they need a
restart and a screwdriver anyway.

Anyone may look at the page; saving needs the admin login unless [web] open_controls = true.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from device.config.kinds import ConfigError, range_words, show_number
from device.config.load import DEFAULT_PATH, config_to_dict, load_config, merge_overrides
from device.config.model import Config
from device.config.rules import RULES
from device.config.write import ConfigWriteError, write_config_changes
from device.ipc.client import DeviceClient, DeviceOffline
from web.auth import LOG_IN, controls_allowed, login_hint
from web.site import site

bp = Blueprint("settings", __name__)

SOURCE = "settings"  # starts each validation message; cut off where it shows beside a field


@dataclass(frozen=True)
class Field:
    """One key on the form. `kind`: "text", "number", "numbers" (comma-separated) or
    "choice" (`options`: value -> what the operator reads). `about` is the help text with
    {range} where the key's range goes and {expects} for what its rule expects, both from
    device.config.rules, so the help cannot state another range than check-config enforces;
    {shipped} is the built-in default (past which the live page shows a safety margin as
    loosened)."""

    section: str
    table: str
    key: str
    label: str
    kind: str
    about: str
    options: tuple[tuple[str, str], ...] = ()

    @property
    def name(self) -> str:
        return f"{self.table}.{self.key}"

    @property
    def help(self) -> str:
        rule = RULES[self.table][self.key]
        shipped = getattr(getattr(Config(), self.table), self.key)
        return self.about.format(
            range=range_words(rule),
            expects=rule.expects,
            shipped=show_number(shipped) if isinstance(shipped, float) else shipped,
        )


FIELDS: tuple[Field, ...] = (
    Field(
        "Treadmill", "machine", "name", "Name", "text",
        "What the dashboard shows: {expects}.",
    ),
    Field(
        "Backward caps", "backward", "start_cap_kmh", "Start cap, km/h", "number",
        "A backward segment starts only at or below it. {range}, at most the first level "
        "cap.",
    ),
    Field(
        "Backward caps", "backward", "hold_s", "Hold at the start cap, s", "number",
        "Time to learn the movement before the cap rises. {range}.",
    ),
    Field(
        "Backward caps", "backward", "ramp_step_kmh", "Ramp step, km/h", "number",
        "How much the cap rises each step. {range}.",
    ),
    Field(
        "Backward caps", "backward", "ramp_every_s", "Ramp every, s", "number",
        "Time between two rises of the cap. {range}.",
    ),
    Field(
        "Backward caps", "backward", "level_caps_kmh", "Level caps, km/h", "numbers",
        "The top cap at each level, level 1 first, separated by commas, never falling. "
        "{range}.",
    ),
    Field(
        "Backward caps", "backward", "tolerance_kmh", "Tolerance, km/h", "number",
        "How far the 3 s mean speed may run over the cap before the warning. {range}; more "
        "than {shipped} is shown on the live page.",
    ),
    Field(
        "Backward caps", "backward", "grace_s", "Grace, s", "number",
        "The time over the limit allowed before enforcement, one budget with memory: it "
        "refills 1 s per 30 s under the limit. {range}; more than {shipped} is shown on the "
        "live page.",
    ),
    Field(
        "Over the cap", "enforce", "action", "After the grace", "choice",
        "The relay opens the safety-key loop: an abrupt stop, like pulling the key, and only "
        "ever after the warning.",
        (("relay", "Stop the belt (relay)"), ("none", "Warn only")),
    ),
    Field(
        "Over the cap", "enforce", "without_session", "Without a session", "choice",
        "Backward mode, the belt over the start cap, and nobody pressed START: warn only (a "
        "runner who ignores the device is not stopped abruptly), or warn and then stop.",
        (("warn", "Warn only"), ("stop", "Warn, then stop")),
    ),
    Field(
        "Over the cap", "enforce", "mode", "Relay", "choice",
        "After a pulse the belt can be restarted; a latch keeps it stopped until the device "
        "releases it.",
        (("pulse", "Pulse: open, then close"), ("latch", "Latch: stay open")),
    ),
    Field(
        "Over the cap", "enforce", "pulse_s", "Pulse length, s", "number",
        "How long a pulse keeps the safety loop open. {range}.",
    ),
    Field(
        "Sensor", "sensor", "meters_per_pulse", "Belt travel per pulse, m", "number",
        "Roller circumference divided by the magnets; retrotread calibrate measures it. "
        "{range}.",
    ),
)  # fmt: skip

SECTIONS = tuple(dict.fromkeys(field.section for field in FIELDS))


def _shown(field: Field, config: Config) -> str:
    """The current value as the form shows it: 2 not 2.0, caps as "3, 4, 5, 5.5"."""
    value = getattr(getattr(config, field.table), field.key)
    if field.kind == "number":
        return show_number(value)
    if field.kind == "numbers":
        return ", ".join(show_number(v) for v in value)
    return str(value)


def _number(text: str) -> Any:
    """A typed number as TOML would hold it; anything else stays text, so the config rules
    (the same as check-config) name the key and what it must be."""
    text = text.strip()
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _parsed(field: Field, text: str) -> Any:
    if field.kind == "number":
        return _number(text)
    if field.kind == "numbers":
        return [_number(part) for part in text.split(",") if part.strip()]
    return text.strip()


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
        return (
            True,
            f"The cap is enforced: {grace} s after the warning, the relay on GPIO {relay} {how}.",
        )
    return False, (
        "The cap is not enforced on this treadmill: over the cap the device only warns "
        '([enforce] action = "none").'
    )


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
    values = values or {f.name: _shown(f, config) for f in FIELDS}
    enforced, how = enforcement(config)
    allowed = controls_allowed()
    page = render_template(
        "settings.html",
        sections=[(s, [f for f in FIELDS if f.section == s]) for s in SECTIONS],
        values=values,
        errors=errors or {},
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
    values = {f.name: request.form.get(f.name, _shown(f, config)) for f in FIELDS}
    if not controls_allowed():
        return _page(config, values=values, status=401)
    if problem is not None:
        return _page(config, values=values, problem=problem, status=409)
    overrides: dict[str, dict[str, Any]] = {}
    for field in FIELDS:
        overrides.setdefault(field.table, {})[field.key] = _parsed(field, values[field.name])
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
            if before[table][key] != value:
                changes.setdefault(table, {})[key] = value
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
