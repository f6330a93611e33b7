"""The fleet on a real Mosquitto: a gym of 50 treadmills, the front desk's `retrotread fleet`,
a month's backlog of sessions after a broker outage, and the daemon's tick with the broker up
and gone.

The broker is Debian's mosquitto (tests/support/mosquitto.py) with persistence on, as a gym's
is: the fleet's subscription and the QoS 1 sessions queued for it outlive a restart. The
fleet is `retrotread fleet` as a process of its own, as systemd runs it, so its RSS and CPU
are its own (receiver, store and waitress). The treadmills are 50 real Publishers in this
process, fed at 10 Hz by one thread standing in for their tick loops: a real Controller's
status each, with a belt speed that no earlier tick had, so a speed seen on /api/fleet names
the publish_status() call that sent it. The publisher's throttle lets one a second through
per treadmill (a change of state or mode would go at once): that is the fleet's load.

- Status latency: publish_status() to the first /api/fleet answer showing that speed, read by
  the front desk's page polling every DESK_POLL_S (so up to that much of it is the polling),
  then again with 20 viewers polling /api/fleet through waitress, each every VIEWER_POLL_S.
- Drain: BACKLOG ended 10-minute sessions (600 samples at 1 Hz, ~27 kB each) in a history
  file, the broker killed, a Publisher with that Outbox started, the broker back after
  DOWN_S: seconds until the fleet's database holds them all, the status still flowing.
- The real Daemon on mock pins with a walker ([fleet] broker set): the longest gap between
  ticks with the broker up, then killed (its port closed: every reconnect is refused).

RETROTREAD_BENCH_QUICK=1 runs shorter windows and a 200-session backlog.
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import shutil
import statistics
import tempfile
import threading
import time
from pathlib import Path

from gpiozero.pins.mock import MockFactory
from support.waiting import wait_until

from benchmarks.fleet_gym import SITE, Belts, Gym, Seen, Viewer, publisher, treadmill_status
from benchmarks.reaction_bench import GAP_TARGET_MS, _cadence
from benchmarks.table import Row
from device.config.load import config_from_mapping
from device.core.modes import EndReason, Mode, SessionState
from device.core.session import Totals
from device.core.tick import Sample, TickResult
from device.daemon import Daemon
from device.fleet.publisher import RECONNECT_MAX_S
from device.history.outbox import MAX_UNSENT, Outbox
from device.history.store import Store
from device.sim.demo import Walker

TITLE = "Fleet: 50 treadmills, `retrotread fleet`, a session backlog, the tick (real Mosquitto)"
QUICK = os.environ.get("RETROTREAD_BENCH_QUICK") == "1"

MACHINES = 50
VIEWERS = 20
LOAD_S = 8.0 if QUICK else 30.0  # 50 treadmills and the front desk's page: CPU, RSS, latency
CROWD_S = 6.0 if QUICK else 15.0  # the same with 20 viewers polling /api/fleet
DESK_POLL_S = 0.05
VIEWER_POLL_S = 0.25  # a viewer's page at the device dashboard's 4 Hz
BACKLOG = 200 if QUICK else MAX_UNSENT  # the outbox's cap: a month of a busy treadmill
SESSION_S = 600
DOWN_S = 5.0
DAEMON_PHASE_S = 8.0 if QUICK else 30.0

LATENCY_TARGET_MS = 500.0
API_TARGET_MS = 100.0
RSS_TARGET_MB = 150.0
# From the broker's return until the fleet holds the whole backlog. The treadmill's reconnect
# backoff alone may take up to RECONNECT_MAX_S (60 s) after a long outage; the other 60 s
# are the transfer, >= 17 sessions/s: the front desk has a month's history within two
# minutes of the broker coming back.
DRAIN_TARGET_S = 2.0 * RECONNECT_MAX_S
SAME_GAP_MS = 10.0  # the broker's state changes the tick's longest gap by no more than this


def _below(label: str, figure: str, value: float, bound: float, unit: str) -> Row:
    return Row(label, figure, f"< {bound:.0f} {unit}", value < bound)


def _ms(values: list[float]) -> tuple[float, float]:
    """(p50, p95) of seconds, in ms."""
    ordered = sorted(values)
    nearest_rank = math.ceil(len(ordered) * 0.95) - 1  # of a handful, the worst but none
    return statistics.median(ordered) * 1000, ordered[nearest_rank] * 1000


def _load_rows(gym: Gym) -> list[Row]:
    names = [f"treadmill-{i:02d}" for i in range(1, MACHINES + 1)]
    publishers = [publisher(gym, name).start() for name in names]
    belts = Belts(publishers, [treadmill_status(name) for name in names])
    seen: Seen = {}
    desk = Viewer(gym, DESK_POLL_S, seen)
    try:
        wait_until(
            lambda: all(p.health().connected for p in publishers),
            within_s=30,
            what="50 treadmills to connect",
        )
        belts.start()
        desk.start()
        wait_until(
            lambda: len({m for m, _ in seen}) == MACHINES,
            within_s=30,
            what="every treadmill on the fleet page",
        )
        cpu_before, _, _ = gym.usage()
        start = time.monotonic()
        time.sleep(LOAD_S)
        quiet_end = time.monotonic()
        cpu_after, rss_mb, peak_mb = gym.usage()
        viewers = [Viewer(gym, VIEWER_POLL_S, seen) for _ in range(VIEWERS)]
        for viewer in viewers:
            viewer.start()
        time.sleep(CROWD_S)
        crowd_end = time.monotonic()
        time.sleep(1.0)  # the statuses of the window's last second have time to show
        for viewer in viewers:
            viewer.stop()
    finally:
        desk.stop()
        belts.halt.set()
        for link in publishers:
            link.close()
    quiet50, quiet95 = _ms(belts.latencies(seen, start, quiet_end))
    crowd50, crowd95 = _ms(belts.latencies(seen, quiet_end, crowd_end))
    api50, api95 = _ms([took for viewer in viewers for took in viewer.took])
    asked = sum(len(viewer.took) for viewer in viewers)
    cpu_s = cpu_after - cpu_before
    return [
        Row(f"{MACHINES} treadmills, one status a second each, the front desk polling"),
        _below(
            f"  status latency p95 (publish -> /api/fleet), {LOAD_S:.0f} s",
            f"{quiet95:.0f} ms",
            quiet95,
            LATENCY_TARGET_MS,
            "ms",
        ),
        Row("  status latency p50", f"{quiet50:.0f} ms"),
        _below(
            f"  fleet process RSS after {LOAD_S:.0f} s",
            f"{rss_mb:.0f} MB",
            rss_mb,
            RSS_TARGET_MB,
            "MB",
        ),
        Row("  fleet process peak RSS", f"{peak_mb:.0f} MB"),
        Row(f"  fleet process CPU over {LOAD_S:.0f} s", f"{cpu_s:.1f} s"),
        Row("  fleet process CPU, of one core", f"{cpu_s / LOAD_S * 100:.0f} %"),
        Row(f"{VIEWERS} viewers polling /api/fleet every {VIEWER_POLL_S} s (waitress)"),
        _below(
            f"  /api/fleet p95 over {asked} requests", f"{api95:.1f} ms", api95, API_TARGET_MS, "ms"
        ),
        Row("  /api/fleet p50", f"{api50:.1f} ms"),
        _below(
            "  status latency p95 meanwhile", f"{crowd95:.0f} ms", crowd95, LATENCY_TARGET_MS, "ms"
        ),
        Row("  status latency p50 meanwhile", f"{crowd50:.0f} ms"),
    ]


def _backlog(path: Path, sessions: int) -> None:
    """`sessions` ended 10-minute backward walks in a history file, as the daemon's writer
    leaves them: each with its outbox row, unsent."""
    store = Store(path)
    day = 1_760_000_000.0
    try:
        for n in range(sessions):
            start = day + n * 1800.0
            session_id = store.open_session(start, mode=Mode.BACKWARD, machine_id="treadmill-51")
            for second in range(SESSION_S):
                speed = 1.8 + 0.05 * (second % 9)  # a walker's stride ripples the belt
                store.add_sample(
                    session_id,
                    Sample(start + second, speed, Mode.BACKWARD, SessionState.RUNNING, 2.0),
                )
            totals = Totals(distance_m=SESSION_S * 2.0 / 3.6, backward_s=SESSION_S, kcal=25.0)
            store.end_session(session_id, start + SESSION_S, EndReason.BUTTON, totals)
    finally:
        store.close()


def _drain_rows(gym: Gym) -> list[Row]:
    history = gym.work / "treadmill-51.db"
    _backlog(history, BACKLOG)
    size_mb = history.stat().st_size / 1e6
    gym.broker.stop()  # killed, as a power cut in the gym's rack does
    outbox = Outbox(history)
    link = publisher(gym, "treadmill-51", outbox).start()
    belts = Belts([link], [treadmill_status("treadmill-51")])
    seen: Seen = {}
    desk = Viewer(gym, DESK_POLL_S, seen)
    belts.start()
    desk.start()
    try:
        time.sleep(DOWN_S)
        gym.broker.start()
        back = time.monotonic()
        linked = wait_until(
            lambda: link.health().connected and time.monotonic(),
            within_s=2 * RECONNECT_MAX_S,
            what="the treadmill to reconnect",
        )
        done = wait_until(
            lambda: gym.sessions_stored() >= BACKLOG and time.monotonic(),
            within_s=4 * DRAIN_TARGET_S,
            what=f"the fleet to hold all {BACKLOG} sessions",
            showing=lambda: f"{gym.sessions_stored()} stored, {link.health()}",
        )
        time.sleep(1.0)
    finally:
        desk.stop()
        belts.halt.set()
        link.close()
        outbox.close()
    total_s, drain_s = done - back, done - linked
    during = belts.latencies(seen, linked, done)
    during50, during95 = _ms(during)
    return [
        Row(
            f"a backlog of {BACKLOG} 10-minute sessions ({size_mb:.0f} MB), broker down "
            f"{DOWN_S:.0f} s"
        ),
        _below(
            "  broker back -> the fleet holds them all",
            f"{total_s:.1f} s",
            total_s,
            DRAIN_TARGET_S,
            "s",
        ),
        Row("  broker back -> treadmill reconnected (backoff)", f"{linked - back:.1f} s"),
        Row("  drain rate, reconnected -> all stored", f"{BACKLOG / drain_s:.0f} sessions/s"),
        _below(
            "  status latency p95 during the drain",
            f"{during95:.0f} ms",
            during95,
            LATENCY_TARGET_MS,
            "ms",
        ),
        Row("  status latency p50 during the drain", f"{during50:.0f} ms"),
        # one a second is what the throttle sends; fewer: statuses waited behind sessions
        Row("  statuses shown during the drain", f"{len(during)} in {drain_s:.0f} s"),
    ]


def _daemon_rows(gym: Gym) -> list[Row]:
    scratch = Path(tempfile.mkdtemp(dir="/tmp", prefix="rt-fleet-tick-"))
    config = config_from_mapping(
        {
            "machine": {"id": "treadmill-52", "name": "Treadmill 52"},
            "storage": {"db": str(scratch / "history.db")},
            "fleet": {"broker": gym.broker.url, "site": SITE},
        },
        source="fleet bench",
    )
    factory = MockFactory()
    daemon = Daemon(
        config, socket_path=str(scratch / "d.sock"), db_path=config.storage.db, pin_factory=factory
    )
    stop = threading.Event()
    device = threading.Thread(target=daemon.run, name="bench-daemon", daemon=True)
    starts: list[float] = []

    def linked() -> bool:
        fleet = (daemon.status() or {}).get("health", {}).get("fleet") or {}
        return bool(fleet.get("connected"))

    try:
        device.start()
        if not daemon.ready.wait(10):
            raise RuntimeError("the daemon did not become ready")
        controller = daemon.controller
        assert controller is not None
        tick = controller.tick

        def recorded_tick(t: float) -> TickResult:
            starts.append(t)
            return tick(t)

        controller.tick = recorded_tick  # type: ignore[method-assign]
        Walker(config, factory, stop).start()
        wait_until(linked, within_s=30, what="the daemon's publisher to connect")
        mark = len(starts)
        time.sleep(DAEMON_PHASE_S)
        up = starts[mark:]
        gym.broker.stop()
        wait_until(lambda: not linked(), within_s=10, what="the daemon to notice the broker gone")
        mark = len(starts)
        time.sleep(DAEMON_PHASE_S)
        down = starts[mark:]
        if linked():
            raise RuntimeError("the daemon's publisher is linked to a broker that was killed")
    finally:
        stop.set()
        daemon.stop()
        device.join(10)
        factory.reset()
        factory.close()
        shutil.rmtree(scratch, ignore_errors=True)
    out = [Row(f"the real daemon (mock pins, a walker), {DAEMON_PHASE_S:.0f} s each way")]
    p95s = []
    for name, starts in (("broker up", up), ("broker down, port refusing", down)):
        per_s, longest = _cadence(starts)
        gaps = sorted(b - a for a, b in itertools.pairwise(starts))
        p95s.append(gaps[int(len(gaps) * 0.95) - 1] * 1000)
        out += [
            _below(
                f"  {name}: longest gap between ticks",
                f"{longest:.0f} ms",
                longest,
                GAP_TARGET_MS,
                "ms",
            ),
            Row(f"  {name}: p95 gap between ticks", f"{p95s[-1]:.0f} ms"),
            Row(f"  {name}: cadence", f"{per_s:.1f} ticks/s"),
        ]
    apart = abs(p95s[1] - p95s[0])
    # the p95 rather than the longest: one late tick in 300, from whatever else the machine
    # runs, moves the longest gap by tens of ms between two runs in the same state
    return [
        *out,
        _below("  p95 gap, down vs up", f"{apart:.1f} ms apart", apart, SAME_GAP_MS, "ms"),
    ]


def rows() -> list[Row]:
    work = Path(tempfile.mkdtemp(dir="/tmp", prefix="rt-fleet-bench-"))
    # the publishers' one-sentence warnings about the broker this bench kills on purpose
    # (paho's logger is a child of this one) would bury the table
    quiet = logging.getLogger("retrotread.fleet")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)
    try:
        with Gym(work) as gym:
            saved = gym.broker.home / "mosquitto.db"  # the fleet's subscription, on disk
            wait_until(saved.exists, within_s=10, what="the broker to save its state")
            load = _load_rows(gym)
            drain = _drain_rows(gym)
            tick = _daemon_rows(gym)
    finally:
        quiet.setLevel(level)
        shutil.rmtree(work, ignore_errors=True)
    return [*load, *drain, *tick]
