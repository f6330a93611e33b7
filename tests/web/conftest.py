"""Fixtures for the dashboard's tests: the real app (create_app) on a real history file, a
real device socket with a status the test controls, and a real waitress server.

- `fake_device`: a device.ipc.server.DeviceSocket listening at `socket_dir / "device.sock"`, served
  from threads exactly like the daemon's, with no controller behind it.
  `fake_device.status` is the dict every status and subscribe line carries; it starts as
  `running_status()`, a backward session at 2.1 km/h. Change keys at any time: the next
  250 ms line carries them (set it to None and the device answers that it cannot read its
  status). `fake_device.replies["start"] = {...}` (or a callable taking the Request) sets what
  a command answers; {"ok": False, "error": "..."} makes the device refuse it. The default
  answer is {"ok": true, "status": ...}, as the daemon's. `fake_device.requests` lists the
  Requests received, `.status_reads` counts status snapshots taken, `.client_count` is the
  socket's open connections, `.stop()` / `.start(**DeviceSocket options)` take the daemon
  away and bring it back on the same path. Annotate with `FakeDevice` under TYPE_CHECKING
  only (`from conftest import FakeDevice`): pytest loads every conftest as "conftest".
- `running_status`: the function that builds that status, `running_status(**changes)`.
- `db_path`: an empty history file made by device.history.store.Store (current schema), as a str.
- `state_dir`: an empty directory for the dashboard's secret key and password hash.
- `make_app(config=None, *, socket_path=None, test_config=None, demo=None)`: create_app on
  those paths. The socket defaults to `socket_dir / "device.sock"`, so a test that also asks
  for `fake_device` has the daemon online and one that does not has it offline. TESTING is on;
  CSRF stays on unless test_config says {"WTF_CSRF_ENABLED": False}. Each app's status hub is
  closed at teardown.
- `app` and `client`: make_app() and its test client.
- `serve_app(app, *, threads=16)`: the app on a real waitress server (web.serve.serve) on
  127.0.0.1 and a free port, running in a thread; `.url` ("http://127.0.0.1:PORT/"), `.port`.
  Closed at teardown.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from device.config.model import Config
from device.core.controller import Controller
from device.history.store import Store
from device.ipc.protocol import Request
from device.ipc.server import DeviceSocket
from web import create_app
from web.hub import close_hub
from web.serve import WebServer, serve

Reply = dict[str, Any] | Callable[[Request], dict[str, Any]]


def running_status(**changes: Any) -> dict[str, Any]:
    """A status as the daemon sends it: a guest walking backward at 2.1 km/h, 3 min 5 s
    into a session, under a 2.0 km/h start cap that rises to 2.1 in 24 s.

    Built by the real Controller (so every key, in the wire's order, and every default is the
    device's own), with the figures of that moment. No "health": the daemon adds that
    (device.health.health_status), and tests of the health line add it themselves."""
    status: dict[str, Any] = dict(Controller(Config(), t=0.0).status(0.0))
    status.update(
        speed_kmh=2.1,
        mean_kmh=2.08,
        state="running",
        cap_kmh=2.0,
        next_cap_kmh=2.1,
        next_cap_in_s=23.4,
        program=dict(status["program"], week=1, sessions_done=2, per_week=[2, 0, 0, 0]),
        limit_kmh=2.3,
        guard="session",
        elapsed_s=185.0,
        distance_m=98.4,
        backward_s=185.0,
        forward_s=0.0,
        kcal=7.6,
    )
    assert status["mode"] == "backward"  # the device's default, which this walker walks
    status.update(changes)
    return status


@pytest.fixture(name="running_status")
def running_status_fixture() -> Callable[..., dict[str, Any]]:
    """running_status(**changes), for tests that build a status without a socket."""
    return running_status


class FakeDevice:
    """A device socket with a status the test sets; see the module docstring."""

    def __init__(self, path: Path):
        self.path = path
        self.status = running_status()
        self.replies: dict[str, Reply] = {}
        self.requests: list[Request] = []
        self.status_reads = 0
        self.socket: DeviceSocket | None = None

    @property
    def client_count(self) -> int:
        return self.socket.client_count if self.socket is not None else 0

    def start(self, **socket_options: Any) -> None:
        """Serve (again); `socket_options` go to DeviceSocket (e.g. max_clients=0)."""
        self.socket = DeviceSocket(
            self.path, handle=self._handle, status=self._snapshot, **socket_options
        )
        self.socket.start()

    def stop(self) -> None:
        if self.socket is not None:
            self.socket.close()
            self.socket = None

    def _snapshot(self) -> dict[str, Any]:
        self.status_reads += 1
        return dict(self.status)

    def _handle(self, request: Request) -> dict[str, Any]:
        self.requests.append(request)
        reply = self.replies.get(request.cmd.value, {"status": dict(self.status)})
        return reply(request) if callable(reply) else dict(reply)


@pytest.fixture
def fake_device(socket_dir: Path) -> Iterator[FakeDevice]:
    device = FakeDevice(socket_dir / "device.sock")
    device.start()
    yield device
    device.stop()


@pytest.fixture
def db_path(tmp_path: Path) -> str:
    path = tmp_path / "history.db"
    Store(path).close()
    return str(path)


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    path = tmp_path / "state"
    path.mkdir()
    return path


@pytest.fixture
def make_app(socket_dir: Path, db_path: str, state_dir: Path) -> Iterator[Callable[..., Flask]]:
    made: list[Flask] = []

    def make(
        config: Config | None = None,
        *,
        socket_path: str | Path | None = None,
        test_config: dict[str, Any] | None = None,
        demo: Any = None,
    ) -> Flask:
        app = create_app(
            config or Config(),
            socket_path=str(socket_path or socket_dir / "device.sock"),
            db_path=db_path,
            state_dir=str(state_dir),
            demo=demo,
            test_config={"TESTING": True, **(test_config or {})},
        )
        made.append(app)
        return app

    yield make
    for app in made:
        close_hub(app)


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    return make_app()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def serve_app() -> Iterator[Callable[..., WebServer]]:
    running: list[tuple[WebServer, threading.Thread]] = []

    def start(app: Flask, *, threads: int = 16) -> WebServer:
        server = serve(app, listen="127.0.0.1:0", threads=threads)
        thread = threading.Thread(target=server.run, name="test-web", daemon=True)
        thread.start()
        running.append((server, thread))
        return server

    yield start
    for server, thread in running:
        server.close()
        thread.join(timeout=5)
