"""Stories for the invariant (tests/support/invariant.py judges them): an attacker who tries
every way round the cap, and a walker who keeps under it. Built from one source of choices,
hypothesis in the tests, random.Random(seed) in the bench."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from device.core.sensor_trust import ENFORCE_WINDOW_S as MEAN_WINDOW_S
from device.sim.scenario import COMMANDS

T = TypeVar("T")

# ---- stories: an attacker, and a walker who keeps under the cap -------------------------------
#
# Both are built from one source of choices, `Draw`: hypothesis in the tests (so a failure
# shrinks to a short story), random.Random(seed) in the bench (so a seed names a story).


class Draw(Protocol):
    def integer(self, low: int, high: int) -> int: ...


class RandomDraw:
    def __init__(self, seed: int):
        self.random = random.Random(seed)

    def integer(self, low: int, high: int) -> int:
        return self.random.randint(low, high)


def number(draw: Draw, low: float, high: float, step: float = 0.1) -> float:
    return round(low + draw.integer(0, round((high - low) / step)) * step, 3)


def chance(draw: Draw, percent: int) -> bool:
    return draw.integer(0, 99) >= 100 - percent  # shrinks to False


def pick(draw: Draw, options: tuple[T, ...]) -> T:
    return options[draw.integer(0, len(options) - 1)]  # shrinks to the first


GRACES_S = (5.0, 1.0, 2.0, 3.0, 8.0, 20.0)
TOLERANCES_KMH = (0.3, 0.0, 0.1, 0.5, 1.0)
HOLD_TO_END_S = 2.5


class _Story:
    def __init__(self, draw: Draw, *, check: bool):
        self.draw, self.check = draw, check
        self.t = 0.0
        self.steps: list[dict[str, Any]] = []
        self.alive = {"sensor": True, "check_sensor": True}

    def add(self, dt: float = 0.0, **step: Any) -> None:
        self.t = round(self.t + dt, 3)
        self.steps.append({"at": self.t, **step})


def _belt(s: _Story) -> None:
    extra = {"abrupt": True} if chance(s.draw, 30) else {}
    if chance(s.draw, 20):
        extra["ripple_pct"] = number(s.draw, 0, 7)
    s.add(belt_kmh=number(s.draw, 0, 8), **extra)


def _double_taps(s: _Story) -> None:
    for n in range(1 if chance(s.draw, 50) else s.draw.integer(3, 10)):
        s.add(0.0 if n == 0 else number(s.draw, 4, 5), press="direction")
        s.add(number(s.draw, 0.2, 0.6), press="direction")


def _square_wave(s: _Story) -> None:
    high, low = number(s.draw, 2.5, 8), number(s.draw, 0, 2.5)
    on, off, abrupt = number(s.draw, 0.5, 6), number(s.draw, 0.5, 6), chance(s.draw, 50)
    for n in range(s.draw.integer(3, 12)):
        s.add(0.0 if n == 0 else off, belt_kmh=high, abrupt=abrupt)
        s.add(on, belt_kmh=low, abrupt=abrupt)


def _hammer(s: _Story) -> None:
    """The console's speed button again and again: a restart fast after every stop."""
    kmh = number(s.draw, 3, 8)
    for n in range(s.draw.integer(2, 8)):
        s.add(0.0 if n == 0 else number(s.draw, 1, 6), belt_kmh=kmh, abrupt=chance(s.draw, 50))


def _sensor(s: _Story) -> None:
    channel = "check_sensor" if s.check and chance(s.draw, 50) else "sensor"
    s.alive[channel] = not s.alive[channel]
    s.add(**{channel: "ok" if s.alive[channel] else "lost"})


def _reload(s: _Story) -> None:
    which = s.draw.integer(0, 2)
    if which == 0:
        s.add(reload=True)
    elif which == 1:
        s.add(reload={"backward": {"grace_s": number(s.draw, 1, 20, 0.5)}})
    else:
        s.add(reload={"backward": {"tolerance_kmh": number(s.draw, 0, 1)}})


MOVES: tuple[Callable[[_Story], None], ...] = (
    _belt,
    _belt,
    lambda s: s.add(press="start"),
    lambda s: s.add(press="start", hold=HOLD_TO_END_S),
    lambda s: s.add(command=pick(s.draw, COMMANDS)),
    _double_taps,
    _square_wave,
    _hammer,
    _sensor,
    _reload,
)


def attack(draw: Draw) -> dict[str, Any]:
    """2-4 minutes of someone trying every way to keep a fast belt running backward."""
    check = chance(draw, 35)
    config: dict[str, Any] = {
        "backward": {"grace_s": pick(draw, GRACES_S), "tolerance_kmh": pick(draw, TOLERANCES_KMH)},
        "enforce": {
            "without_session": pick(draw, ("stop", "warn")),
            "mode": pick(draw, ("pulse", "latch")),
        },
    }
    if check:
        config["sensor"] = {"check": {"pin": 27}}
    story = _Story(draw, check=check)
    length = number(draw, 120, 240, 1)
    if not chance(draw, 20):  # most start a session at the start cap first
        story.add(1.0, belt_kmh=1.5)
        story.add(3.0, press="start")
    while story.t < length:
        story.t = round(
            story.t + (number(draw, 0.2, 2) if chance(draw, 40) else number(draw, 2, 20)), 3
        )
        pick(draw, MOVES)(story)
    steps = [step for step in story.steps if step["at"] < length]
    return {"config": config, "step": [*steps, {"at": length, "end": True}]}


# The walker's own idea of the cap: the built-in schedule for a guest at level 1 (start cap,
# hold, ramp up to the level cap), over the seconds it has walked backward in this segment.
START_CAP_KMH, HOLD_S, RAMP_KMH, RAMP_EVERY_S, LEVEL_CAP_KMH = 2.0, 120.0, 0.1, 30.0, 3.0
LAG_S = 5.0  # the walker counts its walking late, so its idea of the cap never runs ahead
CONSOLE_KMH_PER_S = 1.5  # the simulated console's rate (device/sim/belt.py)


def schedule_cap_kmh(walked_s: float) -> float:
    if walked_s < HOLD_S:
        return START_CAP_KMH
    steps = (walked_s - HOLD_S) // RAMP_EVERY_S + 1
    return min(round(START_CAP_KMH + steps * RAMP_KMH, 2), LEVEL_CAP_KMH)


class _Walker(_Story):
    """Someone who walks backward at 50-100 % of the cap, pauses, walks forward at any
    speed and turns back only once the belt is slow again."""

    def __init__(self, draw: Draw):
        super().__init__(draw, check=False)
        self.gait = {
            "ripple_pct": number(draw, 0, 7),
            "ripple_hz": number(draw, 1.5, 2),
            "jitter_pct": number(draw, 0, 5),
        }
        self.walked_s = 0.0
        self.kmh = 0.0

    def belt(self, dt: float, kmh: float) -> None:
        self.add(dt, belt_kmh=kmh, **self.gait)
        self.kmh = kmh

    def settle(self, kmh: float, then_s: float) -> float:
        """Seconds until the belt is at `kmh` and its 3 s mean has followed, plus then_s."""
        return abs(self.kmh - kmh) / CONSOLE_KMH_PER_S + MEAN_WINDOW_S + then_s

    def walk(self, seconds: float) -> None:
        share = number(self.draw, 0.5, 1.0, 0.05)
        end = round(self.t + seconds, 3)
        while self.t < end:
            kmh = round(share * schedule_cap_kmh(max(0.0, self.walked_s - LAG_S)), 2)
            if kmh != self.kmh:
                self.belt(0.0, kmh)
            chunk = round(min(10.0, end - self.t), 3)
            self.t, self.walked_s = round(self.t + chunk, 3), self.walked_s + chunk

    def slow_restart(self, wait_s: float) -> None:
        """Back on the belt after a stop: slow, under the start cap."""
        self.belt(wait_s, number(self.draw, 0.8, 1.8))

    def stop_pause(self) -> None:
        """The belt stops for longer than the pause rule's 5 s; it resumes by itself."""
        stop_s = self.settle(0.0, 0.0)
        self.belt(0.0, 0.0)
        self.slow_restart(stop_s + number(self.draw, 6, 60, 1))
        self.t = round(self.t + 4.0, 3)

    def button_pause(self) -> None:
        stop_s = self.settle(0.0, 0.0) - MEAN_WINDOW_S
        self.belt(0.0, 0.0)
        self.add(stop_s + number(self.draw, 0.5, 3), press="start")
        self.slow_restart(number(self.draw, 10, 120, 1))
        self.add(5.0, press="start")
        self.t = round(self.t + 1.0, 3)

    def forward_stretch(self) -> None:
        self.add(1.0, press="direction")
        for _ in range(self.draw.integer(1, 3)):
            self.belt(0.0, number(self.draw, 0, 8))
            self.t = round(self.t + number(self.draw, 10, 60, 1), 3)
        back_kmh = number(self.draw, 0.8, 1.8)
        wait_s = self.settle(back_kmh, 2.0)
        self.belt(0.0, back_kmh)
        self.add(wait_s, press="direction")
        self.walked_s = 0.0  # the segment may begin again at the start cap
        self.t = round(self.t + 1.0, 3)

    def session(self, seconds: float) -> None:
        self.belt(1.0, round(number(self.draw, 0.5, 1.0, 0.05) * START_CAP_KMH, 2))
        self.add(4.0, press="start")
        self.walked_s = 0.0
        end = self.t + seconds
        while self.t < end:
            which = pick(self.draw, ("walk", "walk", "walk", "stop", "button", "forward"))
            if which == "walk":
                self.walk(number(self.draw, 20, 180, 1))
            elif which == "stop":
                self.stop_pause()
            elif which == "button":
                self.button_pause()
            else:
                self.forward_stretch()
        stop_s = self.settle(0.0, 0.0)
        self.belt(0.0, 0.0)
        if chance(self.draw, 50):
            self.add(stop_s, press="start", hold=HOLD_TO_END_S)
        else:
            self.add(stop_s, command="end")


def legit_walk(draw: Draw, *, sessions: int = 1, session_s=(600.0, 1800.0)) -> dict[str, Any]:
    """Sessions of a walker who keeps under the cap, with an idle minute or two between."""
    config: dict[str, Any] = {
        "enforce": {
            "without_session": pick(draw, ("warn", "stop")),
            "mode": pick(draw, ("pulse", "latch")),
        }
    }
    if chance(draw, 30):
        config["sensor"] = {"check": {"pin": 27}}
    walker = _Walker(draw)
    for _ in range(sessions):
        walker.session(number(draw, *session_s, 1))
        walker.t = round(walker.t + number(draw, 10, 120, 1), 3)
    return {"config": config, "step": [*walker.steps, {"at": walker.t, "end": True}]}
