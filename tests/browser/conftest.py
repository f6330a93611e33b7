"""A real browser (Debian's Chromium, driven by Playwright) against `retrotread demo`.

Never downloads a browser: Playwright launches /usr/bin/chromium. Outside CI a machine
without Chromium skips these tests with the reason; under CI=true they fail instead, because
.ci/run installs Chromium and a browser that cannot start there is a broken build.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from browsing import VISITS, Demo, running

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
    with running(
        "demo", "--db", str(work / "demo.db"), "--socket", str(work / "device.sock"),
        work=work, db=work / "demo.db", ready="/healthz", password_for="settings", within_s=20,
    ) as demo:  # fmt: skip
        yield demo


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
