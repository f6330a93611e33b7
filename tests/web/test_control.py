"""POST /api/control: the dashboard's buttons reach the daemon over its real Unix socket
(tests/web/conftest.py's `fake_device`, a DeviceSocket that records each request, or the real
daemon on mock pins), only for a logged-in operator, only in the exact shape the protocol
allows."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from gpiozero.pins.mock import MockFactory
from support.daemon_thread import daemon_running

from device.config.model import Config, WebConfig
from device.core.modes import Mode
from device.ipc.protocol import Command, Request
from web import create_app
from web.auth import set_password

PASSWORD = "belt-and-braces"


def make_client(
    tmp_path: Path, socket_path: Path, *, open_controls: bool = False, password: bool = True
) -> FlaskClient:
    state = tmp_path / "state"
    if password:
        set_password(state, PASSWORD)
    app = create_app(
        Config(web=WebConfig(open_controls=open_controls)),
        socket_path=str(socket_path),
        db_path=str(tmp_path / "history.db"),
        state_dir=str(state),
        test_config={"TESTING": True, "WTF_CSRF_ENABLED": True},
    )
    return app.test_client()


def csrf_token(client: FlaskClient) -> str:
    page = client.get("/login").get_data(as_text=True)
    return re.search(r'<meta name="csrf-token" content="([^"]+)"', page).group(1)


def logged_in_client(tmp_path: Path, socket_path: Path) -> FlaskClient:
    client = make_client(tmp_path, socket_path)
    form = {"password": PASSWORD, "csrf_token": csrf_token(client)}
    assert client.post("/login", data=form).status_code == 302
    return client


@pytest.fixture
def operator(tmp_path: Path, socket_dir: Path, fake_device: Any) -> FlaskClient:
    return logged_in_client(tmp_path, socket_dir / "device.sock")


def send(client: FlaskClient, body: Any = None, **kwargs: Any):
    headers = {"X-CSRFToken": csrf_token(client)}
    if body is not None:
        kwargs["json"] = body
    return client.post("/api/control", headers=headers, **kwargs)


def test_start_reaches_the_daemon_and_the_status_comes_back(
    operator: FlaskClient, fake_device: Any
) -> None:
    reply = send(operator, {"action": "start"})
    assert reply.status_code == 200
    assert reply.get_json() == {"ok": True, "status": fake_device.status}
    assert fake_device.requests == [Request(Command.START)]


@pytest.mark.parametrize("action", ["pause", "resume", "end"])
def test_each_session_button_is_passed_on_as_its_command(
    operator: FlaskClient, fake_device: Any, action: str
) -> None:
    assert send(operator, {"action": action}).status_code == 200
    assert fake_device.requests == [Request(Command(action))]


def test_direction_button_passes_the_mode(operator: FlaskClient, fake_device: Any) -> None:
    fake_device.replies["mode"] = {"status": dict(fake_device.status, mode="forward")}
    reply = send(operator, {"action": "mode", "mode": "forward"})
    assert reply.status_code == 200
    assert reply.get_json()["status"]["mode"] == "forward"
    assert fake_device.requests == [Request(Command.MODE, Mode.FORWARD)]


BAD_BODIES = [
    (["start"], "must be a JSON object"),
    ("start", "must be a JSON object"),
    ({}, 'no "action"'),
    ({"action": "jump"}, 'unknown action "jump"'),
    ({"action": 1}, "unknown action 1"),
    ({"action": "reload"}, 'unknown action "reload"'),
    ({"action": "mode"}, '"action": "mode" needs "mode"'),
    ({"action": "mode", "mode": "sideways"}, 'unknown mode "sideways"'),
    ({"action": "mode", "mode": None}, "unknown mode null"),
    ({"action": "start", "mode": "forward"}, '"start" takes only "action"'),
    ({"action": "start", "speed": 9}, 'unexpected keys "speed"'),
    ({"action": "mode", "mode": "forward", "cap": 9}, 'unexpected keys "cap"'),
]


@pytest.mark.parametrize(("body", "words"), BAD_BODIES)
def test_malformed_commands_are_refused_before_the_daemon_hears_them(
    operator: FlaskClient, fake_device: Any, body: Any, words: str
) -> None:
    reply = send(operator, body)
    assert reply.status_code == 400
    answer = reply.get_json()
    assert answer["ok"] is False and words in answer["error"]
    assert answer["error"].endswith(".")
    assert fake_device.requests == []


def test_a_body_that_is_not_json_is_refused(operator: FlaskClient, fake_device: Any) -> None:
    as_json = {"content_type": "application/json"}
    broken = send(operator, data="{action: start", **as_json)
    assert broken.status_code == 400 and "not valid JSON" in broken.get_json()["error"]
    form = send(operator, data={"action": "start"})
    assert form.status_code == 400 and "Content-Type: application/json" in form.get_json()["error"]
    huge = send(operator, data='{"action": "start", "x": "' + "a" * 2000 + '"}', **as_json)
    assert huge.status_code == 400 and "longer than" in huge.get_json()["error"]
    assert fake_device.requests == []


def test_controls_without_a_login_are_refused_with_the_way_to_log_in(
    tmp_path: Path, socket_dir: Path, fake_device: Any
) -> None:
    client = make_client(tmp_path, socket_dir / "device.sock")
    reply = send(client, {"action": "start"})
    assert reply.status_code == 401
    assert reply.get_json() == {
        "ok": False,
        "error": "Log in to use the controls.",
        "login": "/login",
    }
    assert fake_device.requests == []


def test_open_controls_let_anyone_on_the_network_press_start(
    tmp_path: Path, socket_dir: Path, fake_device: Any
) -> None:
    client = make_client(tmp_path, socket_dir / "device.sock", open_controls=True, password=False)
    assert send(client, {"action": "start"}).status_code == 200
    assert fake_device.requests == [Request(Command.START)]


def test_open_controls_still_need_the_csrf_token(
    tmp_path: Path, socket_dir: Path, fake_device: Any
) -> None:
    client = make_client(tmp_path, socket_dir / "device.sock", open_controls=True)
    reply = client.post("/api/control", json={"action": "start"})
    assert reply.status_code == 400 and reply.get_json()["ok"] is False
    assert fake_device.requests == []


def test_the_daemons_refusal_comes_back_as_409_with_its_sentence(
    operator: FlaskClient, fake_device: Any
) -> None:
    sentence = "backward start refused: the belt runs at 3.4 km/h, over the 2 km/h start cap."
    fake_device.replies["start"] = {"ok": False, "error": sentence}
    reply = send(operator, {"action": "start"})
    assert reply.status_code == 409
    assert reply.get_json() == {"ok": False, "error": sentence}


def test_daemon_down_answers_503_device_offline(tmp_path: Path, socket_dir: Path) -> None:
    client = logged_in_client(tmp_path, socket_dir / "nobody-listens.sock")
    reply = send(client, {"action": "start"})
    assert reply.status_code == 503
    answer = reply.get_json()
    assert answer["ok"] is False
    assert answer["error"].startswith("device offline: ")
    assert "nobody-listens.sock" in answer["error"]


def test_the_real_daemon_starts_pauses_and_refuses_a_resume_while_running(
    tmp_path: Path, socket_dir: Path, mock_factory: MockFactory
) -> None:
    socket_path = socket_dir / "device.sock"
    with daemon_running(
        Config(), socket_path=socket_path, db_path=tmp_path / "history.db",
        pin_factory=mock_factory, within_s=5,
    ):  # fmt: skip
        client = logged_in_client(tmp_path, socket_path)
        started = send(client, {"action": "start"})
        assert started.status_code == 200, started.get_json()
        assert started.get_json()["status"]["state"] == "running"
        refused = send(client, {"action": "resume"})
        assert refused.status_code == 409
        assert refused.get_json()["error"].endswith(".")
        paused = send(client, {"action": "pause"})
        assert paused.get_json()["status"]["state"] == "paused"
