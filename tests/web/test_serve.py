"""Serving the dashboard: waitress in-process (web.serve.serve) and `retrotread web` as the
subprocess systemd runs, against a real device socket and history file."""

from __future__ import annotations

import gc
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from flask import Flask

from web.serve import WebServeError, WebServer, parse_listen, run_web, serve

if TYPE_CHECKING:  # pytest imports each conftest under the same name: never import it
    from conftest import FakeDevice

REPO = Path(__file__).resolve().parents[2]
WITHIN_S = 10.0  # generous bound for a process to start or stop: a failure, not a measurement


def get(port: int, path: str) -> tuple[int, dict]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", path)
        reply = connection.getresponse()
        return reply.status, json.loads(reply.read())
    finally:
        connection.close()


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


# -- listen addresses -------------------------------------------------------------------------


def test_listen_is_host_and_port_and_the_port_option_wins() -> None:
    assert parse_listen("0.0.0.0:8080") == ("0.0.0.0", 8080)
    assert parse_listen("[::]:8080") == ("::", 8080)
    assert parse_listen("127.0.0.1:8080", port=9000) == ("127.0.0.1", 9000)


def test_a_listen_value_without_a_port_is_one_sentence() -> None:
    with pytest.raises(WebServeError, match=r'is not HOST:PORT; write it like "0.0.0.0:8080"\.$'):
        parse_listen("localhost")


def test_a_port_already_in_use_is_one_sentence(app: Flask) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(WebServeError) as refused:
            serve(app, listen=f"127.0.0.1:{port}")
    assert str(refused.value).startswith(f"port {port} is already in use on 127.0.0.1")
    assert "--port" in str(refused.value)


# -- the server -------------------------------------------------------------------------------


def test_the_server_answers_healthz_and_knows_its_url(
    fake_device: FakeDevice, app: Flask, serve_app: Callable[..., WebServer]
) -> None:
    server = serve_app(app)
    assert server.url == f"http://127.0.0.1:{server.port}/"
    assert get(server.port, "/healthz") == (200, {"ok": True, "device": "online", "db": "ok"})


def test_closing_the_server_ends_open_streams(fake_device: FakeDevice, app: Flask) -> None:
    server = serve(app, listen="127.0.0.1:0", threads=4)
    runner = threading.Thread(target=server.run, daemon=True)
    runner.start()
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    connection.request("GET", "/api/stream")
    stream = connection.getresponse()
    assert stream.readline() == b"retry: 2000\n"
    server.close()
    runner.join(timeout=WITHIN_S)
    assert not runner.is_alive()
    # the viewer sees its stream end (a stalled one would raise TimeoutError after 5 s)
    deadline = time.monotonic() + WITHIN_S
    try:
        while stream.read(4096):
            assert time.monotonic() < deadline, "the stream went on after close()"
    except http.client.IncompleteRead:
        pass  # cut off inside a chunk: ended all the same
    connection.close()


# -- `retrotread web` -------------------------------------------------------------------------


def test_retrotread_web_serves_healthz_and_stops_on_sigterm(
    fake_device: FakeDevice, tmp_path: Path, db_path: str
) -> None:
    config = write_config(tmp_path, '[web]\nlisten = "127.0.0.1:8080"\n')
    argv = [sys.executable, "-m", "device.cli", "web", "--config", str(config), "--port", "0"]
    argv += ["--socket", str(fake_device.path), "--db", db_path]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    errors = tmp_path / "web.err"
    with open(errors, "wb") as err:
        process = subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=err)
    try:
        assert process.stdout is not None
        first = process.stdout.readline().decode()
        assert first.startswith("retrotread web: serving http://127.0.0.1:"), errors.read_text()
        port = int(first.split("http://127.0.0.1:")[1].split("/")[0])
        assert get(port, "/healthz") == (200, {"ok": True, "device": "online", "db": "ok"})
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=WITHIN_S) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()


def test_retrotread_web_with_a_bad_config_exits_2_with_one_sentence(tmp_path: Path) -> None:
    config = write_config(tmp_path, '[web]\nlisten = "everywhere"\n')
    done = subprocess.run(
        [sys.executable, "-m", "device.cli", "web", "--config", str(config)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=WITHIN_S,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert str(config) in lines[0] and "listen" in lines[0]
    assert "Traceback" not in done.stderr


def test_run_web_on_a_taken_port_says_so_and_exits_1(
    tmp_path: Path, db_path: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = write_config(tmp_path, f'[web]\nlisten = "127.0.0.1:{port}"\n')
        code = run_web(
            str(config), port=None, socket_path=str(tmp_path / "no.sock"), db_path=db_path
        )
    assert code == 1
    assert capsys.readouterr().err.strip() == (
        f"port {port} is already in use on 127.0.0.1, perhaps by another retrotread web; "
        "stop that program or choose another port with --port or [web] listen."
    )


def test_run_web_where_the_secret_key_cannot_be_kept_says_so_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("the state directory should be here")
    config = write_config(tmp_path, '[web]\nlisten = "127.0.0.1:8080"\n')
    code = run_web(str(config), port=0, socket_path=str(tmp_path / "no.sock"),
                   db_path=str(blocker / "history.db"))  # fmt: skip
    assert code == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and str(blocker) in lines[0]


def test_run_web_stops_cleanly_on_sigterm_in_process(
    tmp_path: Path, db_path: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The signal handler path, without a subprocess: SIGTERM to ourselves while run_web
    serves on the main thread."""
    config = write_config(tmp_path, '[web]\nlisten = "127.0.0.1:8080"\n')
    previous = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    timer = threading.Timer(0.5, os.kill, args=(os.getpid(), signal.SIGTERM))
    timer.start()
    try:
        code = run_web(str(config), port=0, socket_path=str(tmp_path / "no.sock"), db_path=db_path)
    finally:
        timer.cancel()
        signal.signal(signal.SIGTERM, previous[0])
        signal.signal(signal.SIGINT, previous[1])
    assert code == 0
    assert "retrotread web: serving http://127.0.0.1:" in capsys.readouterr().out


def test_what_start_up_made_is_kept_out_of_the_collectors_walks() -> None:
    from web.serve import freeze_start_up

    made_at_start_up = [[n] for n in range(1000)]  # tracked objects, alive for good
    gc.unfreeze()
    try:
        freeze_start_up()
        assert gc.get_freeze_count() >= len(made_at_start_up)
        garbage: list[object] = []
        garbage.append(garbage)  # a cycle a request leaves behind is still collected
        del garbage
        assert gc.collect() >= 1
    finally:
        gc.unfreeze()
