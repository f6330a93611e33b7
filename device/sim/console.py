"""An emulated CSAFE treadmill console, the machine side of the link: it takes the contents
of a request frame and gives the answer's bytes, the way a gym treadmill's console would, for
`retrotread console-emulator`, the demo and the tests. Pure: time is an argument, no I/O;
console_serve.py puts it on a pty or a TCP port.

What it models, because the console link depends on it:
- The belt follows its target at CONSOLE_RATE_KMH_PER_S, like the simulated belt: a SetSpeed
  shows in GetSpeed only as the belt gets there.
- Speed is answered in one configurable unit (all of CSAFE's belt units), distance in one.
- The status byte's toggle alternates with every answer, and its previous-frame bits tell
  the fate of the frame before: OK, REJECTED (a SetSpeed it refused), BAD (failed its
  checksum). CSAFE has no acknowledgement of its own; that is all a host learns.
- Machine states: READY at rest, IN_USE once the belt runs or a host says GoInUse, PAUSED,
  FINISHED.
- Quirks real consoles have (ConsoleQuirks): SetSpeed ignored or refused, commands answered
  with the status byte alone, slow answers, garbage on the line.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from device.core.console import ConsoleState
from device.hardware.csafe_codec import (
    FRAME_END,
    FRAME_START,
    KMH_PER_SPEED_UNIT,
    M_PER_DISTANCE_UNIT,
    STUFF,
    Command,
    FrameError,
    Item,
    PreviousFrame,
    encode_response,
    parse_request,
    read_speed,
    status_byte,
)
from device.sim.belt import CONSOLE_RATE_KMH_PER_S

# The unit names `retrotread console-emulator --unit` takes, as a console's menu says them.
SPEED_UNITS: dict[str, int] = {
    "mph": 0x10,
    "0.1mph": 0x11,
    "0.01mph": 0x12,
    "kmh": 0x30,
    "0.1kmh": 0x31,
    "0.01kmh": 0x32,
    "m/min": 0x33,
}
DISTANCE_UNITS: dict[str, int] = {"m": 0x24, "0.01km": 0x23, "0.01mi": 0x03}
_MPH_UNITS = frozenset({0x10, 0x11, 0x12})
# GetVersion's five bytes: manufacturer, class, model, hardware and software versions. No
# manufacturer has id 0x7F; a host that keys on the maker must not take us for one.
VERSION = bytes((0x7F, 0x01, 0x01, 0x01, 0x01))
# What a line picks up now and then: stray bytes outside any frame, never a flag byte.
NOISE = bytes((0x00, 0x55, 0xAA, 0x7F))
# Commands that change the machine state, and the state each leads to.
_GO: dict[int, ConsoleState] = {
    Command.GO_IDLE: ConsoleState.IDLE,
    Command.GO_HAVE_ID: ConsoleState.HAVE_ID,
    Command.GO_IN_USE: ConsoleState.IN_USE,
    Command.GO_FINISHED: ConsoleState.FINISHED,
    Command.GO_READY: ConsoleState.READY,
    Command.RESET: ConsoleState.READY,
}
_BELT_STOPS_IN = frozenset(
    {ConsoleState.READY, ConsoleState.IDLE, ConsoleState.FINISHED, ConsoleState.PAUSED}
)
# A workout's distance starts again when the belt is started from one of these.
_NEW_WORKOUT_FROM = frozenset(
    {ConsoleState.READY, ConsoleState.IDLE, ConsoleState.HAVE_ID, ConsoleState.FINISHED}
)


@dataclass(frozen=True)
class ConsoleQuirks:
    """How a particular console falls short of the protocol."""

    ignores_set_speed: bool = False  # takes the frame (previous OK), the belt does not change
    rejects_set_speed: bool = False  # the next answer's previous-frame bits say REJECTED
    status_only: frozenset[int] = field(default_factory=frozenset)  # unsupported: not done,
    # answered with the status byte alone
    answer_delay_s: float = 0.0  # how long it thinks before answering (console_serve waits)
    garbage_every: int = 0  # every Nth answer comes after noise and two broken frames
    never_toggles: bool = False  # the toggle bit stays clear in every answer


class EmulatedTreadmill:
    """A treadmill console that answers CSAFE requests. Not thread-safe: ConsoleEmulator
    holds a lock around it."""

    def __init__(
        self,
        *,
        unit: int = 0x31,
        distance_unit: int = 0x24,
        quirks: ConsoleQuirks = ConsoleQuirks(),
        rate_kmh_per_s: float = CONSOLE_RATE_KMH_PER_S,
        max_kmh: float = 20.0,
    ) -> None:
        if unit not in KMH_PER_SPEED_UNIT:
            raise ValueError(f"0x{unit:02X} is no CSAFE speed unit")
        if distance_unit not in M_PER_DISTANCE_UNIT:
            raise ValueError(f"0x{distance_unit:02X} is no CSAFE distance unit")
        if rate_kmh_per_s <= 0:
            raise ValueError("a belt needs a positive rate to change its speed")
        self.unit = unit
        self.distance_unit = distance_unit
        self.quirks = quirks
        self.rate_kmh_per_s = rate_kmh_per_s
        self.max_kmh = max_kmh
        self.state = ConsoleState.READY
        self.target_kmh = 0.0  # what the console was asked for
        self.belt_kmh = 0.0  # the belt's speed now
        self.distance_m = 0.0  # this workout's distance
        self.answers = 0  # answers given, garbage-preceded ones included
        self._previous = PreviousFrame.OK  # the fate of the last frame, for the next answer
        self._toggle = False
        self._paused_kmh = 0.0
        self._t: float | None = None

    # -- the console's own buttons (the walker, the demo, a test) ----------------------------

    def set_target_kmh(self, kmh: float, *, abrupt: bool = False) -> None:
        """The speed buttons: a speed above zero starts a workout (IN_USE) or resumes one.
        `abrupt`: the belt is at that speed at once (a scene that starts mid-workout)."""
        kmh = min(max(kmh, 0.0), self.max_kmh)
        if kmh > 0 and self.state is not ConsoleState.IN_USE:
            self._go(ConsoleState.IN_USE)
        self.target_kmh = kmh
        if abrupt:
            self.belt_kmh = kmh

    def start(self) -> None:
        """START: a workout begins (IN_USE) at whatever speed is set, or a paused one goes on."""
        self._go(ConsoleState.IN_USE)

    def pause(self) -> None:
        """PAUSE: the belt stops; start() (or resume()) brings it back to the speed it had."""
        if self.state is ConsoleState.IN_USE:
            self._paused_kmh = self.target_kmh
            self._go(ConsoleState.PAUSED)

    def resume(self) -> None:
        if self.state is ConsoleState.PAUSED:
            self._go(ConsoleState.IN_USE)

    def finish(self) -> None:
        """STOP at the end of a workout: the belt runs down, the console says FINISHED."""
        self._go(ConsoleState.FINISHED)

    # -- time --------------------------------------------------------------------------------

    def step(self, t: float) -> None:
        """Move the belt to time t: toward its target at the console's rate, counting the
        distance on the way. The first call only sets the clock; t never goes back."""
        if self._t is None or t <= self._t:
            self._t = t if self._t is None else self._t
            return
        dt, self._t = t - self._t, t
        gap = self.target_kmh - self.belt_kmh
        ramp_s = min(abs(gap) / self.rate_kmh_per_s, dt)
        if ramp_s < dt:  # gets there on the way: steady at the target for the rest
            end_kmh = self.target_kmh
        else:
            end_kmh = self.belt_kmh + math.copysign(self.rate_kmh_per_s * dt, gap)
        self.distance_m += ((self.belt_kmh + end_kmh) / 2 * ramp_s + end_kmh * (dt - ramp_s)) / 3.6
        self.belt_kmh = end_kmh

    # -- the CSAFE port ----------------------------------------------------------------------

    def heard_bad_frame(self) -> None:
        """A frame failed its checksum (or its stuffing): it is not answered, and the next
        answer says BAD."""
        self._previous = PreviousFrame.BAD

    def answer(self, request_contents: bytes, t: float) -> bytes:
        """The bytes on the wire that answer a request frame's contents (checksum already
        checked), at t; after noise and broken frames when the garbage quirk's turn comes."""
        self.step(t)
        try:
            commands = parse_request(request_contents)
        except FrameError:
            commands, fate = (), PreviousFrame.BAD
        else:
            fate = PreviousFrame.OK
        items: list[Item] = []
        for command in commands:
            if command.command in self.quirks.status_only:
                continue  # unsupported here: not done, no item in the answer
            done = self._do(command)
            if done is PreviousFrame.REJECTED:
                fate = done
            elif isinstance(done, Item):
                items.append(done)
        if not self.quirks.never_toggles:
            self._toggle = not self._toggle
        status = status_byte(self._toggle, self._previous, self.state)
        self._previous = fate
        self.answers += 1
        wire = encode_response(status, items)
        every = self.quirks.garbage_every
        if every > 0 and self.answers % every == 0:
            return _garbage(status, wire) + wire
        return wire

    def speed_value(self) -> int:
        """The belt's speed as GetSpeed counts it, in whole units of `unit`."""
        return min(round(self.belt_kmh / KMH_PER_SPEED_UNIT[self.unit]), 0xFFFF)

    def distance_value(self) -> int:
        """The distance as GetHorizontal counts it: whole units gone by, as a console's
        odometer shows them."""
        units = math.floor(self.distance_m / M_PER_DISTANCE_UNIT[self.distance_unit] + 1e-9)
        return min(units, 0xFFFF)

    def _do(self, item: Item) -> Item | PreviousFrame | None:
        """Carry out one command: its answer item, REJECTED, or None (nothing to say)."""
        command = item.command
        if command == Command.GET_SPEED:
            value = self.speed_value()
            return Item(command, value.to_bytes(2, "little") + bytes((self.unit,)))
        if command == Command.GET_HORIZONTAL:
            value = self.distance_value()
            return Item(command, value.to_bytes(2, "little") + bytes((self.distance_unit,)))
        if command == Command.GET_VERSION:
            return Item(command, VERSION)
        if command == Command.GET_UNITS:
            return Item(command, bytes((1 if self.unit in _MPH_UNITS else 0,)))
        if command == Command.SET_SPEED:
            return self._set_speed(item.data)
        if command in _GO:
            self._go(_GO[command])
            if command == Command.RESET:
                self.distance_m = 0.0
        # GetStatus (the status byte says it all) and commands this console does not know:
        # the status byte alone, as real consoles answer them
        return None

    def _set_speed(self, data: bytes) -> PreviousFrame | None:
        reading = read_speed(data)
        if self.quirks.rejects_set_speed or reading is None or reading[0] > self.max_kmh:
            return PreviousFrame.REJECTED
        if not self.quirks.ignores_set_speed:
            self.set_target_kmh(reading[0])
        return None

    def _go(self, state: ConsoleState) -> None:
        if state is ConsoleState.IN_USE and self.state in _NEW_WORKOUT_FROM:
            self.distance_m = 0.0
        elif state is ConsoleState.IN_USE and self.state is ConsoleState.PAUSED:
            self.target_kmh = self._paused_kmh
        self.state = state
        if state in _BELT_STOPS_IN:
            self.target_kmh = 0.0


def _garbage(status: int, wire: bytes) -> bytes:
    """What a noisy line puts before an answer: stray bytes, a frame whose checksum is wrong
    and the first half of a frame cut off by the real one's start flag."""
    bad_checksum = bytes((FRAME_START, status, status ^ 0x01, FRAME_END))  # status < 0xF0
    cut = wire[: len(wire) // 2].rstrip(bytes((STUFF,)))  # broken mid-frame, not mid-stuffing
    return NOISE + bad_checksum + cut
