"""An EmulatedTreadmill on a line a host can open: a pty (`/dev/pts/N`, what a USB-serial
adapter looks like) and/or a TCP port (`socket://127.0.0.1:PORT`, what a serial-over-Ethernet
box looks like), on its own thread with the real clock; and `retrotread console-emulator`.

The thread reads request frames, answers each after the console's delay, and can be
unplugged: on the pty it stops answering (the cable is out, bytes go nowhere), on TCP it
drops the client and any that connects until plugged back.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import logging
import os
import select
import signal
import socket
import threading
import time
import tty
from collections.abc import Callable, Iterator
from types import FrameType, TracebackType

from device.errors import RetrotreadError
from device.hardware.csafe_codec import Command, FrameReader
from device.sim.console import DISTANCE_UNITS, SPEED_UNITS, ConsoleQuirks, EmulatedTreadmill

log = logging.getLogger("retrotread.console_emulator")

BAUD = 9600
BYTE_S = 10 / BAUD  # 8N1: a start bit, 8 data bits and a stop bit per byte
POLL_S = 0.02  # how soon the thread notices close(), unplug() and a dead client
STATUS_EVERY_S = 5.0


class ConsoleEmulatorError(RetrotreadError):
    """The emulator could not open its line (a TCP port taken, no pty to be had)."""


class ConsoleEmulator:
    """Serves `treadmill` on a pty (`port`, its slave's path) and/or TCP (`tcp=True` for any
    free port, or a port number; one client at a time, a newer one replaces it). `url` is
    what a host opens: the TCP URL when serving TCP, else the pty. `paced=True` writes no
    faster than 9600 baud, as a real line does. A context manager: the thread runs inside."""

    def __init__(
        self,
        treadmill: EmulatedTreadmill,
        *,
        pty: bool = True,
        tcp: bool | int = False,
        paced: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.treadmill = treadmill
        self.paced = paced
        self.clock = clock
        self.port: str | None = None
        self.tcp_port: int | None = None
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._plugged = True
        self._master: int | None = None
        self._slave: int | None = None
        self._listener: socket.socket | None = None
        self._client: socket.socket | None = None
        self._readers: dict[object, FrameReader] = {}
        self._line_free_at = 0.0  # when the last byte written has left, for pacing
        self._thread: threading.Thread | None = None
        self.answered = 0  # answers written on the line
        self.lost = 0  # bytes the host sent while the cable was out
        if pty:
            self._open_pty()
        if tcp is not False:
            self._listen(0 if tcp is True else int(tcp))

    def _open_pty(self) -> None:
        try:
            self._master, self._slave = os.openpty()
        except OSError as exc:
            raise ConsoleEmulatorError(
                f"Cannot open a pty for the console emulator ({exc.strerror}); "
                "serve it on TCP instead (--tcp 0)."
            ) from None
        # raw: no echo, no line editing, every byte as it is, whoever opens the slave
        tty.setraw(self._slave)
        os.set_blocking(self._master, False)
        self.port = os.ttyname(self._slave)
        self._readers["pty"] = FrameReader()

    def _listen(self, port: int) -> None:
        try:
            self._listener = socket.create_server(("127.0.0.1", port))
        except OSError as exc:
            self.close()
            raise ConsoleEmulatorError(
                f"Cannot listen on 127.0.0.1:{port} for the console emulator ({exc.strerror}); "
                "pick another --tcp port, or 0 for any free one."
            ) from None
        self.tcp_port = self._listener.getsockname()[1]

    @property
    def tcp_url(self) -> str | None:
        return None if self.tcp_port is None else f"socket://127.0.0.1:{self.tcp_port}"

    @property
    def url(self) -> str:
        url = self.tcp_url or self.port
        assert url is not None, "a console emulator serves a pty, TCP or both"
        return url

    @property
    def plugged(self) -> bool:
        return self._plugged

    @property
    def skipped(self) -> int:
        """Bytes and frames of the host's requests that the emulator could not read."""
        return sum(reader.total_skipped for reader in self._readers.values())

    def __repr__(self) -> str:
        where = " and ".join(u for u in (self.port, self.tcp_url) if u)
        plug = "" if self._plugged else ", unplugged"
        return f"ConsoleEmulator({where}{plug})"

    # -- the test's and the walker's side ----------------------------------------------------

    def start(self) -> ConsoleEmulator:
        if self._thread is None:
            self._thread = threading.Thread(target=self._serve, name="console-emulator")
            self._thread.daemon = True
            self._thread.start()
        return self

    def close(self) -> None:
        self._stopping.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=2)
        self._drop_client()
        for fd in (self._master, self._slave):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._master = self._slave = None
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    def __enter__(self) -> ConsoleEmulator:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def unplug(self) -> None:
        """Pull the console's cable: no more answers; a TCP client is dropped."""
        self._plugged = False

    def plug(self) -> None:
        self._plugged = True

    @contextlib.contextmanager
    def treadmill_now(self) -> Iterator[EmulatedTreadmill]:
        """The treadmill moved on to now, held still while the caller reads or presses its
        buttons (the emulator's thread waits)."""
        with self._lock:
            self.treadmill.step(self.clock())
            yield self.treadmill

    def set_target_kmh(self, kmh: float, *, abrupt: bool = False) -> None:
        """The console's speed buttons, from another thread (the walker, a test)."""
        with self.treadmill_now() as treadmill:
            treadmill.set_target_kmh(kmh, abrupt=abrupt)

    # -- the emulator's thread ---------------------------------------------------------------

    def _serve(self) -> None:
        while not self._stopping.is_set():
            if not self._plugged:
                self._drop_client()
            waiting: list[int | socket.socket] = [
                s for s in (self._master, self._listener, self._client) if s is not None
            ]
            try:
                readable, _, _ = select.select(waiting, [], [], POLL_S)
            except (OSError, ValueError):  # closed under us: close() is on its way
                continue
            for source in readable:
                if source is self._listener:
                    self._accept()
                elif source is self._master:
                    self._hear("pty", self._read_pty())
                elif source is self._client:
                    self._hear(source, self._read_client())

    def _accept(self) -> None:
        assert self._listener is not None
        try:
            client, _ = self._listener.accept()
        except OSError:
            return
        if not self._plugged:
            client.close()  # the converter is up, the console behind it is not
            return
        self._drop_client()  # one host at a time: the one that connected last
        client.settimeout(1.0)  # a host that stops reading must not hang the console
        self._client = client
        self._readers[client] = FrameReader()

    def _drop_client(self) -> None:
        if self._client is not None:
            self._readers.pop(self._client, None)
            self._client.close()
            self._client = None

    def _read_pty(self) -> bytes:
        assert self._master is not None
        try:
            return os.read(self._master, 4096)
        except BlockingIOError:
            return b""
        except OSError as exc:
            if exc.errno != errno.EIO:  # EIO: nobody has the slave open (we do: rare)
                log.warning("the console emulator's pty failed: %s", exc)
            return b""

    def _read_client(self) -> bytes:
        assert self._client is not None
        try:
            data = self._client.recv(4096)
        except OSError:
            data = b""
        if not data:  # the host hung up
            self._drop_client()
        return data

    def _hear(self, channel: object, data: bytes) -> None:
        reader = self._readers.get(channel)
        if not self._plugged:
            self.lost += len(data)  # the cable is out: what the host sends goes nowhere
            return
        if reader is None:
            return
        # byte by byte, so a bad frame's BAD goes into the answer of the frame after it
        for byte in data:
            bad_before = reader.counts.bad_checksum + reader.counts.bad_stuffing
            frames = reader.feed(bytes((byte,)))
            if reader.counts.bad_checksum + reader.counts.bad_stuffing > bad_before:
                with self._lock:
                    self.treadmill.heard_bad_frame()
            for frame in frames:
                with self._lock:
                    wire = self.treadmill.answer(frame.contents, self.clock())
                    delay_s = self.treadmill.quirks.answer_delay_s
                if delay_s > 0 and self._stopping.wait(delay_s):
                    return
                if self._plugged and self._readers.get(channel) is reader:
                    self._send(channel, wire)

    def _send(self, channel: object, wire: bytes) -> None:
        pieces = [bytes((b,)) for b in wire] if self.paced else [wire]
        for piece in pieces:
            if self.paced:
                self._line_free_at = max(self._line_free_at, time.monotonic())
                time.sleep(max(self._line_free_at - time.monotonic(), 0.0))
                self._line_free_at += BYTE_S * len(piece)
            if not self._write(channel, piece):
                return
        self.answered += 1

    def _write(self, channel: object, data: bytes) -> bool:
        try:
            if channel == "pty":
                assert self._master is not None
                os.write(self._master, data)
            elif channel is self._client:
                assert self._client is not None
                self._client.sendall(data)
            else:
                return False
        except BlockingIOError:
            return False  # nobody reads the pty: the bytes fall off the line
        except OSError:
            if channel is self._client:
                self._drop_client()
            return False
        return True


# -- `retrotread console-emulator` ------------------------------------------------------------


def add_console_emulator_parser(commands: argparse._SubParsersAction) -> None:
    """The `console-emulator` subcommand on the `retrotread` parser's subparsers."""
    parser = commands.add_parser(
        "console-emulator",
        help="a CSAFE treadmill console on a pty or a TCP port, to try [sensor] kind = csafe",
    )
    parser.add_argument(
        "--tcp",
        type=int,
        metavar="PORT",
        help="serve socket://127.0.0.1:PORT instead of a pty (0: any free port)",
    )
    parser.add_argument(
        "--unit", choices=list(SPEED_UNITS), default="0.1kmh", help="speed unit (0.1kmh)"
    )
    parser.add_argument(
        "--distance-unit", choices=list(DISTANCE_UNITS), default="m", help="distance unit (m)"
    )
    parser.add_argument(
        "--belt-kmh", type=float, default=0.0, metavar="V", help="the belt runs at V km/h already"
    )
    parser.add_argument(
        "--ignores-setspeed", action="store_true", help="take SetSpeed, leave the belt as it is"
    )
    parser.add_argument(
        "--rejects-setspeed", action="store_true", help="refuse SetSpeed (status bits: rejected)"
    )
    parser.add_argument(
        "--status-only",
        action="store_true",
        help="answer GetSpeed and GetHorizontal with the status byte alone",
    )
    parser.add_argument(
        "--never-toggles", action="store_true", help="the status toggle bit never changes"
    )
    parser.add_argument("--slow", type=float, default=0.0, metavar="S", help="answer after S s")
    parser.add_argument(
        "--garbage", type=int, default=0, metavar="N", help="noise before every Nth answer"
    )
    parser.add_argument("--paced", action="store_true", help="send no faster than 9600 baud")


def console_emulator_main(args: argparse.Namespace) -> int:
    quirks = ConsoleQuirks(
        ignores_set_speed=args.ignores_setspeed,
        rejects_set_speed=args.rejects_setspeed,
        status_only=(
            frozenset({Command.GET_SPEED, Command.GET_HORIZONTAL})
            if args.status_only
            else frozenset()
        ),
        answer_delay_s=max(args.slow, 0.0),
        garbage_every=max(args.garbage, 0),
        never_toggles=args.never_toggles,
    )
    treadmill = EmulatedTreadmill(
        unit=SPEED_UNITS[args.unit], distance_unit=DISTANCE_UNITS[args.distance_unit], quirks=quirks
    )
    treadmill.set_target_kmh(args.belt_kmh, abrupt=True)  # someone is walking already
    try:
        tcp: bool | int = False if args.tcp is None else args.tcp
        console = ConsoleEmulator(treadmill, pty=args.tcp is None, tcp=tcp, paced=args.paced)
    except ConsoleEmulatorError as exc:
        log.error("%s", exc)
        return 1
    stop = threading.Event()

    def stop_on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, stop_on_signal)
    signal.signal(signal.SIGTERM, stop_on_signal)
    with console:
        print(f"retrotread console-emulator: a CSAFE treadmill console on {console.url}")
        print(f"  speed in {args.unit}, distance in {args.distance_unit}; paste into your config:")
        print(f'\n[sensor]\nkind = "csafe"\nurl = "{console.url}"\n\nCtrl-C stops.', flush=True)
        while not stop.wait(STATUS_EVERY_S):
            with console.treadmill_now() as belt:
                line = (
                    f"{belt.state:8} {belt.belt_kmh:5.1f} km/h {belt.distance_m:7.1f} m"
                    f"  {console.answered} answers"
                )
            print(line, flush=True)
    print("console emulator stopped", flush=True)
    return 0
