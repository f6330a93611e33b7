"""The dashboard's end of the device socket: ask the daemon something, or follow its status.

The protocol itself is described in device/ipc/protocol.py.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, BinaryIO

from device.ipc.protocol import IpcError, default_socket_path, encode_line

# a status line is a few hundred bytes; anything near this is not the daemon talking
MAX_REPLY_BYTES = 1 << 20


class DeviceOffline(IpcError):
    """The daemon cannot be reached: not running, refusing, too slow, or gone mid-answer.
    str(error) is one sentence naming the socket; the web answers 503 with it."""


class DeviceClient:
    """Talks to the daemon over its Unix socket; `timeout` (seconds) bounds connecting,
    sending and the wait for each line.

    Every request() uses its own short connection, so one client can be shared by the web's
    worker threads and needs no reconnecting after the daemon restarts. subscribe() holds a
    connection for as long as its stream is followed; close() ends every open stream.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, *, timeout: float = 2.0):
        self.path = Path(path) if path is not None else default_socket_path()
        self.timeout = timeout
        self._lock = threading.Lock()
        self._streams: set[StatusStream] = set()

    def __enter__(self) -> DeviceClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def request(self, message: Mapping[str, Any]) -> dict[str, Any]:
        """Send one request, e.g. {"cmd": "start"}, and return the daemon's reply (check its
        "ok"). Raises DeviceOffline when the daemon cannot be reached or does not answer."""
        line = encode_line(dict(message))
        conn = self._connect()
        try:
            with conn.makefile("rb") as reader:
                try:
                    self._send(conn, line)
                except DeviceOffline as hung_up:
                    # the daemon may have hung up with a reason (too many clients): read it
                    try:
                        return self._read(reader)
                    except DeviceOffline:
                        raise hung_up from None
                return self._read(reader)
        finally:
            conn.close()

    def subscribe(self) -> StatusStream:
        """Start following the daemon's status: iterate the returned stream for one dict every
        250 ms (each with "ok"). Connects at once, so an offline daemon raises DeviceOffline
        here; a stream that stalls or ends raises DeviceOffline from next()."""
        conn = self._connect()
        try:
            self._send(conn, encode_line({"cmd": "subscribe"}))
        except DeviceOffline:
            conn.close()
            raise
        stream = StatusStream(self, conn)
        with self._lock:
            self._streams.add(stream)
        return stream

    def close(self) -> None:
        """End every open status stream (their next() raises DeviceOffline)."""
        with self._lock:
            streams = list(self._streams)
        for stream in streams:
            stream.close()

    def _forget(self, stream: StatusStream) -> None:
        with self._lock:
            self._streams.discard(stream)

    def _connect(self) -> socket.socket:
        """Connect, waiting out a full listen queue (EAGAIN on a Unix socket) up to the
        timeout: a burst of requests makes the device busy, not offline."""
        deadline = time.monotonic() + self.timeout
        pause = 0.005
        while True:
            conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            conn.settimeout(self.timeout)
            try:
                conn.connect(str(self.path))
                return conn
            except BlockingIOError as exc:  # EAGAIN: the device's queue of connections is full
                conn.close()
                if time.monotonic() + pause > deadline:
                    raise DeviceOffline(
                        f"the retrotread device at {self.path} is busy (too many requests at "
                        "once); try again in a moment."
                    ) from exc
                time.sleep(pause)
                pause = min(pause * 2, 0.1)
            except OSError as exc:
                conn.close()
                raise self._offline(exc) from None

    def _send(self, conn: socket.socket, line: bytes) -> None:
        try:
            conn.sendall(line)
        except OSError as exc:
            raise self._offline(exc) from None

    def _read(self, reader: BinaryIO) -> dict[str, Any]:
        try:
            line = reader.readline(MAX_REPLY_BYTES)
        except OSError as exc:
            raise self._offline(exc) from None
        except ValueError:  # the stream was closed from another thread
            raise self._offline(None) from None
        if not line.endswith(b"\n"):
            raise self._offline(None)  # end of stream (a partial line means it broke off)
        try:
            reply = json.loads(line)
        except (ValueError, RecursionError):  # RecursionError: nested deeper than json parses
            reply = None
        if not isinstance(reply, dict):
            raise DeviceOffline(
                f"the retrotread device at {self.path} sent a line that is not a JSON object; "
                "check that the device and the web run the same version."
            )
        return reply

    def _offline(self, exc: OSError | None) -> DeviceOffline:
        start = "start it (systemctl start retrotread-device, or retrotread demo)"
        if isinstance(exc, FileNotFoundError):
            sentence = f"the retrotread device is not running: there is no socket {self.path}"
            sentence += f"; {start}."
        elif isinstance(exc, ConnectionRefusedError):
            sentence = f"the retrotread device is not running: {self.path} refuses connections"
            sentence += f"; {start}."
        elif isinstance(exc, PermissionError):
            sentence = (
                f"permission denied on the device socket {self.path}; add this user to the "
                "group that owns it."
            )
        elif isinstance(exc, TimeoutError):
            sentence = (
                f"the retrotread device at {self.path} did not answer within {self.timeout} s; "
                "see journalctl -u retrotread-device."
            )
        else:
            sentence = (
                f"the retrotread device at {self.path} closed the connection; "
                "it may be restarting, try again in a moment."
            )
        return DeviceOffline(sentence)


class StatusStream:
    """An open subscription: iterate it for status dicts, close it (or leave a `with` block)
    to hang up. Made by DeviceClient.subscribe()."""

    def __init__(self, client: DeviceClient, conn: socket.socket) -> None:
        self._client = client
        self._conn = conn
        self._reader = conn.makefile("rb")
        self._closed = False

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return self

    def __next__(self) -> dict[str, Any]:
        if self._closed:
            raise DeviceOffline(f"the status stream from {self._client.path} was closed.")
        try:
            return self._client._read(self._reader)
        except DeviceOffline:
            self.close()
            raise

    def __enter__(self) -> StatusStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(OSError):
            # wakes a next() blocked in another thread (the web's SSE worker)
            self._conn.shutdown(socket.SHUT_RDWR)
        self._reader.close()
        self._conn.close()
        self._client._forget(self)
