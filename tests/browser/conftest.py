"""A real browser (Debian's Chromium, driven by Playwright) against `retrotread demo`.

Never downloads a browser: Playwright launches /usr/bin/chromium. Outside CI a machine
without Chromium skips these tests with the reason; under CI=true they fail instead, because
.ci/run installs Chromium and a browser that cannot start there is a broken build.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from browsing import REPO, VISITS, Demo
from support.ports import free_port
from support.waiting import wait_until

CHROMIUM = "/usr/bin/chromium"
# Flags the workplace's headless Chromium needs: no sandbox as root, and no background
# traffic to Google's services on a machine with no network.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
]


@pytest.fixture(scope="module")
def demo() -> Iterator[Demo]:
    """`retrotread demo` on a free port with its own history file and socket."""
    work = Path(tempfile.mkdtemp(dir="/tmp", prefix="rt-browser-"))
    port = free_port()
    log = work / "demo.log"
    argv = [sys.executable, "-m", "device.cli", "demo", "--port", str(port)]
    argv += ["--db", str(work / "demo.db"), "--socket", str(work / "device.sock")]
    with open(log, "wb") as out:
        process = subprocess.Popen(argv, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
    running = Demo(url=f"http://127.0.0.1:{port}", db=work / "demo.db", process=process, log=log)

    def answers() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"the demo exited {process.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(running.url + "/healthz", timeout=1) as reply:
                return reply.status == 200
        except OSError:
            return False

    wait_until(answers, within_s=20, what="the demo to answer", showing=log.read_text)
    found = re.search(r"admin password \(settings\): (\S+)", log.read_text())
    running.password = found.group(1) if found else ""
    yield running
    process.terminate()
    try:
        process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
        shutil.rmtree(work, ignore_errors=True)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import Error, sync_playwright

    with sync_playwright() as playwright:
        try:
            if not os.path.exists(CHROMIUM):
                raise FileNotFoundError(f"{CHROMIUM} is missing (apt-get install chromium)")
            chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        except (Error, FileNotFoundError) as exc:
            if os.environ.get("CI"):
                pytest.fail(f"the browser cannot start under CI: {exc}")
            pytest.skip(f"no browser here: {exc}")
        yield chromium
        chromium.close()


@pytest.fixture(autouse=True)
def no_csp_violation() -> Iterator[None]:
    """Fail the test after which any page (this test's, or a shared one opened in a fixture)
    has a Content-Security-Policy violation not yet answered for."""
    yield
    found = []
    for visit in VISITS:
        with contextlib.suppress(Exception):  # a closed page has nothing more to say
            visit.page.evaluate("() => 0")  # lets the page's pending console messages arrive
        found += visit.csp_violations[visit.csp_checked :]
        visit.csp_checked = len(visit.csp_violations)
    assert found == [], "the pages broke the Content-Security-Policy:\n" + "\n".join(found)
