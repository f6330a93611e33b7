"""The history writer's thread and the tick thread's inbox: neither lets the tick loop wait,
and neither lets go of anything without counting it."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from device.config.model import Config
from device.core.events import Event, EventKind
from device.core.modes import Mode, SessionState
from device.core.tick import Sample, TickResult
from device.history.recorder import Recorder
from device.history.store import Store
from device.history.writer import HistoryWriter
from device.inputs import READINGS_LIMIT, Input, InputQueue

T0 = 1000.0
WALL0 = 1_760_000_000.0


def started(t: float) -> TickResult:
    return TickResult(events=[Event(t, EventKind.SESSION_STARTED, {"mode": Mode.BACKWARD})])


def sample(t: float) -> TickResult:
    return TickResult(sample=Sample(t, 1.5, Mode.BACKWARD, SessionState.RUNNING, 2.0))


class StuckDisk:
    """Every commit waits until the test lets it go: an fsync on a dying SD card."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.release = threading.Event()
        real = Store._commit

        def commit(store: Store) -> None:
            self.release.wait(10)
            real(store)

        monkeypatch.setattr(Store, "_commit", commit)


def test_a_stuck_disk_never_blocks_submit_and_a_full_queue_is_counted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store(tmp_path / "history.db")
    disk = StuckDisk(monkeypatch)
    writer = HistoryWriter(Recorder(store, Config(), wall0=WALL0, mono0=T0), queue_limit=10)
    writer.start()
    writer.submit(started(T0))  # the writer takes it, and hangs in its commit
    for second in range(1, 31):
        writer.submit(sample(T0 + second))  # returns at once, whatever the disk does
    health = writer.health()
    assert health.lost_rows >= 30 - 10 - 1  # the queue holds 10, the writer one
    assert health.error == "the history writer fell behind the ticks"
    disk.release.set()
    writer.close()
    store.close()
    kept = Store(tmp_path / "history.db", read_only=True)
    (session,) = kept.sessions()
    assert 1 <= len(kept.samples(session.id)) == 30 - (health.lost_rows)
    kept.close()


def test_the_writer_writes_in_order_and_closes_after_the_last_tick(tmp_path: Path) -> None:
    store = Store(tmp_path / "history.db")
    writer = HistoryWriter(Recorder(store, Config(), wall0=WALL0, mono0=T0))
    writer.start()
    writer.submit(started(T0))
    for second in range(1, 4):
        writer.submit(sample(T0 + second))
    writer.submit(TickResult())  # nothing to record: not even queued
    writer.close()
    store.close()
    with Store(tmp_path / "history.db", read_only=True) as history:
        (session,) = history.sessions()
        assert [s.t - WALL0 for s in history.samples(session.id)] == [1.0, 2.0, 3.0]
    assert writer.health().ok and writer.health().lost_rows == 0


def test_a_flood_of_readings_keeps_the_newest_and_every_press() -> None:
    inbox = InputQueue()
    inbox.put(Input("press", 0.0, "start"))
    for i in range(READINGS_LIMIT + 500):
        inbox.put(Input("speed", 1.0 + i, 2.0))
    inbox.put(Input("release", 9e9, "start"))
    drained = inbox.drain()
    assert inbox.dropped == 500
    assert [i.kind for i in drained if i.kind != "speed"] == ["press", "release"]
    speeds = [i.t for i in drained if i.kind == "speed"]
    assert speeds == [1.0 + i for i in range(500, READINGS_LIMIT + 500)]  # the newest, in order
    assert drained[0].kind == "press" and drained[-1].kind == "release"  # order of arrival
    assert inbox.drain() == []
