"""`retrotread demo`: the real daemon on gpiozero's mock pins, with a simulated walker who
drives the hall sensor and presses the buttons through a realistic routine. No hardware.

The walker acts only through pins (the hall pin's edges, the buttons' levels) and reads the
relay pin, exactly as a person and a treadmill would, so the demo exercises the same code a
treadmill in a gym runs.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

from gpiozero.pins.mock import MockFactory

from device.config import Config
from device.daemon import Daemon
from device.scenario import SimulatedBelt, Step, parse_scenario

log = logging.getLogger("retrotread.demo")

# A beginner's backward session, then a forward stretch, a break and a second backward
# segment, ended with a long press; then it starts over. Times in seconds from the start.
ROUTINE = {
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
        {"at": 380, "belt_kmh": 1.8, "ripple_pct": 5},
        {"at": 440, "belt_kmh": 0.0},
        {"at": 443, "press": "start", "hold": 2.5},
        {"at": 460, "end": True},
    ]
}
EDGE_S = 0.004  # how long the magnet holds the hall sensor low


def demo_config(db_path: str) -> Config:
    """The built-in defaults, with the relay fitted on the mock pins so the demo shows it."""
    from device.config import config_from_mapping

    return config_from_mapping({"storage": {"db": db_path}}, source="demo")


class Walker(threading.Thread):
    """Plays ROUTINE on the mock pins, over and over, until stopped."""

    def __init__(self, config: Config, factory: MockFactory, stop: threading.Event):
        super().__init__(name="demo-walker", daemon=True)
        self.config = config
        self.factory = factory
        self.stop_event = stop
        self.steps = parse_scenario(ROUTINE, source="demo routine").steps
        self.hall = factory.pin(config.sensor.pin)
        self.start_button = factory.pin(config.buttons.start_pin)
        self.direction_button = factory.pin(config.buttons.direction_pin)
        relay_pin = config.outputs.relay_pin
        self.relay = factory.pin(relay_pin) if relay_pin is not None else None

    def run(self) -> None:
        while not self.stop_event.is_set():
            self._play_once()

    def _relay_open(self) -> bool:
        if self.relay is None:
            return False
        return bool(self.relay.state) == self.config.outputs.relay_active_high

    def _play_once(self) -> None:
        belt = SimulatedBelt(self.config.sensor.meters_per_pulse)
        begin = time.monotonic()
        steps = list(self.steps)
        releases: list[tuple[float, object]] = []
        while steps and not self.stop_event.is_set():
            now = time.monotonic() - begin
            while steps and steps[0].at <= now:
                releases += self._do(steps.pop(0), belt)
            for release in [r for r in releases if r[0] <= now]:
                releases.remove(release)
                release[1].drive_high()
            if self._relay_open():
                belt.key_pulled()
            for _pulse in belt.advance(now):
                self.hall.drive_low()
                time.sleep(EDGE_S)
                self.hall.drive_high()
            self.stop_event.wait(0.005)

    def _do(self, step: Step, belt: SimulatedBelt) -> list[tuple[float, object]]:
        if step.action == "belt_kmh":
            belt.set_speed(step.value, ripple_pct=step.ripple_pct)
        elif step.action == "press":
            button = self.start_button if step.value == "start" else self.direction_button
            button.drive_low()
            return [(step.at + step.hold, button)]
        return []


def _default_db() -> str:
    state = os.environ.get("XDG_STATE_HOME") or os.path.join(Path.home(), ".local", "state")
    return os.path.join(state, "retrotread", "demo.db")


def _print_status(daemon: Daemon, stop: threading.Event) -> None:
    """A live line on the terminal, so the demo shows the speed before the dashboard exists."""
    while not stop.wait(1.0):
        s = daemon.status()
        if not s:
            continue
        cap = f"cap {s['cap_kmh']:.1f}" if s.get("cap_kmh") is not None else "no backward cap"
        speed = "  -- " if s["speed_kmh"] is None else f"{s['speed_kmh']:5.1f}"
        line = (
            f"{s['mode'].upper():8} {s['state']:7} {speed} km/h"
            f"  {cap:16} distance {s['distance_m'] or 0:6.1f} m  {s['message']}"
        )
        print(line, flush=True)


def run_demo(
    *,
    port: int,
    db_path: str | None,
    socket_path: str | None,
    duration_s: float | None = None,
) -> int:
    db = db_path or _default_db()
    scratch = tempfile.mkdtemp(prefix="retrotread-demo-")
    sock = socket_path or os.path.join(scratch, "device.sock")
    config = demo_config(db)
    factory = MockFactory()
    daemon = Daemon(config, socket_path=sock, db_path=db, pin_factory=factory)
    stop = threading.Event()
    walker = Walker(config, factory, stop)
    printer = threading.Thread(target=_print_status, args=(daemon, stop), daemon=True)
    print(f"retrotread demo: a simulated treadmill on mock pins (port {port} is for the dashboard)")
    print(f"  history: {db}\n  socket:  {sock}\n  Ctrl-C stops.", flush=True)
    if duration_s is not None:
        timer = threading.Timer(duration_s, daemon.stop)
        timer.daemon = True
        timer.start()
    walker.start()
    printer.start()
    try:
        code = daemon.serve()
    finally:
        stop.set()
        walker.join(timeout=2)
        factory.reset()
    if code == 0:
        print("demo stopped; outputs safe", file=sys.stderr)
    return code
