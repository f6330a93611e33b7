"""Serving the dashboard with waitress, and the `retrotread web` command.

Sizing: waitress runs each request on a worker thread from a fixed pool, and an SSE stream is
a request that lasts as long as its page is open. A gym may have 20 people watching one
treadmill, so 20 workers are taken by streams; THREADS = 48 leaves the live page room to grow
to MAX_STREAMS (40, then new streams get 503 and the browser retries) while 8 workers stay free
for pages, history and the control buttons. Idle threads cost a Pi nothing but memory for
their stacks. Streams write at least every PING_EVERY_S (2 s), so CHANNEL_TIMEOUT_S only ever
closes idle keep-alive connections (waitress never closes a connection mid-request).

Request bodies are bounded at web.protect.MAX_BODY_BYTES (64 KiB) here, before the app runs:
waitress would otherwise buffer up to 1 GiB per request, in memory and then on disk.
"""

from __future__ import annotations

import contextlib
import errno
import gc
import logging
import signal
import socket
import sys
import threading
from typing import Any

from flask import Flask
from waitress import wasyncore
from waitress.server import create_server

from device.errors import RetrotreadError
from web.protect import MAX_BODY_BYTES

log = logging.getLogger("retrotread.web")

THREADS = 48
RESERVED_THREADS = 8  # kept free of SSE streams for pages, history and control requests
CHANNEL_TIMEOUT_S = 60
STOP_WITHIN_S = 5.0


class WebServeError(RetrotreadError):
    """The dashboard cannot listen where it was asked to; str() is one sentence."""


def parse_listen(listen: str, *, port: int | None = None) -> tuple[str, int]:
    """("0.0.0.0", 8080) from "0.0.0.0:8080" ("[::]:8080" gives "::"); `port` overrides the
    file's port. WebServeError when the value is not HOST:PORT."""
    host, colon, port_text = listen.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not colon or not host or not port_text.isdigit():
        raise WebServeError(
            f'[web] listen = "{listen}" is not HOST:PORT; write it like "0.0.0.0:8080".'
        )
    chosen = int(port_text) if port is None else port
    if not 0 <= chosen <= 65535:
        raise WebServeError(f"port {chosen} is out of range; choose a port from 1 to 65535.")
    return host, chosen


def _listen_socket(host: str, port: int) -> socket.socket:
    where = f"{host}:{port}" if ":" not in host else f"[{host}]:{port}"
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror:
        raise WebServeError(
            f"cannot listen on {where}: {host} is not an address of this machine; "
            'set [web] listen to e.g. "0.0.0.0:8080".'
        ) from None
    sock = socket.socket(family, kind, proto)
    # a restarted dashboard must not wait for the old connections' TIME_WAIT to pass
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            sentence = (
                f"port {port} is already in use on {host}, perhaps by another retrotread web; "
                "stop that program or choose another port with --port or [web] listen."
            )
        elif exc.errno == errno.EACCES:
            sentence = (
                f"permission denied listening on port {port}; ports below 1024 need "
                "privileges, so choose e.g. --port 8080."
            )
        elif exc.errno == errno.EADDRNOTAVAIL:
            sentence = (
                f"cannot listen on {where}: {host} is not an address of this machine; "
                'set [web] listen to e.g. "0.0.0.0:8080".'
            )
        else:
            sentence = f"cannot listen on {where} ({exc.strerror or exc}); check [web] listen."
        raise WebServeError(sentence) from None
    return sock


class WebServer:
    """A waitress server for the dashboard: call run() on one thread (it returns after
    close()), close() from any thread or a signal handler. Made by serve()."""

    def __init__(self, app: Flask, server: Any) -> None:
        self.app = app
        self._server = server
        self._map: dict[int, Any] = server._map
        self._stopping = threading.Event()
        self._finished = threading.Event()
        self._runner: int | None = None  # the thread id inside run()
        self.host: str = server.effective_host
        self.port: int = server.effective_port

    @property
    def url(self) -> str:
        """Where a browser on this machine finds the dashboard."""
        host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(self.host, self.host)
        return f"http://[{host}]:{self.port}/" if ":" in host else f"http://{host}:{self.port}/"

    def run(self) -> None:
        """Serve until close()."""
        self._runner = threading.get_ident()
        poll = wasyncore.poll2 if self._server.adj.asyncore_use_poll else wasyncore.poll
        try:
            while not self._stopping.is_set() and self._map:
                poll(self._server.adj.asyncore_loop_timeout, self._map)
        finally:
            self._shut_down()

    def close(self) -> None:
        """Stop serving: end the live streams, close every connection, let running requests
        finish (up to STOP_WITHIN_S). Safe to call twice and from a signal handler."""
        first = not self._stopping.is_set()
        self._stopping.set()
        if self._runner is None:
            if first:
                self._shut_down()  # never ran: just release the port and the threads
            return
        if self._finished.is_set():
            return
        with contextlib.suppress(OSError):  # the trigger closes with the server
            self._server.pull_trigger()  # wakes run()'s poll at once
        if threading.get_ident() != self._runner:
            self._finished.wait(STOP_WITHIN_S + 1.0)

    def _shut_down(self) -> None:
        from web.hub import close_hub

        if self._finished.is_set():
            return
        close_hub(self.app)  # SSE streams see the hub closed and return, freeing their threads
        wasyncore.close_all(self._map)  # the listening socket and every connection
        self._server.task_dispatcher.shutdown(timeout=STOP_WITHIN_S)
        self._finished.set()


def serve(app: Flask, *, listen: str, port: int | None = None, threads: int = THREADS) -> WebServer:
    """A WebServer for `app` listening on `listen` (HOST:PORT, as in [web] listen; `port`
    overrides its port, 0 picks a free one). WebServeError, one sentence, when it cannot."""
    host, chosen = parse_listen(listen, port=port)
    sock = _listen_socket(host, chosen)
    app.config.setdefault("RETROTREAD_MAX_STREAMS", max(1, threads - RESERVED_THREADS))
    server = create_server(
        app,
        sockets=[sock],
        threads=threads,
        channel_timeout=CHANNEL_TIMEOUT_S,
        # refused with 413 as soon as the headers announce more (waitress refuses a length
        # >= this, hence the + 1), or once a chunked body grows past it: never buffered
        max_request_body_size=MAX_BODY_BYTES + 1,
        ident="retrotread",
    )
    return WebServer(app, server)


def freeze_start_up() -> None:
    """Keep what start-up made (modules, templates, the app) out of the collector's walks.

    It all lives as long as the process, yet every full collection walked it again: the JSON
    of a four-hour session (72,000 values, 14,400 row tuples on the way) set one off and paid
    30-40 ms for it at its tail, a third of the answer's budget. gc.freeze() moves those
    objects to the permanent generation; what requests make is collected as before."""
    gc.collect()  # start-up's own garbage is freed, not frozen
    gc.freeze()


def run_web(
    config_path: str | None,
    *,
    port: int | None = None,
    socket_path: str | None = None,
    db_path: str | None = None,
) -> int:
    """The `retrotread web` command: 0 after SIGTERM or Ctrl-C, 2 for a bad config, 1 when it
    cannot listen or keep its secret key. Errors are one sentence on stderr."""
    from device.config.kinds import ConfigError
    from device.config.load import BUILT_IN, load_config
    from web import create_app

    try:
        config, source = load_config(config_path)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    try:
        app = create_app(
            config,
            config_path=None if source == BUILT_IN else source,
            socket_path=socket_path,
            db_path=db_path,
        )
        server = serve(app, listen=config.web.listen, port=port)
    except RetrotreadError as exc:  # the secret key (StateDirError) or the port (WebServeError)
        print(exc, file=sys.stderr)
        return 1

    def stop(signum: int, frame: object) -> None:
        log.info("stopping the dashboard (%s)", signal.Signals(signum).name)
        server.close()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    freeze_start_up()
    where = f"{server.host}:{server.port}"
    print(f"retrotread web: serving {server.url} (listening on {where}); Ctrl-C stops.", flush=True)
    server.run()
    return 0
