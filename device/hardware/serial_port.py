"""What the serial sources share about their port: its life cycle, and why it did not open.

The serial speed bridge and the CSAFE console both open their port with pyserial's
`serial_for_url` (a device path, a pty, `socket://host:port`) and reopen it with backoff when
it is lost, so a missing cable, a missing dialout group or an unreachable converter reads the
same way on the dashboard and in the journal for both.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Self

import serial

# URL schemes that reach the port over the network (ser2net, an RS-232-to-Ethernet box)
_NETWORK_SCHEMES = ("socket://", "rfc2217://")


def explain_open_error(url: str, exc: BaseException, *, table: str = "[sensor]") -> str:
    """One sentence: why the port at `url` did not open and what the user can do about it;
    `table` is the config table whose url and baud name the port ("[sensor]",
    "[sensor.check]")."""
    if isinstance(exc, ValueError):
        return f"cannot open serial port {url} ({exc}); fix {table} url or {table} baud."
    if url.startswith(_NETWORK_SCHEMES):
        # pyserial wraps the socket's error without its errno: the text is all there is
        return (
            f"cannot reach serial port {url} ({exc}); check that the serial-to-network "
            f"converter is on and {table} url names its host and port."
        )
    code = getattr(exc, "errno", None)
    if code in (errno.EACCES, errno.EPERM):
        return (
            f"no permission to open serial port {url}; add the user running retrotread to "
            "the dialout group (sudo usermod -aG dialout USER) and restart it."
        )
    if code in (errno.ENOENT, errno.ENODEV, errno.ENXIO):
        return (
            f"serial port {url} does not exist; plug in the treadmill's cable or fix "
            f"{table} url (ls /dev/serial/by-id/ lists the ports)."
        )
    if code == errno.EBUSY:
        return (
            f"serial port {url} is busy; stop the other program using it (a serial console, "
            "ModemManager or a second retrotread)."
        )
    return f"cannot open serial port {url} ({exc}); check the cable and {table} url."


# A port whose line broke after this long open was a working link: the next outage backs off
# from the start. One whose line broke sooner (a serial-to-Ethernet box that accepts and drops
# the link while the console behind it is off) backs off like a refused open, never in a
# tight loop.
LASTED_S = 5.0


class ReconnectingPort:
    """One serial port kept open on a background thread, reopened with backoff when lost.

    The thread opens `url` with `serial_for_url`, hands the open port to `_use_port` until
    that returns (closed, or the line broke after `_report_outage`), closes it and opens it
    again; an open that fails is retried after `backoff_s[0]` seconds, doubling up to
    `backoff_s[1]`. Each outage gets one warning in the journal and one sentence in
    `last_error`, the same for a speed bridge and a console. Subclasses say what a session
    with the port does and what the journal hears when a port opens; `_lock` guards
    `_connected`, `_last_error` and whatever else the subclass shares with other threads.
    """

    def __init__(
        self,
        url: str,
        *,
        baud: int,
        read_timeout_s: float,
        write_timeout_s: float | None = None,
        serial_for_url: Callable[..., serial.Serial],
        backoff_s: tuple[float, float],
        log: logging.Logger,
        thread_name: str,
        table: str = "[sensor]",
    ):
        self._url = url
        self._options: dict[str, float] = {"baudrate": baud, "timeout": read_timeout_s}
        if write_timeout_s is not None:
            self._options["write_timeout"] = write_timeout_s
        self._read_timeout_s = read_timeout_s
        self._serial_for_url = serial_for_url
        self._backoff_first, self._backoff_max = backoff_s
        self._log = log
        self._thread_name = thread_name
        self._table = table
        # Only a plain device path can vanish from the filesystem; socket:// and loop:// cannot.
        self._is_path = "://" not in url

        self._lock = threading.Lock()
        self._connected = False
        self._last_error: str | None = None
        self._outage_logged = False  # thread-only: the journal has had this outage's warning
        self._stop = threading.Event()
        self._wake = threading.Event()  # close(), or a subclass's command: look again now
        self._thread: threading.Thread | None = None
        self._broken = False  # thread-only: the line broke under the port now open

    @property
    def url(self) -> str:
        return self._url

    @property
    def connected(self) -> bool:
        """True while the port is open (a console may still be silent: see last_error)."""
        with self._lock:
            return self._connected

    @property
    def last_error(self) -> str | None:
        """Why the port is not open, or why the console on it does not answer, as one
        sentence naming the port and the fix; None while all is well."""
        with self._lock:
            return self._last_error

    # -- life cycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Open the port and start the thread; never raises for a port that is missing or
        refused (see `last_error`)."""
        if self._thread is not None:
            raise RuntimeError(f"{type(self).__name__}.start() called twice")
        self._thread = threading.Thread(target=self._run, name=self._thread_name, daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop the thread and close the port; returns within about one read timeout."""
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=self._read_timeout_s * 5 + 1.0)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # -- the thread ------------------------------------------------------------------------

    def _run(self) -> None:
        delay = self._backoff_first
        while not self._stop.is_set():
            port = self._open()
            if port is None:
                self._rest(delay)
                delay = min(delay * 2, self._backoff_max)
                continue
            opened_at, self._broken = time.monotonic(), False
            try:
                self._use_port(port)
            finally:
                with self._lock:
                    self._connected = False
                self._port_closed()
                # a vanished device may fail to close; there is nothing left to release then
                with contextlib.suppress(serial.SerialException, OSError):
                    port.close()
            if not self._broken or time.monotonic() - opened_at >= LASTED_S:
                delay = self._backoff_first
            elif not self._stop.is_set():  # dropped at once: back off as from a refused open
                self._rest(delay)
                delay = min(delay * 2, self._backoff_max)

    def _open(self) -> serial.Serial | None:
        try:
            port = self._serial_for_url(self._url, **self._options)
        except (serial.SerialException, OSError, ValueError) as exc:
            self._report_outage(explain_open_error(self._url, exc, table=self._table))
            return None
        with self._lock:
            self._connected = True
            self._port_opened()
        self._say_opened()
        return port

    def _broke(self, sentence: str) -> None:
        """The line broke under the open port (a cable pulled, a link dropped): said once per
        outage, and a port that breaks soon after it opened is reopened after a backoff."""
        self._broken = True
        self._report_outage(sentence)

    def _report_outage(self, sentence: str) -> None:
        with self._lock:
            self._last_error = sentence
        # One warning per outage: a pulled cable retried every 10 s must not flood the journal.
        if self._outage_logged:
            self._log.debug("%s", sentence)
        else:
            self._log.warning("%s", sentence)
            self._outage_logged = True

    def _check_device_file(self) -> None:
        """A read that brought nothing may mean the USB adapter is gone: its file says."""
        if self._is_path and not os.path.exists(self._url):
            raise serial.SerialException("its device file disappeared")

    # -- what a subclass says --------------------------------------------------------------

    def _use_port(self, port: serial.Serial) -> None:
        """Talk over the open port until closed or the line breaks (report it first)."""
        raise NotImplementedError

    def _port_opened(self) -> None:
        """A port just opened, with `_lock` held: reset what a new port changes. By default
        the outage is over."""
        self._last_error = None

    def _say_opened(self) -> None:
        """Tell the journal the port opened: for the first time, or back after an outage."""
        raise NotImplementedError

    def _rest(self, seconds: float) -> None:
        """Wait out a backoff with the port closed (close() ends it at once)."""
        self._stop.wait(seconds)

    def _port_closed(self) -> None:
        """The port was just lost or closed; `_connected` is already False."""
