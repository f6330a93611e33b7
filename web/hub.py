"""One subscription to the daemon's status, shared by every live viewer of this dashboard.

Every SSE stream and every /api/status call reads the hub instead of talking to the daemon:
the daemon serves at most 32 socket clients and spends a thread on each, so twenty phones
watching the belt must cost it one subscription, not twenty. One background thread follows
the daemon's 4 Hz status stream, keeps the newest status with its arrival time, and
reconnects with backoff (0.5 s doubling to 5 s) while the daemon is down or restarting.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from typing import Any, cast

from flask import Flask

from device.ipc.client import DeviceClient, DeviceOffline
from device.ipc.protocol import DeviceStatus
from web.site import site

log = logging.getLogger("retrotread.web.hub")

RETRY_FIRST_S = 0.5
RETRY_MAX_S = 5.0
# The first request after start-up waits this long for the hub's first answer, so the page
# it renders shows the belt (or the reason it cannot) instead of "not reached yet".
FIRST_ANSWER_WAIT_S = 1.0
_NOT_YET = "the dashboard has not reached the device yet; wait a moment and reload."
_UNREADABLE = (
    "the retrotread device at {path} sent a status line this dashboard cannot read; check "
    "that the device and the web run the same version."
)


class StatusHub:
    """The newest status of the daemon at `socket_path`, followed from one background thread.

    A status older than `stale_after_s` seconds counts as no status: the daemon is stuck or
    gone. Status dicts handed out are shared between threads; read them, never modify them.
    """

    def __init__(self, socket_path: str | os.PathLike[str], *, stale_after_s: float = 2.0):
        self.socket_path = Path(socket_path)
        self.stale_after_s = stale_after_s
        # a stream silent for stale_after_s raises DeviceOffline, so "stuck" becomes an event
        self._client = DeviceClient(socket_path, timeout=stale_after_s)
        self._changed = threading.Condition()
        self._status: DeviceStatus | None = None
        self._received_at = 0.0  # time.monotonic() of the newest status
        self._error = _NOT_YET
        self._seq = 0  # bumped on every new status and on going offline
        self._answered = threading.Event()  # the first connection attempt has a result
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    # -- reading ---------------------------------------------------------------------------

    @property
    def online(self) -> bool:
        return self.latest() is not None

    @property
    def closed(self) -> bool:
        return self._closing.is_set()

    @property
    def error(self) -> str | None:
        """Why there is no status, as one sentence (None while the status is fresh)."""
        with self._changed:
            return self._why_offline()

    def latest(self) -> DeviceStatus | None:
        """The newest status, or None when the daemon is offline or its status is stale."""
        with self._changed:
            return self._fresh()

    def snapshot(self) -> tuple[int, DeviceStatus | None]:
        """(seq, latest()) read together, to start a wait_newer() loop from."""
        with self._changed:
            return self._seq, self._fresh()

    def wait_newer(self, seq: int, timeout: float) -> tuple[int, DeviceStatus | None]:
        """Block until something newer than `seq` arrives (a status, or the daemon going
        offline), the hub closes, or `timeout` seconds pass; return (seq, latest())."""
        with self._changed:
            self._changed.wait_for(lambda: self._seq != seq or self._closing.is_set(), timeout)
            return self._seq, self._fresh()

    def wait_answered(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for the first connection attempt's result."""
        return self._answered.wait(timeout)

    def _fresh(self) -> DeviceStatus | None:
        if self._status is None:
            return None
        if time.monotonic() - self._received_at > self.stale_after_s:
            return None
        return self._status

    def _why_offline(self) -> str | None:
        if self._fresh() is not None:
            return None
        if self._status is not None:  # a status is held but has gone stale
            return (
                f"the retrotread device at {self.socket_path} sent no status for "
                f"{self.stale_after_s:g} s; see journalctl -u retrotread-device."
            )
        return self._error

    # -- running ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start following the daemon (once; later calls do nothing)."""
        with self._start_lock:
            if self._thread is not None:
                return
            if self._closing.is_set():
                raise RuntimeError("StatusHub.start() after close()")
            self._thread = threading.Thread(target=self._follow, name="status-hub", daemon=True)
            self._thread.start()

    def close(self) -> None:
        """Hang up on the daemon and wake every waiter; returns within about a second."""
        self._closing.set()
        self._client.close()  # a next() blocked on the socket raises at once
        with self._changed:
            self._changed.notify_all()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=1.0)

    def _follow(self) -> None:
        delay = RETRY_FIRST_S
        while not self._closing.is_set():
            try:
                stream = self._client.subscribe()
            except DeviceOffline as exc:
                self._went_offline(str(exc))
            else:
                with stream:
                    try:
                        for line in stream:
                            if self._closing.is_set():
                                break
                            if line.get("ok") is False:
                                # e.g. the daemon already serves its maximum of clients
                                self._went_offline(str(line.get("error") or _NOT_YET))
                                break
                            self._arrived(line)
                            delay = RETRY_FIRST_S
                    except DeviceOffline as exc:
                        self._went_offline(str(exc))
                    except Exception:  # e.g. a RecursionError from a line nested past JSON's
                        # depth: this thread must outlive any line, so it hangs up and retries
                        sentence = _UNREADABLE.format(path=self.socket_path)
                        if self.error != sentence:  # the traceback once per run of them
                            log.exception("the status stream from %s broke", self.socket_path)
                        self._went_offline(sentence)
            if self._closing.wait(delay):
                break
            delay = min(delay * 2, RETRY_MAX_S)
        with self._changed:
            self._status = None
            self._error = "the dashboard is shutting down."
            self._changed.notify_all()

    def _arrived(self, line: dict[str, Any]) -> None:
        # A DeviceStatus by the protocol, from another process (maybe another version):
        # web/live_view.py reads every field for its type and never trusts this one.
        status = cast(DeviceStatus, {key: value for key, value in line.items() if key != "ok"})
        with self._changed:
            if self._status is None:
                log.info("device online at %s", self.socket_path)
            self._status = status
            self._received_at = time.monotonic()
            self._seq += 1
            self._changed.notify_all()
        self._answered.set()

    def _went_offline(self, sentence: str) -> None:
        with self._changed:
            was_online = self._status is not None
            if was_online or sentence != self._error:
                if not self._closing.is_set():
                    log.warning("device offline: %s", sentence)
                self._status = None
                self._error = sentence
                self._seq += 1
                self._changed.notify_all()
        self._answered.set()


# -- one hub per app --------------------------------------------------------------------------

_hubs_lock = threading.Lock()


def hub_for(app: Flask) -> StatusHub:
    """The app's hub, started on first use (so create_app and the test client stay cheap).
    The first caller waits up to FIRST_ANSWER_WAIT_S for the daemon's first answer."""
    here = site(app)
    with _hubs_lock:
        hub = here.extras.get("hub")
        if hub is None or hub.closed:
            stale_after_s = float(app.config.get("RETROTREAD_STALE_AFTER_S", 2.0))
            hub = StatusHub(here.socket_path, stale_after_s=stale_after_s)
            here.extras["hub"] = hub
            hub.start()
    hub.wait_answered(FIRST_ANSWER_WAIT_S)  # returns at once after the first answer
    return hub


def close_hub(app: Flask) -> None:
    """Stop the app's hub, if it was ever started (serve's close() and test teardown)."""
    with _hubs_lock:
        hub = site(app).extras.pop("hub", None)
    if hub is not None:
        hub.close()
