"""The first steps in a real browser at phone width (360 x 740), against `retrotread demo`: the
demo's walk-up guest gets the first-session card on the live page, its link opens the guide,
and the guide and the plan read without sideways scrolling; a home treadmill's member (a
second demo, [program] single_user = true) sees the plan's chart. No console errors, and
conftest's no_csp_violation checks the Content-Security-Policy after every test.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from browsing import Demo, Visit, open_page, running, take_over

from device.config.load import format_config
from device.config.model import Config, ProgramConfig

pytestmark = pytest.mark.browser

PHONE = {"width": 360, "height": 740}
WAIT_MS = 20_000


@pytest.fixture(scope="module")
def member_demo() -> Iterator[Demo]:
    """`retrotread demo` on a home treadmill: its config file (the demo reads it beside its
    history, <db stem>-config.toml) makes the one walker the member "ana"."""
    work = Path(tempfile.mkdtemp(dir="/tmp", prefix="rt-browser-member-"))
    member = Config(program=ProgramConfig(single_user=True, profile="ana"))
    (work / "demo-config.toml").write_text(format_config(member, source="the plan's test"))
    with running(
        "demo", "--db", str(work / "demo.db"), "--socket", str(work / "device.sock"),
        work=work, db=work / "demo.db", ready="/healthz", password_for="settings", within_s=20,
    ) as demo:  # fmt: skip
        yield demo


def scroll_width(visit: Visit) -> int:
    return visit.page.evaluate("() => document.scrollingElement.scrollWidth")


def test_the_demos_guest_gets_the_card_and_its_link_opens_the_guide(browser, demo: Demo) -> None:
    visit = open_page(browser, demo.url + "/", **PHONE)
    page = visit.page
    take_over(visit)  # the card is for before a session: the demo's walker has started one
    card = page.locator("[data-testid=first-session]")
    card.wait_for(state="visible", timeout=WAIT_MS)
    assert "10 steps forward, then 9 steps back" in card.inner_text()
    assert scroll_width(visit) <= PHONE["width"]
    visit.screenshot("guide-1-live-card-360px")
    card.locator("[data-testid=read-guide]").click()
    page.wait_for_url(demo.url + "/guide", timeout=WAIT_MS)
    page.locator("h1", has_text="Your first backward session").wait_for(timeout=WAIT_MS)
    assert "2.3 km/h" in page.locator("[data-testid=guide-start]").inner_text()
    assert scroll_width(visit) <= PHONE["width"]
    visit.screenshot("guide-2-guide-360px")
    assert visit.console_errors == []


def test_a_guest_reads_the_plan_on_a_phone_with_the_members_note(browser, demo: Demo) -> None:
    visit = open_page(browser, demo.url + "/", **PHONE)
    page = visit.page
    page.locator("nav a", has_text="Plan").click()
    page.wait_for_url(demo.url + "/plan", timeout=WAIT_MS)
    page.locator("[data-testid=members-only]").wait_for(state="visible", timeout=WAIT_MS)
    assert page.locator("[data-testid=plan-week]").count() == 4
    assert scroll_width(visit) <= PHONE["width"]
    visit.screenshot("guide-3-guest-plan-360px")
    assert visit.console_errors == []


def test_a_members_plan_shows_the_chart_within_a_phones_width(browser, member_demo: Demo) -> None:
    visit = open_page(browser, member_demo.url + "/plan", **PHONE)
    page = visit.page
    chart = page.locator("[data-testid=plan-chart] svg")
    chart.wait_for(state="visible", timeout=WAIT_MS)
    box = chart.bounding_box()
    assert box is not None and 200 <= box["width"] <= PHONE["width"] and box["height"] > 100
    assert page.locator("[data-testid=plan-chart] rect.bar").count() == 4
    assert page.locator("[data-testid=members-only]").count() == 0
    assert scroll_width(visit) <= PHONE["width"]
    visit.screenshot("guide-4-member-plan-360px")
    assert visit.console_errors == []
