"""A real Mosquitto broker for a test: Debian's `mosquitto` on a free port of 127.0.0.1 (never
1883), with its own config file, polled until it accepts connections, killed and restarted at
the test's word (a broker that goes down mid-session and comes back).

`Broker.start(extra=...)` adds lines to its mosquitto.conf: an ACL, a password file, a bridge.
Without `extra` it lets anonymous clients in, as a test broker on loopback may.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from .ports import free_port  # relative: wherever support sits on the path

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
START_WITHIN_S = 10.0


def have_mosquitto() -> bool:
    return Path(MOSQUITTO).exists()


def require_mosquitto() -> None:
    """Fail in CI (it installs mosquitto), skip with one line elsewhere, when it is missing."""
    if not have_mosquitto():
        if os.environ.get("CI"):
            pytest.fail("mosquitto is not installed; .ci/run installs it (apt install mosquitto)")
        pytest.skip("mosquitto is not installed (apt install mosquitto)")


@dataclass
class Broker:
    """One Mosquitto process and what it needs to run again on the same port."""

    home: Path
    port: int = field(default_factory=free_port)
    extra: str = "allow_anonymous true\n"
    # keep what it accepted (queued QoS 1 messages, persistent sessions) across a restart
    persistent: bool = False
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    @property
    def log(self) -> str:
        path = self.home / "mosquitto.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def start(self) -> Broker:
        conf = self.home / "mosquitto.conf"
        conf.write_text(
            f"listener {self.port} 127.0.0.1\n"
            + (
                f"persistence true\npersistence_location {self.home}/\nautosave_interval 1\n"
                if self.persistent
                else "persistence false\n"
            )
            + f"log_dest file {self.home / 'mosquitto.log'}\n"
            "log_type error\nlog_type warning\nlog_type notice\n"
            # as root (CI) Mosquitto drops to user "mosquitto", who cannot read the test's
            # private tmp directory; stay who we are
             + ("user root\n" if os.geteuid() == 0 else "") + self.extra
        )
        self.process = subprocess.Popen(
            [MOSQUITTO, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + START_WITHIN_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"mosquitto exited at start:\n{self.log}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"mosquitto did not listen on {self.port} within {START_WITHIN_S} s")

    def stop(self) -> None:
        """Kill it, as a crash or a power cut would (no clean disconnects)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=5)
        self.process = None


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    """A running Mosquitto that lets anonymous clients in; stopped after the test."""
    require_mosquitto()
    running = Broker(tmp_path).start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def gym_broker(tmp_path: Path) -> Iterator[Broker]:
    """The gym's Mosquitto as systemd/mosquitto/retrotread.conf runs it: persistence on, so
    the fleet's subscription and what is queued for it outlive a crash of the broker."""
    require_mosquitto()
    home = tmp_path / "gym-broker"
    home.mkdir()
    running = Broker(home, persistent=True).start()
    try:
        yield running
    finally:
        running.stop()
