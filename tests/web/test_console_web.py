"""A CSAFE console on the dashboard: the settings page says when the history found that the
console ignores SetSpeed and offers the console's keys (checked by check-config's own rules,
saved into a copy of config.example.toml); the live page shows the console's machine state,
the soft stop's window in place of a countdown, and the console link's trouble on the
health line. Statuses come from the real Controller, driven in virtual time."""

from __future__ import annotations

import html
import re
import shutil
import tomllib
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from support.console_walk import CONSOLE_PORT, LINK_WELL, console_walk, with_health
from support.live_page import live_page

from device.config.load import load_config
from device.config.model import SensorKind
from device.core.events import EventKind
from device.core.status import ConsoleLinkStatus
from device.history.reader import History
from device.history.store import Store
from device.ipc.protocol import Command, Request
from web import create_app
from web.auth import set_password
from web.live_view import view

if TYPE_CHECKING:  # pytest imports each conftest under the same name: never import it
    from conftest import FakeDevice

PASSWORD = "belt-and-braces"
EXAMPLE = Path(__file__).resolve().parents[2] / "config.example.toml"
FOUND_AT = 1_760_000_000.0  # an afternoon in October 2025, epoch seconds
IGNORES = "This console ignores SetSpeed: the relay stops the belt."


# ---- the settings page ----------------------------------------------------------------------


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "etc" / "config.toml"
    path.parent.mkdir()
    shutil.copy(EXAMPLE, path)
    return path


@pytest.fixture
def history_file(tmp_path: Path) -> Path:
    path = tmp_path / "history.db"
    Store(path).close()
    return path


def settings_app(tmp_path: Path, socket_dir: Path, config_file: Path, history: Path) -> Flask:
    state = tmp_path / "state"
    set_password(state, PASSWORD)
    return create_app(
        None,
        config_path=str(config_file),
        socket_path=str(socket_dir / "device.sock"),
        db_path=str(history),
        state_dir=str(state),
        test_config={"TESTING": True},
    )


def csrf_token(client: FlaskClient) -> str:
    page = client.get("/login").get_data(as_text=True)
    found = re.search(r'<meta name="csrf-token" content="([^"]+)"', page)
    assert found
    return found.group(1)


@pytest.fixture
def operator(
    tmp_path: Path, socket_dir: Path, config_file: Path, history_file: Path, fake_device: Any
) -> FlaskClient:
    client = settings_app(tmp_path, socket_dir, config_file, history_file).test_client()
    form = {"password": PASSWORD, "csrf_token": csrf_token(client)}
    assert client.post("/login", data=form).status_code == 302
    return client


def console_found_ignoring(history: Path, *whys: str) -> None:
    """The daemon's store records the console ignoring SetSpeed, once per reason, an hour
    apart (the daemon writes it once; a second row is what an older file might hold)."""
    with Store(history) as store:
        for n, why in enumerate(whys):
            store.add_event(FOUND_AT + 3600 * n, EventKind.CONSOLE_IGNORES_SPEED, {"why": why})


def note_beside(page: str, name: str) -> str | None:
    fid = name.replace(".", "-")
    found = re.search(rf'<p class="field-note" id="{fid}-note"[^>]*>([^<]*)</p>', page)
    return html.unescape(found.group(1)) if found else None


def field_error(page: str, name: str) -> str:
    fid = name.replace(".", "-")
    found = re.search(rf'<p class="field-error" id="{fid}-error" role="alert">([^<]*)</p>', page)
    assert found, f"no error shown beside {name}"
    return html.unescape(found.group(1))


def form_values(client: FlaskClient) -> dict[str, str]:
    """What the browser would send back untouched: every field as the page fills it."""
    page = client.get("/settings").get_data(as_text=True)
    values = {
        name: html.unescape(value)
        for name, value in re.findall(r'name="([a-z_.]+)" type="text" value="([^"]*)"', page)
    }
    for name, body in re.findall(r'<select[^>]*name="([a-z_.]+)"[^>]*>(.*?)</select>', page, re.S):
        selected = re.search(r'<option value="([^"]+)" selected', body)
        assert selected, f"{name} has no option selected"
        values[name] = selected.group(1)
    values["csrf_token"] = csrf_token(client)
    return values


def options_of(page: str, name: str) -> list[str]:
    found = re.search(rf'<select[^>]*name="{re.escape(name)}"[^>]*>(.*?)</select>', page, re.S)
    assert found, f"no choice for {name}"
    return re.findall(r'<option value="([^"]+)"', found.group(1))


def save(client: FlaskClient, **changed: str):
    form = form_values(client)
    form.update({name.replace("__", "."): value for name, value in changed.items()})
    return client.post("/settings", data=form)


def test_a_console_found_ignoring_setspeed_is_said_beside_the_soft_stop_with_day_and_why(
    operator: FlaskClient, history_file: Path
) -> None:
    console_found_ignoring(history_file, "it refused SetSpeed", "the belt ran on")
    page = operator.get("/settings").get_data(as_text=True)
    day = datetime.fromtimestamp(FOUND_AT)  # the Pi's local day, as every page shows times
    # the first time it was found, not the latest
    assert note_beside(page, "enforce.soft") == (
        f"{IGNORES} Found on {day.day} {day:%B %Y}: it refused SetSpeed."
    )
    assert 'aria-describedby="enforce-soft-help enforce-soft-note"' in page


def test_a_console_never_found_ignoring_setspeed_is_not_accused(operator: FlaskClient) -> None:
    page = operator.get("/settings").get_data(as_text=True)
    assert note_beside(page, "enforce.soft") is None and "ignores SetSpeed" not in page


def test_without_a_history_file_the_page_still_answers_and_says_nothing_of_the_console(
    tmp_path: Path, socket_dir: Path, config_file: Path
) -> None:
    app = settings_app(tmp_path, socket_dir, config_file, tmp_path / "no-history.db")
    reply = app.test_client().get("/settings")
    assert reply.status_code == 200 and "ignores SetSpeed" not in reply.get_data(as_text=True)


def test_the_history_gives_the_first_finding_and_none_before_one(history_file: Path) -> None:
    with History(history_file) as history:
        assert history.console_ignores_speed() is None
    console_found_ignoring(history_file, "the belt ran on", "it refused SetSpeed")
    with History(history_file) as history:
        assert history.console_ignores_speed() == (FOUND_AT, "the belt ran on")


def test_the_form_offers_the_consoles_keys(operator: FlaskClient) -> None:
    page = operator.get("/settings").get_data(as_text=True)
    assert options_of(page, "sensor.kind") == ["hall", "serial", "csafe"]
    assert options_of(page, "sensor.check.kind") == ["none", "hall", "csafe"]
    assert options_of(page, "enforce.soft") == ["none", "csafe"]
    assert options_of(page, "session.follow_console") == ["false", "true"]
    assert "9600" in options_of(page, "sensor.baud") == options_of(page, "sensor.check.baud")
    values = form_values(operator)
    # the example file has no [sensor.check]: the form says so, and saving it adds none
    assert values["sensor.check.kind"] == "none"
    assert (values["sensor.kind"], values["sensor.url"], values["sensor.baud"]) == (
        "hall",
        "",
        "9600",
    )
    assert (values["enforce.soft"], values["session.follow_console"]) == ("none", "false")


def test_a_console_checking_the_hall_sensor_is_saved_with_its_soft_stop(
    operator: FlaskClient, config_file: Path, fake_device: FakeDevice
) -> None:
    reply = save(
        operator,
        sensor__check__kind="csafe",
        sensor__check__url=CONSOLE_PORT,
        enforce__soft="csafe",
        session__follow_console="true",
    )
    assert reply.status_code == 302
    config = load_config(config_file)[0]
    check = config.sensor.check
    assert check is not None
    assert (check.kind, check.url, check.baud) == (SensorKind.CSAFE, CONSOLE_PORT, 9600)
    assert config.enforce.soft == "csafe" and config.session.follow_console is True
    assert config.sensor.console == (CONSOLE_PORT, 9600)
    # the new table names no hall pin a reader would take for one in use
    written = tomllib.loads(config_file.read_text())["sensor"]["check"]
    assert written == {"kind": "csafe", "url": CONSOLE_PORT}
    assert fake_device.requests == [Request(Command.RELOAD)]
    # the page reads the file back as it was saved, and an unchanged form writes nothing
    assert form_values(operator)["sensor.check.url"] == CONSOLE_PORT
    before = config_file.read_bytes()
    save(operator)
    assert config_file.read_bytes() == before


def test_a_console_as_the_only_sensor_is_saved_with_its_baud_as_a_number(
    operator: FlaskClient, config_file: Path, fake_device: FakeDevice
) -> None:
    reply = save(operator, sensor__kind="csafe", sensor__url="/dev/ttyUSB0", sensor__baud="19200")
    assert reply.status_code == 302
    sensor = load_config(config_file)[0].sensor
    assert (sensor.kind, sensor.url, sensor.baud) == (SensorKind.CSAFE, "/dev/ttyUSB0", 19200)
    assert "baud = 19200\n" in config_file.read_text()


BAD_COMBINATIONS = [
    (
        {"enforce.soft": "csafe"},
        "enforce.soft",
        '[enforce] soft = "csafe" asks the console to slow the belt, but no console is read',
    ),
    (
        {"session.follow_console": "true"},
        "session.follow_console",
        "[session] follow_console = true follows a CSAFE console, but no console is read",
    ),
    (
        {"sensor.kind": "csafe"},
        "sensor.url",
        '[sensor] url must name the serial port (such as "/dev/ttyUSB0"',
    ),
    (
        {"sensor.check.kind": "csafe"},
        "sensor.check.url",
        "[sensor.check] url must name the console's serial port",
    ),
    (
        {"sensor.kind": "csafe", "sensor.url": "/dev/ttyUSB0", "sensor.check.kind": "csafe",
         "sensor.check.url": CONSOLE_PORT},
        "sensor.check.kind",
        '[sensor.check] kind "csafe" checks a hall sensor, but [sensor] kind is "csafe"',
    ),
    (
        {"sensor.check.kind": "csafe", "sensor.check.url": CONSOLE_PORT, "enforce.soft": "csafe",
         "enforce.action": "none"},
        "enforce.soft",
        'but action is "none"; set action = "relay", or soft = "none"',
    ),
]  # fmt: skip


@pytest.mark.parametrize(("typed", "name", "words"), BAD_COMBINATIONS)
def test_a_combination_the_device_cannot_run_is_one_sentence_beside_its_key(
    operator: FlaskClient,
    config_file: Path,
    fake_device: FakeDevice,
    typed: dict[str, str],
    name: str,
    words: str,
) -> None:
    before = config_file.read_bytes()
    form = form_values(operator)
    form.update(typed)
    reply = operator.post("/settings", data=form)
    assert reply.status_code == 400
    error = field_error(reply.get_data(as_text=True), name)
    assert words in error
    assert error.endswith(".") and ". " not in error.rstrip(".")  # one sentence
    assert config_file.read_bytes() == before and fake_device.requests == []


def test_a_check_sensor_in_the_file_is_not_taken_out_silently(
    operator: FlaskClient, config_file: Path, fake_device: FakeDevice
) -> None:
    save(operator, sensor__check__kind="csafe", sensor__check__url=CONSOLE_PORT)
    before = config_file.read_bytes()
    fake_device.requests.clear()
    reply = save(operator, sensor__check__kind="none")
    assert reply.status_code == 400
    assert "delete that table from the config file by hand" in field_error(
        reply.get_data(as_text=True), "sensor.check.kind"
    )
    assert config_file.read_bytes() == before and fake_device.requests == []


def test_the_enforcement_panel_counts_the_soft_stops_two_seconds(
    operator: FlaskClient, config_file: Path, fake_device: FakeDevice
) -> None:
    save(operator, sensor__check__kind="csafe", sensor__check__url=CONSOLE_PORT,
         enforce__soft="csafe")  # fmt: skip
    page = operator.get("/settings").get_data(as_text=True)
    assert "the console is asked to slow the belt to the cap, which can add up to 2 s" in page


# ---- the live page --------------------------------------------------------------------------

GIVES_NO_SPEED = (
    "the console on /dev/ttyUSB0 answers GetSpeed with its status only: it does not give its "
    'speed over CSAFE; fit a hall sensor ([sensor] kind = "hall").'
)


def test_the_live_page_shows_the_consoles_state_and_that_sessions_follow_it(
    fake_device: FakeDevice, client: FlaskClient
) -> None:
    fake_device.status = with_health(console_walk(), LINK_WELL)
    page = live_page(client)
    assert page.shown("console-row") and page.says("console") == "in use, sessions follow it"
    assert page.says("health") == "all good"


def test_a_console_that_sessions_do_not_follow_says_so(
    running_status: Callable[..., dict],
) -> None:
    status = running_status(console={"state": "paused", "follows": False, "speed_answer": None})
    assert view(status)["console"] == "paused, sessions do not follow it"
    before_first_answer = {"state": None, "follows": True, "speed_answer": None}
    assert view(running_status(console=before_first_answer))["console"] == (
        "no answer yet, sessions follow it"
    )
    assert view(running_status(console="in use"))["console"] == "unknown"


def test_without_a_console_the_row_stays_hidden(client: FlaskClient, fake_device: Any) -> None:
    page = live_page(client)
    assert not page.shown("console-row") and page.says("console") == ""


def test_while_the_console_slows_the_belt_the_warning_says_so_instead_of_a_countdown(
    fake_device: FakeDevice, client: FlaskClient
) -> None:
    status = with_health(console_walk(over_kmh=3.5), LINK_WELL)
    fake_device.status = status
    page = live_page(client)
    assert page.shown("warning-banner")
    assert page.says("warning-text") == "Slow down: slowing the belt (SetSpeed)"
    assert "stopping in" not in page.says("warning-banner")
    assert page.says("message") == (
        "Over the 2.0 km/h cap: the treadmill is slowing the belt to 2.0 km/h."
    )
    # the grace is spent: once the window closes without the belt coming down, the relay
    assert view({**status, "slowing": False})["warning"] == "Stopped: the belt was over the cap"


def test_the_health_line_names_a_console_that_gives_no_speed_and_counts_its_timeouts(
    fake_device: FakeDevice, client: FlaskClient
) -> None:
    walk = console_walk()
    link: ConsoleLinkStatus = {**LINK_WELL, "unsupported": GIVES_NO_SPEED, "timeouts": 3}
    fake_device.status = with_health(walk, link)
    page = live_page(client)
    assert page.says("health") == f"console: {GIVES_NO_SPEED.rstrip('.')} (3 timeouts)"
    assert "trouble" in (page.attrs["health-row"]["class"] or "")
    assert view(with_health(walk, {**LINK_WELL, "timeouts": 1}))["health"] == "console: 1 timeout"
    unplugged = "cannot open /dev/ttyUSB0: no such port; check the USB-RS232 adapter."
    assert view(with_health(walk, {**LINK_WELL, "error": unplugged}))["health"] == (
        f"console: {unplugged.rstrip('.')}"
    )


def test_a_console_as_the_only_sensor_is_not_blamed_twice(
    running_status: Callable[..., dict],
) -> None:
    sensor = {"kind": "csafe", "ok": False, "state": "lost", "channel": "primary",
              "checked": False}  # fmt: skip
    link: ConsoleLinkStatus = {**LINK_WELL, "unsupported": GIVES_NO_SPEED, "rejected_frames": 2}
    status = with_health(running_status(sensor=sensor), link, rejected=2, error=GIVES_NO_SPEED)
    words = view(status)
    assert words["health"] == f"sensor: 2 frames rejected, last error: {GIVES_NO_SPEED}"
    assert words["sensor"] == "console (CSAFE): lost"


def test_an_unreadable_console_report_reads_unknown_never_fine(
    running_status: Callable[..., dict],
) -> None:
    status = with_health(running_status(), LINK_WELL)
    assert view({**status, "health": {**status["health"], "console": 5}})["health"] == (
        "console: unknown"
    )
    odd: Any = {**LINK_WELL, "timeouts": "many", "error": 7}
    assert view(with_health(running_status(), odd))["health"] == (
        "console: last error: unknown (timeouts: unknown)"
    )
