"""The guard on its own: the over-cap watch and the warning, enforcement and sensor rules, with
time given by the test. Over means the 3 s mean above the cap plus the tolerance, or a speed
that cannot be read; the grace runs from the first tick over; the configured action follows."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from device.config import BackwardConfig, config_from_mapping
from device.events import EventKind
from device.governor import OverspeedWatch, Verdict
from device.guard import Actions, Guard
from device.signals import RelayState, Tune

CAP = 2.0
LINE = 2.3  # the built-in start cap plus the built-in tolerance
GRACE_S = 5.0
SERIAL = {"kind": "serial", "url": "loop://"}


def make_guard(*, action="relay", mode="pulse", pulse_s=2.0, grace_s=5.0, sensor=None) -> Guard:
    """A guard with the built-in config but for these keys ([enforce], grace_s, [sensor])."""
    enforce = {"action": action, "mode": mode, "pulse_s": pulse_s}
    tables = {"sensor": sensor or {}, "backward": {"grace_s": grace_s}, "enforce": enforce}
    return Guard(config_from_mapping(tables))


def walk(guard: Guard, start: float, end: float, mean: float | None, *, cap=CAP) -> list[Actions]:
    """Ticks at 10 Hz from `start` up to and including `end`, the belt's mean held at `mean`."""
    ticks = round((end - start) * 10)
    return [
        guard.step(round(start + n * 0.1, 6), cap_kmh=cap, mean_kmh=mean, in_session=True)
        for n in range(ticks + 1)
    ]


def kinds(actions: list[Actions]) -> list[EventKind]:
    return [event.kind for step in actions for event in step.events]


def tunes(actions: list[Actions]) -> list[Tune]:
    return [step.tune for step in actions if step.tune is not None]


# ---- the watch -------------------------------------------------------------------------------


def test_a_mean_right_on_the_line_is_not_over_the_cap():
    watch = OverspeedWatch(BackwardConfig())
    assert watch.judge(0.0, CAP, LINE).verdict is Verdict.OK
    assert watch.judge(0.1, CAP, LINE + 0.01).verdict is Verdict.WARNING


def test_the_warning_begins_once_and_counts_the_grace_down():
    watch = OverspeedWatch(BackwardConfig())
    decisions = [watch.judge(t, CAP, 3.0) for t in (10.0, 11.0, 12.5)]
    assert [d.began for d in decisions] == [True, False, False]
    assert [d.seconds_left for d in decisions] == [5.0, 4.0, 2.5]
    assert {(d.verdict, d.reason) for d in decisions} == {(Verdict.WARNING, "over the cap")}
    assert watch.over_since == 10.0


def test_the_watch_enforces_once_when_the_grace_runs_out():
    watch = OverspeedWatch(BackwardConfig())
    watch.judge(10.0, CAP, 3.0)
    assert not watch.judge(14.9, CAP, 3.0).enforce
    due = watch.judge(15.0, CAP, 3.0)
    assert (due.enforce, due.verdict, due.seconds_left) == (True, Verdict.ENFORCED, 0.0)
    later = watch.judge(16.0, CAP, 3.0)
    assert (later.enforce, later.verdict) == (False, Verdict.ENFORCED)


def test_back_under_within_the_grace_clears_the_warning_once():
    watch = OverspeedWatch(BackwardConfig())
    watch.judge(10.0, CAP, 3.0)
    cleared = watch.judge(12.0, CAP, 2.0)
    assert (cleared.verdict, cleared.cleared) == (Verdict.OK, True)
    assert watch.judge(12.1, CAP, 2.0).cleared is False
    assert watch.over_since is None


def test_an_unknown_speed_counts_as_over_the_cap():
    watch = OverspeedWatch(BackwardConfig())
    d = watch.judge(0.0, CAP, None)
    assert (d.verdict, d.reason, d.began) == (Verdict.WARNING, "speed unknown", True)


def test_nothing_is_judged_without_a_cap_and_losing_the_cap_ends_a_warning():
    watch = OverspeedWatch(BackwardConfig())
    assert watch.judge(0.0, None, 12.0).verdict is Verdict.OK  # forward, or not running
    watch.judge(1.0, CAP, 3.0)
    assert watch.judge(2.0, None, 3.0).cleared is True


# ---- the guard: warning ----------------------------------------------------------------------


def test_the_warning_event_says_speed_cap_grace_and_reason_and_flashes_the_led():
    guard = make_guard()
    first = guard.step(60.0, cap_kmh=CAP, mean_kmh=2.456, in_session=True)
    (warning,) = first.events
    assert (warning.t, warning.kind) == (60.0, EventKind.OVERSPEED_WARNING)
    said = {"speed_kmh": 2.46, "cap_kmh": CAP, "grace_s": GRACE_S, "reason": "over the cap"}
    assert warning.details == said
    assert (first.warning_light, first.tune, first.relay, first.pause) == (
        True, Tune.WARN_SLOW, None, False
    )  # fmt: skip


def test_the_warning_beeps_slow_then_fast_then_urgent_then_the_stop_tune():
    guard = make_guard()
    steps = walk(guard, 0.0, GRACE_S, 3.0)
    assert tunes(steps) == [Tune.WARN_SLOW, Tune.WARN_FAST, Tune.WARN_URGENT, Tune.STOPPED]
    changed_at = [round(n * 0.1, 1) for n, step in enumerate(steps) if step.tune is not None]
    # slow for the first half of the grace, fast until its last fifth, then urgent
    assert changed_at == [0.0, 2.5, 4.0, 5.0]


def test_the_status_counts_the_grace_down():
    guard = make_guard()
    walk(guard, 0.0, 1.5, 3.0)
    warning = guard.status()["warning"]
    assert warning["seconds_left"] == 3.5
    assert (warning["reason"], warning["cap_kmh"], warning["enforced"]) == (
        "over the cap",
        CAP,
        False,
    )
    walk(guard, 1.6, 3.0, 3.0)
    assert guard.status()["warning"]["seconds_left"] == 2.0


def test_slowing_down_clears_the_warning_silences_the_buzzer_and_shows_the_mode():
    guard = make_guard()
    walk(guard, 0.0, 2.0, 3.0)
    back = guard.step(2.1, cap_kmh=CAP, mean_kmh=2.2, in_session=True)
    assert [e.kind for e in back.events] == [EventKind.OVERSPEED_CLEARED]
    assert back.events[0].details == {"speed_kmh": 2.2, "cap_kmh": CAP}
    assert (back.tune, back.warning_light, back.relay) == (Tune.SILENT, False, None)
    assert guard.next_deadline() is None
    assert guard.status()["warning"] is None


# ---- the guard: enforcement ------------------------------------------------------------------


def test_relay_pulse_opens_the_loop_at_the_grace_and_closes_it_pulse_s_later():
    guard = make_guard(pulse_s=2.0)
    walk(guard, 10.0, 14.9, 3.0)
    assert guard.next_deadline() == pytest.approx(15.0)
    stop = guard.step(15.0, cap_kmh=CAP, mean_kmh=3.0, in_session=True)
    (event,) = stop.events
    assert event.kind is EventKind.ENFORCED_STOP
    said = {"speed_kmh": 3.0, "cap_kmh": CAP, "reason": "over the cap"}
    assert event.details == {**said, "action": "relay", "mode": "pulse"}
    assert (stop.relay, stop.pause, stop.warning_light, stop.tune) == (
        RelayState.OPEN, True, False, Tune.STOPPED
    )  # fmt: skip
    assert guard.next_deadline() == pytest.approx(17.0)  # the pulse's end
    # the session is paused now: the controller passes no cap
    assert guard.step(16.9, cap_kmh=None, mean_kmh=0.0, in_session=True).relay is None
    closing = guard.step(17.0, cap_kmh=None, mean_kmh=0.0, in_session=True)
    assert (closing.relay, closing.events) == (RelayState.CLOSED, [])
    assert guard.next_deadline() is None


def test_relay_latch_keeps_the_loop_open_until_start_releases_it():
    guard = make_guard(mode="latch")
    steps = walk(guard, 0.0, GRACE_S, 3.0)
    assert steps[-1].relay is RelayState.OPEN
    assert guard.next_deadline() is None  # nothing falls due: only START closes it
    idle = walk(guard, 5.1, 600.0, 0.0, cap=None)
    assert [s.relay for s in idle if s.relay is not None] == []
    assert guard.status()["latched"] is True
    released = guard.release_latch(600.1)
    assert released.relay is RelayState.CLOSED
    assert guard.status()["relay"] == "closed" and guard.status()["latched"] is False
    assert guard.release_latch(601.0).relay is None  # a second press changes nothing


def test_action_none_records_not_enforced_once_and_keeps_warning():
    guard = make_guard(action="none")
    steps = walk(guard, 0.0, 60.0, 3.0)
    assert kinds(steps) == [EventKind.OVERSPEED_WARNING, EventKind.NOT_ENFORCED]
    (not_enforced,) = [e for s in steps for e in s.events if e.kind is EventKind.NOT_ENFORCED]
    assert not_enforced.t == pytest.approx(GRACE_S)
    assert not_enforced.details["action"] == "none"
    assert [s for s in steps if s.relay is not None or s.pause] == []
    assert tunes(steps)[-1] is Tune.WARN_URGENT  # beeping on until the walker slows down
    status = guard.status()
    said = (status["enforcement"], status["cap_enforced"], status["relay"])
    assert said == ("none", False, "closed")
    assert status["warning"]["enforced"] is True
    assert guard.next_deadline() is None


def test_resuming_after_an_enforced_stop_is_told_apart_from_an_ordinary_resume():
    guard = make_guard()
    assert guard.session_resumed() is False
    walk(guard, 0.0, GRACE_S, 3.0)
    assert guard.session_resumed() is True  # the segment starts again at the start cap
    assert guard.session_resumed() is False


def test_safe_closes_the_loop_and_silences_a_warning():
    guard = make_guard(mode="latch")
    walk(guard, 0.0, GRACE_S, 3.0)
    walk(guard, 10.0, 12.0, 3.0)  # (a new warning, as if resumed at speed)
    actions = Actions()
    guard.safe(actions)
    assert (actions.relay, actions.tune) == (RelayState.CLOSED, Tune.SILENT)
    assert guard.status()["latched"] is False


# ---- the guard: the speed sensor -------------------------------------------------------------


def test_a_lost_sensor_in_a_session_is_said_once_and_its_return_once():
    guard = make_guard(sensor=SERIAL)
    lost = walk(guard, 0.0, 1.0, None)
    assert kinds(lost)[:2] == [EventKind.SENSOR_LOST, EventKind.OVERSPEED_WARNING]
    assert kinds(lost).count(EventKind.SENSOR_LOST) == 1
    assert lost[0].events[1].details["reason"] == "speed unknown"
    assert guard.status()["sensor_lost"] is True
    back = guard.step(1.1, cap_kmh=CAP, mean_kmh=1.0, in_session=True)
    assert kinds([back]) == [EventKind.SENSOR_RESTORED, EventKind.OVERSPEED_CLEARED]
    assert back.events[0].details == {"sensor": "serial"}
    assert guard.status()["sensor_lost"] is False


def test_a_sensor_still_lost_after_the_grace_is_enforced():
    guard = make_guard(sensor=SERIAL)
    steps = walk(guard, 0.0, GRACE_S, None)
    said = [EventKind.SENSOR_LOST, EventKind.OVERSPEED_WARNING, EventKind.ENFORCED_STOP]
    assert kinds(steps) == said
    assert steps[-1].events[0].details["reason"] == "speed unknown"
    assert steps[-1].relay is RelayState.OPEN


def test_no_sensor_lost_outside_a_session():
    guard = make_guard()
    idle = [guard.step(t / 10, cap_kmh=None, mean_kmh=None, in_session=False) for t in range(30)]
    assert kinds(idle) == []


# ---- properties: any tick timing, any speeds -------------------------------------------------

caps = st.sampled_from([0.5, 2.0, 2.1, 2.5, 3.0, 5.5])
graces = st.sampled_from([1.0, 2.5, 5.0, 7.3, 60.0])
tolerances = st.sampled_from([0.0, 0.3, 0.45, 2.0])
gaps = st.floats(0.001, 2.0, allow_nan=False)  # seconds between ticks, late or early
# a clock that has run for up to a year: large monotonic readings lose float precision
clock_starts = st.floats(0.0, 3.2e7, allow_nan=False)


@settings(max_examples=200, deadline=None)
@given(
    cap=caps,
    tolerance=tolerances,
    t0=clock_starts,
    ticks=st.lists(st.tuples(gaps, st.floats(0.0, 1.0)), min_size=1, max_size=200),
)
def test_a_mean_never_above_the_line_never_warns(cap, tolerance, t0, ticks):
    config = config_from_mapping({"backward": {"tolerance_kmh": tolerance}})
    guard = Guard(config)
    t = t0
    for gap, share in ticks:
        t += gap
        mean = (cap + tolerance) * share  # at most the line itself
        actions = guard.step(t, cap_kmh=cap, mean_kmh=mean, in_session=True)
        assert actions.events == [] and actions.tune is None and actions.relay is None
        assert guard.decision.verdict is Verdict.OK


# A walker's ticks: a gap, the 3 s mean (None: unknown), and whether the session runs backward
# (no cap otherwise). After a relay stop the controller pauses the session; the walker resumes
# at a tick marked so.
speeds = st.one_of(st.none(), st.floats(0.0, 8.0, allow_nan=False))
ticks_of_a_walk = st.lists(
    st.tuples(gaps, speeds, st.booleans(), st.booleans()), min_size=1, max_size=120
)


def play_walk(guard: Guard, t0: float, ticks, *, cap: float) -> list[dict[str, Any]]:
    """Step the guard as the controller would; then hold the last speed for the grace and a
    bit, so every warning has had its chance to end. Returns one record per tick."""
    grace = guard.config.backward.grace_s
    paused = False
    t = t0
    records = []
    last_mean = None
    tail = [(0.1, None, True, False)] * (int(grace * 10) + 5)
    for n, (gap, mean, backward, resume) in enumerate([*ticks, *tail]):
        if n >= len(ticks):  # the tail: the last speed, held
            mean = last_mean
        last_mean = mean
        t += gap
        if paused and resume:
            paused = False
            guard.session_resumed()
        judged = backward and not paused
        actions = guard.step(t, cap_kmh=cap if judged else None, mean_kmh=mean, in_session=True)
        paused = paused or actions.pause
        records.append(
            {
                "t": t,
                "kinds": [e.kind for e in actions.events],
                "verdict": guard.decision.verdict,
                "deadline": guard.next_deadline(),
                "warning_since": guard.watch.over_since,
                "relay": guard.relay,
            }
        )
    return records


ENFORCING = (EventKind.ENFORCED_STOP, EventKind.NOT_ENFORCED)
walks = {
    "action": st.sampled_from(["relay", "none"]),
    "mode": st.sampled_from(["pulse", "latch"]),
    "grace": graces,
    "cap": caps,
    "t0": clock_starts,
    "ticks": ticks_of_a_walk,
}


def episodes(records: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """The records from each overspeed_warning up to the next one."""
    found: list[list[dict[str, Any]]] = []
    for record in records:
        if EventKind.OVERSPEED_WARNING in record["kinds"]:
            found.append([])
        if found:
            found[-1].append(record)
    return found


@settings(max_examples=200, deadline=None)
@given(**walks)
def test_a_warning_always_clears_or_is_enforced_and_never_twice(
    action, mode, grace, cap, t0, ticks
):
    guard = make_guard(action=action, mode=mode, grace_s=grace)
    for episode in episodes(play_walk(guard, t0, ticks, cap=cap)):
        said = [kind for record in episode for kind in record["kinds"]]
        enforced = sum(said.count(kind) for kind in ENFORCING)
        cleared = said.count(EventKind.OVERSPEED_CLEARED)
        assert said.count(EventKind.OVERSPEED_WARNING) == 1
        assert enforced <= 1 and cleared <= 1
        if action == "relay":
            assert enforced + cleared == 1  # a stop ends the warning; nothing clears it after
        else:
            assert enforced + cleared >= 1  # not_enforced, and cleared once the walker slows
            if enforced and cleared:
                assert said.index(EventKind.NOT_ENFORCED) < said.index(EventKind.OVERSPEED_CLEARED)


@settings(max_examples=200, deadline=None)
@given(**walks)
def test_enforcement_comes_at_the_first_tick_once_the_grace_is_over_never_before(
    action, mode, grace, cap, t0, ticks
):
    guard = make_guard(action=action, mode=mode, grace_s=grace)
    for episode in episodes(play_walk(guard, t0, ticks, cap=cap)):
        began = episode[0]["t"]
        for record in episode:
            if any(kind in ENFORCING for kind in record["kinds"]):
                assert record["t"] - began >= grace - 1e-6
                break
            if EventKind.OVERSPEED_CLEARED in record["kinds"]:
                break
            # still warning and not yet enforced: the grace has not run out
            assert record["t"] - began < grace, "a tick past the grace did not enforce"


@settings(max_examples=200, deadline=None)
@given(**walks)
def test_during_a_warning_the_next_deadline_is_the_end_of_the_grace(
    action, mode, grace, cap, t0, ticks
):
    guard = make_guard(action=action, mode=mode, grace_s=grace)
    for record in play_walk(guard, t0, ticks, cap=cap):
        if record["verdict"] is Verdict.WARNING:
            grace_ends = record["warning_since"] + grace
            if record["relay"] is RelayState.CLOSED:
                assert record["deadline"] == grace_ends
            else:  # a relay pulse still open may fall due first
                assert record["deadline"] <= grace_ends


@settings(max_examples=300, deadline=None)
@given(grace=graces, t0=clock_starts, first_gap=gaps, mean=st.floats(2.31, 8.0))
def test_a_tick_woken_at_the_deadline_enforces(grace, t0, first_gap, mean):
    # The daemon sleeps until next_deadline() and ticks then; float sums must not leave that
    # tick a hair short of the grace.
    guard = make_guard(grace_s=grace)
    guard.step(t0, cap_kmh=CAP, mean_kmh=mean, in_session=True)
    guard.step(t0 + min(first_gap, grace / 2), cap_kmh=CAP, mean_kmh=mean, in_session=True)
    deadline = guard.next_deadline()
    assert deadline is not None
    woken = guard.step(deadline, cap_kmh=CAP, mean_kmh=mean, in_session=True)
    assert [e.kind for e in woken.events] == [EventKind.ENFORCED_STOP]
