"""`retrotread fleet-demo` as a newcomer runs it: a Mosquitto, five simulated treadmills and
the fleet dashboard in one command, and Ctrl-C leaves nothing behind."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.mosquitto import require_mosquitto
from support.ports import free_port
from support.waiting import wait_until

from device.sim.fleet_demo import ROUTINES, find_mosquitto

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
ARGV = [sys.executable, "-m", "device.cli", "fleet-demo"]


@pytest.fixture
def scratch() -> Iterator[Path]:
    """The demo's TMPDIR: short (five Unix sockets live in it) and empty when the demo ends."""
    path = Path(tempfile.mkdtemp(dir="/tmp", prefix="rt-fd-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def fleet(url: str) -> list[dict] | None:
    try:
        with urllib.request.urlopen(url + "/api/fleet", timeout=2) as reply:
            return json.load(reply)["machines"]
    except OSError:
        return None


def mosquittos_started_by(pid: int) -> list[int]:
    """The demo's broker: a mosquitto whose parent is the demo."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        name, rest = stat[stat.index("(") + 1 : stat.rindex(")")], stat[stat.rindex(")") + 2 :]
        if name == "mosquitto" and int(rest.split()[1]) == pid:
            found.append(int(entry.name))
    return found


def is_running(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def test_five_treadmills_appear_on_the_fleet_page_and_ctrl_c_stops_them_and_the_broker(
    scratch: Path, tmp_path: Path
) -> None:
    require_mosquitto()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    out_path, err_path = tmp_path / "fleet-demo.out", tmp_path / "fleet-demo.err"
    argv, env = [*ARGV, "--port", str(port)], {**os.environ, "TMPDIR": str(scratch)}
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        demo = subprocess.Popen(argv, cwd=REPO, env=env, stdout=out, stderr=err)
    try:

        def five_online_with_statuses() -> list[dict] | None:
            assert demo.poll() is None, err_path.read_text()
            machines = fleet(url) or []
            ready = [m for m in machines if m["online"] and m["status"] is not None]
            return machines if len(ready) == 5 else None

        machines = wait_until(
            five_online_with_statuses, within_s=30, what="five treadmills online",
            showing=lambda: fleet(url),
        )  # fmt: skip
        assert sorted(m["machine_id"] for m in machines) == [r.machine_id for r in ROUTINES]
        assert {m["site"] for m in machines} == {"demo"}
        brokers = mosquittos_started_by(demo.pid)
        assert len(brokers) == 1, brokers

        demo.send_signal(signal.SIGINT)  # Ctrl-C
        assert demo.wait(timeout=30) == 0, err_path.read_text()
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait(timeout=5)

    said, complained = out_path.read_text(), err_path.read_text()
    assert f"fleet: http://127.0.0.1:{port}/" in said
    assert re.search(r"admin password \(sessions\): \S{8,}", said)
    assert "Traceback" not in complained, complained
    assert "outputs safe, broker stopped" in complained
    assert complained.count("stopped; outputs safe") >= 5  # each daemon's last tick
    assert not any(is_running(pid) for pid in brokers)
    assert list(scratch.iterdir()) == []  # histories, sockets, broker and fleet files gone


def test_without_mosquitto_it_says_in_one_sentence_how_to_install_it(scratch: Path) -> None:
    env = {**os.environ, "PATH": str(scratch), "TMPDIR": str(scratch)}
    done = subprocess.run(ARGV, cwd=REPO, env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode == 1
    assert done.stdout == ""
    (sentence,) = done.stderr.splitlines()
    assert "sudo apt install mosquitto" in sentence and sentence.endswith(".")
    assert list(scratch.iterdir()) == []


def test_debians_mosquitto_in_sbin_is_found_from_the_bin_on_path(tmp_path: Path) -> None:
    # Debian installs /usr/sbin/mosquitto, and an ordinary user's PATH has /usr/bin only
    (tmp_path / "bin").mkdir()
    (tmp_path / "sbin").mkdir()
    broker = tmp_path / "sbin" / "mosquitto"
    broker.write_text("#!/bin/sh\n")
    broker.chmod(0o755)
    assert find_mosquitto(str(tmp_path / "bin")) == str(broker)
    assert find_mosquitto(str(tmp_path / "elsewhere")) is None


def walked(machine_id: str) -> list[dict]:
    """One round of a treadmill's routine in virtual time, through the daemon's own core."""
    from device.history.store import Store
    from device.sim.scenario import parse_scenario
    from device.sim.simulate import Simulation

    (routine,) = [r for r in ROUTINES if r.machine_id == machine_id]
    scenario = parse_scenario({"step": routine.steps}, source=machine_id)
    return Simulation(scenario, Store(":memory:")).run().events


def test_treadmill_3_goes_over_the_cap_every_round_and_is_stopped() -> None:
    kinds = [event["kind"] for event in walked("treadmill-3")]
    assert kinds.index("overspeed_warning") < kinds.index("enforced_stop")
    # after the stop the walker starts again slowly and ends the session with a long press
    (ended,) = [e for e in walked("treadmill-3") if e["kind"] == "session_ended"]
    assert ended["reason"] == "button"


def test_treadmill_4_slows_down_in_time_and_its_warning_clears() -> None:
    kinds = [event["kind"] for event in walked("treadmill-4")]
    assert kinds.index("overspeed_warning") < kinds.index("overspeed_cleared")
    assert "enforced_stop" not in kinds and "session_paused" in kinds


def test_the_other_walkers_stay_under_their_caps_and_end_their_sessions() -> None:
    for machine_id in ("treadmill-1", "treadmill-2", "treadmill-5"):
        events = walked(machine_id)
        kinds = [event["kind"] for event in events]
        assert "overspeed_warning" not in kinds and "enforced_stop" not in kinds, machine_id
        (ended,) = [e for e in events if e["kind"] == "session_ended"]
        assert ended["reason"] == "button", machine_id
    forward = [e for e in walked("treadmill-2") if e["kind"] == "session_ended"]
    assert forward[0]["forward_s"] > 60 and forward[0]["backward_s"] == 0
