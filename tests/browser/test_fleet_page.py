"""The fleet page in a real browser, against `retrotread fleet-demo`: what the front desk sees.

Five treadmills on a real Mosquitto, the grid wide (1280 px) and on a phone (390 px): five
tiles, the numbers moving over Server-Sent Events without a reload, and treadmill 3's tile red
while its walker is over the cap (the demo's routine: a warning, then the enforced stop). No
request leaves 127.0.0.1, the console stays free of errors and no page breaks the
Content-Security-Policy (conftest's no_csp_violation checks every page after every test).
Screenshots go to test-artifacts/browser/.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest
from browsing import Demo, Visit, open_page, running
from support.mosquitto import require_mosquitto

pytestmark = pytest.mark.browser

SLOW_MS = 30_000  # the walkers and the daemons' grace work in real time
# treadmill 3 goes over the cap about 12 s into each round and stays red for a minute after
# its enforced stop; a round is 92 s, so a red tile comes within one round wherever we join
RED_WITHIN_MS = 100_000
TILES = "[data-testid=tile]"
PUSHER = "[data-testid=tile][data-key='demo/treadmill-3']"


@pytest.fixture(scope="module")
def fleet_demo() -> Iterator[Demo]:
    """`retrotread fleet-demo` on a free port, its temporary files in a folder of our own."""
    require_mosquitto()
    work = Path(tempfile.mkdtemp(dir="/tmp", prefix="rt-fleet-browser-"))
    with running(
        "fleet-demo", work=work, db=work, ready="/api/fleet", password_for="sessions",
        within_s=30, env={**os.environ, "TMPDIR": str(work)}, clean_exit=True,
    ) as demo:  # fmt: skip
        yield demo


@pytest.fixture(scope="module")
def wide(browser, fleet_demo: Demo) -> Visit:
    return open_page(browser, fleet_demo.url + "/", width=1280, height=800)


def five_tiles(visit: Visit) -> None:
    visit.page.wait_for_function(
        """n => [...document.querySelectorAll('[data-testid=tile]')]
                 .filter(t => t.querySelector('.tile-speed').textContent.includes('km/h'))
                 .length === n""",
        arg=5,
        timeout=SLOW_MS,
    )


def assert_stayed_local(visit: Visit) -> None:
    hosts = {urlparse(url).hostname for url in visit.requests if url.startswith("http")}
    assert hosts == {"127.0.0.1"}, visit.requests


def test_the_wide_grid_shows_five_treadmills_with_their_speeds(wide: Visit) -> None:
    five_tiles(wide)
    names = wide.page.locator(f"{TILES} .tile-name").all_inner_texts()
    assert sorted(names) == [f"Treadmill {n}" for n in range(1, 6)]
    availability = wide.page.locator(f"{TILES} .tile-availability").all_inner_texts()
    assert all(text.startswith("online") for text in availability), availability
    wide.screenshot("fleet-1-wide")


def test_live_updates_arrive_over_sse_without_a_reload(wide: Visit) -> None:
    page = wide.page
    five_tiles(wide)
    page.evaluate("() => { window.__samePage = true; }")  # gone if the page reloaded
    first = page.locator(f"{TILES} .tile-speed").all_inner_texts()
    # the walkers change their belts every few seconds; the server pushes each change
    page.wait_for_function(
        """before => {
             const now = [...document.querySelectorAll('[data-testid=tile] .tile-speed')]
               .map(s => s.textContent);
             return now.length === before.length && now.some((s, i) => s !== before[i]);
           }""",
        arg=first,
        timeout=SLOW_MS,
    )
    assert page.evaluate("() => window.__samePage === true")
    assert any(url.endswith("/api/fleet/stream") for url in wide.requests), wide.requests
    assert page.locator("#broker-banner").is_hidden()


def test_a_treadmill_over_its_cap_turns_its_tile_red(wide: Visit) -> None:
    page = wide.page
    page.locator(f"{PUSHER}.tile-alert").wait_for(timeout=RED_WITHIN_MS)
    said = page.locator(f"{PUSHER} .tile-alert-text").inner_text().strip()
    assert said, "a red tile says why"
    # the others walk within their caps; treadmill 4's moment over it keeps its tile red for a
    # minute too (the grid holds an alarm that long)
    reds = page.locator(f"{TILES}.tile-alert").count()
    assert 1 <= reds <= 2
    wide.screenshot("fleet-2-red-tile")
    assert wide.console_errors == []
    assert_stayed_local(wide)


def test_on_a_phone_the_grid_fits_the_screen(browser, fleet_demo: Demo) -> None:
    phone = open_page(browser, fleet_demo.url + "/", width=390, height=844)
    five_tiles(phone)
    page = phone.page
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 390
    # read in one go: each pushed update redraws every tile
    edges = page.evaluate(
        """() => [...document.querySelectorAll('[data-testid=tile]')]
                   .map(t => t.getBoundingClientRect()).map(r => [r.left, r.right])"""
    )
    assert len(edges) == 5 and all(left >= 0 and right <= 390 for left, right in edges), edges
    speed_px = page.evaluate(
        "() => parseFloat(getComputedStyle(document.querySelector('.tile-speed')).fontSize)"
    )
    assert speed_px >= 16  # readable at arm's length at the front desk
    phone.screenshot("fleet-3-phone-390px")
    assert phone.console_errors == []
    assert_stayed_local(phone)
