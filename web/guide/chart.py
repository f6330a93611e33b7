"""The plan page's chart: backward minutes per program week as bars against the week's target,
laid out here in SVG user units and drawn by plan.html as inline SVG.

Server-rendered on purpose: no script runs, nothing is fetched, and the Content-Security-Policy
(web/protect.py: no inline style) has nothing to block, since every colour comes from
guide.css classes and every size is an SVG attribute. The SVG scales to its box through its
viewBox, so it fits a 360 px phone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

WIDTH = 320.0
HEIGHT = 190.0
LEFT, RIGHT, TOP, BOTTOM = 8.0, 8.0, 22.0, 26.0  # room for the value above, the week below
PLOT_W = WIDTH - LEFT - RIGHT
PLOT_H = HEIGHT - TOP - BOTTOM
HEADROOM = 1.15  # the tallest bar or the target line stays below the top


@dataclass(frozen=True)
class Bar:
    week: int
    minutes: float
    x: float
    y: float
    width: float
    height: float
    label_x: float
    current: bool
    met: bool  # the week's backward minutes reached the target


@dataclass(frozen=True)
class WeekChart:
    width: float
    height: float
    bars: tuple[Bar, ...]
    target_min: float
    target_y: float
    baseline_y: float
    label_y: float  # where the week numbers sit
    summary: str  # the chart in one sentence, for a screen reader


def week_chart(minutes: Sequence[float], target_min: float, current: int | None) -> WeekChart:
    """Bars for weeks 1..len(minutes), heights proportional to the minutes, with the target
    line; `current` is the 1-based week to mark (None: none)."""
    scale_top = max(max(minutes, default=0.0), target_min, 1.0) * HEADROOM
    slot = PLOT_W / max(len(minutes), 1)
    bar_w = slot * 0.6
    baseline = TOP + PLOT_H
    bars = []
    for index, total in enumerate(minutes):
        height = PLOT_H * max(total, 0.0) / scale_top
        x = LEFT + index * slot + (slot - bar_w) / 2
        bars.append(
            Bar(
                week=index + 1,
                minutes=round(total, 1),
                x=round(x, 2),
                y=round(baseline - height, 2),
                width=round(bar_w, 2),
                height=round(height, 2),
                label_x=round(x + bar_w / 2, 2),
                current=current == index + 1,
                met=target_min > 0 and total >= target_min,
            )
        )
    target_y = round(baseline - PLOT_H * target_min / scale_top, 2)
    told = ", ".join(f"week {bar.week} {bar.minutes:g} min" for bar in bars)
    summary = f"Backward minutes per week against a target of {target_min:g} min: {told}."
    return WeekChart(WIDTH, HEIGHT, tuple(bars), round(target_min, 1), target_y, baseline,
                     HEIGHT - 8, summary)  # fmt: skip
