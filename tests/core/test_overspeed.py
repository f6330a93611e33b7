"""The grace budget with memory, on its own: time over the limit draws on one budget, time not
over it refills the budget at a thirtieth of a second per second, and nothing else does. A
warning begins at the first moment over and clears only after a second at or under the cap.

Times start at 100 s, as a monotonic clock would; the belt's 3 s mean is given by the test.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.ticking import tick_times

from device.core.overspeed import (
    CLEAR_AFTER_S,
    REFILL_PER_S,
    Decision,
    Limit,
    OverspeedWatch,
    Verdict,
)

T0 = 100.0
CAP = 2.0
TOLERANCE = 0.3
LINE = 2.3
GRACE_S = 5.0
LIMIT = Limit(CAP, TOLERANCE, GRACE_S)
FAST = 3.0  # over the line
SLOW = 1.5  # under the cap
IN_THE_BAND = 2.2  # over the cap, under the line


def hold(
    watch: OverspeedWatch,
    start: float,
    end: float,
    mean: float | None,
    *,
    limit: Limit | None = LIMIT,
    tick_s: float = 0.1,
) -> list[Decision]:
    """Ticks every `tick_s` from `start` up to and including `end`, the mean held at `mean`."""
    return [watch.judge(t, limit, mean) for t in tick_times(start, end, every_s=tick_s)]


# ---- the line ------------------------------------------------------------------------------------


def test_a_mean_right_on_the_line_is_not_over_it():
    watch = OverspeedWatch(GRACE_S)
    assert watch.judge(T0, LIMIT, LINE).verdict is Verdict.OK
    assert watch.judge(T0 + 0.1, LIMIT, LINE + 0.01).verdict is Verdict.WARNING


def test_the_line_is_the_cap_plus_the_tolerance():
    assert Limit(2.0, 0.3, 5.0).line_kmh == 2.3
    assert Limit(5.5, 0.45, 5.0).line_kmh == 5.95


def test_an_unknown_speed_counts_as_over_the_line_and_drains_the_budget():
    watch = OverspeedWatch(GRACE_S)
    first = watch.judge(T0, LIMIT, None)
    assert (first.verdict, first.reason, first.began, first.over) == (
        Verdict.WARNING, "speed unknown", True, True
    )  # fmt: skip
    assert watch.judge(T0 + 2.0, LIMIT, None).seconds_left == pytest.approx(3.0)


# ---- the budget ----------------------------------------------------------------------------------


def test_the_warning_begins_once_and_counts_the_budget_down():
    watch = OverspeedWatch(GRACE_S)
    decisions = [watch.judge(t, LIMIT, FAST) for t in (T0, T0 + 1.0, T0 + 2.5)]
    assert [d.began for d in decisions] == [True, False, False]
    assert [d.seconds_left for d in decisions] == pytest.approx([5.0, 4.0, 2.5])
    said = {(d.verdict, d.reason, d.scope, d.cap_kmh, d.enforcing) for d in decisions}
    assert said == {(Verdict.WARNING, "over the cap", "session", CAP, True)}


def test_the_budget_running_out_while_over_enforces_once():
    watch = OverspeedWatch(GRACE_S)
    hold(watch, T0, T0 + 4.9, FAST)
    assert watch.deadline() == pytest.approx(T0 + 5.0)
    due = watch.judge(T0 + 5.0, LIMIT, FAST)
    assert (due.enforce, due.verdict, due.seconds_left) == (True, Verdict.ENFORCED, 0.0)
    later = hold(watch, T0 + 5.1, T0 + 60.0, FAST)
    assert [d.enforce for d in later] == [False] * len(later)
    assert {d.verdict for d in later} == {Verdict.ENFORCED}
    assert watch.deadline() is None  # nothing more falls due


def test_a_budget_spent_while_the_belt_slowed_under_the_line_enforces_nothing():
    # the last of the budget went exactly as the belt came under the line: no stop for a belt
    # that is no longer over it
    watch = OverspeedWatch(GRACE_S)
    watch.judge(T0, LIMIT, FAST)
    under = watch.judge(T0 + 5.0, LIMIT, IN_THE_BAND)
    assert (under.enforce, under.verdict, under.over) == (False, Verdict.WARNING, False)
    assert watch.budget_s == pytest.approx(0.0)
    again = watch.judge(T0 + 5.1, LIMIT, FAST)  # over again with 0.1 / 30 s of budget
    assert not again.began and not again.enforce
    assert watch.judge(T0 + 5.2, LIMIT, FAST).enforce


@settings(max_examples=100, deadline=None)
@given(
    grace=st.floats(1.0, 20.0),
    t0=st.floats(0.0, 3.2e7),
    gaps=st.lists(st.floats(0.001, 0.5), min_size=1, max_size=60),
    mean=st.one_of(st.none(), st.floats(2.31, 25.0)),
)
def test_the_budget_drains_exactly_by_the_time_over(grace, t0, gaps, mean):
    limit = Limit(CAP, TOLERANCE, grace)
    watch = OverspeedWatch(grace)
    watch.judge(t0, limit, mean)
    t = t0
    for gap in gaps:
        t += gap
        decision = watch.judge(t, limit, mean)
        spent = t - t0
        if decision.enforce:
            assert spent >= grace - 1e-6  # never before the budget is spent
            break
        assert watch.budget_s == pytest.approx(max(0.0, grace - spent), abs=1e-6)
        assert spent < grace + 1e-6  # the first tick once it is spent enforces


def test_time_under_refills_the_budget_at_a_thirtieth_of_a_second_per_second():
    watch = OverspeedWatch(GRACE_S)
    hold(watch, T0, T0 + 2.9, FAST)  # over until the next tick: 3 s, so 2 s left
    watch.judge(T0 + 3.0, LIMIT, SLOW)
    assert watch.budget_s == pytest.approx(2.0)
    hold(watch, T0 + 3.1, T0 + 33.0, SLOW)  # 30 s under
    assert watch.budget_s == pytest.approx(3.0)  # a second back for 30 s under
    hold(watch, T0 + 34.0, T0 + 600.0, SLOW, tick_s=1.0)
    assert watch.budget_s == GRACE_S  # and no further than the ceiling


def test_a_dip_under_the_line_gives_back_a_thirtieth_of_its_length():
    # swinging over and under the line never earns a fresh grace
    watch = OverspeedWatch(GRACE_S)
    hold(watch, T0, T0 + 3.9, FAST)  # over for 4 s: up to the next tick
    hold(watch, T0 + 4.0, T0 + 4.9, SLOW)  # under for 1 s
    back = watch.judge(T0 + 5.0, LIMIT, FAST)
    assert not back.began  # the same warning
    assert watch.budget_s == pytest.approx(1.0 + 1.0 * REFILL_PER_S)
    assert watch.deadline() == pytest.approx(T0 + 6.0 + REFILL_PER_S)


@settings(max_examples=200, deadline=None)
@given(
    t0=st.floats(0.0, 3.2e7),
    ticks=st.lists(
        st.tuples(
            st.floats(0.001, 5.0),
            st.one_of(st.none(), st.floats(0.0, 8.0)),
            st.sampled_from([None, 0.5, 2.0, 5.0, 20.0]),  # the limit's grace; None: forward
        ),
        min_size=1,
        max_size=80,
    ),
)
def test_the_budget_never_exceeds_the_ceiling_nor_goes_below_zero(t0, ticks):
    watch = OverspeedWatch(GRACE_S)
    t = t0
    for gap, mean, grace in ticks:
        t += gap
        limit = None if grace is None else Limit(CAP, TOLERANCE, grace)
        decision = watch.judge(t, limit, mean)
        if limit is not None:
            assert watch.ceiling_s == grace
        assert 0.0 <= watch.budget_s <= watch.ceiling_s
        if decision.seconds_left is not None:
            assert 0.0 <= decision.seconds_left <= watch.ceiling_s
        if decision.enforce:
            watch.stopped(2.0)
            assert 0.0 <= watch.budget_s <= watch.ceiling_s


# ---- the warning's hysteresis --------------------------------------------------------------------


def test_the_warning_clears_only_after_a_second_at_or_under_the_cap():
    watch = OverspeedWatch(GRACE_S)
    hold(watch, T0, T0 + 2.0, FAST)
    at_the_cap = hold(watch, T0 + 2.1, T0 + 3.0, CAP)
    assert {d.verdict for d in at_the_cap} == {Verdict.WARNING}
    assert not any(d.cleared for d in at_the_cap)
    cleared = watch.judge(T0 + 2.1 + CLEAR_AFTER_S, LIMIT, CAP)
    assert (cleared.verdict, cleared.cleared, cleared.speed_kmh, cleared.cap_kmh) == (
        Verdict.OK, True, CAP, CAP
    )  # fmt: skip
    assert not watch.judge(T0 + 3.2, LIMIT, CAP).cleared  # said once
    assert CLEAR_AFTER_S == 1.0


def test_in_the_band_between_cap_and_line_the_warning_stays_and_the_budget_does_not_drain():
    watch = OverspeedWatch(GRACE_S)
    hold(watch, T0, T0 + 1.9, FAST)  # over until the next tick: 2 s, so 3 s left
    band = hold(watch, T0 + 2.0, T0 + 62.0, IN_THE_BAND)
    assert {d.verdict for d in band} == {Verdict.WARNING}
    assert not any(d.cleared or d.enforce or d.began or d.over for d in band)
    budgets = [d.seconds_left for d in band]
    assert budgets[0] == pytest.approx(3.0)
    assert budgets == sorted(budgets)  # it refills, slowly: 1/30 s per s
    assert budgets[-1] == pytest.approx(3.0 + 60.0 * REFILL_PER_S)
    assert watch.deadline() is None  # no stop is coming while under the line


def test_a_dip_under_the_cap_shorter_than_a_second_keeps_the_same_warning():
    watch = OverspeedWatch(GRACE_S)
    hold(watch, T0, T0 + 1.0, FAST)
    dip = hold(watch, T0 + 1.1, T0 + 1.9, SLOW)
    back = hold(watch, T0 + 2.0, T0 + 6.5, FAST)
    assert not any(d.cleared for d in dip)
    assert not any(d.began for d in back)  # one excursion, one warning
    # 1.1 s over, 0.9 s under (0.03 s back), then 3.93 s more over: the tick at 6.0
    enforced_at = [round(T0 + 2.0 + n * 0.1, 6) for n, d in enumerate(back) if d.enforce]
    assert enforced_at == [T0 + 6.0]


def test_the_clearing_second_starts_afresh_after_a_swing_back_over_the_cap():
    watch = OverspeedWatch(GRACE_S)
    hold(watch, T0, T0 + 1.0, FAST)
    hold(watch, T0 + 1.1, T0 + 1.8, SLOW)
    watch.judge(T0 + 1.9, LIMIT, IN_THE_BAND)  # over the cap, under the line
    again = hold(watch, T0 + 2.0, T0 + 2.9, SLOW)
    assert not any(d.cleared for d in again)
    assert watch.judge(T0 + 3.0, LIMIT, SLOW).cleared


# ---- no limit: forward mode ----------------------------------------------------------------------


def test_no_limit_judges_nothing():
    watch = OverspeedWatch(GRACE_S)
    assert watch.judge(T0, None, 12.0).verdict is Verdict.OK
    assert watch.judge(T0 + 1.0, None, None).verdict is Verdict.OK
    assert watch.budget_s == GRACE_S


def test_a_mode_switch_clears_the_warning_but_never_refills_the_budget():
    watch = OverspeedWatch(GRACE_S)
    hold(watch, T0, T0 + 3.0, FAST)  # 2 s left
    forward = watch.judge(T0 + 3.1, None, FAST)
    assert (forward.verdict, forward.cleared) == (Verdict.OK, True)
    assert watch.budget_s == pytest.approx(1.9)  # the last 0.1 s was over
    back = watch.judge(T0 + 3.2, LIMIT, FAST)  # and straight back to backward
    assert back.began
    assert back.seconds_left == pytest.approx(1.9 + 0.1 * REFILL_PER_S)
    assert watch.deadline() == pytest.approx(T0 + 3.2 + 1.9 + 0.1 * REFILL_PER_S)


@settings(max_examples=200, deadline=None)
@given(
    ticks=st.lists(
        st.tuples(st.floats(0.01, 3.0), st.one_of(st.none(), st.floats(0.0, 8.0)), st.booleans()),
        min_size=1,
        max_size=80,
    )
)
def test_the_budget_grows_only_by_a_thirtieth_of_the_time_not_over(ticks):
    # however the mode switches, the budget is never more than what was left plus 1/30 of the
    # time since that was not over
    watch = OverspeedWatch(GRACE_S)
    t, was_over = T0, False
    watch.judge(t, LIMIT, FAST)
    was_over = True
    for gap, mean, backward in ticks:
        before = watch.budget_s
        t += gap
        decision = watch.judge(t, LIMIT if backward else None, mean)
        allowed = before if was_over else before + gap * REFILL_PER_S
        assert watch.budget_s <= allowed + 1e-9
        if was_over:
            assert watch.budget_s == pytest.approx(max(0.0, before - gap), abs=1e-9)
        was_over = watch.over
        if decision.enforce:
            break


# ---- after an enforced stop ----------------------------------------------------------------------


def test_after_a_stop_the_budget_stays_spent_and_refills_only_to_the_short_ceiling():
    watch = OverspeedWatch(GRACE_S)
    hold(watch, T0, T0 + 5.0, FAST)
    assert watch.enforced
    watch.stopped(2.0)
    assert (watch.warning, watch.enforced, watch.over) == (False, False, False)
    assert watch.budget_s == pytest.approx(0.0, abs=1e-9)
    short = Limit(CAP, TOLERANCE, 2.0, scope="after a stop")
    hold(watch, T0 + 6.0, T0 + 35.0, 0.0, limit=short)
    assert watch.budget_s == pytest.approx(30.0 * REFILL_PER_S)  # from the tick at 5.0 on
    hold(watch, T0 + 36.0, T0 + 200.0, 0.0, limit=short, tick_s=1.0)
    assert watch.budget_s == 2.0


def test_a_belt_restarted_fast_at_once_after_a_stop_is_stopped_at_once():
    watch = OverspeedWatch(GRACE_S)
    hold(watch, T0, T0 + 5.0, FAST)
    watch.stopped(2.0)
    short = Limit(CAP, TOLERANCE, 2.0, scope="after a stop")
    restart = hold(watch, T0 + 5.1, T0 + 5.3, FAST, limit=short)
    assert restart[0].began and restart[0].scope == "after a stop"
    assert restart[0].seconds_left == pytest.approx(0.1 * REFILL_PER_S)
    assert [d.enforce for d in restart] == [False, True, False]


# ---- the deadline --------------------------------------------------------------------------------


def test_the_deadline_is_when_the_budget_runs_out_if_the_belt_stays_over():
    watch = OverspeedWatch(GRACE_S)
    assert watch.deadline() is None
    watch.judge(T0, LIMIT, FAST)
    assert watch.deadline() == T0 + GRACE_S
    watch.judge(T0 + 2.0, LIMIT, FAST)
    assert watch.deadline() == pytest.approx(T0 + GRACE_S)
    watch.judge(T0 + 2.5, LIMIT, SLOW)
    assert watch.deadline() is None  # under the line: nothing falls due


@settings(max_examples=300, deadline=None)
@given(
    grace=st.floats(1.0, 20.0),
    t0=st.floats(0.0, 3.2e7),
    gaps=st.lists(st.floats(0.001, 2.0), min_size=1, max_size=10),
    under_s=st.floats(0.0, 30.0),
    mean=st.one_of(st.none(), st.floats(2.31, 8.0)),
)
def test_a_tick_woken_at_the_deadline_enforces(grace, t0, gaps, under_s, mean):
    # The daemon sleeps until the deadline and ticks then; float sums must not leave that
    # tick a hair short of the budget.
    limit = Limit(CAP, TOLERANCE, grace)
    watch = OverspeedWatch(grace)
    t = t0
    watch.judge(t, limit, mean)
    for gap in gaps:  # some over, then a spell under: the budget remembers both
        t += min(gap, grace / (2 * len(gaps)))
        watch.judge(t, limit, mean)
    watch.judge(t + 0.01, limit, SLOW)
    watch.judge(t + 0.01 + under_s, limit, mean)
    deadline = watch.deadline()
    assert deadline is not None
    woken = watch.judge(deadline, limit, mean)
    assert woken.enforce


# ---- the bound the refill rate buys --------------------------------------------------------------


def over_before_the_first_stop(grace: float, spells: list[tuple[float, float | None]]) -> float:
    """Seconds over the line before the first enforce, the watch judged at every spell's
    start and woken at its deadline as the daemon is."""
    limit = Limit(CAP, TOLERANCE, grace)
    watch = OverspeedWatch(grace)
    t, over_s = T0, 0.0
    for length, mean in spells:
        if watch.judge(t, limit, mean).enforce:
            return over_s
        deadline = watch.deadline()
        if deadline is not None and deadline <= t + length:
            assert watch.judge(deadline, limit, mean).enforce
            return over_s + (deadline - t)
        if watch.over:
            over_s += length
        t += length
    return over_s


spells = st.lists(
    st.tuples(
        st.floats(0.01, 10.0),
        st.sampled_from([FAST, None, 4.5, SLOW, IN_THE_BAND, 0.0]),
    ),
    min_size=1,
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(grace=st.floats(1.0, 20.0), spells=spells)
def test_in_any_minute_the_time_over_before_a_stop_is_bounded(grace, spells):
    # O <= grace + (60 - O) / 30, so O <= (grace + 2) * 30 / 31 <= 2 x grace + 1 s
    total = sum(length for length, _ in spells)
    minute = [(length * 60.0 / total, mean) for length, mean in spells]
    over_s = over_before_the_first_stop(grace, minute)
    assert over_s <= (grace + 2.0) * 30.0 / 31.0 + 1e-6
    assert over_s <= 2.0 * grace + 1.0


@pytest.mark.parametrize("grace", [2.0, 5.0, 20.0])
def test_swinging_over_and_under_reaches_the_bound_but_not_beyond(grace):
    # the worst case (for a grace of 1.875 s or more): over until a hair before the budget
    # runs out, under for the rest of the minute, then over until it runs out again
    under_s = 60.0 - (grace + 2.0) * 30.0 / 31.0
    minute = [(grace - 1e-3, FAST), (under_s, SLOW), (60.0, FAST)]
    over_s = over_before_the_first_stop(grace, minute)
    assert over_s == pytest.approx(grace + under_s / 30.0, abs=1e-6)
    assert over_s <= (grace + 2.0) * 30.0 / 31.0 + 1e-6
