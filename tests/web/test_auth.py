"""Logins, CSRF, the login rate limit, the secret key and `retrotread set-password`, through
the real app (create_app) and Flask's test client with CSRF switched on, as in production.
`client` and `state_dir` come from tests/web/conftest.py; no daemon listens on its socket."""

from __future__ import annotations

import errno
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from flask import Flask, session
from flask.testing import FlaskClient

from device.config.model import Config, WebConfig
from web import create_app, logins
from web.auth import (
    PASSWORD_FILE,
    SECRET_FILE,
    PasswordError,
    StateDirError,
    set_password,
)
from web.logins import LOGIN_LIFETIME_S, LOGINS_FILE, MAX_LOGINS

PASSWORD = "belt-and-braces"
REPO = Path(__file__).resolve().parents[2]


def dashboard(state_dir: Path, *, open_controls: bool = False) -> Flask:
    """The dashboard with CSRF on, a daemon socket where nothing listens. (The `client`
    fixture of tests/web/conftest.py is the same with its own state_dir.)"""
    config = Config(web=WebConfig(open_controls=open_controls))
    return create_app(
        config,
        socket_path=str(state_dir / "no-daemon.sock"),
        db_path=str(state_dir / "history.db"),
        state_dir=str(state_dir),
        test_config={"TESTING": True, "WTF_CSRF_ENABLED": True},
    )


def csrf_token(client: FlaskClient) -> str:
    """The token a browser would read from the page's <meta name="csrf-token">."""
    page = client.get("/login").get_data(as_text=True)
    found = re.search(r'<meta name="csrf-token" content="([^"]+)"', page)
    assert found, "the page has no csrf-token meta tag"
    return found.group(1)


def log_in(client: FlaskClient, password: str = PASSWORD, **extra: str):
    form = {"password": password, "csrf_token": csrf_token(client), **extra}
    return client.post("/login", data=form)


def press_start(client: FlaskClient):
    return client.post(
        "/api/control", json={"action": "start"}, headers={"X-CSRFToken": csrf_token(client)}
    )


# ---- the secret key ---------------------------------------------------------------------


def test_secret_key_is_made_on_first_start_private_and_reused(state_dir: Path) -> None:
    first = dashboard(state_dir)
    key_file = state_dir / SECRET_FILE
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert len(key_file.read_bytes()) == 32
    assert first.secret_key == key_file.read_bytes()
    second = dashboard(state_dir)
    assert second.secret_key == first.secret_key
    assert [p.name for p in state_dir.iterdir() if p.name.startswith(".")] == []


def test_a_login_survives_a_dashboard_restart(state_dir: Path) -> None:
    set_password(state_dir, PASSWORD)
    before = dashboard(state_dir).test_client()
    assert log_in(before).status_code == 302
    cookie = before.get_cookie("session")
    assert cookie is not None
    after = dashboard(state_dir).test_client()
    after.set_cookie("session", cookie.value)
    assert "You are logged in." in after.get("/login").get_data(as_text=True)


def test_state_dir_that_cannot_be_written_stops_the_start_with_one_sentence(
    tmp_path: Path,
) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the state directory should be\n")
    with pytest.raises(StateDirError) as caught:
        dashboard(blocker / "state")
    sentence = str(caught.value)
    assert str(blocker / "state" / SECRET_FILE) in sentence
    assert "writable" in sentence and sentence.endswith(".") and "\n" not in sentence


def test_a_truncated_secret_key_is_refused_with_the_fix(state_dir: Path) -> None:
    (state_dir / SECRET_FILE).write_bytes(b"short")
    with pytest.raises(StateDirError, match="delete the file and restart"):
        dashboard(state_dir)


# ---- no password yet --------------------------------------------------------------------


def test_login_page_says_to_run_set_password_when_none_is_set(client: FlaskClient) -> None:
    page = client.get("/login")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "retrotread set-password" in text
    assert 'type="password"' not in text


def test_controls_without_a_password_set_answer_401_naming_set_password(
    client: FlaskClient,
) -> None:
    reply = press_start(client)
    assert reply.status_code == 401
    body = reply.get_json()
    assert body["ok"] is False and body["login"] == "/login"
    assert "retrotread set-password" in body["error"]


def test_posting_a_login_before_any_password_is_set_is_refused(client: FlaskClient) -> None:
    reply = log_in(client, "anything-at-all")
    assert reply.status_code == 401
    assert "retrotread set-password" in reply.get_data(as_text=True)


# ---- logging in ---------------------------------------------------------------------------


def test_wrong_password_is_refused_and_the_controls_stay_locked(
    client: FlaskClient, state_dir: Path
) -> None:
    set_password(state_dir, PASSWORD)
    reply = log_in(client, "not-the-password")
    assert reply.status_code == 401
    assert "That password is not right" in reply.get_data(as_text=True)
    locked = press_start(client)
    assert locked.status_code == 401
    assert locked.get_json()["error"] == "Log in to use the controls."


def test_right_password_logs_in_and_goes_back_where_the_operator_was(
    client: FlaskClient, state_dir: Path
) -> None:
    set_password(state_dir, PASSWORD)
    reply = log_in(client, next="/settings")
    assert reply.status_code == 302
    assert reply.headers["Location"] == "/settings"
    # past the login, the control route reaches for the daemon (none here: 503, not 401)
    assert press_start(client).status_code == 503


def test_login_never_redirects_to_another_site(client: FlaskClient, state_dir: Path) -> None:
    set_password(state_dir, PASSWORD)
    for target in ("https://evil.example/", "//evil.example/x", "/\\evil.example"):
        reply = log_in(client, next=target)
        assert reply.status_code == 302
        assert reply.headers["Location"] == "/", target


def test_logout_locks_the_controls_again(client: FlaskClient, state_dir: Path) -> None:
    set_password(state_dir, PASSWORD)
    log_in(client)
    out = client.post("/logout", data={"csrf_token": csrf_token(client)})
    assert out.status_code == 302
    assert press_start(client).status_code == 401


def test_a_new_password_logs_everybody_out(client: FlaskClient, state_dir: Path) -> None:
    set_password(state_dir, PASSWORD)
    log_in(client)
    assert press_start(client).status_code == 503
    set_password(state_dir, "a-brand-new-one")
    assert press_start(client).status_code == 401


def test_password_is_kept_only_as_a_hash_the_dashboards_group_may_read(state_dir: Path) -> None:
    path = set_password(state_dir, PASSWORD)
    assert path == state_dir / PASSWORD_FILE
    # the dashboard runs as its own user in the state directory's group; nobody else reads it
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    stored = path.read_text()
    assert PASSWORD not in stored and stored.startswith("scrypt:")


def test_a_password_under_8_characters_is_refused(state_dir: Path) -> None:
    with pytest.raises(PasswordError, match="at least 8 characters"):
        set_password(state_dir, "short")
    assert not (state_dir / PASSWORD_FILE).exists()


# ---- logging out ends the login on the server ------------------------------------------


def copy_of_cookie(client: FlaskClient, app: Flask) -> FlaskClient:
    """Another browser holding a copy of `client`'s session cookie, as a thief would."""
    cookie = client.get_cookie("session")
    assert cookie is not None
    thief = app.test_client()
    thief.set_cookie("session", cookie.value)
    return thief


def test_a_cookie_copied_before_logout_no_longer_opens_the_controls(state_dir: Path) -> None:
    set_password(state_dir, PASSWORD)
    app = dashboard(state_dir)
    admin = app.test_client()
    log_in(admin)
    thief = copy_of_cookie(admin, app)
    assert press_start(thief).status_code == 503  # the copy works while the login lasts
    admin.post("/logout", data={"csrf_token": csrf_token(admin)})
    assert press_start(thief).status_code == 401
    settings = thief.post("/settings", data={"csrf_token": csrf_token(thief)})
    assert settings.status_code == 401
    assert "You are logged in." not in thief.get("/login").get_data(as_text=True)


def test_a_logged_out_cookie_stays_out_after_a_dashboard_restart(state_dir: Path) -> None:
    set_password(state_dir, PASSWORD)
    before = dashboard(state_dir)
    admin = before.test_client()
    log_in(admin)
    cookie = admin.get_cookie("session")
    assert cookie is not None
    admin.post("/logout", data={"csrf_token": csrf_token(admin)})
    replay = dashboard(state_dir).test_client()
    replay.set_cookie("session", cookie.value)
    assert press_start(replay).status_code == 401


def test_logging_out_one_browser_leaves_the_other_logins_alone(state_dir: Path) -> None:
    set_password(state_dir, PASSWORD)
    app = dashboard(state_dir)
    desk, phone = app.test_client(), app.test_client()
    log_in(desk)
    log_in(phone)
    desk.post("/logout", data={"csrf_token": csrf_token(desk)})
    assert press_start(desk).status_code == 401
    assert press_start(phone).status_code == 503


def test_the_server_keeps_only_a_hash_of_each_login_in_a_private_file(state_dir: Path) -> None:
    set_password(state_dir, PASSWORD)
    app = dashboard(state_dir)
    admin = app.test_client()
    log_in(admin)
    cookie = admin.get_cookie("session")
    assert cookie is not None
    with app.test_request_context(headers={"Cookie": f"session={cookie.value}"}):
        login_id = session.get("login")
    stored = (state_dir / LOGINS_FILE).read_text()
    assert isinstance(login_id, str) and len(login_id) >= 40
    assert login_id not in stored and len(stored.splitlines()) == 1
    assert stat.S_IMODE((state_dir / LOGINS_FILE).stat().st_mode) == 0o600


def test_a_login_ends_by_itself_after_its_lifetime(state_dir: Path) -> None:
    login_id = logins.start_login(state_dir, now=1_000_000.0)
    assert logins.is_live(state_dir, login_id, now=1_000_000.0 + LOGIN_LIFETIME_S - 1)
    assert not logins.is_live(state_dir, login_id, now=1_000_000.0 + LOGIN_LIFETIME_S + 1)


def test_past_the_most_logins_the_oldest_ends_and_the_file_stays_small(state_dir: Path) -> None:
    ids = [logins.start_login(state_dir, now=1_000_000.0 + n) for n in range(MAX_LOGINS + 5)]
    now = 1_000_000.0 + MAX_LOGINS + 5
    assert [logins.is_live(state_dir, i, now=now) for i in ids[:5]] == [False] * 5
    assert all(logins.is_live(state_dir, i, now=now) for i in ids[5:])
    assert len((state_dir / LOGINS_FILE).read_text().splitlines()) == MAX_LOGINS


def test_a_garbled_logins_file_logs_everybody_out_instead_of_failing(state_dir: Path) -> None:
    set_password(state_dir, PASSWORD)
    client = dashboard(state_dir).test_client()
    log_in(client)
    (state_dir / LOGINS_FILE).write_bytes(b"\xff\x00 not a login\n" * 10)
    assert press_start(client).status_code == 401
    assert log_in(client).status_code == 302  # and a new login mends the file
    assert press_start(client).status_code == 503


@pytest.mark.parametrize("odd", [None, 5, "", "x" * 10_000, ["a"]])
def test_an_odd_login_id_in_a_cookie_is_no_login(state_dir: Path, odd: object) -> None:
    logins.start_login(state_dir, now=1_000_000.0)
    assert not logins.is_live(state_dir, odd, now=1_000_000.0)


def test_a_login_the_server_cannot_record_is_refused_with_its_sentence(state_dir: Path) -> None:
    set_password(state_dir, PASSWORD)
    (state_dir / LOGINS_FILE).mkdir()  # a directory where the logins file should be
    client = dashboard(state_dir).test_client()
    reply = log_in(client)
    assert reply.status_code == 503
    assert f"{state_dir / LOGINS_FILE}: cannot" in reply.get_data(as_text=True)
    assert press_start(client).status_code == 401


def test_a_logout_the_server_cannot_record_says_it_ended_here_only(
    state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_password(state_dir, PASSWORD)
    client = dashboard(state_dir).test_client()
    log_in(client)

    def disk_full(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(logins, "write_private", disk_full)
    out = client.post("/logout", data={"csrf_token": csrf_token(client)}, follow_redirects=True)
    assert "Logged out of this browser only" in out.get_data(as_text=True)
    assert "no space left on device" in out.get_data(as_text=True)
    assert press_start(client).status_code == 401


# ---- CSRF, cookies and the rate limit -----------------------------------------------------


def test_login_form_without_its_csrf_token_gets_a_friendly_400_page(
    client: FlaskClient, state_dir: Path
) -> None:
    set_password(state_dir, PASSWORD)
    client.get("/login")
    reply = client.post("/login", data={"password": PASSWORD})
    assert reply.status_code == 400
    assert reply.mimetype == "text/html"
    assert "reload the page and try again" in reply.get_data(as_text=True)
    assert press_start(client).status_code == 401  # and it did not log in


def test_api_post_without_the_csrf_header_gets_400_json(
    client: FlaskClient, state_dir: Path
) -> None:
    set_password(state_dir, PASSWORD)
    log_in(client)
    reply = client.post("/api/control", json={"action": "start"})
    assert reply.status_code == 400
    body = reply.get_json()
    assert body["ok"] is False and "reload the page" in body["error"]
    forged = client.post(
        "/api/control", json={"action": "start"}, headers={"X-CSRFToken": "forged"}
    )
    assert forged.status_code == 400


def test_session_cookie_is_httponly_strict_and_not_secure_on_plain_http(
    client: FlaskClient,
) -> None:
    reply = client.get("/login")
    cookie = reply.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert "Secure" not in cookie  # a gym LAN is plain http: a Secure cookie never returns


def test_session_cookie_is_secure_when_the_browser_comes_over_https(state_dir: Path) -> None:
    client = dashboard(state_dir).test_client()
    reply = client.get("/login", base_url="https://treadmill.local")
    assert "Secure" in reply.headers["Set-Cookie"]


def test_login_attempts_are_limited_per_address(client: FlaskClient, state_dir: Path) -> None:
    set_password(state_dir, PASSWORD)
    token = csrf_token(client)
    codes = [
        client.post("/login", data={"password": f"guess-{n}", "csrf_token": token}).status_code
        for n in range(6)
    ]
    assert codes == [401] * 5 + [429]
    limited = client.post("/login", data={"password": PASSWORD, "csrf_token": token})
    assert limited.status_code == 429
    assert "Too many login attempts" in limited.get_data(as_text=True)
    # another phone on the gym's network is not locked out by this one
    other = {"REMOTE_ADDR": "192.168.1.77"}
    page = client.get("/login", environ_base=other).get_data(as_text=True)
    other_token = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)
    reply = client.post(
        "/login", data={"password": PASSWORD, "csrf_token": other_token}, environ_base=other
    )
    assert reply.status_code == 302


# ---- `retrotread set-password` ----------------------------------------------------------


def run_cli(*args: str, stdin: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "device.cli", "set-password", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=30,
        check=False,
    )


def test_set_password_from_a_script_then_the_dashboard_accepts_it(state_dir: Path) -> None:
    done = run_cli("--state-dir", str(state_dir), stdin=PASSWORD + "\n")
    assert done.returncode == 0, done.stderr
    assert str(state_dir / PASSWORD_FILE) in done.stdout
    client = dashboard(state_dir).test_client()
    assert log_in(client).status_code == 302


def test_set_password_finds_the_state_dir_beside_the_configured_database(
    tmp_path: Path,
) -> None:
    db_dir = tmp_path / "var-lib"
    config = tmp_path / "config.toml"
    config.write_text(f'[storage]\ndb = "{db_dir / "retrotread.db"}"\n')
    done = run_cli("--config", str(config), stdin=PASSWORD + "\n")
    assert done.returncode == 0, done.stderr
    assert (db_dir / PASSWORD_FILE).exists()


def test_set_password_refuses_a_short_password_in_one_sentence(state_dir: Path) -> None:
    done = run_cli("--state-dir", str(state_dir), stdin="short\n")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "The password must have at least 8 characters; choose a longer one."
    ]
    assert not (state_dir / PASSWORD_FILE).exists()


def test_set_password_with_a_bad_config_names_the_file(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("[backward]\ngrace_s = 0\n")
    done = run_cli("--config", str(config), stdin=PASSWORD + "\n")
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and str(config) in lines[0] and "grace_s" in lines[0]
    assert "Traceback" not in done.stderr


def test_set_password_where_the_state_dir_cannot_be_made_says_so(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x\n")
    done = run_cli("--state-dir", str(blocker / "state"), stdin=PASSWORD + "\n")
    assert done.returncode == 2
    assert "cannot write the admin password" in done.stderr
    assert "Traceback" not in done.stderr
    assert os.path.isfile(blocker)
