"""`retrotread demo` as a newcomer runs it, in a subprocess, and its daemon's statuses as the
dashboard streams them.

    demo = start_demo(tmp_path, sock, "--console", "csafe", "--duration", "8")
    statuses = follow(sock, demo, until=lambda seen: len(seen) > 3, within_s=8.0)
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from device.ipc.client import DeviceClient, DeviceOffline

from .ports import free_port

REPO = Path(__file__).resolve().parents[2]
Status = dict[str, Any]


def start_demo(tmp_path: Path, sock: Path, *args: str, port: int | None = None) -> subprocess.Popen:
    """`retrotread demo ARGS` with its socket at `sock` and its dashboard on `port` (a free
    one when not given); its history is tmp_path/demo.db and what it says goes to
    tmp_path/demo.out and demo.err."""
    argv = [sys.executable, "-m", "device.cli", "demo", *args]
    argv += ["--db", str(tmp_path / "demo.db"), "--socket", str(sock)]
    argv += ["--port", str(free_port() if port is None else port)]
    with open(tmp_path / "demo.out", "wb") as out, open(tmp_path / "demo.err", "wb") as err:
        return subprocess.Popen(argv, cwd=REPO, stdout=out, stderr=err)


def follow(sock: Path, demo: subprocess.Popen, *, until: Callable[[list[Status]], bool],
           within_s: float) -> list[Status]:  # fmt: skip
    """The daemon's statuses, as the dashboard streams them, until `until(statuses)`, the
    demo's end, or the deadline."""
    client = DeviceClient(sock, timeout=2.0)
    seen: list[Status] = []
    stream = None
    deadline = time.monotonic() + within_s
    try:
        while time.monotonic() < deadline and demo.poll() is None and not until(seen):
            if stream is None:
                try:
                    stream = client.subscribe()
                except DeviceOffline:  # the daemon is still starting
                    time.sleep(0.05)
                    continue
            try:
                seen.append(next(stream))
            except DeviceOffline:  # the demo's --duration ran out
                break
    finally:
        client.close()
    return seen
