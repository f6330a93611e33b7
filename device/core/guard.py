"""The guard: the safety invariant, step by step.

    While the mode is backward, the belt may not run over the allowed speed for longer than
    the grace, counted with memory; no button, command, pause, end, mode switch or reload
    refills that time; only walking under the limit does, slowly.

The guard watches the belt, not the session. In backward mode some cap is always in force:
- a running session: its cap (the governor's hold and ramp over the walked time);
- a paused one: the cap it had when the pause began (after an enforced stop: the start cap);
- a session that ended, or a backward start that was refused: the cap it had (the start cap
  for a refusal) until the belt has been at or under the start cap + tolerance for
  RELEASE_AFTER_S, or has stopped;
- no session at all: the start cap, and [enforce] without_session says whether running out of
  budget stops the belt ("stop") or only warns ("warn", the default: a runner who ignores the
  device must not be stopped abruptly);
- for RESTART_WATCH_S after an enforced stop, whatever the session does: the start cap, with a
  budget of at most RESTART_GRACE_S. A fast restart from the console is stopped again at once.

Time over the limit draws on one budget (device/core/overspeed.py). A speed the device cannot vouch
for counts as over. Enforcement is an emergency stop. With action "relay" the relay opens the
treadmill's safety-key loop, as if the walker had pulled the key. Mode "pulse" closes the loop
again after `pulse_s` so the treadmill can be restarted from its console; "latch" keeps it
open until START is pressed. With action "none" the warning stays a warning, and the event
says so. With [enforce] soft = "csafe" the console is first asked to slow the belt to the cap
(device/core/soft_stop.py); the relay follows if it does not.

Pure: time is an argument, and what it decides comes back as `Actions` for the controller to
carry out and record.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from device.config.model import Config
from device.core.events import Event, EventKind
from device.core.modes import Mode, SessionState
from device.core.overspeed import OK, Decision, Limit, OverspeedWatch, Verdict
from device.core.sensor_trust import TRUSTED, SensorVerdict
from device.core.signals import LedPattern, RelayState, Tune, warning_tune
from device.core.soft_stop import STOPPING, SoftOutcome, SoftStops
from device.core.status import GuardStatus, WarningStatus

RELEASE_AFTER_S = 2.0  # an ended session's cap lets go after this long at the start line
RESTART_WATCH_S = 120.0  # after an enforced stop, a restart is watched this long
RESTART_GRACE_S = 2.0  # ... with this budget at most


@dataclass
class Actions:
    """What one guard step asks of the controller."""

    events: list[Event] = field(default_factory=list)
    tune: Tune | None = None  # a tune to start now
    warning_light: bool | None = None  # True: flash the LED; False: back to showing the mode
    relay: RelayState | None = None  # a relay change
    pause: bool = False  # the session pauses: the cap was enforced
    console_speed_kmh: float | None = None  # ask the console to slow the belt to this
    belt_cut: bool = False  # the relay just opened: the belt stops for a reason we know


@dataclass(frozen=True)
class Belt:
    """What the guard is told of the belt and the walker at one tick."""

    mode: Mode
    state: SessionState
    session_cap_kmh: float | None  # the session's cap in backward mode, None outside one
    mean_kmh: float | None  # the 3 s mean; None when the device cannot vouch for it
    speed_kmh: float | None  # the display, for "stopped"
    sensor: SensorVerdict = TRUSTED


@dataclass
class _Held:
    """A cap that outlives its session: it ended, or a start was refused, with the belt
    possibly still fast."""

    cap_kmh: float
    scope: str  # "ended" | "refused"
    slow_since: float | None = None
    announced: bool = False


class Guard:
    def __init__(self, config: Config):
        self.config = config
        self.watch = OverspeedWatch(config.backward.grace_s)
        self.decision: Decision = OK
        self.limit: Limit | None = None  # in force at the last step
        self.relay = RelayState.CLOSED
        self.latched = False
        self.sensor: SensorVerdict = TRUSTED
        self.stopped_at: float | None = None  # the last enforced stop
        self._held: _Held | None = None
        self._relay_closes_at: float | None = None
        self._holding_open = False  # a pulse ended with the speed unknown: the loop stays open
        self._tune: Tune | None = None
        self.soft = SoftStops()

    @property
    def enforces(self) -> bool:
        return self.config.enforce.action == "relay"

    def reconfigure(self, config: Config) -> None:
        """New rules apply at once, but the budget keeps what was spent: a reload never
        restarts or lengthens a running grace."""
        self.config = config

    # -- the tick ---------------------------------------------------------------------------

    def step(self, t: float, belt: Belt) -> Actions:
        actions = Actions()
        # the console's word, for a soft stop: kept whatever [enforce] soft says now, so a
        # reload that turns soft stops on knows how fast the console said the belt ran
        self.soft.track(t, belt.speed_kmh)
        self._watch_sensor(t, belt.sensor, actions)
        self._close_pulse(t, belt, actions)
        self._release_held(t, belt, actions)
        limit = self.limit = self.limit_at(t, belt)
        # While our relay holds the loop open the belt cannot run, whatever a sensor says:
        # judging it then would only stop a stopped belt again and again.
        mean = 0.0 if self.relay is RelayState.OPEN else belt.mean_kmh
        decision = self.decision = self.watch.judge(t, limit, mean)
        if decision.began:
            actions.events.append(Event(t, EventKind.OVERSPEED_WARNING, self._told(decision)))
            actions.warning_light = True
        if decision.cleared:
            details = {"speed_kmh": _round(decision.speed_kmh), "cap_kmh": decision.cap_kmh}
            actions.events.append(Event(t, EventKind.OVERSPEED_CLEARED, details))
            actions.warning_light = False
            self._play(Tune.SILENT, actions)
        if decision.verdict is not Verdict.OK:
            if decision.enforcing:
                # to the microsecond: a budget drained tick by tick carries float dust
                left = round(decision.seconds_left or 0.0, 6)
                tune = warning_tune(left, self.watch.ceiling_s)
            else:
                tune = Tune.WARN_SLOW  # no stop will come: a steady reminder
            self._play(tune, actions)
        if decision.enforce and self._soft_allowed(t, belt, limit):
            self._ask_console(t, belt, decision, actions)
        elif decision.enforce:
            self._enforce(t, belt, decision, actions)
        self._follow_soft(t, belt, limit, actions)
        return actions

    def next_deadline(self) -> float | None:
        """The next moment a decision falls due: the budget running out, or a relay pulse
        ending."""
        due = [self.watch.deadline(), self._relay_closes_at, self.soft.deadline()]
        return min((d for d in due if d is not None), default=None)

    # -- what the controller tells it -------------------------------------------------------

    def session_started(self) -> None:
        """A session took over (a backward one only starts with the belt slow)."""
        self._held = None

    def session_ended(self, t: float, belt: Belt, last_cap_kmh: float | None) -> list[Event]:
        """The session ended: its cap holds on until the belt has slowed or stopped."""
        cap = self.config.backward.start_cap_kmh if last_cap_kmh is None else last_cap_kmh
        return self._hold(t, belt, cap, "ended")

    def start_refused(self, t: float, belt: Belt) -> list[Event]:
        """A backward start was refused with the belt fast: the walker who walks on anyway is
        guarded as in a session, at the start cap."""
        return self._hold(t, belt, self.config.backward.start_cap_kmh, "refused")

    def remember_stop(self, stopped_at: float) -> None:
        """An enforced stop from before this guard existed (the daemon restarted): within
        RESTART_WATCH_S of it, a restart is watched as if the guard had seen the stop."""
        self.stopped_at = stopped_at
        self.watch.stopped(min(self.config.backward.grace_s, RESTART_GRACE_S))
        self.watch.budget_s = 0.0

    def remember_console_ignores_speed(self) -> None:
        """The store says this console once ignored SetSpeed: stops go straight to the relay."""
        self.soft.ignored = True

    def release_latch(self, t: float) -> Actions:
        """START while the loop is latched open: close it, so the treadmill can restart."""
        actions = Actions()
        if self.latched:
            self.latched = False
            self._set_relay(RelayState.CLOSED, actions)
        return actions

    def safe(self, actions: Actions) -> None:
        """Loop closed, warning off: the daemon is stopping."""
        self.latched = self._holding_open = False
        self._relay_closes_at = None
        self._set_relay(RelayState.CLOSED, actions)
        if self.decision.verdict is not Verdict.OK:  # a warning is beeping: stop it
            self._play(Tune.SILENT, actions)

    # -- what it shows ----------------------------------------------------------------------

    def restart_watched(self, t: float) -> bool:
        return self.stopped_at is not None and t - self.stopped_at < RESTART_WATCH_S

    def status(self) -> GuardStatus:
        d, limit = self.decision, self.limit
        warning: WarningStatus | None = None
        if d.verdict is not Verdict.OK:
            warning = {
                "reason": d.reason,
                "speed_kmh": _round(d.speed_kmh),
                "cap_kmh": d.cap_kmh,
                "seconds_left": round(d.seconds_left or 0.0, 1),
                "enforced": d.verdict is Verdict.ENFORCED,
                "stop_coming": d.enforcing,
                "scope": d.scope,
            }
        return {
            "warning": warning,
            "limit_kmh": limit.line_kmh if limit else None,
            "guard": limit.scope if limit else None,
            "grace_left_s": round(max(0.0, self.watch.budget_s), 1),
            "enforcement": self.config.enforce.action,
            "cap_enforced": self.enforces,
            "soft": self.config.enforce.soft,
            "slowing": self.soft.pending is not None,
            "console_ignores_speed": self.soft.ignored,
            "relay": self.relay.value,
            "latched": self.latched,
            "sensor_lost": not self.sensor.trusted,
        }

    # -- inside ---------------------------------------------------------------------------

    def limit_at(self, t: float, belt: Belt) -> Limit | None:
        """The limit in force for this belt now (None in forward mode)."""
        if belt.mode is not Mode.BACKWARD:
            return None
        b, enforce = self.config.backward, self.config.enforce
        grace, enforcing = b.grace_s, True
        if belt.state is not SessionState.IDLE and belt.session_cap_kmh is not None:
            paused = belt.state is SessionState.PAUSED
            cap, scope = belt.session_cap_kmh, "paused" if paused else "session"
        elif self._held is not None:
            cap, scope = self._held.cap_kmh, self._held.scope
        else:
            cap, scope = b.start_cap_kmh, "no session"
            enforcing = enforce.without_session == "stop"
        if self.restart_watched(t):
            cap, scope = min(cap, b.start_cap_kmh), "after a stop"
            grace, enforcing = min(grace, RESTART_GRACE_S), True
        # with action "none" nothing stops the belt: running out of budget only warns, and a
        # reload back to "relay" finds the stop still owed. Everything downstream (the tune,
        # the status's stop_coming, the enforcement) reads this one flag.
        enforcing = enforcing and self.enforces
        return Limit(cap, b.tolerance_kmh, grace, enforcing=enforcing, scope=scope)

    def _hold(self, t: float, belt: Belt, cap_kmh: float, scope: str) -> list[Event]:
        b = self.config.backward
        self._held = _Held(cap_kmh, scope)
        line = b.start_cap_kmh + b.tolerance_kmh
        readings = [kmh for kmh in (belt.mean_kmh, belt.speed_kmh) if kmh is not None]
        speed = max(readings) if belt.mean_kmh is not None else None
        if belt.mode is not Mode.BACKWARD or (speed is not None and speed <= line):
            return []
        self._held.announced = True
        details = {
            "why": "the session ended" if scope == "ended" else "the start was refused",
            "speed_kmh": _round(speed),
            "start_cap_kmh": b.start_cap_kmh,
            "cap_kmh": cap_kmh,
        }
        return [Event(t, EventKind.STILL_GUARDED, details)]

    def _release_held(self, t: float, belt: Belt, actions: Actions) -> None:
        """A held cap lets go once the belt has been at or under the start cap + tolerance
        for RELEASE_AFTER_S (a stopped belt is too, and a speed nobody can vouch for is not)."""
        held = self._held
        if held is None:
            return
        b = self.config.backward
        slow = belt.mean_kmh is not None and belt.mean_kmh <= b.start_cap_kmh + b.tolerance_kmh
        if not slow:
            held.slow_since = None
            return
        if held.slow_since is None:
            held.slow_since = t
        if t - held.slow_since >= RELEASE_AFTER_S:
            self._held = None
            if held.announced:
                details = {"speed_kmh": _round(belt.mean_kmh), "cap_kmh": held.cap_kmh}
                actions.events.append(Event(t, EventKind.GUARD_RELEASED, details))

    def _told(self, decision: Decision) -> dict[str, Any]:
        return {
            "speed_kmh": _round(decision.speed_kmh),
            "cap_kmh": decision.cap_kmh,
            "grace_s": round(max(0.0, decision.seconds_left or 0.0), 1),
            "reason": decision.reason,
            "scope": decision.scope,
            "stop_coming": decision.enforcing,
        }

    def _enforce(self, t: float, belt: Belt, decision: Decision, actions: Actions) -> None:
        details: dict[str, Any] = {
            "speed_kmh": _round(decision.speed_kmh),
            "cap_kmh": decision.cap_kmh,
            "reason": decision.reason,
            "scope": decision.scope,
        }
        if not decision.enforcing:
            details["action"] = "none" if not self.enforces else "warn"
            details["why"] = (
                "this machine has no enforcement action"
                if not self.enforces
                else 'nobody started a session and [enforce] without_session is "warn"'
            )
            actions.events.append(Event(t, EventKind.NOT_ENFORCED, details))
            return  # the warning beeps on until the walker slows down
        self._cut(t, belt, details, actions)

    def _cut(self, t: float, belt: Belt, details: dict[str, Any], actions: Actions) -> None:
        """Open the safety-key loop: the emergency stop, after the warning."""
        enforce = self.config.enforce
        details.update(action="relay", mode=enforce.mode)
        actions.events.append(Event(t, EventKind.ENFORCED_STOP, details))
        self.soft.cleared()
        self._set_relay(RelayState.OPEN, actions)
        if enforce.mode == "latch":
            self.latched = True
        else:
            self._relay_closes_at = t + enforce.pulse_s
        self.stopped_at = t
        actions.pause = belt.state is SessionState.RUNNING
        actions.belt_cut = True
        actions.warning_light = False
        self._play(Tune.STOPPED, actions)
        self.watch.stopped(min(self.config.backward.grace_s, RESTART_GRACE_S))
        self.decision = Decision(Verdict.OK)

    def _soft_allowed(self, t: float, belt: Belt, limit: Limit | None) -> bool:
        """Whether to ask the console first (SoftStops.may_ask), under a limit that stops,
        and not in the restart watch (a fast restart after a stop is stopped again at once)."""
        if limit is None or not limit.enforcing or self.restart_watched(t):
            return False
        return self.soft.may_ask(t, self.config, speed_kmh=belt.speed_kmh, cap_kmh=limit.cap_kmh)

    def _ask_console(self, t: float, belt: Belt, decision: Decision, actions: Actions) -> None:
        speed = belt.speed_kmh or 0.0  # known: _soft_allowed asked
        actions.events.append(self.soft.ask(t, decision, self.config, speed_kmh=speed))
        actions.console_speed_kmh = decision.cap_kmh or 0.0

    def _follow_soft(self, t: float, belt: Belt, limit: Limit | None, actions: Actions) -> None:
        """A soft stop under way: the belt came down, or the relay does what is left."""
        if not self.soft.busy:
            return
        guarded = belt.mode is Mode.BACKWARD and limit is not None and limit.enforcing
        warning = self.watch.warning
        outcome, events = self.soft.follow(t, belt.speed_kmh, guarded=guarded, warning=warning)
        actions.events += events
        if outcome is SoftOutcome.RELEASED and self.watch.warning:
            self.watch.owe_stop()  # the soft stop stood in for this warning's stop: owed again
        if outcome in STOPPING and limit is not None:
            details = {
                "speed_kmh": _round(belt.speed_kmh if belt.mean_kmh is None else belt.mean_kmh),
                "cap_kmh": limit.cap_kmh,
                "reason": "speed unknown" if belt.speed_kmh is None else "over the cap",
                "scope": limit.scope,
                "soft": outcome.value,
            }
            self._cut(t, belt, details, actions)

    def _close_pulse(self, t: float, belt: Belt, actions: Actions) -> None:
        """End a relay pulse, unless the belt in backward mode is still a speed nobody can
        vouch for: then the loop stays open (one stop, not a stop every pulse) until the
        speed is known again or the walker turns forward."""
        unknown = belt.mode is Mode.BACKWARD and belt.mean_kmh is None
        if self._holding_open and not unknown:
            self._holding_open = False
            self._set_relay(RelayState.CLOSED, actions)
        if self._relay_closes_at is None or t < self._relay_closes_at:
            return
        self._relay_closes_at = None
        if unknown:
            self._holding_open = True
            details = {"sensor": belt.sensor.channel, "why": belt.sensor.detail}
            actions.events.append(Event(t, EventKind.STOP_HELD, details))
            return
        self._set_relay(RelayState.CLOSED, actions)

    def _watch_sensor(self, t: float, verdict: SensorVerdict, actions: Actions) -> None:
        before, self.sensor = self.sensor, verdict
        if (verdict.state, verdict.channel) == (before.state, before.channel):
            return  # the same fault, perhaps with new numbers in its sentence
        if verdict.trusted:
            actions.events.append(Event(t, EventKind.SENSOR_RESTORED, {"sensor": before.channel}))
            return
        details = {"sensor": verdict.channel, "state": verdict.state.value}
        actions.events.append(Event(t, EventKind.SENSOR_LOST, {**details, "why": verdict.detail}))

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
