"""`retrotread demo`: the real daemon on gpiozero's mock pins, with a simulated walker who
drives the hall sensor and presses the buttons through a realistic routine. No hardware.

The walker acts only through pins (the hall pin's edges, the buttons' levels) and reads the
relay pin, exactly as a person and a treadmill would, so the demo exercises the same code a
treadmill in a gym runs. With `--console csafe` the belt is an emulated gym console's
instead, read over CSAFE on a pty (device/sim/demo_console.py).
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

from gpiozero.pins.mock import MockFactory, MockPin

from device.config.kinds import ConfigError
from device.config.load import format_config, load_config, merge_overrides
from device.config.model import Config
from device.config.write import ConfigWriteError
from device.daemon import Daemon
from device.sim.belt import SimulatedBelt
from device.sim.console_serve import ConsoleEmulator, ConsoleEmulatorError
from device.sim.demo_console import (
    ConsoleBelt,
    Routine,
    banner,
    console_demo_config,
    open_console,
    with_soft_stop,
)
from device.sim.scenario import Step, parse_scenario

log = logging.getLogger("retrotread.demo")

# A beginner's backward session, then a forward stretch, a break and a second backward
# segment with a moment over the cap, ended with a long press; then it starts over. Times in
# seconds from the start.
ROUTINE: Routine = {
    "step": [
        {"at": 2, "belt_kmh": 1.0, "ripple_pct": 5},
        {"at": 5, "press": "start"},
        {"at": 30, "belt_kmh": 1.4, "ripple_pct": 5},
        {"at": 70, "belt_kmh": 1.8, "ripple_pct": 5},
        {"at": 150, "belt_kmh": 2.1, "ripple_pct": 5},
        {"at": 200, "belt_kmh": 2.3, "ripple_pct": 5},
        {"at": 240, "press": "direction"},
        {"at": 242, "belt_kmh": 4.0, "ripple_pct": 4},
        {"at": 300, "belt_kmh": 0.0},
        {"at": 318, "belt_kmh": 1.2, "ripple_pct": 5},
        {"at": 320, "press": "direction"},
        # back to backward, the cap is the start cap again: a moment too fast brings the
        # warning, and slowing down within the grace clears it
        {"at": 350, "belt_kmh": 2.7, "ripple_pct": 5},
        {"at": 354, "belt_kmh": 1.5, "ripple_pct": 5},
        {"at": 380, "belt_kmh": 1.8, "ripple_pct": 5},
        {"at": 440, "belt_kmh": 0.0},
        {"at": 443, "press": "start", "hold": 2.5},
        {"at": 460, "end": True},
    ]
}
EDGE_S = 0.004  # how long the magnet holds the hall sensor low
STATUS_EVERY_S = 5.0


def demo_config(db_path: str) -> tuple[Config, str]:
    """The demo's config and its file: a real file beside the demo's history, so the
    dashboard's settings page has somewhere to save (never /etc). Made from the built-in
    defaults on the first run; the history path always follows --db."""
    path = Path(db_path).with_name(f"{Path(db_path).stem}-config.toml")
    if not path.exists():
        text = format_config(Config(), source="the built-in defaults, for the demo")
        path.write_text(text)
    config, _ = load_config(str(path))
    return merge_overrides(config, {"storage": {"db": db_path}}, source=str(path)), str(path)


class Walker(threading.Thread):
    """Plays ROUTINE on the mock pins, over and over, until stopped; or, once someone uses
    the dashboard's simulator panel (`set_belt`, `press`), does what the panel says. The belt
    is a simulated one whose magnet drives the hall pin, or `belt`, a console's."""

    PAUSE_BETWEEN_ROUNDS_S = 10.0

    def __init__(
        self,
        config: Config,
        factory: MockFactory,
        stop: threading.Event,
        *,
        belt: ConsoleBelt | None = None,
        routine: Routine = ROUTINE,
    ):
        super().__init__(name="demo-walker", daemon=True)
        self.config = config
        self.factory = factory
        self.stop_event = stop
        self.steps = parse_scenario(routine, source="demo routine").steps
        self.hall: MockPin | None = None
        self.belt: SimulatedBelt | ConsoleBelt
        if belt is None:
            self.hall = factory.pin(config.sensor.pin)
            self.belt = SimulatedBelt(config.sensor.meters_per_pulse)
        else:
            self.belt = belt
        self.buttons = {
            "start": factory.pin(config.buttons.start_pin),
            "direction": factory.pin(config.buttons.direction_pin),
        }
        relay_pin = config.outputs.relay_pin
        self.relay = factory.pin(relay_pin) if relay_pin is not None else None
        self.manual = False
        self._lock = threading.Lock()
        self._asked: list[Step] = []

    # -- the simulator panel (called from the web's threads) ---------------------------------

    def set_belt(self, kmh: float) -> None:
        """Set the belt speed from the panel; the routine stops for good."""
        self._ask(Step(at=0.0, action="belt_kmh", value=kmh, ripple_pct=5.0))

    def press(self, button: str, *, hold_s: float = 0.2) -> None:
        """Press START or DIRECTION on the treadmill from the panel."""
        self._ask(Step(at=0.0, action="press", value=button, hold=hold_s))

    def panel_state(self) -> dict[str, object]:
        return {
            "manual": self.manual,
            "belt_kmh": self.belt.set_kmh,
            "stopped_by_key": self.belt.stopped_by_key,
        }

    def _ask(self, step: Step) -> None:
        with self._lock:
            self._asked.append(step)

    # -- the walker's thread -----------------------------------------------------------------

    def run(self) -> None:
        begin = time.monotonic()
        round_start = 0.0
        steps = list(self.steps)
        releases: list[tuple[float, MockPin]] = []
        while not self.stop_event.is_set():
            now = time.monotonic() - begin
            with self._lock:
                asked, self._asked = self._asked, []
            for step in asked:
                self.manual = True
                releases += self._do(step, now)
            if not self.manual:
                while steps and round_start + steps[0].at <= now:
                    releases += self._do(steps.pop(0), now)
                if not steps:  # the routine is over: rest, then walk it again
                    round_start, steps = now + self.PAUSE_BETWEEN_ROUNDS_S, list(self.steps)
            for release in [r for r in releases if r[0] <= now]:
                releases.remove(release)
                release[1].drive_high()
            if self._relay_open() and not self.belt.loop_open:
                self.belt.key_pulled()
            elif not self._relay_open() and self.belt.loop_open:
                self.belt.key_back()
            for _pulse in self.belt.advance(now):
                if self.hall is not None:
                    self.hall.drive_low()
                    time.sleep(EDGE_S)
                    self.hall.drive_high()
            self.stop_event.wait(0.005)

    def _relay_open(self) -> bool:
        if self.relay is None:
            return False
        return bool(self.relay.state) == self.config.outputs.relay_active_high

    def _do(self, step: Step, now: float) -> list[tuple[float, MockPin]]:
        if step.action == "belt_kmh":
            self.belt.set_speed(step.value, ripple_pct=step.ripple_pct)
        elif step.action == "press":
            button = self.buttons[step.value]
            button.drive_low()
            return [(now + step.hold, button)]
        return []


def _default_db() -> str:
    state = os.environ.get("XDG_STATE_HOME") or os.path.join(Path.home(), ".local", "state")
    return os.path.join(state, "retrotread", "demo.db")


def _print_status(daemon: Daemon, stop: threading.Event) -> None:
    """A line on the terminal every few seconds: the demo is alive even before a browser
    opens the dashboard."""
    while not stop.wait(STATUS_EVERY_S):
        s = daemon.status()
        if not s:
            continue
        cap = f"cap {s['cap_kmh']:.1f}" if s.get("cap_kmh") is not None else "no backward cap"
        speed = "  -- " if s["speed_kmh"] is None else f"{s['speed_kmh']:5.1f}"
        line = (
            f"{s['mode'].upper():8} {s['state']:7} {speed} km/h"
            f"  {cap:16} distance {s['distance_m'] or 0:6.1f} m  {s['message']}"
        )
        console = s.get("console")
        if console is not None:
            line += f"  (console: {console['state'] or 'no answer yet'})"
        print(line, flush=True)


def _lan_addresses() -> list[str]:
    """This computer's IPv4 addresses on the local network, for opening the demo on a phone
    (read from the host's own name; nothing is sent anywhere)."""
    try:
        infos = socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)
    except OSError:
        return []
    addresses = {str(info[4][0]) for info in infos}
    return sorted(a for a in addresses if not a.startswith("127."))


CONSOLES = ("hall", "csafe")  # what `--console` takes: the belt the daemon reads


def run_demo(
    *,
    port: int,
    db_path: str | None,
    socket_path: str | None,
    duration_s: float | None = None,
    console: str = "hall",
    soft: bool = False,
) -> int:
    if console not in CONSOLES:
        raise ValueError(f"--console takes {' or '.join(CONSOLES)}, not {console!r}")
    if soft and console != "csafe":
        log.error("--soft asks the emulated CSAFE console to slow the belt; add --console csafe.")
        return 2
    # the socket's folder lives as long as this run: removed on every way out
    scratch_dir = tempfile.TemporaryDirectory(prefix="retrotread-demo-")
    emulator: ConsoleEmulator | None = None
    try:
        if console == "csafe":
            try:
                emulator = open_console()
            except ConsoleEmulatorError as exc:  # no pty to be had
                log.error("%s", exc)
                return 1
        return _run_demo(
            port=port,
            db_path=db_path,
            socket_path=socket_path or os.path.join(scratch_dir.name, "device.sock"),
            duration_s=duration_s,
            emulator=emulator,
            soft=soft,
        )
    finally:
        if emulator is not None:
            emulator.close()
        scratch_dir.cleanup()


def _run_demo(
    *,
    port: int,
    db_path: str | None,
    socket_path: str,
    duration_s: float | None,
    emulator: ConsoleEmulator | None,
    soft: bool,
) -> int:
    from web import create_app
    from web.auth import PasswordError, StateDirError, set_password
    from web.serve import WebServeError, serve

    db = os.path.abspath(db_path or _default_db())
    state_dir = os.path.dirname(db)
    sock = socket_path
    try:
        os.makedirs(state_dir, exist_ok=True)
        if emulator is None:
            config, config_path = demo_config(db)
        else:
            config, config_path = console_demo_config(db, url=emulator.url, soft=soft)
    except OSError as exc:
        log.error(
            "Cannot keep the demo's history in %s (%s); pass --db with a path in a writable "
            "directory.",
            state_dir,
            exc.strerror,
        )
        return 1
    except (ConfigError, ConfigWriteError) as exc:
        log.error("%s", exc)
        return 2
    factory = MockFactory()
    daemon = Daemon(
        config, socket_path=sock, db_path=db, config_path=config_path, pin_factory=factory
    )
    stop = threading.Event()
    if emulator is None:
        walker = Walker(config, factory, stop)
    else:
        routine = with_soft_stop(ROUTINE) if soft else ROUTINE
        walker = Walker(config, factory, stop, belt=ConsoleBelt(emulator), routine=routine)
    # A fresh admin password each run: the demo's settings page is real and wants a login.
    password = secrets.token_urlsafe(9)
    try:
        set_password(state_dir, password)
        app = create_app(
            config,
            config_path=config_path,
            socket_path=sock,
            db_path=db,
            state_dir=state_dir,
            demo=walker,
        )
        server = serve(app, listen=f"0.0.0.0:{port}")
    except (PasswordError, StateDirError, WebServeError) as exc:
        log.error("%s", exc)
        return 1
    print("retrotread demo: a simulated treadmill on mock pins, no hardware needed", flush=True)
    print(f"  dashboard: http://127.0.0.1:{port}/", flush=True)
    for line in banner(emulator, soft=soft) if emulator is not None else []:
        print(line, flush=True)
    for address in _lan_addresses():
        print(f"  on a phone on the same network: http://{address}:{port}/", flush=True)
    print(f"  admin password (settings): {password}", flush=True)
    print(f"  history: {db}\n  Ctrl-C stops.", flush=True)
    if duration_s is not None:
        timer = threading.Timer(duration_s, daemon.stop)
        timer.daemon = True
        timer.start()
    web = threading.Thread(target=server.run, name="demo-web", daemon=True)
    web.start()
    walker.start()
    threading.Thread(target=_print_status, args=(daemon, stop), daemon=True).start()
    try:
        code = daemon.serve()
    finally:
        stop.set()
        server.close()
        walker.join(timeout=2)
        factory.reset()
    if code == 0:
        print("demo stopped; outputs safe", file=sys.stderr)
    return code
