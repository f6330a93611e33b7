"""The Recorder: writes what each tick decided into the store and the journal.

The controller works in monotonic seconds; the store keeps wall-clock (epoch) times so the
history reads in real dates. The daemon maps its monotonic clock onto the wall clock at
start-up; the simulator maps scenario second 0 onto the moment it began.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any

from device.config.model import Config
from device.core.controller import Controller
from device.core.events import Event, EventKind
from device.core.guard import RESTART_WATCH_S
from device.core.program import Profile, profile_name
from device.core.session import Totals
from device.core.tick import Sample, TickResult
from device.history.store import Store

log = logging.getLogger("retrotread.session")


@dataclass(frozen=True)
class Entry:
    """One tick's share of the history, copied on the tick thread: the controller goes on
    changing its running totals while another thread writes these."""

    events: tuple[Event, ...]
    sample: Sample | None
    totals: Totals | None
    profile: Profile | None

    @classmethod
    def of(cls, result: TickResult) -> Entry | None:
        """None for a tick with nothing to record."""
        if not (result.events or result.sample or result.totals or result.profile):
            return None
        totals = None if result.totals is None else result.totals.figures()
        return cls(tuple(result.events), result.sample, totals, result.profile)

    @property
    def rows(self) -> int:
        """The rows it would add: what is lost if it cannot be written."""
        return len(self.events) + (self.sample is not None)


class Recorder:
    def __init__(self, store: Store, config: Config, *, wall0: float, mono0: float):
        self.store = store
        self.config = config
        self.wall0 = wall0
        self.mono0 = mono0
        self.session_id: int | None = None
        self.session_ids: list[int] = []
        self.profile = profile_name(config)

    def wall(self, t: float) -> float:
        return self.wall0 + (t - self.mono0)

    def record(self, result: TickResult) -> None:
        """Record one tick, here and now (the simulator's way; the daemon's writer thread
        calls write() with the Entry the tick thread copied)."""
        entry = Entry.of(result)
        if entry is not None:
            self.write(entry)
            if entry.sample is not None:
                self.store.maybe_flush(self.wall(entry.sample.t))

    def flush_if_due(self, t: float) -> None:
        """Write the buffer if its oldest row is due; `t` on the controller's clock."""
        self.store.maybe_flush(self.wall(t))

    def write(self, entry: Entry) -> None:
        for event in entry.events:
            log.info("%s", event.describe())
            at = self.wall(event.t)
            if event.kind is EventKind.SESSION_STARTED:
                self.session_id = self.store.open_session(
                    at,
                    mode=event.details["mode"],
                    machine_id=self.config.machine.id,
                    profile=self.profile,
                    level=event.details.get("level"),
                )
                self.session_ids.append(self.session_id)
            elif event.kind is EventKind.MODE_CHANGED and self.session_id is not None:
                self.store.start_segment(self.session_id, at, event.details["mode"])
            self.store.add_event(at, event.kind, event.details, session_id=self.session_id)
            if event.kind is EventKind.SESSION_ENDED and self.session_id is not None:
                self.store.end_session(self.session_id, at, event.details["reason"], entry.totals)
                self.session_id = None
        if entry.sample is not None and self.session_id is not None:
            sample = replace(entry.sample, t=self.wall(entry.sample.t))  # epoch, for the history
            self.store.add_sample(self.session_id, sample)
        if self.session_id is not None and entry.totals is not None:
            self.store.update_totals(self.session_id, entry.totals)
        if entry.profile is not None:
            self.store.save_profile(entry.profile)

    def close(self) -> None:
        self.store.close()

    def session_report(self) -> list[dict[str, Any]]:
        """The sessions this recorder opened, with times in the controller's seconds."""
        rows = []
        for session_id in self.session_ids:
            row = self.store.session(session_id)
            assert row is not None, "a session this recorder opened"
            rows.append(
                {
                    "id": row.id,
                    "started": round(row.started_at - self.wall0 + self.mono0, 3),
                    "ended": None
                    if row.ended_at is None
                    else round(row.ended_at - self.wall0 + self.mono0, 3),
                    "end_reason": row.end_reason,
                    "distance_m": round(row.distance_m, 1),
                    "backward_s": round(row.backward_s, 1),
                    "forward_s": round(row.forward_s, 1),
                }
            )
        return rows


def load_controller(store: Store, config: Config, *, t: float, wall0: float) -> Controller:
    """A Controller that knows the walker: the profile and its program's sessions so far,
    read from the store. `t` is now on the caller's clock, `wall0` now in epoch seconds."""
    profile = store.profile(profile_name(config))
    started = profile.program_started_at
    recent = [] if started is None else store.session_summaries(profile.name, started)
    controller = Controller(config, t=t, wall_offset=wall0 - t, profile=profile, recent=recent)
    # A daemon restarted (a crash, the watchdog, a power blip) right after an enforced stop
    # must not forget it: a belt restarted fast is still stopped again at once.
    stopped_at = store.last_event_at(EventKind.ENFORCED_STOP)
    if stopped_at is not None and 0 <= wall0 - stopped_at < RESTART_WATCH_S:
        controller.guard.remember_stop(t - (wall0 - stopped_at))
    # A console found to ignore SetSpeed stays known as one: its stops go straight to the relay.
    if store.last_event_at(EventKind.CONSOLE_IGNORES_SPEED) is not None:
        controller.guard.remember_console_ignores_speed()
    return controller
