"""The gym the fleet bench (benchmarks/fleet_bench.py) runs in: its Mosquitto and
`retrotread fleet` as a process of their own, the treadmills' tick loops feeding real
Publishers, and pages polling /api/fleet that note when each status first showed.

A status is told apart by its speed: each tick hands every treadmill a speed no earlier tick
had (2.000, 2.001, ... km/h), so a speed seen on /api/fleet names the publish_status() call
that sent it, and the time between the two is the status's latency.
"""

from __future__ import annotations

import http.client
import itertools
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from support.mosquitto import Broker
from support.ports import free_port
from support.waiting import wait_until

from device.config.load import config_from_mapping
from device.config.model import FleetConfig
from device.core.controller import Controller
from device.core.status import ControllerStatus
from device.fleet.publisher import Publisher
from device.history.outbox import Outbox

REPO = Path(__file__).resolve().parent.parent
SITE = "gym"
TICK_S = 0.1  # the daemon's 10 Hz
# 3,000 distinct speeds (2.000-4.999 km/h) last 300 s, longer than any phase of the bench
SPEED_FROM_KMH, SPEED_STEPS = 2.0, 3000
START_WITHIN_S = 20.0
# a gym's broker sized for a fleet that was away while a Pi emptied its outbox (default 1000)
BROKER_CONF = "allow_anonymous true\nmax_queued_messages 20000\n"

Seen = dict[tuple[str, float], float]  # (machine_id, speed_kmh) -> monotonic time


class Gym:
    """The gym's broker and `retrotread fleet` in its own process, in `work`."""

    def __init__(self, work: Path) -> None:
        self.work = work
        (work / "broker").mkdir()
        self.broker = Broker(work / "broker", extra=BROKER_CONF, persistent=True)
        self.port = free_port()
        self.db = work / "fleet" / "fleet.db"
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Gym:
        self.broker.start()
        self.db.parent.mkdir()
        config = self.work / "fleet.toml"
        config.write_text(
            f'[fleet]\nbroker = "{self.broker.url}"\nsite = "{SITE}"\n\n'
            f'[web]\nlisten = "127.0.0.1:{self.port}"\n'
        )
        with open(self.work / "fleet.log", "wb") as log:
            command = [sys.executable, "-m", "device.cli", "fleet", "--config", str(config)]
            command += ["--db", str(self.db)]
            self.process = subprocess.Popen(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
        wait_until(
            lambda: self._answers() and self.fleet()[1]["broker"]["connected"],
            within_s=START_WITHIN_S,
            what="the fleet to serve and reach the broker",
            showing=lambda: (self.work / "fleet.log").read_text(),
        )
        return self

    def _answers(self) -> bool:
        try:
            self.fleet()
        except OSError:
            return False
        return True

    def __exit__(self, *_exc: object) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.broker.stop()

    def fleet(self, connection: http.client.HTTPConnection | None = None) -> tuple[float, Any]:
        """(seconds it took, body) of one GET /api/fleet."""
        link = connection or http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        started = time.perf_counter()
        link.request("GET", "/api/fleet")
        reply = link.getresponse()
        body = reply.read()
        took = time.perf_counter() - started
        if connection is None:
            link.close()
        if reply.status != 200:
            raise RuntimeError(f"/api/fleet answered {reply.status}")
        return took, json.loads(body)

    def sessions_stored(self) -> int:
        with sqlite3.connect(self.db.resolve().as_uri() + "?mode=ro", uri=True) as db:
            return int(db.execute("SELECT COUNT(*) FROM sessions").fetchone()[0])

    def usage(self) -> tuple[float, float, float]:
        """The fleet process's (CPU seconds, RSS MB, peak RSS MB) from /proc."""
        assert self.process is not None
        proc = Path(f"/proc/{self.process.pid}")
        fields = (proc / "stat").read_text().rpartition(")")[2].split()
        cpu_s = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        kb = {
            line.split(":")[0]: int(line.split()[1])
            for line in (proc / "status").read_text().splitlines()
            if line.startswith("VmRSS:") or line.startswith("VmHWM:")
        }
        return cpu_s, kb["VmRSS"] / 1024, kb["VmHWM"] / 1024


class Belts(threading.Thread):
    """The treadmills' tick loops, one thread for all: every 100 ms each publisher is handed
    its treadmill's status with this tick's speed. Treadmill i starts i ticks into the second,
    so their once-a-second statuses do not all leave at the same tick."""

    def __init__(self, publishers: list[Publisher], statuses: list[ControllerStatus]) -> None:
        super().__init__(name="bench-belts", daemon=True)
        self.treadmills = list(zip(publishers, statuses, strict=True))
        self.published: Seen = {}  # when each status was handed over
        self.halt = threading.Event()

    def run(self) -> None:
        next_tick = time.monotonic()
        for n in itertools.count():
            speed = round(SPEED_FROM_KMH + (n % SPEED_STEPS) * 0.001, 3)
            for i, (link, status) in enumerate(self.treadmills):
                if n < i % 10:
                    continue
                now = time.monotonic()
                self.published[(status["machine_id"], speed)] = now
                link.publish_status(ControllerStatus(**{**status, "speed_kmh": speed}), now)
            next_tick += TICK_S
            if self.halt.wait(max(0.0, next_tick - time.monotonic())):
                return

    def latencies(self, seen: Seen, start: float, end: float) -> list[float]:
        """Seconds from publish_status() to first sight, for statuses published in
        [start, end)."""
        published = dict(self.published)
        return [
            at - published[key]
            for key, at in dict(seen).items()
            if key in published and start <= published[key] < end
        ]


class Viewer(threading.Thread):
    """A page polling /api/fleet every `every_s`: how long each answer took, and when each
    treadmill's speed first showed (shared by every viewer: `seen`)."""

    def __init__(self, gym: Gym, every_s: float, seen: Seen) -> None:
        super().__init__(name="bench-viewer", daemon=True)
        self.gym, self.every_s, self.seen = gym, every_s, seen
        self.took: list[float] = []
        self.failed = 0
        self.halt = threading.Event()

    def run(self) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", self.gym.port, timeout=5)
        while not self.halt.is_set():
            try:
                took, body = self.gym.fleet(connection)
            except (OSError, http.client.HTTPException, RuntimeError):
                self.failed += 1  # a slow or refused answer: counted, and the page asks again
                connection.close()
                self.halt.wait(self.every_s)
                continue
            at = time.monotonic()
            self.took.append(took)
            for machine in body["machines"]:
                speed = (machine["status"] or {}).get("speed_kmh")
                if speed is not None:
                    self.seen.setdefault((machine["machine_id"], speed), at)
            self.halt.wait(self.every_s)
        connection.close()

    def stop(self) -> None:
        self.halt.set()
        self.join(10)


def treadmill_status(machine_id: str) -> ControllerStatus:
    """A real Controller's status for treadmill `machine_id`, standing idle."""
    config = config_from_mapping(
        {"machine": {"id": machine_id, "name": machine_id.replace("-", " ").title()}},
        source="fleet bench",
    )
    return Controller(config, t=0.0).status(0.0)


def publisher(gym: Gym, machine_id: str, outbox: Outbox | None = None) -> Publisher:
    """Treadmill `machine_id`'s publisher to the gym's broker (not started)."""
    fleet = FleetConfig(broker=gym.broker.url, site=SITE)
    return Publisher(fleet, machine_id=machine_id, machine_name=machine_id, outbox=outbox)
