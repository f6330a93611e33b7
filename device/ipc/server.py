"""The daemon's Unix socket: JSON lines in, JSON lines out.

The protocol (the lines, the commands, the replies) is described in device/ipc/protocol.py.

The daemon never waits on a client: each connection has its own thread, a client that stops
reading for `send_timeout_s` is dropped, a request line must be complete within
`request_timeout_s` of its first byte (and a new connection's first line within as long of
connecting), a connection silent between requests for `idle_timeout_s` is closed, and at most
`max_clients` connections are served at once (extras get an error line and are closed). No
one local user may hold the last RESERVED_FOR_OTHERS of them: the dashboard runs as a user of
its own, so another user flooding the socket cannot lock it out. The client end lives in
device/ipc/client.py.
"""

from __future__ import annotations

import contextlib
import logging
import os
import selectors
import socket
import stat
import struct
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from device.ipc.protocol import (
    MAX_LINE_BYTES,
    MAX_PATH_BYTES,
    TOO_LONG,
    Command,
    DeviceStatus,
    IpcError,
    Request,
    RequestError,
    encode_line,
    error_reply,
    parse_request,
)

log = logging.getLogger("retrotread.ipc")

_FAILED = "see the device's journal (journalctl -u retrotread-device) for details."

LISTEN_BACKLOG = 256
RESERVED_FOR_OTHERS = 4  # slots one user cannot take: the dashboard's, whoever floods


def peer_uid(conn: socket.socket) -> int | None:
    """The uid of the process at the other end (Linux SO_PEERCRED); None where unknown."""
    try:
        creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    except (AttributeError, OSError):
        return None
    return struct.unpack("3i", creds)[1]


class DeviceSocket:
    """Serves the protocol on a Unix socket from background threads.

    `handle(request)` runs start/pause/resume/end/mode/reload and returns a reply dict (the
    server adds "ok": true unless it says otherwise); `status()` returns the status snapshot
    for status and subscribe lines. Both run on this socket's threads, never the caller's,
    and an exception in them becomes an ok:false reply and a journal entry, never a dead
    server. Times are seconds.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        handle: Callable[[Request], dict[str, Any]],
        status: Callable[[], DeviceStatus | None],
        stream_interval_s: float = 0.25,
        send_timeout_s: float = 1.0,
        request_timeout_s: float = 5.0,
        idle_timeout_s: float = 60.0,
        max_clients: int = 32,
    ) -> None:
        self.path = Path(path)
        self.stream_interval_s = stream_interval_s
        self.send_timeout_s = send_timeout_s
        self.request_timeout_s = request_timeout_s
        self.idle_timeout_s = idle_timeout_s
        self.max_clients = max_clients
        # a small socket (the tests') reserves nothing rather than refuse everyone
        self.per_user = max_clients - min(RESERVED_FOR_OTHERS, max_clients // 4)
        self._handle = handle
        self._status = status
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        # each connection's peer uid and thread
        self._clients: dict[socket.socket, tuple[int | None, threading.Thread]] = {}
        self._listener: socket.socket | None = None
        self._wake: tuple[socket.socket, socket.socket] | None = None
        self._accept_thread: threading.Thread | None = None
        self._inode: int | None = None

    @property
    def client_count(self) -> int:
        """Connections being served right now (subscribers included)."""
        with self._lock:
            return len(self._clients)

    def __enter__(self) -> DeviceSocket:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def start(self) -> None:
        """Bind the socket (mode 0o660, so the web's group can connect) and start serving.

        Raises IpcError if another device is listening on the path or the path is unusable.
        """
        if self._listener is not None:
            raise RuntimeError("DeviceSocket.start() called twice")
        if len(os.fsencode(self.path)) > MAX_PATH_BYTES:
            raise IpcError(
                f"the socket path {self.path} is longer than {MAX_PATH_BYTES} bytes; "
                "choose a shorter directory."
            )
        try:
            self.path.parent.mkdir(mode=0o750, parents=True, exist_ok=True)
        except OSError as exc:
            raise IpcError(
                f"cannot create the socket directory {self.path.parent} ({exc.strerror}); "
                "create it writable by the device's user or set RUNTIME_DIRECTORY."
            ) from None
        self._remove_stale_socket()
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            listener.bind(str(self.path))
            self._inode = os.stat(self.path).st_ino
            # before listen(), so nobody outside the group can sneak in a connection
            os.chmod(self.path, 0o660)
            # a burst of dashboard requests (20 viewers, a page's worth of calls each) must
            # queue, not bounce: with 16 a connect() got EAGAIN and read "device offline"
            listener.listen(LISTEN_BACKLOG)
            listener.setblocking(False)
        except OSError as exc:
            listener.close()
            self._remove_socket_file()
            raise IpcError(
                f"cannot serve the device socket {self.path} ({exc.strerror or exc}); "
                "check that the device's user may write to its directory."
            ) from None
        self._listener = listener
        self._wake = socket.socketpair()
        self._stopping.clear()
        self._accept_thread = threading.Thread(
            target=self._accept_loop, name="ipc-accept", daemon=True
        )
        self._accept_thread.start()
        log.info("device socket listening on %s", self.path)

    def close(self) -> None:
        """Stop serving within about a second, hang up on every client and remove the socket
        file (only if it is still ours). Safe to call twice."""
        if self._listener is None:
            return
        self._stopping.set()
        assert self._wake is not None
        with contextlib.suppress(OSError):
            self._wake[1].send(b"x")
        if self._accept_thread is not None:
            self._accept_thread.join(timeout=1.0)
        self._listener.close()
        self._remove_socket_file()
        with self._lock:
            clients = list(self._clients.items())
        for conn, _ in clients:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)  # wakes a thread blocked in recv or send
        deadline = time.monotonic() + 1.0
        for _, (_, thread) in clients:
            if thread.is_alive():
                thread.join(timeout=max(0.0, deadline - time.monotonic()))
        for end in self._wake:
            end.close()
        self._listener = None
        self._wake = None

    def _remove_stale_socket(self) -> None:
        try:
            mode = os.lstat(self.path).st_mode
        except FileNotFoundError:
            return
        if not stat.S_ISSOCK(mode):
            raise IpcError(
                f"{self.path} exists and is not a socket; remove it or set another path."
            )
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        probe.settimeout(1.0)
        try:
            probe.connect(str(self.path))
        except ConnectionRefusedError:
            # left by a crash: nobody listens, so it is safe to take the path over
            log.info("replacing the stale device socket %s", self.path)
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
            return
        except FileNotFoundError:
            return
        except TimeoutError:
            pass  # a full backlog: someone is listening, just busy
        except OSError as exc:
            raise IpcError(
                f"cannot check whether {self.path} is in use ({exc.strerror}); "
                "remove it if no device is running."
            ) from None
        finally:
            probe.close()
        raise IpcError(
            f"another retrotread device is already running on {self.path}; "
            "stop it (systemctl stop retrotread-device) before starting another."
        )

    def _remove_socket_file(self) -> None:
        try:
            # another device may have replaced the file after we were declared stale
            if os.lstat(self.path).st_ino == self._inode:
                self.path.unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.warning("could not remove the device socket %s: %s", self.path, exc)

    def _accept_loop(self) -> None:
        assert self._listener is not None and self._wake is not None
        with selectors.DefaultSelector() as selector:
            selector.register(self._listener, selectors.EVENT_READ)
            selector.register(self._wake[0], selectors.EVENT_READ)
            while not self._stopping.is_set():
                selector.select()
                if self._stopping.is_set():
                    return
                try:
                    conn, _ = self._listener.accept()
                except BlockingIOError:
                    continue
                except OSError as exc:  # out of file descriptors: back off, keep serving
                    log.warning("device socket: accept failed: %s", exc)
                    self._stopping.wait(0.1)
                    continue
                self._admit(conn)

    def _admit(self, conn: socket.socket) -> None:
        uid = peer_uid(conn)
        with self._lock:
            theirs = sum(1 for other, _ in self._clients.values() if other == uid)
            if len(self._clients) >= self.max_clients:
                sentence = (
                    f"the device already serves {self.max_clients} clients; close one, retry."
                )
            elif uid is not None and theirs >= self.per_user:
                sentence = (
                    f"this user already holds {theirs} of the device's {self.max_clients} "
                    "connections, the most one user may; close one, retry."
                )
            else:
                sentence = ""
                thread = threading.Thread(
                    target=self._serve_client, args=(conn,), name="ipc-client", daemon=True
                )
                self._clients[conn] = (uid, thread)
        if sentence:
            log.warning("device socket: refusing a client (uid %s): %s", uid, sentence)
            conn.settimeout(0.1)
            with contextlib.suppress(OSError):
                conn.sendall(encode_line(error_reply(sentence)))
            conn.close()
            return
        thread.start()

    def _serve_client(self, conn: socket.socket) -> None:
        try:
            self._converse(conn)
        except Exception:  # a bug while serving one client must never reach the others
            log.exception("device socket: a client connection failed")
        finally:
            with self._lock:
                self._clients.pop(conn, None)
            conn.close()

    def _converse(self, conn: socket.socket) -> None:
        pending = bytearray()
        skipping = False  # inside the tail of an oversized line, already answered
        # until this, a line is due: the first one, or the rest of one begun (a client that
        # trickles a byte at a time cannot hold its slot for longer than this)
        line_due: float | None = time.monotonic() + self.request_timeout_s
        while not self._stopping.is_set():
            if line_due is None:
                conn.settimeout(self.idle_timeout_s)
            else:
                conn.settimeout(max(0.001, line_due - time.monotonic()))
            try:
                chunk = conn.recv(8192)
            except TimeoutError:
                why = "between requests" if line_due is None else "without a complete request"
                log.info("device socket: closing a connection left idle %s", why)
                return
            except OSError:
                return
            if not chunk:
                return  # the client left; a half-sent line is simply dropped
            pending += chunk
            while not self._stopping.is_set():
                end = pending.find(b"\n")
                if end < 0:
                    if len(pending) > MAX_LINE_BYTES + 1:  # +1: room for a "\r"
                        pending.clear()
                        if not skipping:
                            skipping = True
                            if not self._send(conn, error_reply(TOO_LONG)):
                                return
                    break
                line = bytes(pending[: end + 1])
                del pending[: end + 1]
                line_due = None
                if skipping:
                    skipping = False
                    continue
                try:
                    request = parse_request(line)
                except RequestError as exc:
                    reply = error_reply(str(exc))
                else:
                    if request.cmd is Command.SUBSCRIBE:
                        self._stream(conn)
                        return
                    reply = self._answer(request)
                if not self._send(conn, reply):
                    return
            if (pending or skipping) and line_due is None:
                line_due = time.monotonic() + self.request_timeout_s

    def _answer(self, request: Request) -> dict[str, Any]:
        if request.cmd is Command.STATUS:
            return self._status_line()
        try:
            reply = self._handle(request)
            if not isinstance(reply, dict):
                raise TypeError(f"handle() returned {type(reply).__name__}, not dict")
        except Exception:
            log.exception("device socket: %s failed", request.cmd.value)
            return error_reply(f'the device could not run "{request.cmd}"; {_FAILED}')
        return {"ok": True, **reply}

    def _status_line(self) -> dict[str, Any]:
        try:
            status = self._status()
            if status is None:
                raise ValueError("no status yet")  # the daemon answers only once it has one
            snapshot: dict[str, Any] = dict(status)
        except Exception:
            log.exception("device socket: status() failed")
            return error_reply(f"the device could not read its status; {_FAILED}")
        snapshot.pop("ok", None)
        return {"ok": True, **snapshot}

    def _stream(self, conn: socket.socket) -> None:
        due = time.monotonic()
        while not self._stopping.is_set():
            if not self._send(conn, self._status_line()):
                return
            due += self.stream_interval_s
            now = time.monotonic()
            if due < now:
                due = now  # after a slow send, resume the beat instead of bursting to catch up
            if self._stopping.wait(due - now):
                return

    def _send(self, conn: socket.socket, message: dict[str, Any]) -> bool:
        """Send one line; False when the client is gone or stopped reading (drop it)."""
        try:
            data = encode_line(message)
        except (TypeError, ValueError):
            log.exception("device socket: a reply cannot be sent as JSON")
            data = encode_line(error_reply(f"the device built a reply that is not JSON; {_FAILED}"))
        conn.settimeout(self.send_timeout_s)
        try:
            conn.sendall(data)
        except TimeoutError:
            log.warning("device socket: dropping a client that stopped reading")
            return False
        except OSError:
            return False
        return True
