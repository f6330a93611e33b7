"""`retrotread fleet-demo`: a gym on one laptop. Debian's Mosquitto on a free port, five
simulated treadmills publishing to it (five real Daemons on gpiozero's mock pins, each with
its own walker), and the fleet dashboard (web.fleet) following them. No hardware.

Each treadmill is what `retrotread demo` runs, times five: its own machine id, history file,
socket and walker routine (the demo's Walker, playing a routine of its own). Treadmill 3's
walker pushes too hard, so its tile goes red every round: a warning, then an enforced stop.

Everything lives in one temporary folder, removed on the way out with the broker killed.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gpiozero.pins.mock import MockFactory

from device.config.load import merge_overrides
from device.config.model import Config
from device.daemon import Daemon
from device.errors import RetrotreadError
from device.sim.demo import Walker, _lan_addresses
from device.sim.scenario import parse_scenario

log = logging.getLogger("retrotread.fleet_demo")

SITE = "demo"
BROKER_WITHIN_S = 10.0  # Mosquitto listens within a second; ten leaves room for a slow disk
READY_WITHIN_S = 20.0
STATUS_EVERY_S = 15.0
NOT_INSTALLED = (
    "retrotread fleet-demo needs Mosquitto, the MQTT broker, and it is not installed; "
    "install it with `sudo apt install mosquitto` and run this again."
)


class FleetDemoError(RetrotreadError):
    """The fleet demo cannot start; str() is one sentence with the fix."""


@dataclass(frozen=True)
class Routine:
    """One walker's routine: who walks, and the scenario steps they play over and over."""

    machine_id: str
    name: str
    steps: list[dict[str, Any]]


# Five walkers, five habits. Times in seconds from the start of each round (the Walker rests
# 10 s between rounds). Short rounds, so a newcomer sees each habit within two minutes.
WALKS: dict[str, list[dict[str, Any]]] = {
    # a beginner, slow and steady backward, inching up with the cap
    "treadmill-1": [
        {"at": 2, "belt_kmh": 1.0, "ripple_pct": 5},
        {"at": 5, "press": "start"},
        {"at": 40, "belt_kmh": 1.4, "ripple_pct": 5},
        {"at": 90, "belt_kmh": 1.8, "ripple_pct": 5},
        {"at": 150, "belt_kmh": 0.0},
        {"at": 153, "press": "start", "hold": 2.5},
        {"at": 160, "end": True},
    ],
    # a forward walker: turns to forward before starting, brisk pace
    "treadmill-2": [
        {"at": 1, "press": "direction"},
        {"at": 3, "belt_kmh": 3.0, "ripple_pct": 4},
        {"at": 5, "press": "start"},
        {"at": 20, "belt_kmh": 4.5, "ripple_pct": 4},
        {"at": 80, "belt_kmh": 5.2, "ripple_pct": 4},
        {"at": 120, "belt_kmh": 0.0},
        {"at": 123, "press": "start", "hold": 2.5},
        {"at": 126, "press": "direction"},  # back to backward, where the next round begins
        {"at": 130, "end": True},
    ],
    # the one who pushes: over the cap, a warning, ignored, and the enforced stop
    "treadmill-3": [
        {"at": 2, "belt_kmh": 1.0, "ripple_pct": 5},
        {"at": 5, "press": "start"},
        {"at": 10, "belt_kmh": 3.5, "ripple_pct": 5},
        # the relay has stopped the belt by now; the walker starts again, slowly
        {"at": 40, "belt_kmh": 1.0, "ripple_pct": 5},
        {"at": 43, "press": "start"},
        {"at": 75, "belt_kmh": 0.0},
        {"at": 78, "press": "start", "hold": 2.5},
        {"at": 82, "end": True},
    ],
    # a moment too fast, slowed in time: the warning comes and clears
    "treadmill-4": [
        {"at": 2, "belt_kmh": 1.2, "ripple_pct": 5},
        {"at": 5, "press": "start"},
        {"at": 30, "belt_kmh": 2.7, "ripple_pct": 5},
        {"at": 34, "belt_kmh": 1.5, "ripple_pct": 5},
        {"at": 60, "belt_kmh": 0.0},  # a break: the session pauses
        {"at": 80, "belt_kmh": 1.2, "ripple_pct": 5},
        {"at": 82, "press": "start"},
        {"at": 120, "belt_kmh": 0.0},
        {"at": 123, "press": "start", "hold": 2.5},
        {"at": 130, "end": True},
    ],
    # mostly free: a short walk now and then
    "treadmill-5": [
        {"at": 20, "belt_kmh": 1.0, "ripple_pct": 5},
        {"at": 23, "press": "start"},
        {"at": 60, "belt_kmh": 0.0},
        {"at": 63, "press": "start", "hold": 2.5},
        {"at": 100, "end": True},
    ],
}
ROUTINES = tuple(
    Routine(machine_id, f"Treadmill {machine_id[-1]}", steps) for machine_id, steps in WALKS.items()
)


def find_mosquitto(path: str | None = None) -> str | None:
    """Mosquitto on PATH, or in the sbin beside a bin on it: Debian installs it as
    /usr/sbin/mosquitto, which an ordinary user's PATH leaves out."""
    search = path if path is not None else os.environ.get("PATH", "")
    places: list[str] = []
    for folder in filter(None, search.split(os.pathsep)):
        places.append(folder)
        if os.path.basename(folder.rstrip("/")) == "bin":
            places.append(os.path.join(os.path.dirname(folder.rstrip("/")), "sbin"))
    return shutil.which("mosquitto", path=os.pathsep.join(places))


def free_port() -> int:  # Mosquitto binds its own port: it cannot be handed 0
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class DemoBroker:
    """Mosquitto in `home`, anonymous clients allowed on 127.0.0.1 only, nothing kept on
    disk. Its own session: Ctrl-C in the terminal reaches the demo, which stops the broker
    last, after every treadmill has said it is going offline."""

    def __init__(self, executable: str, home: Path) -> None:
        self.executable = executable
        self.home = home
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> DemoBroker:
        self.home.mkdir(parents=True, exist_ok=True)
        conf, logfile = self.home / "mosquitto.conf", self.home / "mosquitto.log"
        conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
            f"log_dest file {logfile}\nlog_type error\nlog_type warning\n"
            # as root Mosquitto would become user "mosquitto", who cannot write this folder
            + ("user root\n" if os.geteuid() == 0 else "")
        )
        self.process = subprocess.Popen(
            [self.executable, "-c", str(conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + BROKER_WITHIN_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                said = logfile.read_text(errors="replace").strip().splitlines()
                why = said[-1] if said else f"exit status {self.process.returncode}"
                raise FleetDemoError(
                    f"Mosquitto ({self.executable}) stopped at start ({why}); run "
                    f"`{self.executable} -p {self.port}` to see why, then try again."
                )
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise FleetDemoError(
            f"Mosquitto did not listen on 127.0.0.1:{self.port} within {BROKER_WITHIN_S:g} s; "
            "check that nothing else holds the port and run this again."
        )

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self.process = None


class RoutineWalker(Walker):
    """The demo's walker, playing one treadmill's own routine."""

    def __init__(
        self, config: Config, factory: MockFactory, stop: threading.Event, routine: Routine
    ) -> None:
        super().__init__(config, factory, stop)
        self.name = f"{routine.machine_id}-walker"
        self.steps = parse_scenario({"step": routine.steps}, source=routine.name).steps


@dataclass
class Treadmill:  # one simulated treadmill: a daemon on its own mock pins, a walker
    routine: Routine
    daemon: Daemon
    factory: MockFactory
    walker: RoutineWalker
    thread: threading.Thread
    failed: bool = False


def treadmill_config(routine: Routine, *, broker_url: str, db: str) -> Config:
    return merge_overrides(
        Config(),
        {
            "machine": {"id": routine.machine_id, "name": routine.name},
            "fleet": {"broker": broker_url, "site": SITE},
            "storage": {"db": db},
        },
        source=f"the fleet demo's {routine.machine_id}",
    )


def _make_treadmill(
    routine: Routine, folder: Path, broker_url: str, stop: threading.Event
) -> Treadmill:
    number = routine.machine_id.rsplit("-", 1)[-1]
    db = str(folder / f"treadmill-{number}.db")
    config = treadmill_config(routine, broker_url=broker_url, db=db)
    factory = MockFactory()  # each treadmill its own pins: the same numbers, five boards
    daemon = Daemon(
        config, socket_path=str(folder / f"t{number}.sock"), db_path=db, pin_factory=factory
    )
    walker = RoutineWalker(config, factory, stop, routine)
    treadmill = Treadmill(routine, daemon, factory, walker, threading.Thread())
    # the thread is named after the machine: the journal lines of its tick say whose they are
    treadmill.thread = threading.Thread(
        target=_run_treadmill, args=(treadmill, stop), name=routine.machine_id, daemon=True
    )
    return treadmill


def _run_treadmill(treadmill: Treadmill, stop: threading.Event) -> None:
    try:
        treadmill.daemon.run()  # every output safe before it returns, whichever way
    except Exception as exc:  # one treadmill that cannot start stops the demo, said once
        log.error("%s could not run: %s", treadmill.routine.machine_id, exc)
        treadmill.failed = True
        stop.set()


def _name_threads_in_the_log() -> None:
    for handler in logging.getLogger().handlers:
        handler.setFormatter(
            logging.Formatter(
                "%(asctime)s %(threadName)s %(levelname)s: %(message)s", datefmt="%H:%M:%S"
            )
        )


def _print_statuses(treadmills: list[Treadmill], stop: threading.Event) -> None:
    """One line per treadmill every few seconds, before a browser is even open."""
    while not stop.wait(STATUS_EVERY_S):
        for t in treadmills:
            s = t.daemon.status()
            if not s:
                continue
            speed = "  -- " if s["speed_kmh"] is None else f"{s['speed_kmh']:5.1f}"
            cap = f"cap {s['cap_kmh']:.1f}" if s.get("cap_kmh") is not None else "no cap"
            print(
                f"{t.routine.machine_id:12} {s['mode'].upper():8} {s['state']:7} {speed} km/h"
                f"  {cap:8} {s['message']}",
                flush=True,
            )


def run_fleet_demo(*, port: int) -> int:
    """0 after Ctrl-C or SIGTERM; 1, with one sentence, when it cannot start."""
    executable = find_mosquitto()
    if executable is None:
        print(NOT_INSTALLED, file=sys.stderr)
        return 1
    # the broker, the five histories and sockets, the fleet's database: gone on every way out
    scratch = tempfile.TemporaryDirectory(prefix="rt-fleet-demo-")
    try:
        return _run(executable, Path(scratch.name), port=port)
    except RetrotreadError as exc:
        print(exc, file=sys.stderr)
        return 1
    finally:
        scratch.cleanup()


def _run(executable: str, scratch: Path, *, port: int) -> int:
    from web.auth import set_password
    from web.fleet import create_fleet_app
    from web.fleet.board import Board
    from web.fleet.receiver import FleetReceiver
    from web.fleet.settings import FleetSettings
    from web.fleet.store import FleetStore
    from web.serve import serve

    stop = threading.Event()  # Ctrl-C from here on: everything below is undone in order
    previous = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGINT, signal.SIGTERM)}
    broker = DemoBroker(executable, scratch / "broker")
    fleet_dir = scratch / "fleet"
    settings = FleetSettings(
        host="127.0.0.1",
        port=broker.port,
        site=SITE,
        db=str(fleet_dir / "fleet.db"),
        listen=f"0.0.0.0:{port}",
        client_id="retrotread-fleet-demo",
    )
    treadmills: list[Treadmill] = []
    store = board = receiver = server = web = None
    try:
        broker.start()
        fleet_dir.mkdir()
        store, board = FleetStore(settings.db), Board()
        receiver = FleetReceiver(settings, board=board, store=store)
        # a fresh admin password each run: the fleet's session history wants a login
        password = secrets.token_urlsafe(9)
        set_password(fleet_dir, password)
        app = create_fleet_app(
            settings, store=store, board=board, receiver=receiver, state_dir=fleet_dir
        )
        server = serve(app, listen=settings.listen)
        receiver.start()
        web = threading.Thread(target=server.run, name="fleet-web", daemon=True)
        web.start()
        _name_threads_in_the_log()
        treadmills = [_make_treadmill(r, scratch, broker.url, stop) for r in ROUTINES]
        for t in treadmills:  # one at a time, so each one's threads can carry its name
            before = set(threading.enumerate())
            t.thread.start()
            if not t.daemon.ready.wait(READY_WITHIN_S) and not stop.is_set():
                raise FleetDemoError(
                    f"{t.routine.machine_id} did not start within {READY_WITHIN_S:g} s; "
                    "run `retrotread demo` to see what a single treadmill says."
                )
            for thread in set(threading.enumerate()) - before - {t.thread}:
                thread.name = f"{t.routine.machine_id}/{thread.name}"
        if stop.is_set():  # one could not start (its sentence is in the log) or Ctrl-C
            return 1 if any(t.failed for t in treadmills) else 0
        for t in treadmills:
            t.walker.start()
        print("retrotread fleet-demo: five simulated treadmills and a broker, no hardware")
        print(f"  fleet: http://127.0.0.1:{port}/")
        for address in _lan_addresses():
            print(f"  on a phone on the same network: http://{address}:{port}/")
        print(f"  admin password (sessions): {password}")
        print(f"  broker: {broker.url}, site {SITE!r} (mosquitto_sub -p {broker.port} -t '#' -v)")
        print("  Ctrl-C stops.", flush=True)
        threading.Thread(
            target=_print_statuses, args=(treadmills, stop), name="fleet-demo-status", daemon=True
        ).start()
        while not stop.wait(0.5):  # short waits: the signal handler runs between them
            pass
        return 1 if any(t.failed for t in treadmills) else 0
    finally:
        stop.set()
        for t in treadmills:
            t.daemon.stop()
        for t in treadmills:
            if t.thread.is_alive():
                t.thread.join(timeout=10)  # each says "offline" and makes its outputs safe
            if t.walker.is_alive():
                t.walker.join(timeout=2)
            t.factory.reset()
        if board is not None:
            board.close()  # the grid's streams end and free their threads
        if server is not None:
            server.close()
        if web is not None:
            web.join(timeout=5)
        if receiver is not None:
            receiver.close()
        if store is not None:
            store.close()
        broker.stop()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if treadmills:
            print("fleet demo stopped; outputs safe, broker stopped", file=sys.stderr)
