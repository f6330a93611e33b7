"""The backward-speed rules, one story each in tests/scenarios/rule_*.toml, run through the real
`retrotread simulate` command line: the start gate, the cap over a segment, the warning and
its grace, the enforced stop (relay pulse, latch, or none), and the lost serial sensor.

The printed report has events, output changes and 1 Hz samples, not the status the dashboard
reads; where a rule says what the status shows, `status_at` runs the same story in-process up
to that moment and reads the Controller's status there.
"""

from __future__ import annotations

import functools
import itertools
import json
import tempfile
from typing import Any

import pytest
from gpiozero.pins.mock import MockFactory
from support.scenarios import SCENARIOS, cli, events, outputs, sample_at, status_at, the
from support.virtual_clock import VirtualClock

from device.config.load import config_from_mapping
from device.core.events import Event, EventKind
from device.core.tick import TickResult
from device.daemon import Daemon, Input
from device.history.store import Store, StoreError
from device.sim.belt import SimulatedBelt
from device.sim.scenario import Scenario, Step
from device.sim.simulate import Simulation

GRACE_S = 5.0  # the built-in grace
PULSE_S = 2.0  # the relay pulse in rule_overspeed_enforced_pulse.toml
SPEEDS_UP_AT = 65.0  # in the overspeed stories the walker goes from 2.0 to 3.0 km/h here
# The true 3 s mean after that step is 2.0 + (t - 65) / 3 km/h: it crosses 2.0 + 0.3 here.
MEAN_CROSSES_AT = SPEEDS_UP_AT + 0.3 * 3


@functools.cache
def story(name: str) -> dict[str, Any]:
    """The JSON report `retrotread simulate tests/scenarios/<name>.toml` prints."""
    done = cli(str(SCENARIOS / f"{name}.toml"))
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    return json.loads(done.stdout)


def changes(rep: dict, name: str) -> list[tuple[float, str]]:
    return [(o["t"], o["state"]) for o in rep["outputs"] if o["name"] == name]


def states_between(rep: dict, start: float, end: float) -> set[str]:
    return {s["state"] for s in rep["samples"] if start <= s["t"] <= end}


# ---- the start gate --------------------------------------------------------------------------


def test_backward_start_at_one_kmh_goes_ahead():
    rep = story("rule_start_slow_goes_ahead")
    started = the(rep, "session_started")
    assert (started["t"], started["mode"]) == (5.2, "backward")
    assert events(rep, "start_refused") == []
    assert outputs(rep, "buzzer")[0] == "start"
    assert states_between(rep, 6, 19) == {"running"}


def test_backward_start_at_four_kmh_is_refused_with_three_beeps_each_time():
    rep = story("rule_start_fast_refused")
    refusals = events(rep, "start_refused")
    assert [r["t"] for r in refusals] == [5.2, 15.2]
    for refused in refusals:
        assert refused["speed_kmh"] == pytest.approx(4.0, abs=0.1)
        assert refused["limit_kmh"] == pytest.approx(2.3)
    assert outputs(rep, "buzzer").count("refused") == 2
    assert outputs(rep, "buzzer")[0] == "warn_slow"  # backward mode, belt over the start cap
    assert (events(rep, "session_started"), rep["sessions"]) == ([], [])
    assert states_between(rep, 0, 20) == {"idle"}


def test_a_refused_start_is_explained_in_the_status():
    status = status_at("rule_start_fast_refused", 6.0)
    assert status["state"] == "idle"
    assert "4.0 km/h" in status["message"] and "2.0 km/h" in status["message"]


def test_backward_resume_at_four_kmh_is_refused_until_the_belt_slows():
    rep = story("rule_resume_fast_refused")
    refused = the(rep, "start_refused")
    assert refused["t"] == 40.2
    assert refused["speed_kmh"] == pytest.approx(4.0, abs=0.1)
    assert states_between(rep, 31, 50) == {"paused"}
    assert the(rep, "session_resumed")["t"] == 50.2
    # the paused session keeps its cap: the belt run up to 4 km/h is warned and stopped
    warning, stop = the(rep, "overspeed_warning"), the(rep, "enforced_stop")
    assert (warning["scope"], stop["scope"]) == ("paused", "paused")
    assert stop["t"] == pytest.approx(warning["t"] + GRACE_S)
    buzzer = outputs(rep, "buzzer")
    assert buzzer[:3] == ["start", "pause", "warn_slow"]
    assert buzzer[-2:] == ["resume", "end"] and "refused" in buzzer and "stopped" in buzzer


# ---- the cap over a segment ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("segment_s", "cap_kmh"), [(0, 2.0), (119, 2.0), (121, 2.1), (150, 2.2), (600, 3.0)]
)
def test_cap_holds_two_minutes_then_climbs_a_tenth_every_half_minute(segment_s, cap_kmh):
    rep = story("rule_cap_schedule")  # the segment begins at exactly 5 s
    sample = sample_at(rep, 5.0 + segment_s)
    assert (sample["mode"], sample["state"], sample["cap_kmh"]) == ("backward", "running", cap_kmh)


# ---- over the cap: warning, then the relay pulse ---------------------------------------------

PULSE = "rule_overspeed_enforced_pulse"


def test_speeding_up_warns_within_a_second_of_the_mean_passing_the_line():
    warning = the(story(PULSE), "overspeed_warning")
    assert MEAN_CROSSES_AT - 0.3 <= warning["t"] <= MEAN_CROSSES_AT + 1.0
    assert warning["speed_kmh"] > 2.0 + 0.3
    assert (warning["cap_kmh"], warning["reason"]) == (2.0, "over the cap")


def test_still_over_after_the_grace_the_relay_opens_and_the_session_pauses():
    rep = story(PULSE)
    warning, stop = the(rep, "overspeed_warning"), the(rep, "enforced_stop")
    assert stop["t"] - warning["t"] == pytest.approx(GRACE_S, abs=0.2)
    assert (stop["action"], stop["mode"], stop["cap_kmh"]) == ("relay", "pulse", 2.0)
    assert stop["speed_kmh"] == pytest.approx(3.0, abs=0.1)
    paused = the(rep, "session_paused")
    assert (paused["t"], paused["reason"]) == (stop["t"], "enforced stop")
    # the loop opens at the stop and closes pulse_s later, so the treadmill can restart
    assert changes(rep, "relay") == [(stop["t"], "open"), (stop["t"] + PULSE_S, "closed")]


def test_after_the_enforced_stop_the_belt_stands_and_the_session_stays_paused():
    rep = story(PULSE)
    stop_t = the(rep, "enforced_stop")["t"]
    standing = [s for s in rep["samples"] if stop_t + 1 <= s["t"] <= 85]
    assert standing and {(s["speed_kmh"], s["state"]) for s in standing} == {(0.0, "paused")}


def test_resuming_after_the_stop_starts_the_segment_again_at_the_start_cap():
    rep = story(PULSE)
    resumed = the(rep, "session_resumed")
    assert resumed["t"] == 87.2
    assert sample_at(rep, 88.0)["cap_kmh"] == 2.0
    # the two-minute hold counts from the resume at 87.2 s, not from the session's start
    assert sample_at(rep, 207.0)["cap_kmh"] == 2.0
    assert sample_at(rep, 208.0)["cap_kmh"] == 2.1


def test_the_led_flashes_fast_during_the_warning_and_shows_the_mode_after():
    rep = story(PULSE)
    warning, stop = the(rep, "overspeed_warning"), the(rep, "enforced_stop")
    shown = [(0.0, "slow_blink"), (warning["t"], "fast_blink"), (stop["t"], "slow_blink")]
    assert changes(rep, "led")[:3] == shown


def test_the_warning_beeps_faster_as_the_grace_runs_out_then_the_stop_tune():
    rep = story(PULSE)
    warning, stop = the(rep, "overspeed_warning"), the(rep, "enforced_stop")
    during = [(t, s) for t, s in changes(rep, "buzzer") if warning["t"] <= t <= stop["t"]]
    assert [s for _, s in during] == ["warn_slow", "warn_fast", "warn_urgent", "stopped"]
    times = [t for t, _ in during]
    assert times == sorted(times) and times[0] == warning["t"] and times[-1] == stop["t"]


def test_the_status_counts_the_grace_down_and_then_says_why_it_stopped():
    warning_t = the(story(PULSE), "overspeed_warning")["t"]
    early, late = status_at(PULSE, warning_t + 1.0), status_at(PULSE, warning_t + 3.0)
    assert early["warning"]["seconds_left"] == pytest.approx(GRACE_S - 1.0, abs=0.05)
    assert late["warning"]["seconds_left"] == pytest.approx(GRACE_S - 3.0, abs=0.05)
    assert early["warning"]["cap_kmh"] == 2.0 and not early["warning"]["enforced"]
    after = status_at(PULSE, warning_t + GRACE_S + 0.5)
    assert after["state"] == "paused"
    assert "Stopped" in after["message"] and "START" in after["message"]


# ---- back under within the grace ------------------------------------------------------------


def test_slowing_down_within_the_grace_clears_the_warning_and_nothing_is_enforced():
    rep = story("rule_overspeed_cleared")
    warning, cleared = the(rep, "overspeed_warning"), the(rep, "overspeed_cleared")
    assert warning["t"] < cleared["t"] < warning["t"] + GRACE_S
    assert events(rep, "enforced_stop") == events(rep, "session_paused") == []
    assert changes(rep, "relay") == []
    assert (cleared["t"], "silent") in changes(rep, "buzzer")
    assert changes(rep, "led")[-2:] == [(cleared["t"], "slow_blink"), (100.0, "off")]


def test_foot_strike_ripple_just_under_the_line_never_warns_in_ten_minutes():
    rep = story("rule_foot_strike_ripple")
    assert events(rep, "overspeed_warning") == []
    assert changes(rep, "relay") == []
    walking = [s for s in rep["samples"] if 6 <= s["t"] <= 605]
    assert len(walking) == 600 and {s["state"] for s in walking} == {"running"}
    # the displayed speed does cross 2.3 km/h with the strikes: only the 3 s mean is judged
    assert max(s["speed_kmh"] for s in walking) > 2.0 + 0.3


# ---- the configured action -------------------------------------------------------------------

NONE = "rule_enforce_none"


def test_action_none_records_not_enforced_and_the_session_walks_on():
    rep = story(NONE)
    warning, not_enforced = the(rep, "overspeed_warning"), the(rep, "not_enforced")
    assert not_enforced["t"] - warning["t"] == pytest.approx(GRACE_S, abs=0.2)
    assert (not_enforced["action"], not_enforced["cap_kmh"]) == ("none", 2.0)
    assert events(rep, "enforced_stop") == events(rep, "session_paused") == []
    assert changes(rep, "relay") == []
    assert states_between(rep, 6, 119) == {"running"}
    assert the(rep, "overspeed_cleared")["t"] > 100  # when the walker finally slowed down


def test_action_none_tells_the_walker_plainly_that_the_cap_is_not_enforced():
    warning_t = the(story(NONE), "overspeed_warning")["t"]
    status = status_at(NONE, warning_t + GRACE_S + 1.0)
    assert "not enforced" in status["message"]
    assert (status["cap_enforced"], status["relay"]) == (False, "closed")
    assert status["warning"]["enforced"] is True  # the grace is over; it only warns


LATCH = "rule_overspeed_enforced_latch"


def test_latch_keeps_the_loop_open_until_start_is_pressed():
    rep = story(LATCH)
    stop = the(rep, "enforced_stop")
    assert stop["mode"] == "latch"
    # open at the stop; the dashboard's resume at 85 s changed nothing; START at 100 s did
    assert changes(rep, "relay") == [(stop["t"], "open"), (100.2, "closed")]
    assert states_between(rep, stop["t"] + 1, 100) == {"paused"}
    assert the(rep, "session_resumed")["t"] == 100.2


def test_latch_refuses_the_dashboards_resume():
    status = status_at(LATCH, 90.0)
    assert (status["latched"], status["relay"], status["state"]) == (True, "open", "paused")


# ---- turning round at speed ------------------------------------------------------------------


def test_turning_backward_at_four_kmh_warns_at_once_and_stops_after_the_grace():
    rep = story("rule_turn_backward_at_speed")
    (turned,) = [e for e in events(rep, "mode_changed") if e["mode"] == "backward"]
    warning, stop = the(rep, "overspeed_warning"), the(rep, "enforced_stop")
    assert warning["t"] - turned["t"] <= 0.1  # the next tick at the latest
    assert (warning["cap_kmh"], round(warning["speed_kmh"])) == (2.0, 4)
    assert stop["t"] - warning["t"] == pytest.approx(GRACE_S, abs=0.2)
    assert changes(rep, "relay")[0] == (stop["t"], "open")


# ---- a serial sensor that goes quiet ---------------------------------------------------------


def test_a_stale_serial_sensor_is_said_at_once_and_enforced_after_the_grace():
    rep = story("rule_sensor_lost")
    stale_s = 2.0
    lost, warning = the(rep, "sensor_lost"), events(rep, "overspeed_warning")[0]
    # the last reading came at 60.0 s; stale once it is more than stale_s old
    assert 60.0 + stale_s < lost["t"] <= 60.0 + stale_s + 0.1
    assert warning["t"] == lost["t"]
    assert (warning["reason"], warning["speed_kmh"]) == ("speed unknown", None)
    stop = events(rep, "enforced_stop")[0]
    assert stop["t"] - warning["t"] == pytest.approx(GRACE_S, abs=0.2)
    assert stop["reason"] == "speed unknown"
    assert changes(rep, "relay")[0] == (stop["t"], "open")
    assert 80.0 <= the(rep, "sensor_restored")["t"] <= 80.6  # readings come twice a second
    # still unknown when the relay pulse ends: the loop stays open in backward mode (one stop,
    # not one every pulse) until the readings are back, then closes
    held = the(rep, "stop_held")
    assert held["t"] == pytest.approx(stop["t"] + 2.0, abs=0.11)
    assert len(events(rep, "enforced_stop")) == 1
    restored = the(rep, "sensor_restored")["t"]
    assert changes(rep, "relay")[:2] == [(stop["t"], "open"), (restored, "closed")]


def test_a_serial_sensor_back_within_the_grace_clears_the_warning():
    rep = story("rule_sensor_blip")
    lost, restored = the(rep, "sensor_lost"), the(rep, "sensor_restored")
    warning, cleared = the(rep, "overspeed_warning"), the(rep, "overspeed_cleared")
    assert lost["t"] == warning["t"] < restored["t"] < warning["t"] + GRACE_S
    # the warning clears once the mean has been under the cap for a second (hysteresis)
    assert cleared["t"] == pytest.approx(restored["t"] + 1.0, abs=0.05)
    assert events(rep, "enforced_stop") == []
    assert changes(rep, "relay") == []


# ---- regressions ------------------------------------------------------------------------------


def test_pausing_during_a_warning_keeps_the_pause_beeps():
    # The warning ends with the pause; its silence must not follow the pause tune in the same
    # tick, or Outputs.play would cut the two beeps off.
    rep = story("rule_pause_during_warning")
    paused = the(rep, "session_paused")
    at_pause = [s for t, s in changes(rep, "buzzer") if t == paused["t"]]
    assert at_pause[-1] == "pause"  # the last tune started is the one heard


def test_an_enforced_stop_does_not_reset_the_ramp_of_a_later_session():
    # The guard's "stopped by me" must end with its session: if it lingered, the next
    # session's ordinary resume would restart the segment at the start cap and stop the
    # walker at 2.5 km/h a few seconds later.
    rep = story("rule_enforced_stop_ends_with_its_session")
    second_session = [e for e in rep["events"] if e["t"] > 90]
    assert [e["kind"] for e in second_session if e["kind"].startswith(("over", "enforced"))] == []
    assert sample_at(rep, 406.0)["cap_kmh"] == 2.7


# ---- a restart of the daemon remembers the stop ----------------------------------------------


def restarted_after_a_stop(seconds_ago: float) -> dict[str, Any]:
    """A daemon that starts `seconds_ago` after an enforced stop it wrote to its history, and
    a walker who restarts the belt at 6 km/h from the console, no session."""
    wall0 = 1_800_000_000.0
    store = Store(":memory:")
    store.add_event(wall0 - seconds_ago, EventKind.ENFORCED_STOP, {"scope": "session"})
    steps = [Step(at=1.0, action="belt_kmh", value=6.0), Step(at=20.0, action="end", value=True)]
    scenario = Scenario({}, steps)
    return Simulation(scenario, store, config=config_from_mapping({}), wall0=wall0).run().as_dict()


def test_a_daemon_restarted_right_after_a_stop_still_stops_a_fast_restart():
    rep = restarted_after_a_stop(30.0)
    (stop,) = [e for e in rep["events"] if e["kind"] == "enforced_stop"][:1]
    assert stop["scope"] == "after a stop"
    crossed = the(rep, "overspeed_warning")["t"]
    # the budget was spent at the stop before the restart; the seconds the belt stood since
    # the daemon started gave back a thirtieth of them (0.14 s), and a tick comes every 0.1 s
    assert stop["t"] - crossed <= 0.25


def test_a_stop_long_before_the_restart_leaves_the_usual_rules():
    rep = restarted_after_a_stop(600.0)  # ten minutes ago: no session, only a warning
    assert events(rep, "enforced_stop") == []
    assert the(rep, "overspeed_warning")["scope"] == "no session"


# ---- the daemon's tick loop, in virtual time -------------------------------------------------


class VirtualTime(VirtualClock):
    """The daemon's clock and its sleep between ticks (Daemon.stopping): each sleep moves the
    time on, feeding the belt's pulses and the walker's START press on the way."""

    def __init__(self, daemon: Daemon, factory: MockFactory, *, until: float):
        super().__init__(1000.0)
        self.until, self.daemon = until, daemon
        self.belt = SimulatedBelt(daemon.config.sensor.meters_per_pulse)
        self.relay = factory.pin(daemon.config.outputs.relay_pin)
        # belt at 1 km/h, START pressed and released, then 4 km/h: over the cap
        # (the start gate needs two pulse intervals: at 1 km/h, about 1.2 s of pulses)
        self.plan = [(1000.5, 1.0), (1003.0, "press"), (1003.1, "release"), (1010.0, 4.0)]
        self.ticks: list[float] = []
        self.events: list[Event] = []

    def is_set(self) -> bool:
        return self.now >= self.until

    def wait(self, timeout: float) -> bool:
        self.ticks.append(self.now)  # the loop sleeps right after each tick
        controller = self.daemon.controller
        if len(self.ticks) == 1 and controller is not None:
            tick = controller.tick

            def recorded(t: float) -> TickResult:
                result = tick(t)
                self.events += result.events
                return result

            controller.tick = recorded  # type: ignore[method-assign]
        if bool(self.relay.state) == self.daemon.config.outputs.relay_active_high:
            self.belt.key_pulled()  # the loop is open: the treadmill stops
        end = self.now + timeout
        while self.plan and self.plan[0][0] <= end:
            at, what = self.plan.pop(0)
            self._belt_until(at)
            if isinstance(what, float):
                self.belt.set_speed(what)
            else:
                self.daemon.inputs.put(Input(what, at, "start"))
        self._belt_until(end)
        self.now = end
        return self.is_set()

    def _belt_until(self, t: float) -> None:
        for pulse_t in self.belt.advance(t - 1000.0):
            self.daemon.inputs.put(Input("pulse", 1000.0 + pulse_t))


def run_in_virtual_time(walk: type[VirtualTime] = VirtualTime, **kwargs: Any) -> VirtualTime:
    """The real Daemon (socket, SQLite, mock pins) for 20 virtual seconds of `walk`, with a
    1.05 s grace: it runs out halfway between two 10 Hz ticks."""
    config = config_from_mapping({"backward": {"grace_s": 1.05}})
    factory = MockFactory()
    with tempfile.TemporaryDirectory(dir="/tmp", prefix="rt-") as scratch:
        daemon = Daemon(
            config, socket_path=f"{scratch}/d.sock", db_path=f"{scratch}/h.db", pin_factory=factory
        )
        virtual = walk(daemon, factory, until=1020.0, **kwargs)
        daemon.clock, daemon.stopping = virtual, virtual  # type: ignore[assignment]
        try:
            daemon.run()  # returns at the end of the walk, the daemon stopped
        finally:
            factory.reset()
            factory.close()
    return virtual


@functools.cache
def daemon_in_virtual_time() -> VirtualTime:
    return run_in_virtual_time()


def test_the_tick_loop_wakes_when_the_grace_runs_out_not_at_the_next_tick():
    virtual = daemon_in_virtual_time()
    kinds = [e.kind for e in virtual.events]
    assert kinds.index(EventKind.SESSION_STARTED) < kinds.index(EventKind.OVERSPEED_WARNING)
    (warning,) = [e for e in virtual.events if e.kind is EventKind.OVERSPEED_WARNING]
    (stop,) = [e for e in virtual.events if e.kind is EventKind.ENFORCED_STOP]
    assert stop.t == pytest.approx(warning.t + 1.05, abs=1e-6)
    assert stop.t in virtual.ticks


def test_waking_for_a_deadline_does_not_cost_a_regular_tick():
    # device/daemon.py line 203 moves next_tick on after every pass of the loop, also after
    # a pass woken early for a deadline (a grace or a relay pulse ending between two ticks),
    # so the regular tick after it is skipped: 150 ms here, 200 ms on the real clock with
    # the built-in 5 s grace (benchmarks: reaction section). It should tick every 100 ms.
    gaps = [round(b - a, 3) for a, b in itertools.pairwise(daemon_in_virtual_time().ticks)]
    assert max(gaps) <= 0.1, f"ticks skipped: gaps of {[g for g in gaps if g > 0.1]} s"


class FullDisk(VirtualTime):
    """The same walk, with every history write failing from the first tick on: the disk is
    full (the daemon started fine, and then the card filled up)."""

    def __init__(self, *args: Any, monkeypatch: pytest.MonkeyPatch, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.monkeypatch = monkeypatch

    def wait(self, timeout: float) -> bool:
        if not self.ticks:
            self.monkeypatch.setattr(Store, "_commit", _disk_full)
        return super().wait(timeout)


def _disk_full(self, then=None):
    raise StoreError(f"Cannot write to the history database {self.path} (disk is full).")


def test_a_full_disk_never_keeps_the_relay_from_opening_nor_ends_the_daemon(monkeypatch):
    virtual = run_in_virtual_time(FullDisk, monkeypatch=monkeypatch)  # it did not die
    daemon = virtual.daemon
    kinds = [e.kind for e in virtual.events]
    assert EventKind.ENFORCED_STOP in kinds
    (warning,) = [e for e in virtual.events if e.kind is EventKind.OVERSPEED_WARNING]
    (stop,) = [e for e in virtual.events if e.kind is EventKind.ENFORCED_STOP]
    assert stop.t == pytest.approx(warning.t + 1.05, abs=1e-6)  # on time, as with a good disk
    assert virtual.belt.loop_open  # the relay did cut the belt
    assert "disk is full" in daemon.status()["history_error"]
