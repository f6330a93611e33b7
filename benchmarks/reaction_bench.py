"""How soon the real daemon's tick loop acts when a warning's grace runs out.

The daemon (device.daemon.Daemon, its tick loop, adapters, SQLite recorder and socket) runs in
this process on gpiozero's mock pins. A walker thread drives the hall pin like a belt and the
START pin like a finger; when the relay opens the belt stops, as a treadmill does when its
safety key is pulled. Each round: the walker resumes slowly, speeds up over the cap, and the
guard warns; the reaction is the time from the grace budget running out (the guard's own
deadline once the belt is over: the time of its last judgement plus the budget left, on the
monotonic clock) to the relay pin's change, read from the MockPin's own timestamped history.
The budget has memory (device/core/overspeed.py): after a stop it refills only at a thirtieth of
the time under the limit, so each round first waits until there is enough of it to time.
Waiting on pins and status, the bench thread sleeps rather than spins, so it does not steal
the interpreter from the loop it measures.

A second pass adds a CPU hog thread (pure Python, so it contends for the interpreter lock
exactly as a busy web request or a slow SQLite call inside the daemon's process would).
"""

from __future__ import annotations

import itertools
import math
import shutil
import statistics
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gpiozero.pins.mock import MockFactory

from benchmarks.table import Row
from device.config.load import config_from_mapping
from device.config.model import Config
from device.core.overspeed import REFILL_PER_S
from device.core.tick import TickResult
from device.daemon import Daemon

TITLE = "Reaction: the real daemon's tick loop to a grace running out (mock pins)"
TARGET_MS = 100.0  # the rule: the tick loop reacts within 100 ms of the grace running out
GAP_TARGET_MS = 150.0  # one 100 ms tick plus scheduling slack: no tick skipped
ROUNDS = 8
HOG_ROUNDS = 3
GRACE_S = 1.0  # the shortest grace the config accepts: more rounds in the time
PULSE_S = 0.3
SLOW_KMH = 1.0  # a resume at walking pace
FAST_KMH = 5.0  # well over the start cap of 2.0 + 0.3 km/h
RESUME_BELOW_KMH = 2.2  # the start gate takes the 3 s mean: wait until it allows a resume
PRESS_S = 0.1
EDGE_S = 0.002  # how long the magnet holds the hall line low
WAIT_S = 10.0
MIN_BUDGET_S = 0.3  # a round starts once this much budget is back: 9 s under the limit


@dataclass
class Round:
    late_ms: float  # grace end -> relay pin change
    wake_ms: float  # grace end -> the enforcing tick's start
    pulse_late_ms: float = math.nan  # end of the relay pulse -> relay pin closing


@dataclass
class Ticks:
    """Tick starts and the start of each tick that changed the relay, recorded by wrapping
    Controller.tick (the loop calls it on the same object)."""

    starts: list[float] = field(default_factory=list)
    relay_ticks: list[tuple[float, str]] = field(default_factory=list)


class Belt(threading.Thread):
    """The treadmill's belt on the hall pin: one falling edge per `meters_per_pulse`. When the
    relay opens the safety loop the belt stops and stays stopped until a new speed is set."""

    def __init__(self, factory: MockFactory, config: Config):
        super().__init__(name="bench-belt", daemon=True)
        self.hall = factory.pin(config.sensor.pin)
        self.relay = factory.pin(config.outputs.relay_pin)
        self.open_level = config.outputs.relay_active_high
        self.meters_per_pulse = config.sensor.meters_per_pulse
        self.kmh = 0.0
        self.stopped_by_key = False
        self.halt = threading.Event()
        self.changed = threading.Event()

    def set_kmh(self, kmh: float) -> None:
        self.kmh, self.stopped_by_key = kmh, False
        self.changed.set()

    def run(self) -> None:
        next_edge = time.monotonic()
        while not self.halt.is_set():
            if bool(self.relay.state) == self.open_level:
                self.stopped_by_key = True
            if self.kmh <= 0 or self.stopped_by_key:
                self.changed.wait(0.01)
                self.changed.clear()
                next_edge = time.monotonic()
                continue
            next_edge += self.meters_per_pulse / (self.kmh / 3.6)
            pause = next_edge - time.monotonic()
            if pause > 0:
                self.halt.wait(pause)
            self.hall.drive_low()
            time.sleep(EDGE_S)
            self.hall.drive_high()


class Hog(threading.Thread):
    """Pure-Python busy work, holding the interpreter lock whenever it may."""

    def __init__(self):
        super().__init__(name="bench-hog", daemon=True)
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.is_set():
            sum(i * i for i in range(5000))


class Bench:
    """The daemon in a thread on mock pins, with a belt, a START finger and a tick recorder."""

    def __init__(self):
        self.scratch = Path(tempfile.mkdtemp(dir="/tmp", prefix="rt-bench-"))
        self.factory = MockFactory()
        self.config = config_from_mapping(
            {
                "backward": {"grace_s": GRACE_S},
                "enforce": {"action": "relay", "mode": "pulse", "pulse_s": PULSE_S},
                "storage": {"db": str(self.scratch / "bench.db")},
            },
            source="reaction bench",
        )
        self.daemon = Daemon(
            self.config,
            socket_path=str(self.scratch / "d.sock"),
            db_path=self.config.storage.db,
            pin_factory=self.factory,
        )
        self.thread = threading.Thread(target=self.daemon.run, name="bench-daemon", daemon=True)
        self.belt = Belt(self.factory, self.config)
        self.start_button = self.factory.pin(self.config.buttons.start_pin)
        self.relay = self.factory.pin(self.config.outputs.relay_pin)
        self.ticks = Ticks()
        self._closing: tuple[Round, float, float] | None = None

    def __enter__(self) -> Bench:
        self.thread.start()
        if not self.daemon.ready.wait(WAIT_S):
            raise RuntimeError("the daemon did not become ready")
        controller = self.daemon.controller
        assert controller is not None
        tick = controller.tick

        def recorded_tick(t: float) -> TickResult:
            self.ticks.starts.append(t)
            result = tick(t)
            for change in result.outputs:
                if change.name == "relay":
                    self.ticks.relay_ticks.append((t, change.state))
            return result

        controller.tick = recorded_tick  # type: ignore[method-assign]
        self.belt.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.belt.halt.set()
        self.belt.join(WAIT_S)
        self.daemon.stop()
        self.thread.join(WAIT_S)
        self.factory.reset()
        self.factory.close()
        shutil.rmtree(self.scratch, ignore_errors=True)

    def status(self) -> dict[str, Any]:
        return self.daemon.status()

    def wait(self, what: str, condition, *, every_s: float = 0.005) -> Any:
        until = time.monotonic() + WAIT_S
        while time.monotonic() < until:
            found = condition()
            if found:
                return found
            time.sleep(every_s)
        raise RuntimeError(f"waited {WAIT_S} s for {what}; status: {self.status()}")

    def press_start(self) -> None:
        self.start_button.drive_low()
        time.sleep(PRESS_S)
        self.start_button.drive_high()

    def overspeed(self) -> Round:
        """Resume (or start) slowly, speed up, and time the stop at the end of the grace and
        the loop closing again at the end of the relay pulse."""
        # the belt stands (the last stop pulled the key) until the mean lets the walker resume
        self.wait(
            "a mean slow enough to resume",
            lambda: (self.status().get("mean_kmh") or 0.0) <= RESUME_BELOW_KMH,
        )
        self.pulse_ended()  # the last round's pulse ended long ago: its close is in history
        self.belt.set_kmh(SLOW_KMH)
        controller = self.daemon.controller
        assert controller is not None and controller.sensor.primary is not None
        hall = controller.sensor.primary.estimator  # read only: the tick thread owns it
        # the start gate wants the speed from two pulse intervals since the belt stood
        self.wait("a speed to start at", lambda: hall.run_intervals >= 2)
        self.press_start()
        self.wait("the session running", lambda: self.status().get("state") == "running")
        guard = self.daemon.controller.guard  # type: ignore[union-attr]
        until = time.monotonic() + WAIT_S + MIN_BUDGET_S / REFILL_PER_S
        while guard.watch.budget_s < MIN_BUDGET_S and time.monotonic() < until:
            time.sleep(0.05)
        self.belt.set_kmh(FAST_KMH)
        grace_ends = self.wait("the warning", guard.watch.deadline, every_s=0.002)
        # the relay's history from here: its first entry is stamped now, each next one with
        # the seconds since the one before (gpiozero MockPin.states)
        before = time.monotonic()
        self.relay.clear_states()
        cleared_at = (before + time.monotonic()) / 2
        if grace_ends - cleared_at < 0.05:
            raise RuntimeError("the warning was seen too late to time its grace")
        self.wait("the relay to open", lambda: len(self.relay.states) >= 2)
        opened_at = cleared_at + self.relay.states[1].timestamp
        enforced_tick = self.ticks.relay_ticks[-1][0]
        done = Round(
            late_ms=(opened_at - grace_ends) * 1000, wake_ms=(enforced_tick - grace_ends) * 1000
        )
        self._closing = (done, opened_at, enforced_tick + PULSE_S)
        return done

    def pulse_ended(self) -> None:
        """Time the relay closing at the end of the last stop's pulse (waits for it)."""
        if self._closing is None:
            return
        done, opened_at, pulse_ends = self._closing
        self.wait("the relay to close", lambda: len(self.relay.states) >= 3)
        closed_at = opened_at + self.relay.states[2].timestamp
        done.pulse_late_ms = (closed_at - pulse_ends) * 1000
        self._closing = None


def _cadence(starts: list[float]) -> tuple[float, float]:
    """Ticks per second and the longest gap between two ticks (ms)."""
    gaps = [later - earlier for earlier, later in itertools.pairwise(starts)]
    return (len(starts) - 1) / (starts[-1] - starts[0]), max(gaps) * 1000


def _rows_for(label: str, rounds: list[Round], starts: list[float]) -> list[Row]:
    late = [r.late_ms for r in rounds]
    worst, median = max(late), statistics.median(late)
    per_s, worst_gap_ms = _cadence(starts)
    return [
        Row(label),
        Row(
            f"  grace end -> relay pin, worst of {len(late)}",
            f"{worst:.1f} ms",
            f"< {TARGET_MS:.0f} ms",
            worst < TARGET_MS,
        ),
        Row("  grace end -> relay pin, median", f"{median:.1f} ms"),
        Row(
            "  grace end -> enforcing tick starts, worst",
            f"{max(r.wake_ms for r in rounds):.1f} ms",
        ),
        Row(
            "  pulse end -> relay pin closes, worst",
            f"{max(r.pulse_late_ms for r in rounds):.1f} ms",
        ),
        Row("  tick loop cadence", f"{per_s:.1f} ticks/s"),
        # 10 Hz: a gap past one tick and scheduling slack means a tick was skipped
        Row(
            "  tick loop, longest gap between ticks",
            f"{worst_gap_ms:.0f} ms",
            f"< {GAP_TARGET_MS:.0f} ms",
            worst_gap_ms < GAP_TARGET_MS,
        ),
    ]


def rows() -> list[Row]:
    with Bench() as bench:
        quiet = [bench.overspeed() for _ in range(ROUNDS)]
        bench.pulse_ended()
        quiet_ticks = list(bench.ticks.starts)
        hog = Hog()
        hog.start()
        try:
            busy = [bench.overspeed() for _ in range(HOG_ROUNDS)]
            bench.pulse_ended()
        finally:
            hog.halt.set()
            hog.join(WAIT_S)
        busy_ticks = bench.ticks.starts[len(quiet_ticks) :]
    idle = (
        f"idle: grace {GRACE_S:.0f} s, pulse {PULSE_S} s, {FAST_KMH:.0f} km/h over a 2.0 km/h cap"
    )
    return [
        *_rows_for(idle, quiet, quiet_ticks),
        *_rows_for("with a pure-Python CPU hog thread in the daemon's process", busy, busy_ticks),
    ]
