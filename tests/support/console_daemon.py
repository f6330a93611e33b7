"""The real Daemon reading a CSAFE console emulator, on a thread of the test and on mock pins:
what the dashboard sees over the socket, what the relay's pin does, what the history file
keeps, and the treadmill's side of the safety key (an open loop stops the belt).

    runs = Treadmills(socket_dir, tmp_path, mock_factory)
    mill = runs.start(console, {"backward": {"grace_s": 1.0}})
    mill.wait_status(lambda s: s["speed_kmh"] == 1.0, what="1 km/h")
    runs.close()

or the `runs` fixture, which closes them at the end of the test (a test file takes it with
`runs = console_daemon.runs`, until tests/conftest.py offers it to every test file).
"""

from __future__ import annotations

import contextlib
import json
import math
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from gpiozero.pins.mock import MockFactory

from device.config.load import config_from_mapping
from device.config.model import Config
from device.daemon import Daemon
from device.ipc.client import DeviceClient
from device.sim.console_serve import ConsoleEmulator

from .daemon_thread import daemon_running
from .device_process import read_history
from .waiting import wait_until

# Deadlines for a slow machine, not measures: each is several times what it takes.
SEE_WITHIN_S = 5.0  # a reading, a state, a verdict reaching the status
# A non-urgent event waits in the history's buffer for up to 3 s (FLUSH_DUE_S).
WRITTEN_WITHIN_S = 8.0
KEY_LOOP_EVERY_S = 0.01  # how often the treadmill's safety-key loop is looked at

Status = dict[str, Any]


def console_config(url: str, tables: Mapping[str, Mapping[str, Any]] | None = None) -> Config:
    """A config reading the console at `url` as the [sensor], with `tables` merged in key by
    key. The belt may stand still in these tests without the session pausing itself."""
    mapping: dict[str, dict[str, Any]] = {
        "sensor": {"kind": "csafe", "url": url},
        "session": {"pause_after_stop_s": 600},
    }
    for table, keys in (tables or {}).items():
        mapping.setdefault(table, {}).update(keys)
    return config_from_mapping(mapping)


class SafetyKey(threading.Thread):
    """The treadmill's safety-key loop, which our relay cuts: while it is open the belt
    stops (the console's belt goes to 0 at once, as a pulled key stops it)."""

    def __init__(self, factory: MockFactory, config: Config, console: ConsoleEmulator):
        super().__init__(daemon=True, name="safety key")
        pin = config.outputs.relay_pin
        assert pin is not None, "these tests fit the relay"
        self.relay = factory.pin(pin)
        self.cut_when = config.outputs.relay_active_high  # the level that opens the loop
        self.console = console
        self.pulled = 0  # times the loop was seen opening
        self.stop = threading.Event()

    @property
    def open(self) -> bool:
        """Whether the relay pin is at the level that cuts the loop."""
        return bool(self.relay.state) == self.cut_when

    def run(self) -> None:
        was_open = False
        while not self.stop.wait(KEY_LOOP_EVERY_S):
            now_open = self.open
            if now_open:
                with self.console.treadmill_now() as treadmill:
                    treadmill.set_target_kmh(0.0, abrupt=True)
            if now_open and not was_open:
                self.pulled += 1
            was_open = now_open


class ConsoleTreadmill:
    """One run of the daemon beside its console: its status and commands over the socket,
    the relay's pin through the safety-key loop, and its history file."""

    def __init__(
        self, daemon: Daemon, key: SafetyKey, socket_path: Path, db_path: Path, first_event_id: int
    ):
        self.daemon = daemon
        self.key = key
        self.db_path = db_path
        self.first_event_id = first_event_id  # this run's events in the history start here
        self.client = DeviceClient(socket_path, timeout=2.0)

    def status(self) -> Status:
        return self.client.request({"cmd": "status"})

    def command(self, cmd: str, **args: Any) -> Status:
        reply = self.client.request({"cmd": cmd, **args})
        assert reply["ok"] is True, reply
        return reply["status"]

    @property
    def relay_open(self) -> bool:
        return self.key.open

    def wait_status(
        self, condition: Callable[[Status], object], *, what: str, within_s: float = SEE_WITHIN_S
    ) -> Status:
        """The first status line for which `condition` holds."""
        seen: list[Status] = []

        def holds() -> Status | None:
            status = self.status()
            seen[:] = [status]
            return status if condition(status) else None

        return wait_until(holds, within_s=within_s, what=what, showing=lambda: seen[-1:])

    def wait_stopped(self, *, within_s: float = 3 * SEE_WITHIN_S) -> Status:
        """Once the relay has cut the safety-key loop and the belt has stopped for it: the
        status that says the relay is open (a moment after the pin)."""
        wait_until(lambda: self.key.pulled, within_s=within_s, what="the relay to open")
        return self.wait_status(lambda s: s["relay"] == "open", what="the status's open relay")

    def statuses_until(
        self, condition: Callable[[Status], object], *, what: str, within_s: float = SEE_WITHIN_S
    ) -> list[Status]:
        """Every status line read, with the relay pin's state at that moment added as
        "relay_pin_open", up to and including the first one for which `condition` holds."""
        seen: list[Status] = []

        def holds() -> bool:
            status = {**self.status(), "relay_pin_open": self.relay_open}
            seen.append(status)
            return bool(condition(status))

        wait_until(holds, within_s=within_s, what=what, showing=lambda: seen[-1:])
        return seen

    def events(
        self, *kinds: str, since: float | None = None
    ) -> list[tuple[str, float, dict[str, Any]]]:
        """This run's events in the history file, (kind, epoch t, details), oldest first;
        only `kinds` when given, only those at or after epoch `since` when given (the
        daemon's first tick, before the console's first answer, finds its speed unknown)."""
        rows = read_history(
            self.db_path,
            "SELECT kind, t, details FROM events WHERE id >= ? AND t >= ? ORDER BY id",
            self.first_event_id,
            -math.inf if since is None else since,
        )
        return [(k, t, json.loads(d)) for k, t, d in rows if not kinds or k in kinds]

    def wait_event(
        self, kind: str, *, since: float | None = None, within_s: float = WRITTEN_WITHIN_S
    ) -> dict[str, Any]:
        """The details of this run's first `kind` event (at or after epoch `since`), once the
        history file has it."""
        found = wait_until(
            lambda: self.events(kind, since=since),
            within_s=within_s,
            what=f"a {kind} event in the history",
            showing=lambda: [k for k, _, _ in self.events(since=since)],
        )
        return found[0][2]


def start_backward(mill: ConsoleTreadmill, console: ConsoleEmulator, kmh: float = 1.0) -> float:
    """The walker has the belt at `kmh`, slow enough to start backward, and presses START.
    Returns the epoch just before: the walk's events are the ones since."""
    since = time.time()
    console.set_target_kmh(kmh, abrupt=True)
    mill.wait_status(lambda s: s["speed_kmh"] == kmh, what=f"the belt at {kmh} km/h")
    status = mill.command("start")
    assert (status["state"], status["mode"]) == ("running", "backward")
    return since


def _last_event_id(db_path: Path) -> int:
    if not db_path.exists():
        return 0
    ((last,),) = read_history(db_path, "SELECT COALESCE(MAX(id), 0) FROM events")
    return int(last)


class Treadmills:
    """Runs of the daemon on one socket path and one history file, as a restarted device
    has: `start(console, tables)` (its config from console_config) runs one until
    `stop(mill)` or `close()`."""

    def __init__(self, socket_dir: Path, tmp_path: Path, factory: MockFactory):
        self.socket_path, self.db_path = socket_dir / "device.sock", tmp_path / "history.db"
        self.factory = factory
        self._running: dict[int, contextlib.ExitStack] = {}

    def start(
        self,
        console: ConsoleEmulator,
        tables: Mapping[str, Mapping[str, Any]] | None = None,
        *,
        config: Config | None = None,
    ) -> ConsoleTreadmill:
        """`config` replaces the console_config(console.url, tables) read as the [sensor]."""
        config = config or console_config(console.url, tables)
        first_event_id = _last_event_id(self.db_path) + 1  # before this run writes any
        with contextlib.ExitStack() as stack:
            daemon = stack.enter_context(
                daemon_running(config, socket_path=self.socket_path, db_path=self.db_path,
                               pin_factory=self.factory)
            )  # fmt: skip
            key = SafetyKey(self.factory, config, console)
            key.start()
            stack.callback(key.join, 2.0)
            stack.callback(key.stop.set)
            mill = ConsoleTreadmill(daemon, key, self.socket_path, self.db_path, first_event_id)
            self._running[id(mill)] = stack.pop_all()
        return mill

    def stop(self, mill: ConsoleTreadmill) -> None:
        """The device stops (a restart, a shutdown): the session ends, the history is saved."""
        self._running.pop(id(mill)).close()

    def close(self) -> None:
        for stack in reversed(list(self._running.values())):
            stack.close()
        self._running.clear()


@pytest.fixture
def runs(socket_dir: Path, tmp_path: Path, mock_factory: MockFactory) -> Iterator[Treadmills]:
    """Treadmills on this test's socket directory, history file and mock pins; every run
    still going is stopped at the end of the test."""
    treadmills = Treadmills(socket_dir, tmp_path, mock_factory)
    try:
        yield treadmills
    finally:
        treadmills.close()
