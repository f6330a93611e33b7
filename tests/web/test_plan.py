"""The 4-week plan page (/plan): the weeks and what counts for everyone, a member's sessions per
week against the target with the current week marked, their level and what unlocks the next
one, and their backward minutes per week as bars; a guest's note; no history file. Through the
real app with the daemon down, on a history file the daemon's Store wrote."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from dataclasses import replace
from html import unescape

from flask import Flask
from hypothesis import given
from hypothesis import strategies as st

from device.config.model import Config, ProgramConfig
from device.core.modes import EndReason, Mode
from device.core.program import Profile
from device.core.session import Totals
from device.history.store import Store
from web.guide.chart import PLOT_H, week_chart

DAY = 86400.0
MEMBER = Config(program=ProgramConfig(single_user=True, profile="ana"))


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html)))


def plan_page(make_app: Callable[..., Flask], config: Config = MEMBER) -> str:
    reply = make_app(config).test_client().get("/plan")
    assert reply.status_code == 200
    return reply.get_data(as_text=True)


def walk(store: Store, start: float, backward_min: float, *, profile: str = "ana",
         reason: EndReason = EndReason.BUTTON) -> None:  # fmt: skip
    """One ended session of `profile` with `backward_min` minutes walked backward."""
    sid = store.open_session(start, mode=Mode.BACKWARD, machine_id="treadmill-1",
                             profile=profile, level=1)  # fmt: skip
    totals = Totals(backward_s=backward_min * 60, distance_m=backward_min * 40)
    store.end_session(sid, start + backward_min * 60, reason, totals)


def weeks_of(html: str) -> dict[int, str]:
    """Each week's box: its number and its words."""
    boxes = re.findall(r'<li class="plan-week[^"]*"\s+data-testid="plan-week" data-week="(\d)"'
                       r"(.*?)</li>", html, re.S)  # fmt: skip
    return {int(n): text_of(box) for n, box in boxes}


def bars_of(html: str) -> dict[int, tuple[float, float]]:
    """The chart's bars: week -> (minutes, height in SVG units)."""
    found = re.findall(r'<rect class="bar[^"]*" data-week="(\d+)"\s+data-minutes="([\d.]+)"'
                       r'.*?height="([\d.]+)"', html, re.S)  # fmt: skip
    return {int(w): (float(m), float(h)) for w, m, h in found}


def ana_in_week_two(db_path: str) -> float:
    """Ana started her plan 9 days ago: week 1 three sessions that count, one too short and
    one cut off by a power cut; week 2 (now) one that counts. Level 2, one day at it."""
    started = time.time() - 9 * DAY
    with Store(db_path) as store:
        walk(store, started, 12)
        walk(store, started + 1 * DAY, 11)
        walk(store, started + 2 * DAY, 15)
        walk(store, started + 3 * DAY, 5)  # under session_min_s: walked, not counted
        walk(store, started + 4 * DAY, 14, reason=EndReason.INTERRUPTED)  # never counts
        walk(store, started + 8 * DAY, 20)
        walk(store, started + 8 * DAY, 30, profile="bo")  # someone else's
        ana = Profile("ana", level=2, qualifying_at_level=1, qualifying_total=5)
        store.save_profile(replace(ana, program_started_at=started))
    return started


def test_a_member_sees_sessions_done_against_the_target_per_week(
    make_app: Callable[..., Flask], db_path: str
) -> None:
    ana_in_week_two(db_path)
    weeks = weeks_of(plan_page(make_app))
    assert sorted(weeks) == [1, 2, 3, 4]
    assert "3 of 4 sessions" in weeks[1]  # the short one and the interrupted one do not count
    assert "1 of 4 sessions" in weeks[2]
    assert "0 of 4 sessions" in weeks[3] and "0 of 4 sessions" in weeks[4]
    assert "57.0 min backward" in weeks[1]  # every ended session's minutes: 12+11+15+5+14
    assert "20.0 min backward" in weeks[2]


def test_the_current_week_is_marked(make_app: Callable[..., Flask], db_path: str) -> None:
    ana_in_week_two(db_path)
    html = plan_page(make_app)
    marked = re.findall(r'data-week="(\d)"\s+aria-current="step"', html)
    assert marked == ["2"]
    assert "this week" in weeks_of(html)[2] and "this week" not in weeks_of(html)[1]
    assert re.search(r'<rect class="bar current" data-week="2"', html)


def test_the_chart_bars_are_proportional_to_the_backward_minutes(
    make_app: Callable[..., Flask], db_path: str
) -> None:
    ana_in_week_two(db_path)
    html = plan_page(make_app)
    bars = bars_of(html)
    assert {week: minutes for week, (minutes, _) in bars.items()} == {1: 57.0, 2: 20.0,
                                                                      3: 0.0, 4: 0.0}  # fmt: skip
    (_, week1), (_, week2) = bars[1], bars[2]
    assert abs(week1 / week2 - 57 / 20) < 0.01
    assert bars[3][1] == 0.0
    assert "target 40.0 min" in text_of(html)  # 4 sessions of 10 min
    assert "<script" not in html.split("</main>")[0]  # drawn by the server, no script


def test_a_member_sees_their_level_and_what_unlocks_the_next(
    make_app: Callable[..., Flask], db_path: str
) -> None:
    ana_in_week_two(db_path)
    page = text_of(plan_page(make_app))
    assert "Level 2 of 4 : your backward cap rises to 4.0 km/h" in page
    assert "Level 3 (5.0 km/h) after 4 days with a qualifying session at this level: 1 of 4" in page
    assert "Backward running (6.0 km/h) after 12 qualifying days in all ( 5 of 12 )" in page
    assert "one session with 5 min at 5.0 km/h or faster ( not yet )" in page
    assert "members" not in page.lower()  # no guest note for the member


def test_at_the_top_level_with_running_unlocked_nothing_is_left_to_unlock(
    make_app: Callable[..., Flask], db_path: str
) -> None:
    with Store(db_path) as store:
        walk(store, time.time() - DAY, 12)
        ana = Profile("ana", level=4, running_unlocked=True, fast_session_done=True)
        store.save_profile(replace(ana, qualifying_total=16, program_started_at=time.time() - DAY))
    page = text_of(plan_page(make_app))
    assert (
        "Level 4 of 4 : your backward cap rises to 6.0 km/h (backward running is unlocked)" in page
    )
    assert "This is the top walking level." in page
    assert "Backward running (6.0 km/h) after" not in page


def test_a_member_before_the_first_session_sees_the_plan_waiting(
    make_app: Callable[..., Flask],
) -> None:
    html = plan_page(make_app)
    assert "Your plan starts with your first session" in text_of(html)
    assert all("0 of 4 sessions" in week for week in weeks_of(html).values())
    assert 'aria-current="step"' not in html
    assert bars_of(html) == {1: (0.0, 0.0), 2: (0.0, 0.0), 3: (0.0, 0.0), 4: (0.0, 0.0)}
    assert "Level 1 of 4 : your backward cap rises to 3.0 km/h" in text_of(html)


def test_after_the_last_week_no_week_is_current(
    make_app: Callable[..., Flask], db_path: str
) -> None:
    started = time.time() - 40 * DAY
    with Store(db_path) as store:
        walk(store, started, 12)
        store.save_profile(Profile("ana", program_started_at=started))
    html = plan_page(make_app)
    assert "The 4 weeks are over" in text_of(html)
    assert 'aria-current="step"' not in html
    assert "1 of 4 sessions" in weeks_of(html)[1]


def test_a_guest_sees_the_plan_and_that_progress_is_kept_only_for_members(
    make_app: Callable[..., Flask], db_path: str
) -> None:
    with Store(db_path) as store:  # the walk-up users' sessions are nobody's progress
        walk(store, time.time() - DAY, 12, profile="guest")
    html = plan_page(make_app, Config())
    page = text_of(html)
    assert "Progress is kept only for members" in page
    assert "[program] single_user = true" in page
    weeks = weeks_of(html)
    assert sorted(weeks) == [1, 2, 3, 4]
    assert all("4 sessions of 10 min to 15 min" in week for week in weeks.values())
    assert "of 4 sessions" not in page  # no counts
    assert 'data-testid="plan-chart"' not in html
    # what counts and what unlocks, from the config, for everyone
    assert "held at least 10 min of backward walking" in page
    assert "3.0 km/h, 4.0 km/h, 5.0 km/h, 5.5 km/h" in page
    assert "after 4 days with a qualifying session" in page


def test_the_plan_follows_the_program_config(make_app: Callable[..., Flask]) -> None:
    config = Config(program=ProgramConfig(weeks=6, sessions_per_week=3, session_min_s=720.0,
                                          session_max_s=1200.0, level_up_sessions=5))  # fmt: skip
    html = plan_page(make_app, config)
    page = text_of(html)
    assert "Your 6-week plan" in page
    assert "3 sessions a week, each with 12 min to 20 min of backward walking" in page
    assert sorted(weeks_of(html)) == [1, 2, 3, 4, 5, 6]
    assert "after 5 days with a qualifying session" in page


def test_without_a_history_file_the_plan_says_progress_is_unavailable(
    make_app: Callable[..., Flask], db_path: str
) -> None:
    os.remove(db_path)
    html = plan_page(make_app)
    page = text_of(html)
    assert "Progress is unavailable: There is no history database at" in page
    assert sorted(weeks_of(html)) == [1, 2, 3, 4]  # the weeks are still there
    assert 'data-testid="plan-chart"' not in html


@given(st.lists(st.floats(0, 600), min_size=1, max_size=8), st.floats(1, 300))
def test_every_bar_is_as_tall_as_its_minutes_and_none_leaves_the_plot(minutes, target):
    chart = week_chart(minutes, target, current=None)
    tallest = max(minutes)
    top = max(bar.height for bar in chart.bars)
    for bar, total in zip(chart.bars, minutes, strict=True):
        assert 0 <= bar.height <= PLOT_H
        assert abs(bar.y + bar.height - chart.baseline_y) < 0.02  # every bar stands on the axis
        if tallest > 0:  # heights are in the ratio of the minutes, to the rounding
            assert abs(bar.height - top * total / tallest) <= 0.011
    assert 0 < chart.target_y < chart.baseline_y
