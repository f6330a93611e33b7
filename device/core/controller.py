"""The Controller: one tick of the treadmill companion.

It composes the pure core (speed estimator or serial readings, session machine, governor) and
turns belt pulses, button presses, commands and the passing of time into events, output
patterns and 1 Hz samples. The daemon and the simulator drive this same object; only their
clocks and adapters differ, which is what makes `retrotread simulate` a faithful test of the
daemon. No I/O here: the caller records what a tick returns.
"""

from __future__ import annotations

from typing import Any

from device.config.model import Config, SensorKind
from device.core.commands import CommandRefused as CommandRefused
from device.core.commands import allowed_command
from device.core.console import ConsoleFollower, ConsoleState, SpeedAnswer
from device.core.events import Event, EventKind
from device.core.gate import start_refusal
from device.core.governor import CapSchedule, Governor
from device.core.guard import WARNING_LIGHT, Actions, Belt, Guard
from device.core.modes import EndReason, Mode, SessionState
from device.core.program import Profile, SessionSummary
from device.core.progression import Progression
from device.core.restarts import restart_note
from device.core.sensor_watch import SensorWatch
from device.core.session import SessionAction, SessionMachine
from device.core.signals import LedPattern, Tune
from device.core.status import ControllerStatus, console_status, controller_status, sensor_status
from device.core.tick import Output, OutputChange, Sample, TickResult
from device.core.walker_reads import walker_reads

SAMPLE_EVERY_S = 1.0
# Forward and back to backward within this long, at a speed under the cap the walker had,
# carries that cap on: a bumped DIRECTION button must not cost an earned cap (and bring the
# abrupt stop of a walker who is walking correctly).
TURN_BACK_WITHIN_S = 60.0

EVENT_TUNES = {
    EventKind.SESSION_STARTED: Tune.START,
    EventKind.SESSION_PAUSED: Tune.PAUSE,
    EventKind.SESSION_RESUMED: Tune.RESUME,
    EventKind.SESSION_ENDED: Tune.END,
    EventKind.MODE_CHANGED: Tune.MODE,
}


class Controller:
    def __init__(
        self,
        config: Config,
        *,
        t: float,
        wall_offset: float = 0.0,
        profile: Profile | None = None,
        recent: list[SessionSummary] | None = None,
    ):
        """`t` is now on the monotonic clock the caller will tick with; `wall_offset` turns it
        into epoch seconds for the program's weeks. `profile` and `recent` (its sessions
        since its program began) come from the store."""
        self.config = config
        self.wall_offset = wall_offset
        self.progression = Progression(config, profile=profile, recent=recent)
        self.governor = Governor(config.backward)
        self.guard = Guard(config)
        self.session = SessionMachine(
            config.session,
            hold_s=config.buttons.hold_s,
            fast_kmh=config.program.running_unlock_kmh,
        )
        self.uses_pulses = config.sensor.kind == SensorKind.HALL
        self.sensor = SensorWatch.for_sensor(config.sensor)
        self._last_cap: float | None = None  # the session's cap at the last tick
        self._turned: tuple[float, float, float] | None = None  # forward at: t, walked, cap
        self.message = ""  # the last thing the walker should read, e.g. why a start was refused
        self._auto_refused = False
        self._pending = TickResult()
        self._led: LedPattern | None = None
        self._next_sample_t = t
        self.console = ConsoleFollower()  # the console's machine state, if one is read
        self._show_mode(t)

    # -- inputs from the adapters ----------------------------------------------------------

    def pulse(self, t: float) -> None:
        """A hall or reed edge at monotonic time t (the edge's own time, not the callback's)."""
        self.sensor.pulse(t)

    def check_pulse(self, t: float) -> None:
        """An edge of the check sensor ([sensor.check]); ignored when none is configured."""
        self.sensor.check_pulse(t)

    def speed_reading(self, t: float, kmh: float) -> None:
        """A speed reported by a serial bridge or console."""
        self.sensor.reading(t, kmh)

    def console_reading(self, t: float, kmh: float) -> None:
        """A speed from the CSAFE console that checks the hall sensor ([sensor.check])."""
        self.sensor.console_reading(t, kmh)

    def console_changed(self, t: float, state: ConsoleState) -> None:
        """The console's machine state changed; with [session] follow_console its workout
        starts, pauses and ends the session (a backward start still needs the belt slow)."""
        self._emit([Event(t, EventKind.CONSOLE_STATE, {"state": state.value})])
        session, known = self.session, self.start_speed_kmh(t) is not None
        self._follow_console(t, self.console.changed(
            t, state, follow=self.config.session.follow_console, in_session=session.in_session,
            running=session.state is SessionState.RUNNING, speed_known=known,
        ))  # fmt: skip

    def _follow_console(self, t: float, action: SessionAction | None) -> None:
        if action is SessionAction.END:
            self._emit(self.session.end(t, EndReason.CONSOLE))
        elif action is not None:
            self._attempt(t, action, reason="console")

    def console_answered(self, t: float, answer: SpeedAnswer) -> None:
        """What the console made of the last SetSpeed: a refusal brings the relay now."""
        self.guard.soft.answered(answer)

    def start_down(self, t: float) -> None:
        self.session.start_down(t)

    def start_up(self, t: float) -> None:
        # START on the treadmill is what releases a latched safety stop, and a latched sensor
        # fault once the belt was seen stopped
        self.sensor.start_pressed(t)
        self._carry_out(t, self.guard.release_latch(t))
        action = self.session.start_up(t)
        if action is SessionAction.END:
            self._emit(self.session.end(t, EndReason.BUTTON))
        elif action is not None:
            self._attempt(t, action, reason="button")

    def direction_pressed(self, t: float) -> None:
        self._set_mode(t, self.session.mode.toggled(), reason="button")

    def command(self, t: float, cmd: str, mode: Mode | None = None) -> None:
        """A command from the socket (the dashboard). Raises CommandRefused with a sentence
        when it cannot be done in the current state."""
        # which commands the session allows, and the sentences: device/core/commands.py
        wanted = allowed_command(cmd, mode, self.session, latched=self.guard.latched)
        if isinstance(wanted, Mode):
            self._set_mode(t, wanted, reason="command")
        elif wanted is SessionAction.END:
            self._emit(self.session.end(t, EndReason.COMMAND))
        elif not self._attempt(t, wanted, reason="command"):
            raise CommandRefused(self.message)

    def reconfigure(self, t: float, config: Config) -> str:
        """Take a new config (the settings page saved it). Rules and names apply at once;
        pins and the sensor's kind belong to adapters the daemon opened at start-up, so those
        changes wait for a restart, and the returned note says so ("" when none)."""
        old = self.config
        self.config = config
        self.governor = Governor(config.backward)
        self.guard.reconfigure(config)
        self.progression.reconfigure(config)
        self.session.fast_kmh = config.program.running_unlock_kmh
        self.session.config = config.session
        self.session.hold_s = config.buttons.hold_s
        self.sensor.recalibrate(old.sensor, config.sensor)
        note = restart_note(old, config)
        self._emit([Event(t, EventKind.CONFIG_RELOADED, {"note": note} if note else {})])
        return note

    def next_deadline(self) -> float | None:
        """When a tick must run even between the 10 Hz ticks: the end of a warning's grace
        or of a relay pulse. The daemon wakes for it, so enforcement does not wait for the
        next tick."""
        return self.guard.next_deadline()

    # -- reading the belt -------------------------------------------------------------------

    def speed_kmh(self, t: float) -> float | None:
        """The displayed speed; None when the device cannot vouch for it (a stale serial
        source, a suspect or faulty sensor, two sensors that disagree)."""
        return self.sensor.speed_kmh(t)

    def mean_kmh(self, t: float) -> float | None:
        """The smoothed speed the safety rules use; None when it cannot be vouched for."""
        return self.sensor.mean_kmh(t)

    def start_speed_kmh(self, t: float) -> float | None:
        """The speed a backward start (or a turn back to backward) is judged at: the higher
        of the display and the 3 s mean, since the mean still remembers the standstill a
        second after the belt jumped to 4 km/h and the display already knows. None unless
        both are known and rest on two pulse intervals."""
        speed, mean = self.speed_kmh(t), self.mean_kmh(t)
        if speed is None or mean is None or not self.sensor.speed_known(t):
            return None
        return max(speed, mean)

    def cap(self, t: float) -> CapSchedule | None:
        """The session's cap: its schedule over the walked time of the backward segment;
        None in forward mode or outside a session."""
        segment = self.session.segment
        if segment is None:
            return None
        progression = self.progression
        return self.governor.schedule(
            self.session.mode, segment.walked_s, progression.level, running=progression.running
        )

    def belt(self, t: float) -> Belt:
        """What the guard is told of the belt and the walker now."""
        schedule = self.cap(t)
        return Belt(
            mode=self.session.mode,
            state=self.session.state,
            session_cap_kmh=schedule.cap_kmh if schedule else None,
            mean_kmh=self.mean_kmh(t),
            speed_kmh=self.speed_kmh(t),
            sensor=self.sensor.verdict,
        )

    # -- the tick ---------------------------------------------------------------------------

    def tick(self, t: float) -> TickResult:
        self.sensor.judge(t)
        speed = self.speed_kmh(t)
        before = self.cap(t)  # the cap over the stretch that just ended
        share = self.config.program.qualifying_share
        self.session.paced_kmh = share * before.cap_kmh if before else None
        self.session.walk_counts = not self.guard.watch.over  # over the limit earns nothing
        self._emit(self.session.tick(t, speed))
        if self.session.start_held(t) and self.session.in_session:
            self._emit(self.session.end(t, EndReason.BUTTON))
        if self.session.belt_running_for(t) == 0:
            self._auto_refused = False  # the belt stopped: a new run may be refused afresh
        if self.console.waiting:  # a start the console asked for, waiting for the speed
            known, wait_s = self.start_speed_kmh(t) is not None, self.config.sensor.stale_s
            self._follow_console(t, self.console.due(t, speed_known=known, wait_s=wait_s))
        if self.session.wants_auto_start(t):
            self._auto_attempt(t, SessionAction.START)
        elif self.session.wants_auto_resume(t):
            self._auto_attempt(t, SessionAction.RESUME)
        belt = self.belt(t)
        self._last_cap = belt.session_cap_kmh
        self._carry_out(t, self.guard.step(t, belt))
        if t >= self._next_sample_t:  # after the guard: its actions can change state and cap
            schedule = self.cap(t)
            self._pending.sample = Sample(
                t=t,
                speed_kmh=None if speed is None else round(speed, 2),
                mode=self.session.mode,
                state=self.session.state,
                cap_kmh=schedule.cap_kmh if schedule else None,
            )
            self._next_sample_t += SAMPLE_EVERY_S * max(
                1, int((t - self._next_sample_t) // SAMPLE_EVERY_S) + 1
            )
        return self._finish_tick()

    def _finish_tick(self) -> TickResult:
        result, self._pending = self._pending, TickResult()
        ended = any(e.kind is EventKind.SESSION_ENDED for e in result.events)
        result.totals = self.session.last_totals if ended else self.session.totals
        return result

    def shutdown(self, t: float) -> TickResult:
        """End an open session (reason shutdown) and put every output in its safe state."""
        if self.session.in_session:
            self._emit(self.session.end(t, EndReason.SHUTDOWN))
        actions = Actions()
        self.guard.safe(actions)
        self._carry_out(t, actions)
        self._set_led(t, LedPattern.OFF)
        return self._finish_tick()

    # -- status for the socket and the dashboard ---------------------------------------------

    def status(self, t: float) -> ControllerStatus:
        """What the dashboard and the socket show; see device/core/status.py."""
        # the start gate's word before anyone presses: "not yet, the speed is not known"
        refusal = None if self.session.state is SessionState.RUNNING else self._start_refusal(t)
        return controller_status(
            self.config,
            self.session,
            schedule=self.cap(t),
            limit=self.guard.limit_at(t, self.belt(t)),  # as of now: a reload shows
            speed_kmh=self.speed_kmh(t),
            mean_kmh=self.mean_kmh(t),
            progression=self.progression.status(t + self.wall_offset),
            sensor=sensor_status(self.config.sensor, self.sensor),
            guard=self.guard.status(),
            console=console_status(self.config, self.console.state, self.guard.soft.last_answer),
            message=self.message,
            start_refusal=None if refusal is None else refusal["reason"],
        )

    # -- decisions ----------------------------------------------------------------------------

    def _auto_attempt(self, t: float, action: SessionAction) -> None:
        """The belt asks to start or resume at every tick while it runs; a refusal is said
        (event, beeps) once per run of the belt, then retried quietly until the walker slows
        the belt to the start cap."""
        refusal = self._start_refusal(t)
        if self._auto_refused and refusal is not None:
            return
        if refusal is not None and self.sensor.verdict.trusted and refusal["speed_kmh"] is None:
            return  # a slow belt just started: wait for the edges that tell its speed
        self._auto_refused = not self._attempt(t, action, reason="belt running")

    def _attempt(self, t: float, action: SessionAction, *, reason: str) -> bool:
        """Start or resume if the belt allows it, pause otherwise. Returns False on refusal."""
        if action in (SessionAction.START, SessionAction.RESUME):
            refusal = self._start_refusal(t)
            if refusal is not None:
                self.message = refusal["reason"]
                self._emit([Event(t, EventKind.START_REFUSED, refusal)])
                self._beep(t, Tune.REFUSED)
                if self.session.state is SessionState.IDLE:
                    # the walker may walk on anyway: the guard watches as in a session
                    self._emit(self.guard.start_refused(t, self.belt(t)))
                return False
        self.message = ""
        if action is SessionAction.START:
            self.guard.session_started()
            walker = self.progression.session_started()
            told = {"profile": walker.name, "level": self.progression.level}
            self._emit(self.session.start(t, reason=reason, body_kg=walker.weight_kg, walker=told))
        else:
            transition = (
                self.session.resume if action is SessionAction.RESUME else self.session.pause
            )
            self._emit(transition(t, reason=reason))
        return True

    def _start_refusal(self, t: float) -> dict[str, Any] | None:
        """A backward session or segment may only begin with the belt slow (device/core/gate.py)."""
        if self.session.mode is not Mode.BACKWARD:
            return None
        return start_refusal(
            self.config.backward, speed_kmh=self.start_speed_kmh(t), sensor=self.sensor.verdict
        )

    def _set_mode(self, t: float, mode: Mode, *, reason: str) -> None:
        turned, schedule, segment = self._turned, self.cap(t), self.session.segment
        if segment is not None and schedule is not None and mode is Mode.FORWARD:
            self._turned = (t, segment.walked_s, schedule.cap_kmh)  # leaving backward walking
        self._emit(self.session.set_mode(t, mode, reason=reason))
        segment = self.session.segment
        if segment is not None and mode is Mode.BACKWARD and turned is not None:
            self._turned = None
            at, walked_s, cap = turned
            speed = self.start_speed_kmh(t)
            line = cap + self.config.backward.tolerance_kmh
            if t - at <= TURN_BACK_WITHIN_S and speed is not None and speed <= line:
                segment.walked_s = walked_s  # the same backward walk, after a bumped button
        self._show_mode(t)

    def _show_mode(self, t: float) -> None:
        pattern = LedPattern.SLOW_BLINK if self.session.mode is Mode.BACKWARD else LedPattern.STEADY
        self._set_led(t, pattern)

    # -- outputs ----------------------------------------------------------------------------

    def _emit(self, events: list[Event]) -> None:
        """Record events and sound the tune that goes with each session event; a session's
        end also tells the program what was walked."""
        for event in events:
            self._pending.events.append(event)
            if event.kind in EVENT_TUNES:
                self._beep(event.t, EVENT_TUNES[event.kind])
            if event.kind is EventKind.SESSION_ENDED:
                self.message = ""  # what the last session was told is over with it
                self._turned = None
                if event.details["reason"] != EndReason.SHUTDOWN:  # the daemon is stopping
                    held = self.guard.session_ended(event.t, self.belt(event.t), self._last_cap)
                    self._pending.events += held
                    self._tell(held)
            if event.kind is EventKind.SESSION_ENDED and self.session.last_totals is not None:
                profile, earned = self.progression.session_ended(
                    self.session.last_totals,
                    reason=event.details["reason"],
                    wall_offset=self.wall_offset,
                    t=event.t,
                )
                self._pending.events += earned
                self._pending.profile = profile or self._pending.profile

    def _set_led(self, t: float, pattern: LedPattern) -> None:
        if pattern is not self._led:
            self._led = pattern
            self._pending.outputs.append(OutputChange(t, Output.LED, pattern))

    def _carry_out(self, t: float, actions: Actions) -> None:
        """Do what the guard decided: record its events, pause on an enforced stop, switch
        the relay, the warning light and the warning beeps."""
        self._pending.events += actions.events
        if actions.belt_cut:
            self.sensor.belt_cut(t)  # the edges end now for a reason we know
            if self.session.in_session and self.session.mode is Mode.BACKWARD:
                self.session.restart_segment(t)  # the start cap again, paused or not
        if actions.pause:  # its own tune, "stopped", says more than the pause beeps
            self._pending.events += self.session.pause(t, reason="enforced stop")
        if actions.relay is not None:
            self._pending.outputs.append(OutputChange(t, Output.RELAY, actions.relay))
        if actions.console_speed_kmh is not None:
            self._pending.outputs.append(
                OutputChange(t, Output.CONSOLE_SPEED, actions.console_speed_kmh)
            )
        if actions.warning_light is True:
            self._set_led(t, WARNING_LIGHT)
        elif actions.warning_light is False:
            self._show_mode(t)
        beeping = any(change.name is Output.BUZZER for change in self._pending.outputs)
        if actions.tune is Tune.SILENT and beeping:
            pass  # a session tune this tick already replaced the warning beeps: let it sound
        elif actions.tune is not None:
            self._beep(t, actions.tune)  # after the pause's own beeps: this one is heard
        self._tell(actions.events)

    def _tell(self, events: list[Event]) -> None:
        """What the walker reads after each guard event."""
        self.message = walker_reads(events, self.message)

    def _beep(self, t: float, tune: Tune) -> None:
        self._pending.outputs.append(OutputChange(t, Output.BUZZER, tune))
