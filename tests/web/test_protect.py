"""What every request and response gets (web/protect.py): the request body bound (Flask's and
waitress's, the latter over real sockets and as the `retrotread web` subprocess), the security
headers on every kind of response, and one sentence for a path, method or body the dashboard
does not take."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from web.auth import set_password
from web.protect import CONTENT_SECURITY_POLICY, MAX_BODY_BYTES
from web.serve import WebServer

if TYPE_CHECKING:  # pytest imports each conftest under the same name: never import it
    from conftest import FakeDevice

REPO = Path(__file__).resolve().parents[2]
PASSWORD = "belt-and-braces"
WITHIN_S = 10.0  # generous bound for a process to start: a failure, not a measurement
CLAIMED = 200 * 1024 * 1024  # what the attacker posted, four times over


def csrf_token(client: FlaskClient) -> str:
    page = client.get("/login").get_data(as_text=True)
    found = re.search(r'<meta name="csrf-token" content="([^"]+)"', page)
    assert found
    return found.group(1)


# -- the body bound, in Flask --------------------------------------------------------------------


def test_a_login_with_a_body_over_64_kib_is_refused_with_413(
    client: FlaskClient, state_dir: Path
) -> None:
    set_password(state_dir, PASSWORD)
    form = {"password": "x" * (MAX_BODY_BYTES + 1), "csrf_token": csrf_token(client)}
    reply = client.post("/login", data=form)
    assert reply.status_code == 413
    assert "over 64 KiB" in reply.get_data(as_text=True)


def test_a_settings_form_over_64_kib_is_refused_with_413_and_under_it_is_read(
    client: FlaskClient,
) -> None:
    token = csrf_token(client)
    big = client.post("/settings", data={"machine.name": "x" * MAX_BODY_BYTES, "csrf_token": token})
    assert big.status_code == 413
    # just under the bound the form is read: the missing login answers, not the size
    fits = client.post("/settings", data={"machine.name": "x" * 60_000, "csrf_token": token})
    assert fits.status_code == 401


def test_an_api_body_over_the_bound_is_413_json(client: FlaskClient) -> None:
    reply = client.post(
        "/api/control",
        data=b"[" * (MAX_BODY_BYTES + 10),
        headers={"Content-Type": "application/json", "X-CSRFToken": csrf_token(client)},
    )
    assert reply.status_code == 413
    body = reply.get_json()
    assert body["ok"] is False and "64 KiB" in body["error"]


# -- the body bound, in waitress -----------------------------------------------------------------


def raw_exchange(port: int, head: str, body: bytes = b"", *, timeout: float = 5.0) -> bytes:
    """Send `head` (and `body`) over a plain socket; return what the server answers until it
    closes the connection. Writing may fail once the server has answered and hung up."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as conn:
        conn.sendall(head.encode("latin-1"))
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            conn.sendall(body)
        answer = b""
        try:
            while chunk := conn.recv(65536):
                answer += chunk
        except ConnectionResetError:
            pass
        return answer


def post_head(content_length: int | None, *, path: str = "/login", chunked: bool = False) -> str:
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    lines.append("Content-Type: application/x-www-form-urlencoded")
    if chunked:
        lines.append("Transfer-Encoding: chunked")
    else:
        lines.append(f"Content-Length: {content_length}")
    return "\r\n".join(lines) + "\r\n\r\n"


def test_waitress_refuses_a_200_mb_claim_at_once_without_waiting_for_the_body(
    app: Flask, serve_app: Callable[..., WebServer]
) -> None:
    server = serve_app(app)
    started = time.monotonic()
    answer = raw_exchange(server.port, post_head(CLAIMED), b"password=" + b"x" * 1000)
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
    # had waitress waited for the 200 MB it would have timed out (5 s) instead
    assert time.monotonic() - started < 2.0


def test_waitress_refuses_a_chunked_body_once_it_grows_past_the_bound(
    app: Flask, serve_app: Callable[..., WebServer]
) -> None:
    server = serve_app(app)
    chunk = b"x" * 8192
    body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(16)) + b"0\r\n\r\n"
    answer = raw_exchange(server.port, post_head(None, chunked=True), body)
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]


def test_waitress_lets_a_body_at_the_bound_reach_the_app(
    app: Flask, serve_app: Callable[..., WebServer]
) -> None:
    server = serve_app(app)
    body = b"x" * MAX_BODY_BYTES
    answer = raw_exchange(server.port, post_head(len(body), path="/logout"), body)
    # the app read it: its CSRF check refused the form, not the server its size
    assert answer.startswith(b"HTTP/1.1 400 "), answer[:200]


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for process {pid}")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux's /proc")
def test_retrotread_web_stays_small_under_four_200_mb_posts(
    fake_device: FakeDevice, tmp_path: Path, db_path: str
) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[web]\nlisten = "127.0.0.1:8080"\n')
    argv = [sys.executable, "-m", "device.cli", "web", "--config", str(config), "--port", "0"]
    argv += ["--socket", str(fake_device.path), "--db", db_path]
    errors = tmp_path / "web.err"
    with open(errors, "wb") as err:
        process = subprocess.Popen(
            argv,
            cwd=REPO,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            stdout=subprocess.PIPE,
            stderr=err,
        )
    try:
        assert process.stdout is not None
        first = process.stdout.readline().decode()
        assert first.startswith("retrotread web: serving http://127.0.0.1:"), errors.read_text()
        port = int(first.split("http://127.0.0.1:")[1].split("/")[0])
        raw_exchange(port, "GET /login HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        before = rss_kib(process.pid)
        # each claims 200 MB and pushes 4 MB as fast as the server takes it
        for _ in range(4):
            answer = raw_exchange(port, post_head(CLAIMED), b"x" * (4 * 1024 * 1024))
            assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
        grown_mib = (rss_kib(process.pid) - before) / 1024
        assert grown_mib < 20, f"the dashboard grew by {grown_mib:.0f} MiB"
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=WITHIN_S)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            process.stdout.close()


# -- security headers ----------------------------------------------------------------------------


def assert_security_headers(headers) -> None:
    assert headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "same-origin"


def test_the_policy_allows_no_inline_script_no_frames_and_no_foreign_forms() -> None:
    directives = dict(part.split(" ", 1) for part in CONTENT_SECURITY_POLICY.split("; "))
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert directives["base-uri"] == "'none'"
    assert directives["form-action"] == "'self'"
    assert "unsafe" not in CONTENT_SECURITY_POLICY


@pytest.mark.parametrize(
    "path",
    ["/", "/history", "/settings", "/login", "/healthz", "/api/status", "/api/sessions",
     "/static/live.js", "/sessions/12", "/no-such-page", "/api/no-such-thing"],
)  # fmt: skip
def test_every_kind_of_response_carries_the_security_headers(
    fake_device: FakeDevice, client: FlaskClient, path: str
) -> None:
    reply = client.get(path)
    assert reply.status_code in (200, 404), reply.status_code
    assert_security_headers(reply.headers)


def test_refusals_and_redirects_carry_the_security_headers_too(client: FlaskClient) -> None:
    assert_security_headers(client.post("/login", data={"password": "x"}).headers)  # CSRF 400
    assert_security_headers(client.post("/logout").headers)
    too_big = client.post("/login", data={"password": "x" * (MAX_BODY_BYTES + 1)})
    assert too_big.status_code == 413
    assert_security_headers(too_big.headers)


def test_the_security_headers_reach_the_browser_through_waitress(
    fake_device: FakeDevice, app: Flask, serve_app: Callable[..., WebServer]
) -> None:
    server = serve_app(app)
    answer = raw_exchange(server.port, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    head = answer.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    assert f"Content-Security-Policy: {CONTENT_SECURITY_POLICY}" in head
    assert "X-Frame-Options: DENY" in head


class Markup(HTMLParser):
    """What would break the policy: inline scripts, on* handlers, style attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.offences: list[str] = []
        self._in_script: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        for name in found:
            if name.startswith("on") or name == "style":
                self.offences.append(f"<{tag} {name}=...>")
        if tag == "style":
            self.offences.append("<style> block")
        if tag == "script" and "src" not in found:
            self._in_script = found.get("type") or "text/javascript"

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = None

    def handle_data(self, data: str) -> None:
        if self._in_script not in (None, "application/json") and data.strip():
            self.offences.append(f"inline script: {data.strip()[:40]}")


def offences(html: str) -> list[str]:
    parser = Markup()
    parser.feed(html)
    return parser.offences


def test_the_markup_checker_finds_what_the_policy_would_block() -> None:
    bad = '<p style="color:red" onclick="x()">a</p><script>alert(1)</script><style>p{}</style>'
    assert len(offences(bad)) == 4
    assert offences('<script type="application/json">{"a": 1}</script>') == []


@pytest.mark.parametrize("path", ["/", "/history", "/settings", "/login", "/no-such-page"])
def test_no_page_has_inline_script_or_style(
    fake_device: FakeDevice, client: FlaskClient, path: str
) -> None:
    assert offences(client.get(path).get_data(as_text=True)) == []


# -- one sentence for what the dashboard does not take -------------------------------------------


def test_an_unknown_page_is_404_with_a_sentence_and_the_way_back(client: FlaskClient) -> None:
    reply = client.get("/treadmill-2")
    assert reply.status_code == 404
    text = reply.get_data(as_text=True)
    assert "There is no page at /treadmill-2 on this dashboard" in text
    assert 'href="/history"' in text


def test_an_unknown_api_path_is_404_json_naming_the_api(client: FlaskClient) -> None:
    reply = client.get("/api/sessions/not-a-number")
    assert reply.status_code == 404
    body = reply.get_json()
    assert body["ok"] is False
    assert body["error"].startswith("There is no /api/sessions/not-a-number in this dashboard")
    assert "/api/status" in body["error"]


def test_a_wrong_method_is_405_naming_the_methods_taken(client: FlaskClient) -> None:
    reply = client.get("/api/control")
    assert reply.status_code == 405
    assert reply.get_json()["error"] == "GET is not taken at /api/control; it takes POST."


def test_a_very_long_unknown_path_is_shortened_in_the_sentence(client: FlaskClient) -> None:
    reply = client.get("/api/" + "x" * 5000)
    assert reply.status_code == 404
    assert len(reply.get_json()["error"]) < 250


def test_a_failure_inside_a_view_is_one_sentence_not_a_traceback(
    make_app: Callable[..., Flask],
) -> None:
    app = make_app(test_config={"TESTING": False, "PROPAGATE_EXCEPTIONS": False})

    @app.get("/api/broken")
    def broken() -> str:
        raise RuntimeError("a bug")

    reply = app.test_client().get("/api/broken")
    assert reply.status_code == 500
    assert "journalctl -u retrotread-web" in reply.get_json()["error"]
    assert "a bug" not in reply.get_data(as_text=True)


PAGES = ["/", "/history", "/settings", "/login", "/healthz", "/api/status", "/api/sessions",
         "/api/sessions.csv"]  # fmt: skip
QUERY_KEYS = ["page", "limit", "offset", "profile", "next", "date", "from", "id"]
ID_ROUTES = ["/sessions/{}", "/api/sessions/{}", "/api/sessions/{}/samples.csv"]
junk = st.one_of(
    st.text(max_size=40),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.sampled_from(["%00", "%ff", "%ed%a0%80", "1e9", "0x10", "+1", " 1", "１", "9" * 400]),
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    path=st.sampled_from(PAGES), key=st.sampled_from(QUERY_KEYS), value=junk, twice=st.booleans()
)
def test_no_query_value_gives_a_server_error(
    client: FlaskClient, path: str, key: str, value: str, twice: bool
) -> None:
    query = f"{key}={quote(value, safe='%')}"
    reply = client.get(f"{path}?{query}&{query}" if twice else f"{path}?{query}")
    reply.get_data()  # a streamed CSV fails while it is read, not before
    # 503 is the daemon being offline (no fake_device here), never a crash
    assert reply.status_code in (200, 302, 400, 404, 503), (path, query, reply.status_code)
    if reply.status_code in (400, 404) and reply.mimetype == "application/json":
        assert reply.get_json()["error"].endswith(".")


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(route=st.sampled_from(ID_ROUTES), segment=junk.filter(lambda s: "/" not in s and s))
def test_no_session_id_gives_a_server_error(client: FlaskClient, route: str, segment: str) -> None:
    reply = client.get(route.format(quote(segment, safe="%")))
    reply.get_data()
    assert reply.status_code == 404, (route, segment, reply.status_code)


# ---- one exception base, one JSON error shape -----------------------------------------------

ONE_SENTENCE_ERRORS = [
    ("device.config.kinds", "ConfigError"),
    ("device.config.write", "ConfigWriteError"),
    ("device.hardware.source", "SourceError"),
    ("device.hardware.pins", "PinError"),
    ("device.history.schema", "StoreError"),
    ("device.ipc.protocol", "IpcError"),
    ("device.ipc.protocol", "RequestError"),
    ("device.ipc.client", "DeviceOffline"),
    ("device.core.controller", "CommandRefused"),
    ("device.calibrate.arithmetic", "CalibrationError"),
    ("device.sim.scenario", "ScenarioError"),
    ("web.state_files", "StateDirError"),
    ("web.auth", "PasswordError"),
    ("web.serve", "WebServeError"),
    ("web.history.queries", "BadQuery"),
    ("web.protect", "Refused"),
]


@pytest.mark.parametrize(
    ("module", "name"), ONE_SENTENCE_ERRORS, ids=[n for _, n in ONE_SENTENCE_ERRORS]
)
def test_every_one_sentence_error_has_the_one_base(module: str, name: str) -> None:
    # one `except RetrotreadError` prints any of them; a ValueError stays one where code
    # catches it as such
    import importlib

    from device.errors import RetrotreadError

    assert issubclass(getattr(importlib.import_module(module), name), RetrotreadError)


@pytest.mark.parametrize(
    ("url", "code"),
    [("/api/sessions?limit=0", 400), ("/api/sessions/999", 404), ("/api/no-such-thing", 404)],
)
def test_every_api_error_has_the_one_shape(client: FlaskClient, url: str, code: int) -> None:
    reply = client.get(url)
    assert reply.status_code == code
    body = reply.get_json()
    assert body["ok"] is False and isinstance(body["error"], str) and body["error"].endswith(".")
