"""What a CSAFE console's answers mean for the treadmill: the machine state and its changes,
the belt speed and distance or why an answer's were skipped, whether the console gives its
speed at all, the fate of a SetSpeed from the next answer's previous-frame bits, and frame
toggles that do not alternate. Pure: no port, no thread, no clock. ConsoleLink
(device.hardware.csafe) sends the frames, times them, keeps the counts and logs; it hands each
answer (a codec Response) or missed answer to a `Conversation` and acts on what it returns.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from device.core.console import ConsoleState, SpeedAnswer
from device.hardware import csafe_codec as codec
from device.hardware.csafe_codec import Command, PreviousFrame, Response
from device.hardware.speed_line import MAX_PLAUSIBLE_KMH

# Polls with no speed in their answer before GetSpeed is asked alone, to tell a console that
# lacks it from one that answers a long frame with its status only.
STATUS_ONLY_BEFORE_PROBE = 3


class Ask(Enum):
    """What a frame out asks for."""

    POLL = (Command.GET_STATUS, Command.GET_SPEED, Command.GET_HORIZONTAL)
    PROBE = (Command.GET_SPEED,)  # is GetSpeed supported at all?
    STATUS = (Command.GET_STATUS,)  # a console without speed: still follow its state
    SET_SPEED = ()  # its frame carries the speed: built from codec.set_speed's item

    def frame(self) -> bytes:
        return codec.request(*(codec.short(command) for command in self.value))


class NoAnswer(Enum):
    """Why a frame got no answer to read; SILENCE and NOISE are timeouts, FLAWED is not."""

    SILENCE = "no byte within the answer timeout"
    NOISE = "bytes, but no frame within the answer timeout"
    FLAWED = "a broken frame and nothing readable after it"

    @property
    def timed_out(self) -> bool:
        return self is not NoAnswer.FLAWED  # a flawed frame answered, only not readably


@dataclass(frozen=True)
class Speed:
    """A belt speed read from GetSpeed: km/h, and the CSAFE unit byte it came in."""

    kmh: float
    unit: int


@dataclass(frozen=True)
class Rejected:
    """An answer's speed or distance that cannot be used; `cause` says what was skipped, as
    the journal puts it ("a GetSpeed answer in unit 0x52, no belt speed")."""

    cause: str


def read_speed(response: Response) -> Speed | Rejected | None:
    """The belt speed in an answer; Rejected for one in no belt-speed unit, not 3 bytes, or
    faster than any belt runs; None when the answer has no GetSpeed item (its status only)."""
    item = response.item(Command.GET_SPEED)
    if item is None:
        return None
    reading = codec.read_speed(item.data)
    if reading is None:
        unit = item.data[2] if len(item.data) == 3 else None
        cause = f"unit 0x{unit:02X}, no belt speed" if unit is not None else "not 3 bytes"
        return Rejected(f"a GetSpeed answer in {cause}")
    kmh, unit = reading
    if kmh > MAX_PLAUSIBLE_KMH:
        return Rejected(f"a GetSpeed answer past {MAX_PLAUSIBLE_KMH:g} km/h")
    return Speed(kmh, unit)


def read_distance_m(response: Response) -> float | Rejected | None:
    """The console's distance (GetHorizontal) in metres; Rejected in no known distance unit;
    None when the answer has no GetHorizontal item."""
    item = response.item(Command.GET_HORIZONTAL)
    if item is None:
        return None
    reading = codec.read_distance(item.data)
    if reading is None:
        return Rejected("a GetHorizontal answer in no known distance unit")
    return reading[0]


def fate(response: Response) -> SpeedAnswer:
    """What became of the frame before this answer, a SetSpeed: its previous-frame bits OK
    mean taken, anything else (rejected, bad, not ready) refused."""
    ok = response.status.previous is PreviousFrame.OK
    return SpeedAnswer.ACCEPTED if ok else SpeedAnswer.REJECTED


@dataclass(frozen=True)
class Heard:
    """What one answer said that the link acts on: callbacks to call, skips to count."""

    state: ConsoleState | None  # the machine state, when this answer changed it; else None
    fate: SpeedAnswer | None  # the SetSpeed before's, when this answer is its verdict
    speed: Speed | Rejected | None  # None: not asked, or the answer had none
    distance_m: float | Rejected | None  # None: not asked, or the answer had none
    unsupported: bool  # GetSpeed asked alone got the status only: the console lacks it


class Conversation:
    """What a console's answers so far say, and so what to ask it next. Feed it every
    frame's outcome in order (`heard` an answer, `missed` none); ConsoleLink keeps one behind
    its lock and reads its record from there: the machine state, the last speed (t, Speed),
    the distance, whether the console gives its speed, and the counts."""

    def __init__(self) -> None:
        self.state: ConsoleState | None = None
        self.last_speed: tuple[float, Speed] | None = None  # (t, the speed read then)
        self.distance_m: float | None = None
        self.unsupported = False  # the probe got the status only, and no speed came since
        self.polls = 0  # answers received
        self.timeouts = 0  # frames without an answer in time (a flawed one is an answer)
        self.repeated_toggles = 0  # answers whose frame toggle did not alternate
        self.unanswered = 0  # frames in a row with no readable answer ...
        self.heard_bytes = False  # ... though bytes came during that run
        self._speaks_speed = True  # False once GetSpeed alone got the status only
        self._speechless = 0  # polls in a row answered without a speed
        self._judging = False  # the frame before was an answered SetSpeed: this answer judges it
        self._last_toggle: bool | None = None

    def reopened(self) -> None:
        """A port (re)opened: another console may be behind the cable, so ask it for its
        speed afresh."""
        self._speechless, self._speaks_speed, self._last_toggle = 0, True, None
        self.unanswered, self.heard_bytes = 0, False

    def next_ask(self, set_speed_wanted: bool) -> Ask:
        """What the next frame asks: a wanted SetSpeed first, then the poll, GetSpeed alone
        after a few answers without a speed, or the status alone once the console is known
        not to give its speed."""
        if set_speed_wanted:
            return Ask.SET_SPEED
        if not self._speaks_speed:
            return Ask.STATUS
        return Ask.PROBE if self._speechless >= STATUS_ONLY_BEFORE_PROBE else Ask.POLL

    def heard(self, ask: Ask, t: float, response: Response) -> Heard:
        """Read the answer, arrived at t, to a frame that asked `ask`."""
        status = response.status
        self.polls += 1
        self.unanswered, self.heard_bytes = 0, False
        if self._last_toggle is not None and status.toggle == self._last_toggle:
            self.repeated_toggles += 1  # counted only: some consoles never toggle
        self._last_toggle = status.toggle
        changed = status.state is not None and status.state != self.state
        if changed:
            self.state = status.state
        verdict = fate(response) if self._judging else None
        self._judging = ask is Ask.SET_SPEED  # the next answer's previous-frame bits say its fate
        speed: Speed | Rejected | None = None
        lacks_speed = False  # this answer shows the console does not give its speed
        if ask in (Ask.POLL, Ask.PROBE):
            speed = read_speed(response)
            # None: the status byte alone, or the other items without GetSpeed's
            self._speechless = self._speechless + 1 if speed is None else 0
            lacks_speed = speed is None and ask is Ask.PROBE
            if lacks_speed:
                self._speaks_speed, self.unsupported = False, True
            if isinstance(speed, Speed):
                self.last_speed, self.unsupported = (t, speed), False
        distance = read_distance_m(response) if ask is Ask.POLL else None
        if distance is not None and not isinstance(distance, Rejected):
            self.distance_m = distance
        state = status.state if changed else None
        return Heard(state, verdict, speed, distance, unsupported=lacks_speed)

    def missed(self, ask: Ask, why: NoAnswer) -> int:
        """Note a frame that got no readable answer; returns how many SetSpeeds that leaves
        unanswered: the one before, whose verdict this answer was to carry, and this one."""
        if why.timed_out:
            self.timeouts += 1
        self.unanswered += 1
        self.heard_bytes = self.heard_bytes or why is not NoAnswer.SILENCE
        self._last_toggle = None  # an answer may have been lost: no alternation to check
        lost = int(self._judging) + int(ask is Ask.SET_SPEED)
        self._judging = False
        return lost

    def hung_up(self) -> bool:
        """The port closed: True when a SetSpeed was awaiting the verdict that now cannot
        come (it is unanswered)."""
        judging, self._judging = self._judging, False
        return judging


def unsupported_sentence(url: str, what: str) -> str:
    """What the dashboard and the journal say of a console that does not give its speed."""
    return (
        f"the console on {url} answers GetSpeed with its status only: it does not give its "
        f'speed over CSAFE; fit a hall sensor ({what} kind = "hall").'
    )


def silence_sentence(url: str, what: str, frames: int, heard_bytes: bool) -> str:
    """Why `frames` frames in a row got no readable answer, and the fix."""
    if heard_bytes:
        return (
            f"the console on {url} sends nothing readable ({frames} frames in a row "
            f"unanswered); check {what} baud (CSAFE consoles use 9600) and the cable."
        )
    return (
        f"the console on {url} does not answer ({frames} frames in a row); check that it is "
        "on and the cable is in its CSAFE jack, retrotread keeps trying."
    )
