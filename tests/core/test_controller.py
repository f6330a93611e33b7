"""The Controller with the shipped config: a simulated belt's pulses (or a serial source's
speeds) and the walker's presses in, events, LED and buzzer patterns, the status and 1 Hz
samples out. The dashboard's commands and a reloaded config: test_controller_commands.py."""

from __future__ import annotations

import pytest
from support.ticking import TICK_S, Treadmill, walking

from device.config.load import config_from_mapping, merge_overrides
from device.config.model import Config
from device.core.controller import CommandRefused, Controller
from device.core.events import EventKind
from device.core.modes import Mode, SessionState
from device.core.signals import TUNES, LedPattern, RelayState, Tune

# ---- the backward start gate ------------------------------------------------------------


def test_backward_start_at_walking_pace_goes_ahead():
    mill = walking(1.0)
    mill.press_start()
    assert mill.state is SessionState.RUNNING
    assert mill.device.session.mode is Mode.BACKWARD
    started = mill.events(EventKind.SESSION_STARTED)
    assert [e.details for e in started] == [
        {"mode": "backward", "reason": "button", "profile": "guest", "level": 1}
    ]
    assert mill.events(EventKind.START_REFUSED) == []
    assert mill.outputs("buzzer") == ["start"]
    assert mill.device.message == ""


def test_backward_start_refused_while_belt_runs_fast():
    mill = walking(4.0)
    mill.press_start()
    mill.run(2)
    assert mill.state is SessionState.IDLE
    assert mill.events(EventKind.SESSION_STARTED) == []
    (refused,) = mill.events(EventKind.START_REFUSED)
    assert refused.details["speed_kmh"] == pytest.approx(4.0, abs=0.1)
    assert refused.details["limit_kmh"] == pytest.approx(2.3)
    # backward mode at 4 km/h: the no-session warning beeps before the press; the refusal's
    # three beeps are heard at the press
    buzzer = mill.outputs("buzzer")
    assert buzzer[0] == "warn_slow" and "refused" in buzzer
    message = mill.device.status(mill.now)["message"]
    assert "4.0 km/h" in message and "2.0 km/h" in message and "backward" in message
    assert "2.3 km/h" in message  # the real limit: the start cap plus the tolerance
    # the walker who walks on is guarded as in a session
    assert mill.events(EventKind.STILL_GUARDED)[0].details["why"] == "the start was refused"


def test_the_status_says_what_start_would_be_told_before_anyone_presses_it():
    mill = walking(4.0)
    before = mill.device.status(mill.now)["start_refusal"]
    assert before is not None and "4.0 km/h" in before and "2.3 km/h" in before
    assert mill.events(EventKind.START_REFUSED) == []  # a word on the page, not a refusal
    mill.belt_kmh(1.0)
    mill.run(5)
    assert mill.device.status(mill.now)["start_refusal"] is None
    mill.press_start()
    assert mill.state is SessionState.RUNNING
    mill.press_direction()  # forward: START has no gate to pass
    mill.belt_kmh(4.0)
    mill.run(5)
    assert mill.device.status(mill.now)["start_refusal"] is None


def test_forward_start_at_four_kmh_goes_ahead():
    mill = walking(4.0)
    mill.press_direction()
    mill.press_start()
    assert mill.state is SessionState.RUNNING
    assert mill.events(EventKind.START_REFUSED) == []
    assert mill.device.status(mill.now)["cap_kmh"] is None


@pytest.mark.parametrize(("kmh", "allowed"), [(2.2, True), (2.5, False)])
def test_start_gate_allows_the_start_cap_plus_tolerance(kmh, allowed):
    mill = walking(kmh)
    mill.press_start()
    assert (mill.state is SessionState.RUNNING) is allowed


def test_backward_start_refused_just_after_the_belt_speeds_up():
    # The walker sets 4 km/h and presses START a second later: the belt already runs at
    # 4 km/h, even though the last 3 s still include it standing still.
    mill = walking(0.0)
    mill.belt_kmh(4.0)
    mill.run(1.0)
    mill.press_start()
    assert mill.state is SessionState.IDLE
    assert len(mill.events(EventKind.START_REFUSED)) == 1


def test_turning_backward_mid_session_at_speed_starts_the_segment_at_the_start_cap():
    # The walker turns round with the belt at 4 km/h: the session goes on (stopping it would
    # be abrupt), the new backward segment's cap is the start cap, so the walker is over it
    # at once and the over-cap warning takes over.
    mill = walking(4.0)
    mill.press_direction()  # forward
    mill.press_start()
    mill.run(30)
    mill.press_direction()  # backward, at speed
    mill.run(1)
    assert mill.state is SessionState.RUNNING
    status = mill.device.status(mill.now)
    assert status["mode"] == "backward"
    assert status["cap_kmh"] == 2.0
    assert status["mean_kmh"] > status["cap_kmh"] + 0.3


def test_backward_resume_refused_while_belt_runs_fast():
    mill = walking(1.0)
    mill.press_start()
    mill.run(10)
    mill.press_start()  # pause
    mill.belt_kmh(4.0)
    mill.run(5)
    mill.press_start()  # resume? not at 4 km/h
    assert mill.state is SessionState.PAUSED
    assert len(mill.events(EventKind.START_REFUSED)) == 1
    mill.belt_kmh(1.5)
    mill.run(5)
    mill.press_start()
    assert mill.state is SessionState.RUNNING


def test_belt_restarted_fast_after_a_stop_does_not_resume_backward():
    mill = walking(1.0)
    mill.press_start()
    mill.run(10)
    mill.belt_kmh(0.0)
    mill.run(10)
    assert mill.state is SessionState.PAUSED
    mill.belt_kmh(4.0)  # back on the belt, but far too fast to walk backward
    mill.run(10)
    assert mill.state is SessionState.PAUSED
    assert mill.events(EventKind.SESSION_RESUMED) == []


def test_a_refused_auto_start_is_said_once_not_at_every_tick():
    config = merge_overrides(Config(), {"session": {"auto_start": True}})
    mill = walking(4.0, config=config, seconds=20)
    assert mill.state is SessionState.IDLE
    assert 1 <= len(mill.events(EventKind.START_REFUSED)) <= 2
    assert mill.outputs("buzzer").count("refused") <= 2


def test_auto_start_at_walking_pace_when_configured():
    config = merge_overrides(Config(), {"session": {"auto_start": True}})
    mill = walking(1.0, config=config, seconds=8)
    assert mill.state is SessionState.RUNNING
    (started,) = mill.events(EventKind.SESSION_STARTED)
    assert started.details["reason"] == "belt running"


# ---- the START button through the controller ---------------------------------------------


def test_long_press_ends_the_session_at_two_seconds_while_still_held():
    mill = walking(1.0)
    mill.press_start()
    mill.run(30)
    down = mill.now
    mill.press_start(hold=3.0)
    (ended,) = mill.events(EventKind.SESSION_ENDED)
    assert ended.t == pytest.approx(down + 2.0)
    assert ended.details["reason"] == "button"
    # 30 s walking, then 2 s more with a finger on the button
    assert ended.details["backward_s"] == pytest.approx(32, abs=0.5)
    assert mill.state is SessionState.IDLE  # letting go afterwards starts nothing
    assert mill.outputs("buzzer") == ["start", "end"]


# ---- the LED and the buzzer ----------------------------------------------------------------


def test_led_shows_the_mode_slow_blink_backward_steady_forward():
    mill = Treadmill()
    assert mill.outputs("led") == ["slow_blink"]
    mill.press_direction()
    assert mill.outputs("led") == ["slow_blink", "steady"]
    mill.press_direction()
    assert mill.outputs("led") == ["slow_blink", "steady", "slow_blink"]
    assert mill.outputs("buzzer") == ["mode", "mode"]


def test_buzzer_plays_a_distinct_tune_for_start_pause_and_end():
    mill = walking(1.0)
    mill.press_start()
    mill.run(5)
    mill.press_start()
    mill.run(5)
    mill.press_start()
    mill.run(5)
    mill.press_start(hold=2.5)
    assert mill.outputs("buzzer") == ["start", "pause", "resume", "end"]
    heard = [TUNES[Tune(name)] for name in ("start", "pause", "end", "refused")]
    assert len(set(heard)) == len(heard)


# ---- shutdown ------------------------------------------------------------------------------


def test_shutdown_ends_an_open_session_and_leaves_outputs_safe():
    mill = walking(1.0)
    mill.press_start()
    mill.run(20)
    result = mill.device.shutdown(mill.now)
    (ended,) = [e for e in result.events if e.kind is EventKind.SESSION_ENDED]
    assert ended.details["reason"] == "shutdown"
    assert result.totals is not None and result.totals.ended_at == mill.now
    assert [o.state for o in result.outputs if o.name == "led"] == ["off"]
    assert [o.state for o in result.outputs if o.name == "buzzer"] == ["end"]
    status = mill.device.status(mill.now)
    assert status["relay"] == RelayState.CLOSED.value
    assert status["state"] == "idle"


def test_shutdown_while_idle_only_turns_the_led_off():
    mill = Treadmill()
    assert mill.device.status(mill.now)["distance_m"] is None  # no session, no totals
    result = mill.device.shutdown(mill.now)
    assert result.events == []
    assert [(o.name, o.state) for o in result.outputs] == [("led", LedPattern.OFF.value)]


# ---- samples and status --------------------------------------------------------------------


def test_samples_come_once_a_second_on_the_second():
    mill = walking(1.0, seconds=10)
    assert [s.t for s in mill.samples()] == [float(n) for n in range(11)]


def test_samples_stay_once_a_second_when_ticks_jitter():
    device = Controller(Config(), t=0.0)
    ticks = [n * TICK_S + (0.03 if n % 3 else -0.02) for n in range(1, 100)]
    times = [r.sample.t for r in map(device.tick, ticks) if r.sample is not None]
    # one sample per second, taken by the first tick at or after the whole second
    assert times == [min(t for t in ticks if t >= second) for second in range(10)]


def test_a_stalled_tick_loop_skips_the_missed_samples_and_keeps_the_grid():
    device = Controller(Config(), t=0.0)
    results = [device.tick(t) for t in (0.0, 0.5, 1.0, 4.5, 4.6, 5.0, 5.5, 6.0)]
    assert [r.sample.t for r in results if r.sample is not None] == [0.0, 1.0, 4.5, 5.0, 6.0]


def test_status_tells_the_dashboard_speed_mode_state_cap_and_countdown():
    mill = walking(1.0)
    mill.press_start()
    mill.run(20)
    status = mill.device.status(mill.now)
    assert status["speed_kmh"] == pytest.approx(1.0, abs=0.05)
    assert status["mode"] == "backward"
    assert status["state"] == "running"
    assert status["cap_kmh"] == 2.0
    assert status["next_cap_kmh"] == 2.1
    assert status["next_cap_in_s"] == pytest.approx(100, abs=0.5)
    assert status["sensor"] == {
        "kind": "hall",
        "ok": True,
        "state": "ok",
        "channel": "",
        "detail": "",
        "checked": False,
        "bounces": 0,
    }
    assert status["backward_s"] == pytest.approx(20, abs=0.5)
    assert status["distance_m"] == pytest.approx(20 / 3.6, rel=0.05)


# ---- a serial speed source -----------------------------------------------------------------

SERIAL = {"sensor": {"kind": "serial", "url": "loop://"}}


def test_serial_readings_give_the_speed_until_they_go_stale():
    device = Controller(config_from_mapping(SERIAL), t=0.0)
    for n in range(10):
        device.speed_reading(n * 0.5, 1.2)
    device.tick(4.6)
    assert device.speed_kmh(4.6) == 1.2
    assert device.status(4.6)["sensor"]["ok"] is True
    late = device.tick(7.0)  # the last reading was at 4.5 s: 2.5 s ago, stale after 2 s
    assert late.sample is not None and late.sample.speed_kmh is None
    status = device.status(7.0)
    assert status["speed_kmh"] is None
    assert status["sensor"]["ok"] is False


def test_backward_start_refused_while_the_speed_is_unknown():
    device = Controller(config_from_mapping(SERIAL), t=0.0)
    with pytest.raises(CommandRefused, match="sent no reading"):
        device.command(1.0, "start")
    assert device.tick(1.0).events[0].kind is EventKind.START_REFUSED


def test_a_stale_serial_reading_is_said_but_never_pauses_a_forward_session():
    device = Controller(config_from_mapping(SERIAL), t=0.0)
    device.speed_reading(0.0, 1.0)
    device.command(0.1, "mode", Mode.FORWARD)
    device.command(0.5, "start")
    events = [e for n in range(1, 600) for e in device.tick(n * TICK_S).events]
    assert [e.kind for e in events] == [
        EventKind.MODE_CHANGED,
        EventKind.SESSION_STARTED,
        EventKind.SENSOR_LOST,
    ]
    assert device.session.state is SessionState.RUNNING


def test_a_stale_serial_reading_in_a_backward_session_is_enforced_after_the_grace():
    # We cannot show that the speed is safe: warn, then stop, as if over the cap.
    device = Controller(config_from_mapping(SERIAL), t=0.0)
    device.speed_reading(0.0, 1.0)
    device.command(0.5, "start")
    events = [e for n in range(1, 100) for e in device.tick(n * TICK_S).events]
    kinds = [e.kind for e in events]
    assert kinds[:3] == [
        EventKind.SESSION_STARTED,
        EventKind.SENSOR_LOST,
        EventKind.OVERSPEED_WARNING,
    ]
    lost, warning = events[1], events[2]
    assert lost.t == warning.t  # at once, at the first tick without a fresh reading
    assert warning.details["reason"] == "speed unknown"
    (stop,) = [e for e in events if e.kind is EventKind.ENFORCED_STOP]
    assert stop.t - warning.t == pytest.approx(5.0, abs=0.11)
    assert device.session.state is SessionState.PAUSED
    # still unknown when the 2 s relay pulse ends: the loop stays open
    (held,) = [e for e in events if e.kind is EventKind.STOP_HELD]
    assert held.t - stop.t == pytest.approx(2.0, abs=0.11)
    assert device.guard.relay is RelayState.OPEN


def test_a_slow_belt_restarted_after_a_pause_resumes_without_a_refusal_beep():
    # at 0.5 km/h the edges come 1.1 s apart: the belt runs a second before its speed rests on
    # two intervals, and the auto-resume waits for them instead of refusing an unknown speed
    mill = walking(0.6, seconds=8)
    mill.press_start()
    mill.run(20)
    mill.belt_kmh(0.0)
    mill.run(15)  # stopped 5 s: paused by the belt
    assert mill.state is SessionState.PAUSED
    mill.belt_kmh(0.5)
    mill.run(10)
    assert mill.state is SessionState.RUNNING
    assert mill.events(EventKind.START_REFUSED) == []
    assert "refused" not in mill.outputs("buzzer")
