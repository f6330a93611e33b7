"""Faults around the guard, each measured on the real `retrotread device` as a subprocess.

The daemon runs as `python -m benchmarks.fault_device` (device.cli.main on mock pins that
report every change of level, with its CLOCK_MONOTONIC time, down a pipe) with
`[sensor] kind = "serial"` on a pty: the bench is the speed bridge, writing lines such as
`1.50` to the pty's master end. When the relay opens, the bench's belt stops (it sends 0.00),
as a treadmill does when its safety key is pulled. Three figures:

- Overspeed to relay with history writes failing. Each round is a fresh daemon (a full grace
  budget, no stop to remember): a backward session at 1.5 km/h, then 5.0 km/h, over the
  2.0 + 0.3 km/h limit. Timed from the first 5.0 line to the relay pin opening, and from the
  warning beep (the buzzer's first on) to the relay. Healthy; with a second sqlite3 connection
  holding the history file's write lock (`BEGIN IMMEDIATE` from just after start-up to the
  end); and with every file write refused mid-run: RLIMIT_FSIZE set to 0 on the daemon after
  the session began (no root needed; a write then fails with EFBIG, as on a full disk).
- Daemon RSS after a serial flood: valid lines as fast as the pty takes them for FLOOD_S,
  VmRSS read at the start, every 10 s and at the end; the socket asked for its status all the
  while; and an overspeed in the middle of the flood, timed as above, with how long the
  status took to show the new speed. A pty holds tens of kB the reader has not taken yet,
  seconds of old lines at a flood's rate, so these times are given twice: from the first fast
  line written, and from the daemon's read() of it (its /proc/PID/io rchar passing the byte
  count the bridge had written), which is the daemon's own part and the one with a target.
- kill -9 sample loss: a backward session at 1.5 km/h killed after 1-20 s (a third of the
  kills in the first 6 s), KILLS times on one history file; loss is the kill's wall time less
  the session's last stored sample (its start, for a session that kept none).

The reaction bench times the tick loop in this process; these figures are about what a fault
outside it (a disk, a lock, a line, a kill) does to the whole program, so the daemon is a
process of its own, started as systemd starts it. A stop is on time when the relay opens
within ON_TIME_BOUND_S of the first fast line (the 3 s mean over the limit, then the grace,
plus a line, a tick and the tick loop's 100 ms) and within the grace + 100 ms of the warning
beep; a fault is expected to change neither. The loss target is the documented promise,
device/history/store.py FLUSH_EVERY_S.

RETROTREAD_BENCH_QUICK=1 runs a shorter version (fewer rounds and kills, a 20 s flood).
"""

from __future__ import annotations

import contextlib
import os
import random
import resource
import select
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tty
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.table import Row
from device.ipc.client import DeviceClient, DeviceOffline

STORAGE_TITLE = "Faults: overspeed to relay with history writes failing (daemon subprocess)"
FLOOD_TITLE = "Faults: daemon RSS and the guard during a serial flood (daemon subprocess)"
KILL_TITLE = "Faults: kill -9 sample loss (daemon subprocess)"

QUICK = os.environ.get("RETROTREAD_BENCH_QUICK") == "1"
REPO = Path(__file__).resolve().parent.parent

ROUNDS = 2 if QUICK else 5
FLOOD_S = 20.0 if QUICK else 60.0
FLOOD_OVER_AT_S = FLOOD_S * 2 / 3  # the overspeed well into the flood, when a backlog shows
KILLS = 9 if QUICK else 30
EARLY_KILL_S = (1.0, 6.0)  # before the first flush of a session's samples
LATE_KILL_S = (6.0, 20.0)
KILL_SEED = 9

GRACE_S = 1.0  # the shortest grace the config accepts: more rounds in the time
PULSE_S = 0.3
CAP_KMH, TOLERANCE_KMH = 2.0, 0.3  # the built-in backward start cap and its margin
SLOW_KMH = 1.5  # a legal backward walk, under the start cap
FAST_KMH = 5.0
MEAN_S = 3.0  # the guard judges the 3 s mean
LINE_EVERY_S = 0.1  # a bridge's usual 10 Hz
# a 1.5 -> 5.0 km/h step takes the 3 s mean over the limit after this long; then the grace
EXPECTED_STOP_S = MEAN_S * (CAP_KMH + TOLERANCE_KMH - SLOW_KMH) / (FAST_KMH - SLOW_KMH) + GRACE_S
TICK_S = 0.1  # the daemon judges the mean at each 10 Hz tick
ON_TIME_S = 0.1  # the tick loop's own rule: act within 100 ms of the grace running out
# On time: the mean is over at the next line (LINE_EVERY_S) and seen so at the next tick, the
# grace runs, then the rule's 100 ms. From the warning beep: the grace and the 100 ms.
ON_TIME_BOUND_S = EXPECTED_STOP_S + LINE_EVERY_S + TICK_S + ON_TIME_S
GRACE_BOUND_S = GRACE_S + ON_TIME_S
WALK_S = 2.0  # walking in the session before the overspeed
LINES_PER_WRITE = 800  # a flood write: 4 kB, so a change of speed shows within ~5 ms
RSS_EVERY_S = 10.0
STATUS_EVERY_S = 0.2
STATUS_TARGET_S = 1.0
# The flood's own buffers settle within the first RSS_EVERY_S; memory still rising after that
# is a backlog without bound (issue 9 saw 402 MB and rising).
RSS_RISE_TARGET_MB = 5.0
LOSS_TARGET_S = 5.0  # device/history/store.py FLUSH_EVERY_S: the most history a power cut may take
WAIT_S = 10.0
STOP_WAIT_S = 15.0  # a relay later than this is no stop at all for the figure

BUZZER_PIN, RELAY_PIN = 19, 26
RELAY_OPEN_LEVEL = 0  # relay_active_high = false: the loop is cut with the pin low


def _config(serial_path: str) -> str:
    return f"""\
[sensor]
kind = "serial"
url = "{serial_path}"

[outputs]
buzzer_pin = {BUZZER_PIN}
relay_pin = {RELAY_PIN}
relay_active_high = false

[backward]
start_cap_kmh = {CAP_KMH}
tolerance_kmh = {TOLERANCE_KMH}
grace_s = {GRACE_S}

[enforce]
action = "relay"
mode = "pulse"
pulse_s = {PULSE_S}

[session]
# the belt stands after each stop; the session must not pause itself meanwhile
pause_after_stop_s = 600
"""


class Bridge(threading.Thread):
    """A serial speed bridge on a pty: one line every LINE_EVERY_S, or as many as the pty
    takes while `flooding`. The daemon opens the slave end by its path, as /dev/ttyUSB0.

    A pty has no baud rate, and the kernel holds some 64 kB written to it that the reader
    has not yet taken: in a flood that is seconds of old lines queued before the daemon, on
    this side of its read(). `first_line()` says when a new speed's first line went in."""

    def __init__(self) -> None:
        super().__init__(name="bench-bridge", daemon=True)
        master, slave = os.openpty()
        tty.setraw(slave)  # no echo, no line editing: bytes through as a USB serial port
        self.path = os.ttyname(slave)
        os.close(slave)
        os.set_blocking(master, False)  # never hang on a daemon that stopped reading
        self.master = master
        self.kmh = SLOW_KMH
        self.flooding = False
        self.flood_lines = 0
        self.written = 0  # bytes the pty took
        self.halt = threading.Event()
        self._new_speed = False
        self._first_line = threading.Event()
        self._first_line_at = (0.0, 0)

    def set_kmh(self, kmh: float) -> None:
        self._first_line.clear()
        self.kmh = kmh

    def first_line(self) -> tuple[float, int]:
        """When the first line at the speed last set went into the pty (monotonic), and how
        many bytes the pty had taken before it."""
        if not self._first_line.wait(WAIT_S):
            raise RuntimeError("the bridge could not send a line")
        return self._first_line_at

    def __enter__(self) -> Bridge:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.halt.set()
        self.join(WAIT_S)
        os.close(self.master)

    def run(self) -> None:
        next_line = time.monotonic()
        sent_kmh = None
        while not self.halt.is_set():
            kmh = self.kmh
            if kmh != sent_kmh:
                sent_kmh, self._new_speed = kmh, True
            line = f"{kmh:.2f}\n".encode()
            if self.flooding:
                if self._write(line * LINES_PER_WRITE):
                    self.flood_lines += LINES_PER_WRITE
                continue
            self._write(line)
            next_line = max(next_line + LINE_EVERY_S, time.monotonic() - LINE_EVERY_S)
            self.halt.wait(max(0.0, next_line - time.monotonic()))

    def _write(self, data: bytes) -> bool:
        """All of `data`, unless the pty stays full (no reader) or the bridge halts."""
        view = memoryview(data)
        while view and not self.halt.is_set():
            if not select.select([], [self.master], [], 0.1)[1]:
                continue
            try:
                taken = os.write(self.master, view)
            except BlockingIOError:
                continue
            except OSError:  # no slave open (the daemon is gone): the line is lost, as on a wire
                return False
            if self._new_speed and taken:
                self._first_line_at, self._new_speed = (time.monotonic(), self.written), False
                self._first_line.set()
            self.written += taken
            view = view[taken:]
        return not view


class Device:
    """One `retrotread device` subprocess on reporting mock pins. Its log goes down a pipe
    the bench drains (a log file would fall under the daemon's RLIMIT_FSIZE too)."""

    def __init__(self, scratch: Path, serial_path: str, db_path: Path):
        self.db_path = db_path
        socket_path = scratch / "d.sock"
        config_path = scratch / "config.toml"
        config_path.write_text(_config(serial_path))
        report_read, report_write = os.pipe()
        log_read, log_write = os.pipe()
        argv = [sys.executable, "-m", "benchmarks.fault_device", str(report_write), "device"]
        argv += ["--config", str(config_path), "--socket", str(socket_path)]
        argv += ["--db", str(db_path)]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        for systemd_var in ("NOTIFY_SOCKET", "RUNTIME_DIRECTORY", "JOURNAL_STREAM"):
            env.pop(systemd_var, None)
        self.process = subprocess.Popen(
            argv,
            cwd=REPO,
            env=env,
            pass_fds=(report_write,),
            stdin=subprocess.DEVNULL,
            stdout=log_write,
            stderr=log_write,
        )
        os.close(report_write)
        os.close(log_write)
        self.log: list[str] = []
        self.pins: list[tuple[str, int, float]] = []  # (GPIOn, level, monotonic t)
        self._pins_changed = threading.Condition()
        threading.Thread(target=self._read_pins, args=(report_read,), daemon=True).start()
        threading.Thread(target=self._read_log, args=(log_read,), daemon=True).start()
        self.client = DeviceClient(socket_path, timeout=2.0)

    def _read_pins(self, fd: int) -> None:
        with os.fdopen(fd, "rb") as reports:
            for line in reports:
                name, level, t = line.split()
                with self._pins_changed:
                    self.pins.append((name.decode(), int(level), float(t)))
                    self._pins_changed.notify_all()

    def _read_log(self, fd: int) -> None:
        with os.fdopen(fd, "rb") as log:
            for line in log:
                self.log.append(line.decode(errors="replace").rstrip())

    def __enter__(self) -> Device:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> int:
        """SIGTERM, as systemd stops it; SIGKILL if it does not go. Returns the exit code."""
        if self.alive:
            self.process.terminate()
        try:
            return self.process.wait(WAIT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(WAIT_S)

    def why(self) -> str:
        return f"exit code {self.process.poll()}; last log lines: " + " | ".join(self.log[-5:])

    def status(self) -> dict[str, Any]:
        return self.client.request({"cmd": "status"})

    def wait_ready(self) -> None:
        """Until the socket answers and the bridge's speed has been read."""

        def reads_a_speed() -> bool:
            if not self.alive:
                raise RuntimeError(f"the daemon exited at start-up: {self.why()}")
            try:
                return self.status().get("speed_kmh") is not None
            except DeviceOffline:
                return False

        _wait("the daemon to read a speed", reads_a_speed)

    def start_session(self) -> None:
        reply = self.client.request({"cmd": "start"})
        if not reply.get("ok"):
            raise RuntimeError(f"the daemon refused the start: {reply}")

    def pin_change(self, pin: int, level: int, *, after: float, within_s: float) -> float | None:
        """When BCM pin `pin` first went to `level` after monotonic `after`, waiting for it
        up to `within_s` from now; None if it did not."""
        until = time.monotonic() + within_s
        gpio = f"GPIO{pin}"
        with self._pins_changed:
            while True:
                for name, got, t in self.pins:
                    if name == gpio and got == level and t > after:
                        return t
                left = until - time.monotonic()
                if left <= 0:
                    return None
                self._pins_changed.wait(left)

    def rss_mb(self) -> float:
        with open(f"/proc/{self.process.pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        raise RuntimeError("no VmRSS line")

    def read_bytes(self) -> int:
        """Bytes the daemon has taken with read() (its pty's, and a little of its history
        file's; socket traffic is not counted): /proc/PID/io rchar."""
        with open(f"/proc/{self.process.pid}/io") as io:
            for line in io:
                if line.startswith("rchar:"):
                    return int(line.split()[1])
        raise RuntimeError("no rchar line")

    def cpu_s(self) -> float:
        """User + system CPU seconds the daemon has used (all its threads)."""
        with open(f"/proc/{self.process.pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _wait(what: str, condition: Callable[[], Any]) -> Any:
    until = time.monotonic() + WAIT_S
    while time.monotonic() < until:
        found = condition()
        if found:
            return found
        time.sleep(0.02)
    raise RuntimeError(f"waited {WAIT_S} s for {what}")


@contextlib.contextmanager
def _scratch() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(dir="/tmp", prefix="rt-fault-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


# -- 1. overspeed to relay with history writes failing ----------------------------------------


@dataclass(frozen=True)
class Stop:
    """One overspeed: seconds from the first fast line to the warning beep and to the relay
    (None: not within STOP_WAIT_S), whether the daemon still ran, and what its status said."""

    warned_s: float | None
    opened_s: float | None
    alive: bool
    history_error: str | None

    @property
    def warn_to_relay_s(self) -> float | None:
        if self.warned_s is None or self.opened_s is None:
            return None
        return self.opened_s - self.warned_s


def _overspeed(device: Device, bridge: Bridge) -> tuple[float | None, float | None]:
    """Belt to FAST_KMH; when the relay opens the belt stops. Returns the seconds to the
    warning beep and to the relay opening (None where it did not happen in time)."""
    bridge.set_kmh(FAST_KMH)
    over_at, _ = bridge.first_line()  # at 10 lines a second the daemon reads it at once
    opened = device.pin_change(RELAY_PIN, RELAY_OPEN_LEVEL, after=over_at, within_s=STOP_WAIT_S)
    bridge.set_kmh(0.0)  # the safety key is pulled (or the bench gave up): the belt stands
    warned = device.pin_change(BUZZER_PIN, 1, after=over_at, within_s=0.0)
    return (
        None if warned is None else warned - over_at,
        None if opened is None else opened - over_at,
    )


def _write_lock(db_path: Path) -> sqlite3.Connection:
    """A second connection holding the history file's write lock until it is closed."""
    holder = sqlite3.connect(db_path, timeout=WAIT_S, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    return holder


def _stop_round(fault: str) -> Stop:
    with _scratch() as scratch, Bridge() as bridge:
        device = Device(scratch, bridge.path, scratch / "history.db")
        holder: sqlite3.Connection | None = None
        try:
            device.wait_ready()
            if fault == "locked":
                holder = _write_lock(device.db_path)
            device.start_session()
            time.sleep(WALK_S / 2)
            if fault == "unwritable":
                # every write to a regular file now fails with EFBIG (Python ignores SIGXFSZ)
                resource.prlimit(device.process.pid, resource.RLIMIT_FSIZE, (0, 0))
            time.sleep(WALK_S / 2)
            warned, opened = _overspeed(device, bridge)
            time.sleep(PULSE_S + 0.2)  # the stop's own history write is tried meanwhile
            history_error = None
            with contextlib.suppress(DeviceOffline):
                history_error = device.status().get("history_error")
            return Stop(warned, opened, device.alive, history_error)
        finally:
            device.stop()
            if holder is not None:
                holder.close()


def _spread(values: list[float | None]) -> str:
    """median / max in seconds, or how many never happened."""
    got = [v for v in values if v is not None]
    missing = len(values) - len(got)
    if not got:
        return f"none of {len(values)}"
    text = f"{statistics.median(got):.2f} / {max(got):.2f} s"
    return text + (f", {missing} never" if missing else "")


def storage_rows() -> list[Row]:
    faults = {
        "healthy": "healthy history",
        "locked": "a second connection holds the write lock",
        "unwritable": "every file write refused mid-run (RLIMIT_FSIZE 0)",
    }
    stops = {fault: [_stop_round(fault) for _ in range(ROUNDS)] for fault in faults}
    out = [
        Row(
            f"Overspeed, {ROUNDS} fresh daemons per case: {SLOW_KMH} -> {FAST_KMH} km/h, "
            f"limit {CAP_KMH} + {TOLERANCE_KMH} km/h, grace {GRACE_S:.0f} s"
        ),
        Row(
            "  expected: the 3 s mean over the limit, then the grace",
            f"{EXPECTED_STOP_S:.2f} s",
            f"(+ a line, a tick, {ON_TIME_S * 1000:.0f} ms: {ON_TIME_BOUND_S:.2f} s)",
        ),
    ]
    for fault, label in faults.items():
        opened = [s.opened_s for s in stops[fault]]
        on_time = all(v is not None and v <= ON_TIME_BOUND_S for v in opened)
        out.append(
            Row(
                f"  belt over -> relay opens (median / max): {label}",
                _spread(opened),
                f"max <= {ON_TIME_BOUND_S:.2f} s",
                on_time,
            )
        )
    for fault, label in faults.items():
        graces = [s.warn_to_relay_s for s in stops[fault]]
        out.append(
            Row(
                f"  warning beep -> relay opens (median / max): {label}",
                _spread(graces),
                f"max <= {GRACE_BOUND_S:.2f} s",
                all(v is not None and v <= GRACE_BOUND_S for v in graces),
            )
        )
    for fault, label in faults.items():
        if fault == "healthy":
            continue
        alive = sum(s.alive for s in stops[fault])
        said = sum(bool(s.history_error) for s in stops[fault])
        out += [
            Row(
                f"  daemon running after the stop: {label}",
                f"{alive} of {ROUNDS}",
                "all",
                alive == ROUNDS,
            ),
            Row(f"  status says history_error: {label}", f"{said} of {ROUNDS}"),
        ]
    return out


# -- 2. RSS and the guard during a serial flood -----------------------------------------------


@dataclass
class Flood:
    """What a flood did. Times of the overspeed in seconds from its first line going into
    the pty (None: not within STOP_WAIT_S); `read_s` is when the daemon read that line."""

    lines_per_s: float
    cpu_share: float  # of one core, over the flood
    load: float  # the machine's 1 min load average at the end: others' work slows the daemon
    rss_mb: list[tuple[float, float]]  # (seconds into the flood, MB)
    status_s: list[float]  # each status request's reply time
    status_failed: int
    read_s: float | None
    shown_s: float | None  # the fast speed first in a status
    warned_s: float | None
    opened_s: float | None
    alive: bool

    def since_read(self, value: float | None) -> float | None:
        return None if value is None or self.read_s is None else value - self.read_s


def _read_through(device: Device, bytes_at: tuple[int, int], first_byte: int) -> float | None:
    """When the daemon's read() took byte `first_byte` of what the bridge wrote, from the
    daemon's rchar and the bridge's count at one moment when the daemon had read all."""
    rchar0, written0 = bytes_at
    until = time.monotonic() + STOP_WAIT_S
    while time.monotonic() < until and device.alive:
        if device.read_bytes() - rchar0 > first_byte - written0:
            return time.monotonic()
        time.sleep(0.001)
    return None


def _flood() -> Flood:
    with _scratch() as scratch, Bridge() as bridge:
        device = Device(scratch, bridge.path, scratch / "history.db")
        try:
            device.wait_ready()
            device.start_session()
            time.sleep(WALK_S)  # at 10 lines a second the daemon has read every line
            bytes_at = (device.read_bytes(), bridge.written)
            rss = [(0.0, device.rss_mb())]
            began, cpu_began = time.monotonic(), device.cpu_s()
            bridge.flooding = True
            status_s: list[float] = []
            failed = 0
            over_at: float | None = None
            read: list[float | None] = []
            shown = opened = warned = None
            next_rss = began + RSS_EVERY_S
            while (now := time.monotonic()) < began + FLOOD_S and device.alive:
                if now >= next_rss:
                    rss.append((now - began, device.rss_mb()))
                    next_rss += RSS_EVERY_S
                if over_at is None and now >= began + FLOOD_OVER_AT_S:
                    bridge.set_kmh(FAST_KMH)
                    over_at, first_byte = bridge.first_line()
                    threading.Thread(
                        target=lambda last: read.append(_read_through(device, bytes_at, last)),
                        args=(first_byte,),
                        daemon=True,
                    ).start()
                try:
                    status = device.status()
                except DeviceOffline:
                    failed += 1
                    status = {}
                status_s.append(time.monotonic() - now)
                fast = (status.get("speed_kmh") or 0.0) >= FAST_KMH - 0.01
                if over_at is not None and shown is None and fast:
                    shown = time.monotonic() - over_at
                if over_at is not None and opened is None:
                    at = device.pin_change(RELAY_PIN, RELAY_OPEN_LEVEL, after=over_at, within_s=0)
                    if at is not None:
                        bridge.set_kmh(0.0)  # the key is pulled: the belt stands, lines go on
                        opened = at - over_at
                        beep = device.pin_change(BUZZER_PIN, 1, after=over_at, within_s=0)
                        warned = None if beep is None else beep - over_at
                time.sleep(max(0.0, now + STATUS_EVERY_S - time.monotonic()))
            took = time.monotonic() - began
            bridge.flooding = False
            alive = device.alive
            cpu = 0.0
            if alive:
                rss.append((took, device.rss_mb()))
                cpu = (device.cpu_s() - cpu_began) / took
            read_at = read[0] if read else None
            return Flood(
                lines_per_s=bridge.flood_lines / took,
                cpu_share=cpu,
                load=os.getloadavg()[0],
                rss_mb=rss,
                status_s=status_s,
                status_failed=failed,
                read_s=None if read_at is None or over_at is None else read_at - over_at,
                shown_s=shown,
                warned_s=warned,
                opened_s=opened,
                alive=alive,
            )
        finally:
            device.stop()


def _seconds(value: float | None) -> str:
    return "never" if value is None else f"{value:.2f} s"


def flood_rows() -> list[Row]:
    flood = _flood()
    mbs = [mb for _, mb in flood.rss_mb]
    start, top, end = mbs[0], max(mbs), mbs[-1]
    rise = top - mbs[min(1, len(mbs) - 1)]
    slowest = max(flood.status_s, default=float("nan"))
    shown, opened = flood.since_read(flood.shown_s), flood.since_read(flood.opened_s)
    grace = None
    if flood.opened_s is not None and flood.warned_s is not None:
        grace = flood.opened_s - flood.warned_s
    return [
        Row(
            f"Serial flood, {FLOOD_S:.0f} s of valid lines as fast as the pty takes them, "
            f"{SLOW_KMH} km/h, {FAST_KMH} km/h from {FLOOD_OVER_AT_S:.0f} s"
        ),
        Row("  lines the daemon took", f"{flood.lines_per_s / 1000:.0f}k lines/s"),
        Row("  daemon CPU during the flood", f"{flood.cpu_share * 100:.0f} % of a core"),
        Row(
            f"  machine load average at the end, on {os.cpu_count()} cores",
            f"{flood.load:.1f}",
        ),
        Row("  daemon RSS start / max / end", f"{start:.0f} / {top:.0f} / {end:.0f} MB"),
        Row(
            "  RSS at " + ", ".join(f"{t:.0f}" for t, _ in flood.rss_mb) + " s",
            ", ".join(f"{mb:.0f}" for mb in mbs) + " MB",
        ),
        Row(
            f"  RSS rise after the first {RSS_EVERY_S:.0f} s (max - RSS then)",
            f"{rise:.1f} MB",
            f"<= {RSS_RISE_TARGET_MB:.0f} MB",
            rise <= RSS_RISE_TARGET_MB,
        ),
        Row(
            f"  status asked every {STATUS_EVERY_S} s: slowest answer of {len(flood.status_s)}",
            f"{slowest * 1000:.0f} ms",
            f"< {STATUS_TARGET_S * 1000:.0f} ms",
            slowest < STATUS_TARGET_S and not flood.status_failed,
        ),
        Row("  status requests unanswered", f"{flood.status_failed}"),
        Row("The overspeed mid-flood, from its first line written to the pty"),
        Row("  the pty's kernel buffer: written -> the daemon reads it", _seconds(flood.read_s)),
        Row("  written -> the new speed in the status", _seconds(flood.shown_s)),
        Row("  written -> relay opens", _seconds(flood.opened_s)),
        Row("The overspeed mid-flood, the daemon's part: from its read() of that line"),
        Row(
            "  read -> the new speed in the status",
            _seconds(shown),
            f"< {STATUS_TARGET_S:.0f} s",
            shown is not None and shown < STATUS_TARGET_S,
        ),
        Row(
            "  read -> relay opens",
            _seconds(opened),
            f"<= {ON_TIME_BOUND_S:.2f} s",
            opened is not None and opened <= ON_TIME_BOUND_S,
        ),
        Row(
            "  warning beep -> relay opens",
            _seconds(grace),
            f"<= {GRACE_BOUND_S:.2f} s",
            grace is not None and grace <= GRACE_BOUND_S,
        ),
        Row(
            "  daemon running at the end of the flood",
            "yes" if flood.alive else "no",
            "yes",
            flood.alive,
        ),
    ]


# -- 3. kill -9 sample loss -----------------------------------------------------------------


@dataclass(frozen=True)
class Kill:
    after_s: float  # the kill, seconds after the session began
    loss_s: float
    kept_samples: bool
    kept_session: bool = True  # False: not even the session's row was in the history


def _kill_plan() -> list[float]:
    """Seconds from the session's start to each kill: a third early, shuffled, seeded."""
    draw = random.Random(KILL_SEED)
    early = KILLS // 3
    plan = [draw.uniform(*EARLY_KILL_S) for _ in range(early)]
    plan += [draw.uniform(*LATE_KILL_S) for _ in range(KILLS - early)]
    draw.shuffle(plan)
    return plan


def _kill(scratch: Path, db_path: Path, after_s: float) -> Kill:
    with Bridge() as bridge:
        device = Device(scratch, bridge.path, db_path)
        try:
            device.wait_ready()
            asked_at = time.time()
            device.start_session()
            began = time.monotonic()
            time.sleep(max(0.0, began + after_s - time.monotonic()))
            killed_at = time.time()
            device.process.send_signal(signal.SIGKILL)
            device.process.wait(WAIT_S)
        finally:
            device.stop()
    history = sqlite3.connect(f"{db_path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        # this run's session: none of the earlier kills' began after the start was asked for
        found = history.execute(
            "SELECT id, started_at FROM sessions WHERE started_at >= ? ORDER BY id DESC LIMIT 1",
            (asked_at - 0.2,),
        ).fetchone()
        if found is None:
            return Kill(after_s, killed_at - asked_at, kept_samples=False, kept_session=False)
        session_id, started_at = found
        (last_t,) = history.execute(
            "SELECT MAX(t) FROM samples WHERE session_id = ?", (session_id,)
        ).fetchone()
    finally:
        history.close()
    kept = last_t is not None
    return Kill(after_s, killed_at - (last_t if kept else started_at), kept)


def kill_rows() -> list[Row]:
    with _scratch() as scratch:
        db_path = scratch / "history.db"  # one file: each start recovers the last kill's
        kills = [_kill(scratch, db_path, after_s) for after_s in _kill_plan()]
    losses = [k.loss_s for k in kills]
    empty = [k for k in kills if not k.kept_samples]
    early = [k for k in kills if k.after_s < EARLY_KILL_S[1]]
    worst = max(kills, key=lambda k: k.loss_s)
    return [
        Row(
            f"kill -9, {KILLS} sessions at {SLOW_KMH} km/h backward, {len(early)} killed in "
            f"their first {EARLY_KILL_S[1]:.0f} s, the rest by {LATE_KILL_S[1]:.0f} s"
        ),
        Row(
            "  kill time - last stored sample (or the start), worst",
            f"{worst.loss_s:.2f} s",
            f"<= {LOSS_TARGET_S:.0f} s (FLUSH_EVERY_S)",
            worst.loss_s <= LOSS_TARGET_S,
        ),
        Row(
            "  kill time - last stored sample (or the start), mean",
            f"{statistics.mean(losses):.2f} s",
        ),
        Row(
            "  sessions that kept no sample",
            f"{len(empty)} of {KILLS}",
            f"(killed {min((k.after_s for k in empty), default=0):.1f}-"
            f"{max((k.after_s for k in empty), default=0):.1f} s in)"
            if empty
            else "",
        ),
        Row(
            "  sessions not in the history at all",
            f"{sum(not k.kept_session for k in kills)} of {KILLS}",
        ),
        Row(
            "  worst loss among sessions that kept samples",
            _seconds(max((k.loss_s for k in kills if k.kept_samples), default=None)),
        ),
        Row("  the worst loss: killed this long into its session", f"{worst.after_s:.1f} s"),
    ]
