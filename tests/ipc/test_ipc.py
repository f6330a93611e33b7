"""The device socket, served for real in a short temp dir, with plain functions standing in for
the daemon's handle() and status()."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import stat
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from support.waiting import wait_until

from device.core.modes import Mode
from device.ipc.client import DeviceClient, DeviceOffline
from device.ipc.protocol import (
    Command,
    IpcError,
    Request,
    RequestError,
    default_socket_path,
    encode_line,
    parse_request,
)
from device.ipc.server import DeviceSocket

STATUS = {"state": "running", "mode": "backward", "speed_kmh": 1.4, "cap_kmh": 2.0}


class FakeDaemon:
    """What the daemon's tick thread would answer, minus the treadmill."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.status_calls = 0

    def handle(self, request: Request) -> dict[str, Any]:
        self.requests.append(request)
        return {"cmd": request.cmd.value}

    def status(self) -> dict[str, Any]:
        self.status_calls += 1
        return dict(STATUS)


class LineSocket:
    """A raw client, for sending what DeviceClient never would."""

    def __init__(self, path: Path, *, timeout: float = 2.0) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(str(path))
        self.reader = self.sock.makefile("rb")

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def reply(self) -> dict[str, Any]:
        line = self.reader.readline()
        assert line.endswith(b"\n"), f"connection ended instead of a reply: {line!r}"
        return json.loads(line)

    def ask(self, data: bytes) -> dict[str, Any]:
        self.send(data)
        return self.reply()

    def at_eof(self) -> bool:
        return self.reader.read() == b""

    def close(self) -> None:
        self.reader.close()
        self.sock.close()


@pytest.fixture
def sock_dir() -> Iterator[Path]:
    # tmp_path is too long for sun_path (108 bytes) on some machines
    path = Path(tempfile.mkdtemp(dir="/tmp", prefix="rt-ipc-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def daemon() -> FakeDaemon:
    return FakeDaemon()


@pytest.fixture
def serve(sock_dir: Path, daemon: FakeDaemon) -> Iterator[Callable[..., DeviceSocket]]:
    servers: list[DeviceSocket] = []

    def start(**options: Any) -> DeviceSocket:
        options.setdefault("handle", daemon.handle)
        options.setdefault("status", daemon.status)
        server = DeviceSocket(sock_dir / "device.sock", **options)
        server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


@pytest.fixture
def server(serve: Callable[..., DeviceSocket]) -> DeviceSocket:
    return serve()


def test_status_request_answers_with_the_daemons_status(server: DeviceSocket) -> None:
    reply = DeviceClient(server.path).request({"cmd": "status"})
    assert reply == {"ok": True, **STATUS}


@pytest.mark.parametrize(
    ("message", "request_"),
    [
        ({"cmd": "start"}, Request(Command.START)),
        ({"cmd": "pause"}, Request(Command.PAUSE)),
        ({"cmd": "resume"}, Request(Command.RESUME)),
        ({"cmd": "end"}, Request(Command.END)),
        ({"cmd": "reload"}, Request(Command.RELOAD)),
        ({"cmd": "mode", "mode": "forward"}, Request(Command.MODE, Mode.FORWARD)),
        ({"cmd": "mode", "mode": "backward"}, Request(Command.MODE, Mode.BACKWARD)),
    ],
)
def test_each_command_reaches_the_daemon_parsed(
    server: DeviceSocket, daemon: FakeDaemon, message: dict[str, Any], request_: Request
) -> None:
    reply = DeviceClient(server.path).request(message)
    assert reply == {"ok": True, "cmd": message["cmd"]}
    assert daemon.requests == [request_]


def test_a_refusal_from_the_daemon_passes_through(serve: Callable[..., DeviceSocket]) -> None:
    def refuse(request: Request) -> dict[str, Any]:
        return {"ok": False, "error": "the belt runs at 4.0 km/h, above the 2.0 km/h start cap."}

    server = serve(handle=refuse)
    reply = DeviceClient(server.path).request({"cmd": "mode", "mode": "backward"})
    assert reply == {
        "ok": False,
        "error": "the belt runs at 4.0 km/h, above the 2.0 km/h start cap.",
    }


BAD_LINES = {
    "not json": (b"start please\n", "not valid JSON"),
    "not an object": (b'["start"]\n', "must be a JSON object, not an array"),
    "a bare string": (b'"status"\n', "must be a JSON object, not a string"),
    "no cmd": (b'{"mode": "forward"}\n', 'has no "cmd"'),
    "cmd not a string": (b'{"cmd": 5}\n', '"cmd" must be a string, not a number'),
    "cmd null": (b'{"cmd": null}\n', '"cmd" must be a string, not null'),
    "unknown cmd": (b'{"cmd": "faster"}\n', 'unknown cmd "faster"'),
    "mode missing": (b'{"cmd": "mode"}\n', '"cmd": "mode" needs "mode"'),
    "bad mode": (b'{"cmd": "mode", "mode": "sideways"}\n', 'unknown mode "sideways"'),
    "mode not a string": (b'{"cmd": "mode", "mode": ["forward"]}\n', "unknown mode"),
    "extra key": (b'{"cmd": "start", "speed": 9}\n', 'unexpected keys "speed"'),
    "mode on start": (b'{"cmd": "start", "mode": "forward"}\n', 'unexpected keys "mode"'),
    "empty line": (b"\n", "empty"),
    "invalid utf-8": (b'{"cmd": "st\xffatus"}\n', "not valid UTF-8"),
    "deep nesting": (b"[" * 3000 + b"\n", "not valid JSON"),
}


@pytest.mark.parametrize("name", list(BAD_LINES))
def test_parse_request_names_the_problem_in_one_sentence(name: str) -> None:
    line, problem = BAD_LINES[name]
    with pytest.raises(RequestError) as refused:
        parse_request(line)
    sentence = str(refused.value)
    assert problem in sentence
    assert sentence.endswith(".") and "\n" not in sentence


def test_parse_request_accepts_crlf_and_surrounding_space() -> None:
    assert parse_request(b' {"cmd": "mode", "mode": "forward"} \r\n') == Request(
        Command.MODE, Mode.FORWARD
    )


@pytest.mark.parametrize("request_", [Request(Command.START), Request(Command.MODE, Mode.BACKWARD)])
def test_a_request_goes_out_as_the_line_the_daemon_parses_back(request_: Request) -> None:
    assert parse_request(encode_line(request_.message())) == request_


@pytest.mark.parametrize("name", list(BAD_LINES))
def test_bad_request_gets_an_error_and_the_server_keeps_serving(
    server: DeviceSocket, daemon: FakeDaemon, name: str
) -> None:
    line, problem = BAD_LINES[name]
    client = LineSocket(server.path)
    reply = client.ask(line)
    assert reply["ok"] is False and problem in reply["error"]
    assert client.ask(b'{"cmd": "status"}\n') == {"ok": True, **STATUS}
    client.close()
    assert DeviceClient(server.path).request({"cmd": "start"})["ok"] is True
    assert daemon.requests == [Request(Command.START)]


def test_oversized_line_gets_one_error_and_the_next_line_is_served(server: DeviceSocket) -> None:
    client = LineSocket(server.path)
    # sent in pieces, as a runaway client would, never with a newline until the very end
    for _ in range(10):
        client.send(b"x" * 2000)
    client.send(b'x"}\n{"cmd": "status"}\n')
    first = client.reply()
    assert first["ok"] is False and "longer than 4096 bytes" in first["error"]
    assert client.reply() == {"ok": True, **STATUS}
    client.close()


def test_oversized_line_arriving_whole_is_refused_too(server: DeviceSocket) -> None:
    client = LineSocket(server.path)
    client.send(b'{"cmd": "status", "pad": "' + b"x" * 5000 + b'"}\n{"cmd": "status"}\n')
    assert "longer than 4096 bytes" in client.reply()["error"]
    assert client.reply() == {"ok": True, **STATUS}
    client.close()


def test_a_line_of_exactly_4096_bytes_is_read(server: DeviceSocket) -> None:
    line = b'{"cmd": "status"}'.ljust(4096) + b"\r\n"
    client = LineSocket(server.path)
    assert client.ask(line) == {"ok": True, **STATUS}
    client.close()


def test_pipelined_requests_are_answered_in_order(server: DeviceSocket) -> None:
    client = LineSocket(server.path)
    client.send(b'{"cmd": "start"}\n{"cmd": "nope"}\n{"cmd": "pause"}\n')
    assert client.reply() == {"ok": True, "cmd": "start"}
    assert client.reply()["ok"] is False
    assert client.reply() == {"ok": True, "cmd": "pause"}
    client.close()


def test_handle_raising_gets_a_generic_error_and_the_server_lives(
    serve: Callable[..., DeviceSocket], caplog: pytest.LogCaptureFixture
) -> None:
    def broken(request: Request) -> dict[str, Any]:
        raise RuntimeError("tick thread exploded")

    server = serve(handle=broken)
    client = DeviceClient(server.path)
    reply = client.request({"cmd": "start"})
    assert reply["ok"] is False
    assert 'could not run "start"' in reply["error"]
    assert "exploded" not in reply["error"]  # internals go to the journal, not the client
    assert "tick thread exploded" in caplog.text
    assert client.request({"cmd": "status"}) == {"ok": True, **STATUS}


def test_status_raising_gets_an_error_line(serve: Callable[..., DeviceSocket]) -> None:
    def no_status() -> dict[str, Any]:
        raise RuntimeError("no snapshot yet")

    server = serve(status=no_status)
    reply = DeviceClient(server.path).request({"cmd": "status"})
    assert reply["ok"] is False and "could not read its status" in reply["error"]


def test_subscribe_streams_a_status_line_about_every_quarter_second(server: DeviceSocket) -> None:
    lines = []
    with DeviceClient(server.path).subscribe() as stream:
        began = time.monotonic()
        while (line := next(stream)) and time.monotonic() - began <= 1.2:
            lines.append(line)
    # one at once, then one each 250 ms: 5 within 1.2 s; loose bounds for a busy machine
    assert 4 <= len(lines) <= 7
    assert all(line == {"ok": True, **STATUS} for line in lines)


def test_stuck_subscriber_does_not_block_others_and_is_dropped(
    serve: Callable[..., DeviceSocket],
) -> None:
    # big lines fill the socket buffer within a few sends, so the stall shows quickly
    server = serve(
        status=lambda: {"state": "running", "pad": "x" * 100_000},
        stream_interval_s=0.01,
        send_timeout_s=0.2,
    )
    stuck = LineSocket(server.path)
    stuck.send(b'{"cmd": "subscribe"}\n')  # and never reads
    assert wait_until(lambda: server.client_count == 1, within_s=3.0, what="one subscriber")
    for _ in range(3):
        assert DeviceClient(server.path).request({"cmd": "status"})["state"] == "running"
    assert wait_until(
        lambda: server.client_count == 0, within_s=3.0, what="the stuck subscriber to be dropped"
    )
    stuck.close()


def test_disconnected_subscriber_is_let_go(server: DeviceSocket) -> None:
    stream = DeviceClient(server.path).subscribe()
    assert next(stream)["ok"] is True
    stream.close()
    assert wait_until(lambda: server.client_count == 0, within_s=3.0, what="no client")


def test_silent_and_half_line_clients_do_not_harm_the_daemon(server: DeviceSocket) -> None:
    silent = LineSocket(server.path)
    half = LineSocket(server.path)
    half.send(b'{"cmd": "sta')
    half.close()
    assert DeviceClient(server.path).request({"cmd": "status"}) == {"ok": True, **STATUS}
    silent.close()


def test_connection_silent_past_the_idle_timeout_is_closed(
    serve: Callable[..., DeviceSocket],
) -> None:
    server = serve(idle_timeout_s=0.1)
    silent = LineSocket(server.path)
    assert silent.ask(b'{"cmd": "status"}\n')["ok"] is True
    assert silent.at_eof()  # then nothing for longer than idle_timeout_s
    assert wait_until(lambda: server.client_count == 0, within_s=3.0, what="no client")
    silent.close()


def test_a_connection_that_never_sends_a_request_is_closed_soon(
    serve: Callable[..., DeviceSocket],
) -> None:
    server = serve(request_timeout_s=0.2)
    silent = LineSocket(server.path)
    started = time.monotonic()
    assert silent.at_eof()
    assert time.monotonic() - started < 1.5
    silent.close()


def test_a_client_trickling_a_line_cannot_hold_its_slot(
    serve: Callable[..., DeviceSocket],
) -> None:
    # 32 of these held every slot for 330 s: a byte now and then reset a per-read timeout
    server = serve(request_timeout_s=0.5, idle_timeout_s=60)
    trickle = LineSocket(server.path)
    started = time.monotonic()
    with contextlib.suppress(OSError):
        for byte in b'{"cmd": "status"':
            trickle.send(bytes([byte]))
            time.sleep(0.1)
    assert trickle.at_eof()
    assert time.monotonic() - started < 2.0
    assert wait_until(lambda: server.client_count == 0, within_s=3.0, what="no client")
    trickle.close()


def test_one_user_cannot_take_the_slots_kept_for_the_others(
    serve: Callable[..., DeviceSocket],
) -> None:
    server = serve(max_clients=8)  # 2 kept for other users
    held = [LineSocket(server.path) for _ in range(6)]
    for client in held:
        assert client.ask(b'{"cmd": "status"}\n')["ok"] is True
    extra = LineSocket(server.path)
    refusal = extra.reply()
    assert refusal["ok"] is False and "the most one user may" in refusal["error"]
    extra.close()
    for client in held:
        client.close()


OTHER_USER_ASKS = """
import json, socket, sys
sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
sock.settimeout(3)
sock.connect(sys.argv[1])
sock.sendall(b'{"cmd": "status"}\\n')
print(json.loads(sock.makefile("rb").readline())["ok"])
"""


@pytest.mark.skipif(
    os.geteuid() != 0 or not os.path.exists("/usr/bin/python3"),
    reason="needs root (as CI runs) to ask as another user",
)
def test_the_dashboard_user_gets_in_while_another_user_holds_all_it_may(
    serve: Callable[..., DeviceSocket], sock_dir: Path
) -> None:
    server = serve(max_clients=8)
    sock_dir.chmod(0o755)
    server.path.chmod(0o666)
    held = [LineSocket(server.path) for _ in range(6)]
    for client in held:
        assert client.ask(b'{"cmd": "status"}\n')["ok"] is True
    for _ in range(2):  # the user tries to take the last two slots too
        extra = LineSocket(server.path)
        assert extra.reply()["ok"] is False
        extra.close()
    # the dashboard runs as a user of its own (here: nobody, with Debian's own python3)
    other = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
         "/usr/bin/python3", "-c", OTHER_USER_ASKS, str(server.path)],
        capture_output=True, text=True, timeout=10,
    )  # fmt: skip
    assert other.stdout.strip() == "True", other.stderr
    for client in held:
        client.close()


def test_clients_beyond_the_cap_are_refused_with_an_error(
    serve: Callable[..., DeviceSocket],
) -> None:
    server = serve(max_clients=2)
    held = [LineSocket(server.path) for _ in range(2)]
    for client in held:
        assert client.ask(b'{"cmd": "status"}\n')["ok"] is True  # both admitted
    extra = LineSocket(server.path)
    refusal = extra.reply()
    assert refusal["ok"] is False and "already serves 2 clients" in refusal["error"]
    assert extra.at_eof()
    extra.close()
    assert DeviceClient(server.path).request({"cmd": "status"})["ok"] is False
    held.pop().close()
    assert wait_until(lambda: server.client_count == 1, within_s=3.0, what="one subscriber")
    assert DeviceClient(server.path).request({"cmd": "status"}) == {"ok": True, **STATUS}
    for client in held:
        client.close()


def test_socket_is_group_writable_in_a_created_directory(
    sock_dir: Path, daemon: FakeDaemon
) -> None:
    path = sock_dir / "run" / "retrotread" / "device.sock"
    with DeviceSocket(path, handle=daemon.handle, status=daemon.status):
        mode = os.stat(path).st_mode
        assert stat.S_ISSOCK(mode)
        assert stat.S_IMODE(mode) == 0o660


def test_stale_socket_left_by_a_crash_is_replaced(sock_dir: Path, daemon: FakeDaemon) -> None:
    path = sock_dir / "device.sock"
    crashed = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    crashed.bind(str(path))
    crashed.close()  # the file stays, nobody listens
    with DeviceSocket(path, handle=daemon.handle, status=daemon.status):
        assert DeviceClient(path).request({"cmd": "status"}) == {"ok": True, **STATUS}


def test_second_device_on_a_live_socket_is_refused(
    server: DeviceSocket, daemon: FakeDaemon
) -> None:
    second = DeviceSocket(server.path, handle=daemon.handle, status=daemon.status)
    with pytest.raises(IpcError, match="another retrotread device is already running on"):
        second.start()
    assert DeviceClient(server.path).request({"cmd": "status"}) == {"ok": True, **STATUS}


def test_a_file_that_is_not_a_socket_is_left_alone(sock_dir: Path, daemon: FakeDaemon) -> None:
    path = sock_dir / "device.sock"
    path.write_text("someone's notes")
    with pytest.raises(IpcError, match="exists and is not a socket"):
        DeviceSocket(path, handle=daemon.handle, status=daemon.status).start()
    assert path.read_text() == "someone's notes"


def test_close_removes_the_socket_and_ends_streams_promptly(server: DeviceSocket) -> None:
    stream = DeviceClient(server.path).subscribe()
    assert next(stream)["ok"] is True
    began = time.monotonic()
    server.close()
    assert time.monotonic() - began < 1.5
    assert not server.path.exists()
    with pytest.raises(DeviceOffline):
        for _ in range(10):
            next(stream)
    with pytest.raises(DeviceOffline, match="not running"):
        DeviceClient(server.path).request({"cmd": "status"})
    server.close()  # twice is harmless


def test_client_without_a_daemon_says_it_is_offline(sock_dir: Path) -> None:
    client = DeviceClient(sock_dir / "device.sock")
    with pytest.raises(DeviceOffline, match="not running: there is no socket"):
        client.request({"cmd": "status"})
    with pytest.raises(DeviceOffline, match="not running"):
        client.subscribe()


def test_client_on_a_stale_socket_says_it_is_offline(sock_dir: Path) -> None:
    path = sock_dir / "device.sock"
    crashed = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    crashed.bind(str(path))
    crashed.close()
    with pytest.raises(DeviceOffline, match="refuses connections"):
        DeviceClient(path).request({"cmd": "start"})


def test_client_gives_up_on_a_daemon_that_never_answers(sock_dir: Path) -> None:
    path = sock_dir / "device.sock"
    hung = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    hung.bind(str(path))
    hung.listen(1)  # accepts into the backlog, never replies
    try:
        with pytest.raises(DeviceOffline, match=r"did not answer within 0\.2 s"):
            DeviceClient(path, timeout=0.2).request({"cmd": "status"})
    finally:
        hung.close()


def test_client_close_ends_a_stream_blocked_in_another_thread(server: DeviceSocket) -> None:
    client = DeviceClient(server.path, timeout=5.0)
    stream = client.subscribe()
    outcome: list[BaseException] = []

    def follow() -> None:
        try:
            for _ in stream:
                pass
        except DeviceOffline as exc:
            outcome.append(exc)

    follower = threading.Thread(target=follow)
    follower.start()
    time.sleep(0.1)
    client.close()
    follower.join(timeout=2.0)
    assert not follower.is_alive()
    assert len(outcome) == 1


def test_default_socket_path_follows_systemds_runtime_directory(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RUNTIME_DIRECTORY", "/run/retrotread:/run/retrotread-extra")
    assert default_socket_path() == Path("/run/retrotread/device.sock")
    monkeypatch.setenv("RUNTIME_DIRECTORY", "/run/rt-a /run/rt-b")
    assert default_socket_path() == Path("/run/rt-a/device.sock")
    monkeypatch.delenv("RUNTIME_DIRECTORY")
    assert default_socket_path() == Path("/run/retrotread/device.sock")


def test_a_burst_of_dashboard_commands_is_answered_never_a_false_offline(
    server: DeviceSocket,
) -> None:
    # 20 dashboard threads, 30 commands each, all at once: the listen queue holds them, and a
    # client that finds it full waits its turn instead of calling the device offline
    client = DeviceClient(server.path, timeout=5.0)

    def burst(n: int) -> list[str]:
        errors = []
        for _ in range(30):
            try:
                client.request({"cmd": "status"} if n % 2 else {"cmd": "pause"})
            except DeviceOffline as exc:
                errors.append(str(exc))
        return errors

    with ThreadPoolExecutor(max_workers=20) as pool:
        errors = [e for found in pool.map(burst, range(20)) for e in found]
    assert errors == []


def test_a_reply_nested_past_what_json_parses_is_one_sentence(sock_dir: Path) -> None:
    path = sock_dir / "device.sock"
    impostor = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    impostor.bind(str(path))
    impostor.listen(1)

    def answer() -> None:
        conn, _ = impostor.accept()
        conn.recv(4096)
        conn.sendall(b"[" * 100_000 + b"\n")  # what a broken daemon, or another program, says
        conn.close()

    threading.Thread(target=answer, daemon=True).start()
    try:
        with pytest.raises(DeviceOffline, match="not a JSON object"):
            DeviceClient(path, timeout=2.0).request({"cmd": "status"})
    finally:
        impostor.close()
