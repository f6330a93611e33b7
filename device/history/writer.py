"""The history writer: the daemon's SQLite writes on a thread of their own.

The tick loop hands each tick's share of the history (recorder.Entry) to a bounded queue and
goes on: it never waits on the disk, so a full SD card, a write lock another process holds or
an fsync that takes a second cannot delay a warning or the relay. This thread records the
entries in order through the Recorder; the Store buffers what the disk refuses and retries.
What neither can keep (the queue full for a minute, the buffer for an hour) is counted, never
dropped silently, and the journal says each cause once.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from device.core.tick import TickResult
from device.history.recorder import Entry, Recorder

log = logging.getLogger("retrotread.history")

# A minute of ticks at 10 Hz: longer than any honest stall of an SD card.
QUEUE_LIMIT = 600
IDLE_FLUSH_S = 0.5  # how often the writer looks at its buffer when no tick brings anything
CLOSE_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class HistoryHealth:
    ok: bool  # the last write went through (or nothing needed writing)
    error: str | None  # why the last write failed
    unsaved_rows: int  # buffered, waiting for a write
    lost_rows: int  # rows that could not be kept: the buffer full, the queue full


class HistoryWriter:
    """`submit(result)` from the tick thread; the rest happens on this writer's thread."""

    def __init__(
        self,
        recorder: Recorder,
        *,
        clock: Callable[[], float] = time.monotonic,
        queue_limit: int = QUEUE_LIMIT,
        on_written: Callable[[Entry], None] | None = None,
    ) -> None:
        self.recorder = recorder
        # told on this thread after each entry is written: what the entry committed (a
        # session's end and its outbox row) is in the file by then, for another reader
        self._on_written = on_written
        self._clock = clock
        self._queue: queue.Queue[Entry | None] = queue.Queue(maxsize=queue_limit)
        # both threads count: the tick thread what it queues or drops, the writer what it takes
        self._counts = threading.Lock()
        self._queued_rows = 0
        self._dropped_entries = 0
        self._dropped_rows = 0
        self._said: str | None = None  # the cause the journal was last told
        self._thread = threading.Thread(target=self._run, name="history-writer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def submit(self, result: TickResult) -> None:
        """Never blocks: a full queue counts what it could not take."""
        entry = Entry.of(result)
        if entry is None:
            return
        try:
            self._queue.put_nowait(entry)
        except queue.Full:
            with self._counts:
                self._dropped_entries += 1
                self._dropped_rows += entry.rows
                first = self._dropped_entries == 1
            if first:
                log.error(
                    "history is not being saved: the writer is %d ticks behind", self._queue.maxsize
                )
        else:
            with self._counts:
                self._queued_rows += entry.rows

    def health(self) -> HistoryHealth:
        store = self.recorder.store
        with self._counts:
            queued, dropped_entries, dropped_rows = (
                self._queued_rows, self._dropped_entries, self._dropped_rows
            )  # fmt: skip
        error = store.error
        if error is None and dropped_entries:
            error = "the history writer fell behind the ticks"
        return HistoryHealth(
            ok=store.error is None,
            error=error,
            unsaved_rows=store.unsaved_rows + queued,
            lost_rows=store.lost_rows + dropped_rows,
        )

    def close(self) -> None:
        """Write what is queued, then stop the thread; the Store is the caller's to close."""
        if not self._thread.is_alive():
            return
        try:
            self._queue.put(None, timeout=CLOSE_TIMEOUT_S)
        except queue.Full:
            log.error("history writer: %d ticks left unwritten at shutdown", self._queue.qsize())
            return
        self._thread.join(timeout=CLOSE_TIMEOUT_S)

    def _run(self) -> None:
        while True:
            try:
                entry = self._queue.get(timeout=IDLE_FLUSH_S)
            except queue.Empty:
                self._record(None)
                continue
            if entry is None:  # close()
                return
            self._record(entry)

    def _record(self, entry: Entry | None) -> None:
        """Write `entry` (None: no tick brought anything, but the buffer may be due)."""
        if entry is not None:
            with self._counts:
                self._queued_rows -= entry.rows
        try:
            if entry is not None:
                self.recorder.write(entry)
                if self._on_written is not None:
                    self._on_written(entry)
            self.recorder.flush_if_due(self._clock())
        except Exception:  # a bug in one entry must not end the history of the rest
            log.exception("history writer: an entry could not be recorded")
            with self._counts:
                self._dropped_rows += entry.rows if entry is not None else 0
        self._tell_the_journal()

    def _tell_the_journal(self) -> None:
        error = self.recorder.store.error
        if error == self._said:
            return
        if error is not None:
            log.error("history is not being saved: %s", error)
        else:
            lost = self.health().lost_rows
            log.info("history is being saved again%s", f" ({lost} rows lost)" if lost else "")
        self._said = error
