"""The first-session guide (/guide) with this treadmill's own numbers, and the card the live
page shows before a walker's first backward session: to every guest, to a member until the
history holds a backward session of theirs, and while the device is offline. Through the real
app on a real history file the daemon's Store wrote (tests/web/conftest.py)."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from html import unescape
from typing import TYPE_CHECKING

import pytest
from flask import Flask
from hypothesis import given
from hypothesis import strategies as st

from device.config.model import BackwardConfig, Config, EnforceConfig, ProgramConfig
from device.core.modes import EndReason, Mode
from device.core.session import Totals
from device.history.store import Store
from web.guide.rules import device_rules

if TYPE_CHECKING:  # pytest imports each conftest under the same name: never import it
    from conftest import FakeDevice

MEMBER = Config(program=ProgramConfig(single_user=True, profile="ana"))
FORBIDDEN = re.compile(r"100\s+steps|1\s?000\s+(steps\s+)?forward|ten times|10\s*x", re.I)


def text_of(html: str) -> str:
    """The page's words, tags gone and white space folded, as a reader sees them."""
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html)))


def guide(make_app: Callable[..., Flask], config: Config | None = None) -> str:
    reply = make_app(config).test_client().get("/guide")
    assert reply.status_code == 200
    return text_of(reply.get_data(as_text=True))


def record(db_path: str, profile: str, *, backward_s: float, forward_s: float = 0.0) -> None:
    """One ended session of `profile`, as the daemon's Store writes it."""
    start = time.time() - 3600
    with Store(db_path) as store:
        sid = store.open_session(start, mode=Mode.BACKWARD, machine_id="treadmill-1",
                                 profile=profile, level=1)  # fmt: skip
        totals = Totals(backward_s=backward_s, forward_s=forward_s, distance_m=100.0)
        store.end_session(sid, start + backward_s + forward_s, EndReason.BUTTON, totals)


# -- the guide ---------------------------------------------------------------------------------


def test_the_guide_gives_the_seeds_steps_in_order(make_app: Callable[..., Flask]) -> None:
    page = guide(make_app)
    steps = [
        "10 steps forward, then 9 steps back",
        "walk 20 m backward on a flat floor",
        "look over your shoulder",
        "Start as slowly as possible",
        "Hold the rails at first",
        "never turn to look over your shoulder",
        "Run backward only once walking backward is mastered",
    ]
    found = [page.find(step) for step in steps]
    assert -1 not in found, dict(zip(steps, found, strict=True))
    assert found == sorted(found)
    # off the treadmill a walker looks back; on it they keep looking ahead
    assert page.find("Off the treadmill, look over your shoulder") < page.find("On the belt, never")


def test_the_guide_tells_the_default_machines_numbers(make_app: Callable[..., Flask]) -> None:
    page = guide(make_app)
    assert "at or below 2.3 km/h (the start cap of 2.0 km/h plus 0.3 km/h)" in page
    assert "stays at 2.0 km/h for the first 120 s" in page
    assert "rises by 0.1 km/h every 30 s" in page
    assert "3.0 km/h at level 1" in page
    assert "In a session, if the belt stays over for 5 s" in page  # [enforce] without_session
    assert "relay opens the treadmill's safety-key loop" in page
    assert "after 2 s the treadmill can be started again" in page  # [enforce] pulse_s


def test_the_guide_follows_the_config_it_is_given(make_app: Callable[..., Flask]) -> None:
    config = Config(
        backward=BackwardConfig(
            start_cap_kmh=1.5,
            tolerance_kmh=0.2,
            hold_s=90.0,
            ramp_step_kmh=0.05,
            ramp_every_s=45.0,
            grace_s=8.0,
            level_caps_kmh=(2.5, 3.5),
        ),
        program=ProgramConfig(sessions_per_week=3, session_min_s=720.0, weeks=6),
    )
    page = guide(make_app, config)
    assert "at or below 1.7 km/h (the start cap of 1.5 km/h plus 0.2 km/h)" in page
    assert "stays at 1.5 km/h for the first 90 s" in page
    assert "rises by 0.05 km/h every 45 s" in page
    assert "2.5 km/h at level 1" in page
    assert "stays over for 8 s" in page
    assert "12 min to 15 min of backward walking, 3 sessions a week, 6 weeks in a row" in page
    for default in ("2.3 km/h", "120 s", "every 30 s", "for 5 s"):
        assert default not in page


def test_a_machine_without_enforcement_says_so(make_app: Callable[..., Flask]) -> None:
    page = guide(make_app, Config(enforce=EnforceConfig(action="none")))
    assert "The cap is not enforced on this machine" in page
    assert "relay" not in page
    assert "stays over for" not in page  # no stop is coming, so no grace to count down


def test_a_console_soft_stop_and_a_latched_relay_are_told(make_app: Callable[..., Flask]) -> None:
    page = guide(make_app, Config(enforce=EnforceConfig(soft="csafe", mode="latch")))
    assert "asks the treadmill's console to slow the belt to the cap" in page
    assert "within 2 s" in page  # device.core.soft_stop.SOFT_WINDOW_S
    assert "until START on the device is pressed" in page
    assert page.find("console to slow") < page.find("relay opens")  # the order it happens in


def test_a_machine_that_stops_without_a_session_says_so(make_app: Callable[..., Flask]) -> None:
    page = guide(make_app, Config(enforce=EnforceConfig(without_session="stop")))
    assert "If the belt stays over for 5 s" in page
    assert "In a session" not in page


@pytest.mark.parametrize("config", [Config(), Config(enforce=EnforceConfig(action="none")), MEMBER])
def test_no_page_for_a_beginner_repeats_the_unsupported_claim(
    make_app: Callable[..., Flask], config: Config
) -> None:
    client = make_app(config).test_client()
    for path in ("/guide", "/plan", "/"):
        page = text_of(client.get(path).get_data(as_text=True))
        assert not FORBIDDEN.search(page), (path, FORBIDDEN.search(page))
        assert "1000" not in page


@given(
    start=st.decimals("0.5", "10", places=2),
    tolerance=st.decimals("0", "1", places=2),
)
def test_the_start_line_is_the_start_cap_plus_the_tolerance_to_the_hundredth(start, tolerance):
    rules = device_rules(
        Config(backward=BackwardConfig(start_cap_kmh=float(start), tolerance_kmh=float(tolerance)))
    )
    assert float(rules.start_line.removesuffix(" km/h")) == float(start + tolerance)
    assert float(rules.start_cap.removesuffix(" km/h")) == float(start)


def test_the_guide_and_the_plan_are_in_every_pages_bar(make_app: Callable[..., Flask]) -> None:
    client = make_app().test_client()
    for path in ("/", "/history", "/guide", "/plan"):
        html = client.get(path).get_data(as_text=True)
        bar = html[html.find("<nav>") : html.find("</nav>")]
        assert '<a href="/guide"' in bar and '<a href="/plan"' in bar, path
    guide_bar = client.get("/guide").get_data(as_text=True)
    assert re.search(r'href="/guide"\s+aria-current="page"', guide_bar)


# -- the first-session card on the live page ----------------------------------------------------


def live_page(app: Flask) -> str:
    reply = app.test_client().get("/")
    assert reply.status_code == 200
    return reply.get_data(as_text=True)


def has_card(html: str) -> bool:
    return 'data-testid="first-session"' in html


def test_every_guest_sees_the_card_with_the_essentials(
    fake_device: FakeDevice, make_app: Callable[..., Flask], db_path: str
) -> None:
    record(db_path, "guest", backward_s=900.0)  # another guest walked backward: no matter
    html = live_page(make_app())
    assert 'data-online="true"' in html and fake_device.status["profile"] == "guest"
    assert has_card(html)
    card = text_of(html[html.find('id="first-session"') : html.find("</section>", html.find(
        'id="first-session"'))])  # fmt: skip
    for essential in ("10 steps forward, then 9 steps back", "20 m backward on flat ground",
                      "above 2.3 km/h is refused", "Hold the rails", "keep looking ahead",
                      "Run backward only once"):  # fmt: skip
        assert essential in card
    assert re.search(r'<a class="read-guide" data-testid="read-guide" href="/guide">Read the guide',
                     html)  # fmt: skip


def test_the_card_shows_while_the_device_is_offline(make_app: Callable[..., Flask]) -> None:
    html = live_page(make_app(MEMBER))
    assert 'data-online="false"' in html
    assert has_card(html)


def test_a_new_member_sees_the_card_until_their_first_backward_session(
    fake_device: FakeDevice, make_app: Callable[..., Flask], db_path: str
) -> None:
    fake_device.status = dict(fake_device.status, profile="ana", state="idle")
    app = make_app(MEMBER)
    record(db_path, "bo", backward_s=900.0)  # someone else's backward session
    assert has_card(live_page(app))
    record(db_path, "ana", backward_s=0.0, forward_s=600.0)  # forward only: still new to it
    assert has_card(live_page(app))
    record(db_path, "ana", backward_s=420.0)
    html = live_page(app)
    assert not has_card(html)
    assert 'data-testid="guide-links"' in html and '<a href="/guide">Guide</a>' in html


def test_a_member_without_a_history_file_sees_the_card(
    fake_device: FakeDevice, make_app: Callable[..., Flask], db_path: str
) -> None:
    fake_device.status = dict(fake_device.status, profile="ana")
    app = make_app(MEMBER)
    os.remove(db_path)
    html = live_page(app)
    assert 'data-online="true"' in html
    assert has_card(html)


def test_the_card_is_for_before_a_session_not_during_one(
    fake_device: FakeDevice, make_app: Callable[..., Flask]
) -> None:
    """During a session the card would push the controls off a phone's screen: it is hidden
    (live.js shows it again once the session ends)."""
    fake_device.status["state"] = "running"
    walking = live_page(make_app())  # an app of its own: the hub keeps the status it read
    assert re.search(r'data-testid="first-session"[^>]*\n\s*hidden', walking)
    fake_device.status["state"] = "idle"
    before = live_page(make_app())
    assert has_card(before)
    assert not re.search(r'data-testid="first-session"[^>]*\n\s*hidden', before)
