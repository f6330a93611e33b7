"""The live page of a treadmill with a CSAFE console, on a phone (360 px), in a real browser:
the console's machine state, the soft stop's window in the warning banner in place of a
countdown and the console link's timeouts on the health line, all drawn by live.js from the
stream as the status changes, and the console's row gone when no console is read.

The dashboard runs on a real waitress server against a real device socket whose status the
test sets; the statuses are the real Controller's, driven in virtual time. The console stays
free of errors and no page breaks the Content-Security-Policy (conftest checks it).
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browsing import Visit, open_page
from support.console_walk import CONSOLE_CONFIG, LINK_WELL, console_walk, with_health

from device.config.model import Config
from device.core.controller import Controller
from device.history.store import Store
from device.ipc.server import DeviceSocket
from web import create_app
from web.hub import close_hub
from web.serve import serve

pytestmark = pytest.mark.browser

WITHIN_MS = 10_000  # the stream sends each status within a second; a failure, not a timing
PHONE_PX = 360


class Device:
    """A device socket serving whatever status the test sets, as the daemon serves its own."""

    def __init__(self, path: Path, status: dict[str, Any]) -> None:
        self.status = status
        self.socket = DeviceSocket(
            path, handle=lambda request: {"status": dict(self.status)}, status=self.snapshot
        )
        self.socket.start()

    def snapshot(self) -> dict[str, Any]:
        return dict(self.status)


@pytest.fixture(scope="module")
def console_site() -> Iterator[tuple[str, Device]]:
    """The dashboard of a console treadmill on a free port, and its device socket."""
    work = Path(tempfile.mkdtemp(dir="/tmp", prefix="rt-console-"))
    Store(work / "history.db").close()
    device = Device(work / "device.sock", with_health(console_walk(), LINK_WELL))
    app = create_app(
        CONSOLE_CONFIG,
        socket_path=str(work / "device.sock"),
        db_path=str(work / "history.db"),
        state_dir=str(work / "state"),
    )
    server = serve(app, listen="127.0.0.1:0", threads=8)
    thread = threading.Thread(target=server.run, name="console-web", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.port}/", device
    finally:
        server.close()
        thread.join(timeout=5)
        close_hub(app)
        device.socket.close()
        shutil.rmtree(work, ignore_errors=True)


def text_becomes(visit: Visit, element_id: str, text: str) -> None:
    visit.page.wait_for_function(
        "([id, text]) => document.getElementById(id).textContent.trim() === text",
        arg=[element_id, text],
        timeout=WITHIN_MS,
    )


def test_a_phone_follows_the_console_through_a_soft_stop(browser, console_site) -> None:
    url, device = console_site
    phone = open_page(browser, url, width=PHONE_PX, height=740)
    page = phone.page
    page.wait_for_function(
        "() => document.querySelector('#connection').textContent.includes('live')",
        timeout=WITHIN_MS,
    )
    assert page.locator("#console-row").is_visible()
    assert page.locator("#console").inner_text().strip() == "in use, sessions follow it"
    assert page.locator("#health").inner_text().strip() == "all good"

    # over the cap past the grace: the console is sent SetSpeed, and a poll timed out twice
    device.status = with_health(console_walk(over_kmh=3.5), {**LINK_WELL, "timeouts": 2})
    text_becomes(phone, "warning-text", "Slow down: slowing the belt (SetSpeed)")
    assert page.locator("#warning-banner").is_visible()
    assert "stopping in" not in page.locator("#warning-banner").inner_text()
    assert page.locator("#message").inner_text().strip() == (
        "Over the 2.0 km/h cap: the treadmill is slowing the belt to 2.0 km/h."
    )
    text_becomes(phone, "health", "console: 2 timeouts")
    assert "trouble" in (page.locator("#health-row").get_attribute("class") or "")
    width = page.evaluate("() => document.scrollingElement.scrollWidth")
    assert width <= PHONE_PX  # the new row and words fit a phone without sideways scrolling
    phone.screenshot("console-1-phone-slowing")

    # a treadmill read without a console: the row goes, as the stream says
    device.status = with_health(dict(Controller(Config(), t=0.0).status(0.0)), None)
    page.wait_for_function("() => document.getElementById('console-row').hidden", timeout=WITHIN_MS)
    assert not page.locator("#console-row").is_visible()
    assert phone.console_errors == []
