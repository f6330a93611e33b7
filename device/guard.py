"""The guard: the governor's step of every tick. It judges the belt against the backward cap,
warns, and when the grace runs out enforces the stop with the configured action; it also
says when the speed sensor is lost and restored. Pure: time is an argument, and what it
decides comes back as `Actions` for the controller to carry out and record.

Enforcement is an emergency stop: with action "relay" the relay opens the treadmill's
safety-key loop, as if the walker had pulled the key. "pulse" closes the loop again after
`pulse_s` so the treadmill can be restarted from its console; "latch" keeps it open until
START is pressed. With action "none" the warning stays a warning and the event says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from device.config import Config
from device.events import Event, EventKind
from device.governor import OK, Decision, OverspeedWatch, Verdict
from device.signals import LedPattern, RelayState, Tune, warning_tune


@dataclass
class Actions:
    """What one guard step asks of the controller."""

    events: list[Event] = field(default_factory=list)
    tune: Tune | None = None  # a tune to start now
    warning_light: bool | None = None  # True: flash the LED; False: back to showing the mode
    relay: RelayState | None = None  # a relay change
    pause: bool = False  # the session pauses: the cap was enforced


class Guard:
    def __init__(self, config: Config):
        self.config = config
        self.watch = OverspeedWatch(config.backward)
        self.decision: Decision = OK
        self.relay = RelayState.CLOSED
        self.latched = False
        self.stopped_by_guard = False  # the session is paused by an enforced stop
        self.sensor_lost = False
        self._relay_closes_at: float | None = None
        self._tune: Tune | None = None

    @property
    def enforces(self) -> bool:
        return self.config.enforce.action == "relay"

    def reconfigure(self, config: Config) -> None:
        self.config = config
        self.watch.config = config.backward

    def step(
        self, t: float, *, cap_kmh: float | None, mean_kmh: float | None, in_session: bool
    ) -> Actions:
        """One tick. `cap_kmh` is None when nothing is judged (forward mode, or no session
        running); `mean_kmh` is None when the speed is unknown."""
        actions = Actions()
        self._watch_sensor(t, mean_kmh, in_session, actions)
        self._close_pulse(t, actions)
        decision = self.decision = self.watch.judge(t, cap_kmh, mean_kmh)
        if decision.began:
            details: dict[str, Any] = {
                "speed_kmh": _round(decision.speed_kmh),
                "cap_kmh": decision.cap_kmh,
                "grace_s": self.config.backward.grace_s,
                "reason": decision.reason,
            }
            actions.events.append(Event(t, EventKind.OVERSPEED_WARNING, details))
            actions.warning_light = True
        if decision.cleared:
            details = {"speed_kmh": _round(decision.speed_kmh), "cap_kmh": decision.cap_kmh}
            actions.events.append(Event(t, EventKind.OVERSPEED_CLEARED, details))
            actions.warning_light = False
            self._play(Tune.SILENT, actions)
        if decision.verdict is Verdict.WARNING:
            self._play(warning_tune(decision.seconds_left or 0.0, self.config.backward.grace_s),
                       actions)  # fmt: skip
        if decision.enforce:
            self._enforce(t, decision, actions)
        return actions

    def next_deadline(self) -> float | None:
        """The next moment a decision falls due: the grace running out, or a relay pulse
        ending."""
        due = []
        if self.watch.over_since is not None and not self.watch.enforced:
            due.append(self.watch.over_since + self.config.backward.grace_s)
        if self._relay_closes_at is not None:
            due.append(self._relay_closes_at)
        return min(due, default=None)

    def release_latch(self, t: float) -> Actions:
        """START while the loop is latched open: close it, so the treadmill can restart."""
        actions = Actions()
        if self.latched:
            self.latched = False
            self._set_relay(RelayState.CLOSED, actions)
        return actions

    def session_resumed(self) -> bool:
        """The walker resumed. True when the pause was an enforced stop: the backward segment
        then starts again at the start cap."""
        was, self.stopped_by_guard = self.stopped_by_guard, False
        self.watch.reset()
        return was

    def session_ended(self) -> None:
        """A new session starts afresh: no stop to resume from, nothing being watched. A
        latched relay stays open until START, as it promised."""
        self.stopped_by_guard = False
        self.watch.reset()

    def safe(self, actions: Actions) -> None:
        """Loop closed, warning off: the daemon is stopping."""
        self.latched = False
        self._relay_closes_at = None
        self._set_relay(RelayState.CLOSED, actions)
        if self.decision.verdict is not Verdict.OK:  # a warning is beeping: stop it
            self._play(Tune.SILENT, actions)

    def status(self) -> dict[str, Any]:
        d = self.decision
        warning = None
        if d.verdict is not Verdict.OK:
            warning = {
                "reason": d.reason,
                "speed_kmh": _round(d.speed_kmh),
                "cap_kmh": d.cap_kmh,
                "seconds_left": round(d.seconds_left or 0.0, 1),
                "enforced": d.verdict is Verdict.ENFORCED,
            }
        return {
            "warning": warning,
            "enforcement": self.config.enforce.action,
            "cap_enforced": self.enforces,
            "relay": self.relay.value,
            "latched": self.latched,
            "sensor_lost": self.sensor_lost,
        }

    # -- inside ---------------------------------------------------------------------------

    def _enforce(self, t: float, decision: Decision, actions: Actions) -> None:
        enforce = self.config.enforce
        details: dict[str, Any] = {
            "speed_kmh": _round(decision.speed_kmh),
            "cap_kmh": decision.cap_kmh,
            "reason": decision.reason,
        }
        if not self.enforces:
            details["action"] = "none"
            actions.events.append(Event(t, EventKind.NOT_ENFORCED, details))
            return  # the warning beeps on until the walker slows down
        details.update(action="relay", mode=enforce.mode)
        actions.events.append(Event(t, EventKind.ENFORCED_STOP, details))
        self._set_relay(RelayState.OPEN, actions)
        if enforce.mode == "latch":
            self.latched = True
        else:
            self._relay_closes_at = t + enforce.pulse_s
        self.stopped_by_guard = True
        actions.pause = True
        actions.warning_light = False
        self._play(Tune.STOPPED, actions)
        self.watch.reset()

    def _close_pulse(self, t: float, actions: Actions) -> None:
        if self._relay_closes_at is not None and t >= self._relay_closes_at:
            self._relay_closes_at = None
            self._set_relay(RelayState.CLOSED, actions)

    def _watch_sensor(
        self, t: float, mean_kmh: float | None, in_session: bool, actions: Actions
    ) -> None:
        lost = mean_kmh is None
        if lost and not self.sensor_lost and in_session:
            self.sensor_lost = True
            actions.events.append(
                Event(t, EventKind.SENSOR_LOST, {"sensor": self.config.sensor.kind})
            )
        elif not lost and self.sensor_lost:
            self.sensor_lost = False
            actions.events.append(
                Event(t, EventKind.SENSOR_RESTORED, {"sensor": self.config.sensor.kind})
            )

    def _set_relay(self, state: RelayState, actions: Actions) -> None:
        if state is not self.relay:
            self.relay = state
            actions.relay = state

    def _play(self, tune: Tune, actions: Actions) -> None:
        if tune is not self._tune:
            self._tune = tune
            actions.tune = tune


def _round(kmh: float | None) -> float | None:
    return None if kmh is None else round(kmh, 2)


# The LED pattern a warning shows, kept here beside the rest of the warning's signals.
WARNING_LIGHT = LedPattern.FAST_BLINK

# What the walker reads after each guard event ("" clears the last message).
WALKER_READS = {
    EventKind.ENFORCED_STOP: "Stopped: {speed_kmh} km/h is over the {cap_kmh} km/h cap. "
    "Press START to walk on at the start cap.",
    EventKind.NOT_ENFORCED: "Over the {cap_kmh} km/h cap: slow down. The cap is not enforced "
    "on this machine.",
    EventKind.OVERSPEED_CLEARED: "",
    EventKind.SENSOR_LOST: "The belt speed is unknown: check the speed sensor.",
    EventKind.SENSOR_RESTORED: "",
}
