"""The dashboard in a real browser, against `retrotread demo`: what a newcomer sees.

One story, in order (the demo is one treadmill, so the steps share it): the live numbers
move; the simulator panel takes over the treadmill; a login; a start from the page; an
over-speed from the panel brings the red countdown banner and then the enforced stop; the
session ends and appears in the history with its chart. Throughout, no request leaves
127.0.0.1, the console stays free of errors and no page breaks the Content-Security-Policy
(conftest's no_csp_violation checks every page after every test). Screenshots go to
test-artifacts/browser/.
"""

from __future__ import annotations

import re
from urllib.parse import urlparse

import pytest
from browsing import SLOW_MS, Demo, Visit, open_page, panel_belt, take_over, wait_for_state
from playwright.sync_api import Error as PlaywrightError

from web.protect import CONTENT_SECURITY_POLICY

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def live(browser, demo: Demo) -> Visit:
    return open_page(browser, demo.url + "/")


def test_the_live_numbers_move(live: Visit) -> None:
    page = live.page
    page.wait_for_function(
        "() => document.querySelector('#connection').textContent.includes('live')",
        timeout=SLOW_MS,
    )
    # the demo's walker sets the belt to 1 km/h two seconds in: the big number follows
    page.wait_for_function(
        "() => parseFloat(document.querySelector('#speed').textContent) > 0.5", timeout=SLOW_MS
    )
    assert page.locator("#mode").inner_text().strip().upper() in ("BACKWARD", "FORWARD")
    live.screenshot("1-live-moving")


def test_the_simulator_panel_takes_over_and_a_start_from_the_page_begins_a_session(
    live: Visit, demo: Demo
) -> None:
    page = live.page
    take_over(live)  # the routine stops, the belt stops, its session ends
    # the page's controls need the admin password the demo printed
    assert demo.password, demo.log.read_text()
    page.goto(demo.url + "/login")
    page.locator("#password").fill(demo.password)
    page.locator("#password").press("Enter")
    page.wait_for_url(re.compile(r"/(\?.*)?$"))
    panel_belt(live, "1.0")
    page.wait_for_function(
        "() => parseFloat(document.querySelector('#speed').textContent) > 0.8", timeout=SLOW_MS
    )
    # the start gate wants the speed from two pulse intervals since the belt stood; until
    # then the page says so under the buttons, and a walker reading it waits that long
    page.locator("[data-testid=start-hint]").wait_for(state="hidden", timeout=SLOW_MS)
    page.locator("[data-testid=control-start]").click()
    try:
        wait_for_state(live, "running")
    except PlaywrightError as missed:
        refused = page.locator("[data-testid=control-error]").inner_text()
        raise AssertionError(f"START from the page was refused: {refused}") from missed
    assert "BACKWARD" in page.locator("#mode").inner_text().upper()
    live.screenshot("2-started-from-the-page")


def test_an_over_speed_from_the_panel_shows_the_countdown_then_the_stop(live: Visit) -> None:
    page = live.page
    panel_belt(live, "4.0")
    banner = page.locator("[data-testid=warning-banner]")
    banner.wait_for(state="visible", timeout=SLOW_MS)
    assert re.search(r"stopping in \d+ s", banner.inner_text(), re.IGNORECASE)
    live.screenshot("3-over-speed-countdown")
    # the grace runs out: the relay cuts the loop, the belt stops, the session pauses
    wait_for_state(live, "paused")
    page.wait_for_function(
        "() => document.querySelector('#message').textContent.includes('Stopped')",
        timeout=SLOW_MS,
    )
    live.screenshot("4-enforced-stop")


def test_the_finished_session_appears_in_the_history_with_its_chart(
    live: Visit, demo: Demo
) -> None:
    page = live.page
    page.locator("[data-testid=control-end]").click()
    wait_for_state(live, "idle")
    page.goto(demo.url + "/history")
    newest = page.locator("table a").first
    newest.wait_for(timeout=SLOW_MS)
    live.screenshot("5-history")
    newest.click()
    page.locator("[data-chart=session] svg").wait_for(timeout=SLOW_MS)
    timeline = page.locator("body").inner_text()
    assert "enforced stop" in timeline.lower()
    live.screenshot("6-session-chart")


def test_no_request_left_this_computer_and_the_console_stayed_clean(live: Visit) -> None:
    hosts = {urlparse(url).hostname for url in live.requests if url.startswith("http")}
    assert hosts == {"127.0.0.1"}, sorted(live.requests)
    assert live.console_errors == []


def test_a_phone_reads_the_live_page_without_sideways_scrolling(browser, demo: Demo) -> None:
    phone = open_page(browser, demo.url + "/", width=360, height=740)
    phone.page.locator("#speed").wait_for()
    width = phone.page.evaluate("() => document.scrollingElement.scrollWidth")
    assert width <= 360
    size = phone.page.evaluate(
        "() => parseFloat(getComputedStyle(document.querySelector('#speed')).fontSize)"
    )
    assert size >= 64  # readable from 3 m
    phone.screenshot("7-phone-360px")
    assert phone.console_errors == []


def test_every_page_is_served_under_the_policy_and_runs_within_it(browser, demo: Demo) -> None:
    visit = open_page(browser, demo.url + "/history")
    page = visit.page
    newest = page.locator("table a").first.get_attribute("href")
    assert newest is not None
    for path in ("/", "/history", newest, "/settings", "/login", "/no-such-page"):
        response = page.goto(demo.url + path)
        assert response is not None
        assert response.headers.get("content-security-policy") == CONTENT_SECURITY_POLICY, path
        assert response.headers.get("x-frame-options") == "DENY", path
        page.wait_for_load_state("load")
    # the scripts did run under the policy: the chart is drawn from its JSON
    page.goto(demo.url + newest)
    page.locator("[data-chart=session] svg").wait_for(timeout=SLOW_MS)
    page.goto(demo.url + "/")
    page.wait_for_function(
        "() => document.querySelector('#connection').textContent.includes('live')",
        timeout=SLOW_MS,
    )
    # the one error: Chromium noting the 404 of /no-such-page, as it should
    assert len(visit.console_errors) == 1 and "404" in visit.console_errors[0]


def test_an_inline_script_is_blocked_and_reported_as_a_violation(browser, demo: Demo) -> None:
    """The check the other tests rely on: what the policy blocks does reach csp_violations."""
    visit = open_page(browser, demo.url + "/login")
    page = visit.page
    page.evaluate(
        """() => {
        const script = document.createElement("script");
        script.textContent = "window.__inlineRan = true";
        document.body.appendChild(script);
        document.body.setAttribute("onclick", "window.__inlineRan = true");
        document.body.click();
    }"""
    )
    page.wait_for_function("() => window.__cspViolations >= 2", timeout=SLOW_MS)
    assert page.evaluate("() => window.__inlineRan === undefined")
    page.evaluate("() => 0")  # the console messages arrive
    assert any("script-src" in text for text in visit.csp_violations), visit.csp_violations
    visit.csp_checked = len(visit.csp_violations)  # answered for: this test wanted them
