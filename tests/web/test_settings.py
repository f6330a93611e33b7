"""/settings: the operator's form, validated by check-config's own code, saved into a copy of
config.example.toml keeping its comments, and handed to the daemon with a reload: conftest's
`fake_device` (a DeviceSocket recording each request) or the real daemon on mock pins."""

from __future__ import annotations

import html
import re
import shutil
import stat
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from gpiozero.pins.mock import MockFactory
from support.daemon_thread import daemon_running
from support.waiting import wait_until

import device.config.load
import web.settings
from device.config.kinds import range_words
from device.config.load import load_config
from device.config.model import BackwardConfig, Config, EnforceConfig, OutputsConfig
from device.config.rules import RULES
from device.ipc.client import DeviceClient
from device.ipc.protocol import Command, Request
from web import create_app
from web.auth import set_password

PASSWORD = "belt-and-braces"
EXAMPLE = Path(__file__).resolve().parents[2] / "config.example.toml"


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "etc" / "config.toml"
    path.parent.mkdir()
    shutil.copy(EXAMPLE, path)
    path.chmod(0o640)
    return path


def make_app(
    tmp_path: Path,
    socket_dir: Path,
    config_path: Path | None,
    *,
    config: Config | None = None,
    password: bool = True,
) -> Flask:
    state = tmp_path / "state"
    if password:
        set_password(state, PASSWORD)
    return create_app(
        config,
        config_path=str(config_path) if config_path else None,
        socket_path=str(socket_dir / "device.sock"),
        db_path=str(tmp_path / "history.db"),
        state_dir=str(state),
        test_config={"TESTING": True, "WTF_CSRF_ENABLED": True},
    )


def csrf_token(client: FlaskClient) -> str:
    page = client.get("/login").get_data(as_text=True)
    return re.search(r'<meta name="csrf-token" content="([^"]+)"', page).group(1)


def log_in(client: FlaskClient) -> FlaskClient:
    form = {"password": PASSWORD, "csrf_token": csrf_token(client)}
    assert client.post("/login", data=form).status_code == 302
    return client


@pytest.fixture
def operator(tmp_path: Path, socket_dir: Path, config_file: Path, fake_device: Any):
    return log_in(make_app(tmp_path, socket_dir, config_file).test_client())


def form_values(client: FlaskClient) -> dict[str, str]:
    """What the browser would send back untouched: every field as the page fills it."""
    page = client.get("/settings").get_data(as_text=True)
    values = {
        name: html.unescape(value)
        for name, value in re.findall(
            r'name="([a-z_]+\.[a-z_]+)" type="text" value="([^"]*)"', page
        )
    }
    for name, body in re.findall(r'<select[^>]*name="([a-z_.]+)"[^>]*>(.*?)</select>', page, re.S):
        values[name] = re.search(r'<option value="([^"]+)" selected', body).group(1)
    values["csrf_token"] = csrf_token(client)
    return values


def save(client: FlaskClient, **changed: str):
    form = form_values(client)
    form.update(changed)
    return client.post("/settings", data=form)


def field_error(page: str, name: str) -> str:
    fid = name.replace(".", "-")
    found = re.search(rf'<p class="field-error" id="{fid}-error" role="alert">([^<]*)</p>', page)
    assert found, f"no error shown beside {name}"
    return html.unescape(found.group(1))


# ---- looking --------------------------------------------------------------------------------


def test_page_shows_the_files_values_and_that_the_cap_is_enforced(
    operator: FlaskClient,
) -> None:
    values = form_values(operator)
    assert values["machine.name"] == "Treadmill 1"
    assert values["backward.start_cap_kmh"] == "2"
    assert values["backward.level_caps_kmh"] == "3, 4, 5, 5.5"
    assert values["enforce.action"] == "relay"
    assert values["sensor.meters_per_pulse"] == "0.157"
    page = operator.get("/settings").get_data(as_text=True)
    assert "Cap enforced" in page and "the relay on GPIO 26 opens the safety-key loop" in page


def test_each_fields_help_states_the_range_its_rule_enforces(operator: FlaskClient) -> None:
    # the ranges are defined once, in device.config.rules; the help is written from them
    page = html.unescape(operator.get("/settings").get_data(as_text=True))
    for field in web.settings.FIELDS:
        words = range_words(RULES[field.table][field.key])
        if words is not None:
            assert words in field.help, field.name
        assert "{" not in field.help, field.name
        assert field.help in page, field.name
    start_cap = next(f for f in web.settings.FIELDS if f.key == "start_cap_kmh")
    assert "0.5-10 km/h, at most the first level cap" in start_cap.help


def test_page_says_plainly_when_the_cap_is_not_enforced(tmp_path: Path, socket_dir: Path) -> None:
    warn_only = Config(enforce=EnforceConfig(action="none"), outputs=OutputsConfig(relay_pin=None))
    app = make_app(tmp_path, socket_dir, None, config=warn_only)
    page = app.test_client().get("/settings").get_data(as_text=True)
    assert "Cap not enforced" in page and "only warns" in page


def test_anyone_may_look_but_the_form_is_locked_without_a_login(
    tmp_path: Path, socket_dir: Path, config_file: Path
) -> None:
    client = make_app(tmp_path, socket_dir, config_file).test_client()
    page = client.get("/settings")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert '<fieldset class="bare" disabled>' in text
    assert "to change the settings" in text and "/login?next=/settings" in text


def test_with_no_password_set_the_page_says_to_run_set_password(
    tmp_path: Path, socket_dir: Path, config_file: Path
) -> None:
    client = make_app(tmp_path, socket_dir, config_file, password=False).test_client()
    assert "retrotread set-password" in client.get("/settings").get_data(as_text=True)


# ---- refusing -------------------------------------------------------------------------------


BAD_VALUES = [
    (
        "backward.hold_s",
        "two minutes",
        'hold_s must be a number from 0 to 3600 s, not "two minutes".',
    ),
    ("backward.grace_s", "0", "[backward] grace_s must be a number from 1 to 20 s, not 0."),
    ("backward.level_caps_kmh", "3, 5, 4", "must not fall from one level to the next"),
    ("backward.start_cap_kmh", "3.5", "(3.5 km/h) must not be above the first of level_caps_kmh"),
    ("backward.level_caps_kmh", "", "[backward] level_caps_kmh must be a list of 1 to 10 numbers"),
    ("enforce.action", "explode", '[enforce] action must be "relay" or "none", not "explode".'),
    (
        "sensor.meters_per_pulse",
        "nan",
        "meters_per_pulse must be a number from 0.01 to 5 m, not nan.",
    ),
    ("machine.name", "   ", "[machine] name must be a name of 1 to 80 characters"),
]


@pytest.mark.parametrize(("name", "typed", "words"), BAD_VALUES)
def test_a_bad_value_is_named_beside_its_field_and_nothing_is_written(
    operator: FlaskClient,
    config_file: Path,
    fake_device: Any,
    name: str,
    typed: str,
    words: str,
) -> None:
    before = config_file.read_bytes()
    reply = save(operator, **{name: typed})
    assert reply.status_code == 400
    page = reply.get_data(as_text=True)
    assert words in field_error(page, name)
    fid = name.replace(".", "-")
    if name != "enforce.action":  # the operator's typing stays in the box to be corrected
        assert f'id="{fid}" name="{name}" type="text" value="{html.escape(typed)}"' in page
    assert config_file.read_bytes() == before
    assert fake_device.requests == []


def test_saving_without_a_login_is_refused_and_writes_nothing(
    tmp_path: Path, socket_dir: Path, config_file: Path, fake_device: Any
) -> None:
    client = make_app(tmp_path, socket_dir, config_file).test_client()
    before = config_file.read_bytes()
    reply = save(client, **{"backward.grace_s": "4"})
    assert reply.status_code == 401
    assert config_file.read_bytes() == before and fake_device.requests == []


def test_saving_without_the_csrf_token_is_refused(
    operator: FlaskClient, config_file: Path, fake_device: Any
) -> None:
    before = config_file.read_bytes()
    form = form_values(operator)
    del form["csrf_token"]
    form["backward.grace_s"] = "4"
    assert operator.post("/settings", data=form).status_code == 400
    assert config_file.read_bytes() == before and fake_device.requests == []


# ---- saving ---------------------------------------------------------------------------------


def test_a_good_save_changes_only_those_lines_and_asks_the_daemon_to_reload(
    operator: FlaskClient, config_file: Path, fake_device: Any
) -> None:
    before = config_file.read_text().splitlines()
    typed = {
        "machine.name": "Gym floor 3",
        "backward.grace_s": "4",
        "backward.level_caps_kmh": "3, 4, 4.5",
    }
    reply = save(operator, **typed)
    assert reply.status_code == 302 and reply.headers["Location"] == "/settings"
    after = config_file.read_text().splitlines()
    changed = [(old, new) for old, new in zip(before, after, strict=True) if old != new]
    assert changed == [
        ('name = "Treadmill 1"', 'name = "Gym floor 3"'),
        ("level_caps_kmh = [3.0, 4.0, 5.0, 5.5]", "level_caps_kmh = [3.0, 4.0, 4.5]"),
        ("grace_s = 5.0", "grace_s = 4.0"),
    ]
    assert stat.S_IMODE(config_file.stat().st_mode) == 0o640
    assert load_config(config_file)[0].backward.level_caps_kmh == (3.0, 4.0, 4.5)
    assert fake_device.requests == [Request(Command.RELOAD)]
    page = operator.get("/settings").get_data(as_text=True)
    assert "the device uses the new settings now" in page
    assert "Gym floor 3" in page  # the nav shows the new name at once


def test_the_daemons_note_about_a_restart_is_shown(operator: FlaskClient, fake_device: Any) -> None:
    fake_device.replies["reload"] = {"note": "restart the device for pin and sensor wiring changes"}
    save(operator, **{"backward.hold_s": "60"})
    page = operator.get("/settings").get_data(as_text=True)
    assert "but restart the device for pin and sensor wiring changes" in page


def test_the_daemon_refusing_the_reload_is_shown_as_an_error(
    operator: FlaskClient, fake_device: Any
) -> None:
    refusal = "/etc/retrotread/config.toml: no such config file."
    fake_device.replies["reload"] = {"ok": False, "error": refusal}
    save(operator, **{"backward.hold_s": "60"})
    page = operator.get("/settings").get_data(as_text=True)
    assert "flash-error" in page and f"the device did not take it: {refusal}" in page


def test_saved_while_the_device_is_offline_takes_effect_when_it_starts(
    tmp_path: Path, socket_dir: Path, config_file: Path
) -> None:
    client = log_in(make_app(tmp_path, socket_dir, config_file).test_client())
    assert save(client, **{"backward.hold_s": "60"}).status_code == 302
    assert load_config(config_file)[0].backward.hold_s == 60.0
    assert "take effect when it starts" in client.get("/settings").get_data(as_text=True)


def test_an_unchanged_form_writes_nothing(
    operator: FlaskClient, config_file: Path, fake_device: Any
) -> None:
    before = config_file.read_bytes()
    save(operator)
    assert config_file.read_bytes() == before and fake_device.requests == []
    assert "Nothing changed." in operator.get("/settings").get_data(as_text=True)


def test_on_built_in_defaults_the_default_file_is_created_when_writable(
    tmp_path: Path, socket_dir: Path, fake_device: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    default = tmp_path / "etc-retrotread" / "config.toml"
    default.parent.mkdir()
    monkeypatch.setattr(device.config.load, "DEFAULT_PATH", str(default))
    monkeypatch.setattr(web.settings, "DEFAULT_PATH", str(default))
    client = log_in(make_app(tmp_path, socket_dir, None, config=Config()).test_client())
    assert save(client, **{"backward.start_cap_kmh": "1.5"}).status_code == 302
    assert load_config(default)[0] == Config(backward=BackwardConfig(start_cap_kmh=1.5))
    assert fake_device.requests == [Request(Command.RELOAD)]


def test_on_built_in_defaults_with_nowhere_to_write_the_page_says_so(
    tmp_path: Path, socket_dir: Path, fake_device: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    default = tmp_path / "missing-dir" / "config.toml"
    monkeypatch.setattr(device.config.load, "DEFAULT_PATH", str(default))
    monkeypatch.setattr(web.settings, "DEFAULT_PATH", str(default))
    client = log_in(make_app(tmp_path, socket_dir, None, config=Config()).test_client())
    reply = save(client, **{"backward.start_cap_kmh": "1.5"})
    assert reply.status_code == 409
    assert "no config file to save to" in reply.get_data(as_text=True)
    assert not default.exists() and fake_device.requests == []


def test_a_file_broken_by_hand_turns_saving_off_with_its_sentence(
    operator: FlaskClient, config_file: Path, fake_device: Any
) -> None:
    form = form_values(operator)
    config_file.write_text("[backward]\ngrace_s = 0\n")
    page = operator.get("/settings").get_data(as_text=True)
    assert f"{config_file}: [backward] grace_s must be a number from 1 to 20 s" in page
    form["backward.hold_s"] = "60"
    assert operator.post("/settings", data=form).status_code == 409
    assert config_file.read_text() == "[backward]\ngrace_s = 0\n" and fake_device.requests == []


def test_open_controls_let_a_home_user_save_without_a_password(
    tmp_path: Path, socket_dir: Path, config_file: Path, fake_device: Any
) -> None:
    config_file.write_text(
        config_file.read_text().replace("open_controls = false", "open_controls = true")
    )
    client = make_app(tmp_path, socket_dir, config_file, password=False).test_client()
    assert save(client, **{"backward.hold_s": "30"}).status_code == 302
    assert load_config(config_file)[0].backward.hold_s == 30.0


def test_the_real_daemon_takes_the_saved_settings(
    tmp_path: Path, socket_dir: Path, config_file: Path, mock_factory: MockFactory
) -> None:
    socket_path = socket_dir / "device.sock"
    with daemon_running(
        load_config(config_file)[0], socket_path=socket_path, db_path=tmp_path / "history.db",
        config_path=config_file, pin_factory=mock_factory, within_s=5,
    ):  # fmt: skip
        client = log_in(make_app(tmp_path, socket_dir, config_file).test_client())
        assert save(client, **{"machine.name": "Backward lane"}).status_code == 302
        assert "the device uses the new settings now" in client.get("/settings").get_data(
            as_text=True
        )

        def status() -> dict[str, Any]:
            return DeviceClient(socket_path).request({"cmd": "status"})

        wait_until(
            lambda: status()["machine_name"] == "Backward lane",
            within_s=2,
            what="the new machine name in the device's status",
        )
        assert status()["machine_name"] == "Backward lane"
