"""Belt speed, machine state and distance polled from a gym console's CSAFE port.

The console is the slave: it speaks only when asked. A thread asks [GetStatus, GetSpeed,
GetHorizontal] a few times a second, leaves the line quiet for at least `gap_s` after each
answer (CSAFE asks for 50 ms between frames), and waits `answer_timeout_s` for each
answer. Framing is the codec's (device.hardware.csafe_codec) and what an answer means for
the treadmill is device.hardware.csafe_reading's; this module owns the port, the thread, the
pacing and the journal. Like SerialSpeedSource, a port missing at start or lost later is
reopened with exponential backoff, a console silent for `reopen_after` polls in a row gets
its port reopened, and garbage is counted and skipped, never fatal and never a speed.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable

import serial

from device.core.console import ConsoleState, SpeedAnswer
from device.hardware import csafe_codec as codec
from device.hardware.csafe_codec import FrameError, FrameReader, Response
from device.hardware.csafe_reading import (
    Ask,
    Conversation,
    NoAnswer,
    Rejected,
    Speed,
    silence_sentence,
    unsupported_sentence,
)
from device.hardware.serial_port import ReconnectingPort

log = logging.getLogger("retrotread.csafe")

# SetSpeed's unit: 0.1 km/h (0x31), fine enough for a belt; whether a console honours it at
# all shows only in its next answer
SET_SPEED_UNIT = 0x31
# One read blocks this long at most: close() and set_speed() are seen within it.
READ_SLICE_S = 0.05
# After a flawed frame the real answer, if one follows, is on the line within a frame's time
# (96 bytes at 9600 baud take 0.1 s); waiting the whole answer timeout would only slow polling.
FLAWED_GRACE_S = 0.15


class ConsoleLink(ReconnectingPort):
    """Polls the CSAFE console at `url` (a port, a pty, `socket://host:port`) on a thread.

    Callbacks run on that thread (hand them to the tick thread through a queue), with t in
    monotonic seconds on `clock` when the answer arrived: `on_speed(t, kmh)` for every speed
    read, `on_state(t, state)` when the machine state changes, `on_answer(t, answer)` once per
    SetSpeed sent. `speed_kmh(t)` returns None once the last speed is older than `stale_s`:
    a silent console means the speed is unknown, not constant. Pacing (`poll_every_s`,
    `gap_s`, `answer_timeout_s`) runs on the real monotonic clock, the wire's. `what` is the
    config table naming this console in sentences ("[sensor]", "[sensor.check]").
    """

    def __init__(
        self,
        url: str,
        *,
        baud: int = 9600,
        stale_s: float = 2.0,
        on_speed: Callable[[float, float], None] | None = None,
        on_state: Callable[[float, ConsoleState], None] | None = None,
        on_answer: Callable[[float, SpeedAnswer], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        serial_for_url: Callable[..., serial.Serial] = serial.serial_for_url,
        poll_every_s: float = 0.2,
        gap_s: float = 0.05,
        answer_timeout_s: float = 1.2,
        reopen_after: int = 10,
        backoff_s: tuple[float, float] = (0.5, 10.0),
        what: str = "[sensor]",
    ):
        self._stale_s = stale_s
        self._on_speed = on_speed
        self._on_state = on_state
        self._on_answer = on_answer
        self._clock = clock
        self._poll_every_s = poll_every_s
        self._gap_s = gap_s
        self._answer_timeout_s = answer_timeout_s
        self._reopen_after = reopen_after
        self._what = what
        super().__init__(
            url,
            baud=baud,
            read_timeout_s=READ_SLICE_S,
            # a console that does not take our bytes is as good as silent
            write_timeout_s=answer_timeout_s,
            serial_for_url=serial_for_url,
            backoff_s=backoff_s,
            log=log,
            thread_name=f"csafe {url}",
            table=what,
        )
        self._talk = Conversation()  # what the answers said: written on the thread, locked
        self._wire_rejects = 0  # the codec's counts, over every port opened so far
        self._rejected = 0  # answers read but unusable: unparsable, unknown units, absurd
        self._wanted: tuple[codec.Item, float] | None = None  # SetSpeed to send, asked when
        # thread-only state
        self._rejects_said: set[str] = set()
        self._silent = False  # the port was reopened because the console stopped answering
        self._unsupported_said = False

    # -- what the daemon reads -------------------------------------------------------------

    def speed_kmh(self, t: float) -> float | None:
        """The last speed in km/h, or None when there is none or it is older than stale_s
        seconds at time t."""
        with self._lock:
            last = self._talk.last_speed
        if last is None or t - last[0] > self._stale_s:
            return None
        return last[1].kmh

    def is_stale(self, t: float) -> bool:
        """True when the speed is unknown at time t (none read within stale_s seconds)."""
        return self.speed_kmh(t) is None

    @property
    def state(self) -> ConsoleState | None:
        """The machine state of the last answer; None before the first."""
        with self._lock:
            return self._talk.state

    @property
    def distance_m(self) -> float | None:
        """The console's distance (GetHorizontal) in metres; None before it gave one."""
        with self._lock:
            return self._talk.distance_m

    @property
    def speed_unit(self) -> int | None:
        """The CSAFE unit byte of the last speed read (0x31: 0.1 km/h, 0x12: 0.01 mph...)."""
        with self._lock:
            last = self._talk.last_speed
        return None if last is None else last[1].unit

    @property
    def unsupported(self) -> str | None:
        """One sentence when the console answers GetSpeed with its status only; else None."""
        with self._lock:
            unsupported = self._talk.unsupported
        return unsupported_sentence(self._url, self._what) if unsupported else None

    @property
    def rejected_frames(self) -> int:
        """Bytes and frames skipped: the codec's counts (noise, bad checksums, bad stuffing,
        truncated), answers that do not parse, and speeds or distances in no known unit."""
        with self._lock:
            return self._wire_rejects + self._rejected

    @property
    def timeouts(self) -> int:
        """Frames that got no readable answer within answer_timeout_s."""
        with self._lock:
            return self._talk.timeouts

    @property
    def polls(self) -> int:
        """Answers received."""
        with self._lock:
            return self._talk.polls

    @property
    def repeated_toggles(self) -> int:
        """Answers whose frame toggle did not alternate: counted only, as some consoles
        never toggle."""
        with self._lock:
            return self._talk.repeated_toggles

    # -- commands --------------------------------------------------------------------------

    def set_speed(self, kmh: float) -> None:
        """Ask the console to run the belt at `kmh`: the next frame out is SetSpeed (in 0.1
        km/h), and on_answer says its fate. Any thread; a newer call before it went out
        replaces it. ValueError for a speed no CSAFE frame can carry."""
        item = codec.set_speed(kmh, SET_SPEED_UNIT)
        with self._lock:
            self._wanted = (item, time.monotonic())
        self._wake.set()

    def __repr__(self) -> str:
        state = "connected" if self.connected else "disconnected"
        return f"<ConsoleLink {self._url!r} {state} {self.state or 'no state yet'}>"

    # -- poll thread: the port -------------------------------------------------------------

    def _port_opened(self) -> None:
        if not self._silent:  # a silent console stays the news until it answers
            self._last_error = None
        self._talk.reopened()  # another console may be behind the cable

    def _say_opened(self) -> None:
        if self._silent or self._outage_logged:
            # said at INFO when the console answers again: a converter that accepts and
            # drops the link with the console off reopens every few seconds, unanswered
            log.debug("serial port %s open again; asking the console", self._url)
        else:
            log.info("polling the console on %s over CSAFE", self._url)

    def _rest(self, seconds: float) -> None:
        """Wait out a backoff with the port closed; a SetSpeed asked meanwhile cannot go."""
        deadline = time.monotonic() + seconds
        while not self._stop.is_set():
            if self._take_wanted() is not None:
                self._answer(SpeedAnswer.UNANSWERED)
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self._wake.wait(left)
            self._wake.clear()

    def _port_closed(self) -> None:
        if self._talk.hung_up() and not self._stop.is_set():
            self._answer(SpeedAnswer.UNANSWERED)  # its verdict cannot come now

    # -- poll thread: the conversation -----------------------------------------------------

    def _use_port(self, port: serial.Serial) -> None:
        """Poll until closed, the line breaks, or the console stays silent too long."""
        reader = FrameReader()
        counted = 0  # of reader.total_skipped, already in _wire_rejects
        polled_at = done_at = -math.inf  # real monotonic seconds
        while True:
            ask = self._next_ask(polled_at, done_at)
            if ask is None:
                return
            item = self._take_wanted() if ask is Ask.SET_SPEED else None
            if ask is Ask.SET_SPEED and item is None:
                continue  # asked and taken back (expired) meanwhile
            wire = codec.request(item) if item is not None else ask.frame()
            if ask is not Ask.SET_SPEED:
                polled_at = time.monotonic()
            try:
                outcome = self._exchange(port, reader, wire)
            except (serial.SerialException, OSError) as exc:
                self._broke(
                    f"the console on {self._url} went away ({exc}); check the cable, "
                    "retrotread keeps reconnecting."
                )
                if ask is Ask.SET_SPEED:
                    self._answer(SpeedAnswer.UNANSWERED)
                return
            finally:
                with self._lock:
                    self._wire_rejects += reader.total_skipped - counted
                counted = reader.total_skipped
            done_at = time.monotonic()
            if self._stop.is_set():
                return
            if isinstance(outcome, NoAnswer):
                if self._missed(ask, outcome) >= self._reopen_after:
                    self._silent = True
                    run, heard_bytes = self._talk.unanswered, self._talk.heard_bytes
                    self._report_outage(silence_sentence(self._url, self._what, run, heard_bytes))
                    return
            else:
                self._heard(ask, *outcome)

    def _next_ask(self, polled_at: float, done_at: float) -> Ask | None:
        """Wait until the next frame may go out and say what it asks; None once closed."""
        while not self._stop.is_set():
            now = time.monotonic()
            quiet_until = done_at + self._gap_s
            with self._lock:
                wanted = self._wanted is not None
            # a SetSpeed waits only for the quiet gap, not for the poll's turn
            due = quiet_until if wanted else max(polled_at + self._poll_every_s, quiet_until)
            if now >= due:
                return self._talk.next_ask(wanted)
            self._wake.wait(due - now)
            self._wake.clear()
        return None

    def _take_wanted(self) -> codec.Item | None:
        """The SetSpeed to send, if one is asked and still fresh. One that could not go out
        within two answer timeouts is dropped as unanswered: the belt may have been stopped
        since, and a late SetSpeed would start it again."""
        with self._lock:
            wanted, self._wanted = self._wanted, None
        if wanted is None:
            return None
        item, asked_at = wanted
        if time.monotonic() - asked_at > 2 * self._answer_timeout_s:
            self._answer(SpeedAnswer.UNANSWERED)
            return None
        return item

    def _exchange(
        self, port: serial.Serial, reader: FrameReader, wire: bytes
    ) -> tuple[float, Response] | NoAnswer:
        """Send one frame and read its answer: (t, the response) or why there is none."""
        waiting = port.in_waiting
        if waiting:  # a late answer to a frame that timed out answers nothing now
            late = reader.feed(port.read(waiting))
            if late:
                log.debug("console on %s: %d late answer(s) dropped", self._url, len(late))
        port.write(wire)
        deadline = time.monotonic() + self._answer_timeout_s
        heard = flawed = False
        while not self._stop.is_set():
            data = port.read(1)  # blocks up to READ_SLICE_S
            if data:
                heard = True
                waiting = port.in_waiting
                if waiting:
                    data += port.read(waiting)
                t = self._clock()
                flaws = reader.total_skipped - reader.counts.noise
                unreadable = False
                for frame in reader.feed(data):
                    try:
                        return t, codec.parse_response(frame.contents)
                    except FrameError as exc:
                        self._reject(f"an answer that does not parse ({exc.reason})")
                        unreadable = True
                if unreadable or reader.total_skipped - reader.counts.noise > flaws:
                    flawed = True
                    deadline = min(deadline, time.monotonic() + FLAWED_GRACE_S)
            else:
                self._check_device_file()
            if time.monotonic() >= deadline:
                break
        if flawed:
            return NoAnswer.FLAWED
        return NoAnswer.NOISE if heard else NoAnswer.SILENCE

    def _missed(self, ask: Ask, why: NoAnswer) -> int:
        """Note a frame without a readable answer; returns how many in a row that makes."""
        with self._lock:
            lost = self._talk.missed(ask, why)
            unanswered = self._talk.unanswered
        log.debug("console on %s: %s for %s", self._url, why.value, ask.name)
        for _ in range(lost):  # SetSpeeds whose fate is lost with this answer
            self._answer(SpeedAnswer.UNANSWERED)
        return unanswered

    def _heard(self, ask: Ask, t: float, response: Response) -> None:
        with self._lock:
            heard = self._talk.heard(ask, t, response)
            self._last_error = None
        if self._outage_logged or self._silent:
            log.info("the console on %s answers again", self._url)
            self._outage_logged = self._silent = False
        if heard.fate is not None:
            self._answer(heard.fate, t)
        if heard.state is not None:
            self._call(self._on_state, "on_state", t, heard.state)
        if heard.unsupported and not self._unsupported_said:  # the status keeps saying it
            log.warning("%s", unsupported_sentence(self._url, self._what))
            self._unsupported_said = True
        if isinstance(heard.speed, Speed):
            self._call(self._on_speed, "on_speed", t, heard.speed.kmh)
        for skipped in (heard.speed, heard.distance_m):
            if isinstance(skipped, Rejected):
                self._reject(skipped.cause)

    def _answer(self, answer: SpeedAnswer, t: float | None = None) -> None:
        if answer is not SpeedAnswer.ACCEPTED:
            log.info("console on %s: SetSpeed %s", self._url, answer)
        self._call(self._on_answer, "on_answer", self._clock() if t is None else t, answer)

    def _reject(self, cause: str) -> None:
        with self._lock:
            self._rejected += 1
        if cause not in self._rejects_said:  # once per cause in the journal; the status counts
            self._rejects_said.add(cause)
            log.info("console on %s: skipping %s; the dashboard counts them", self._url, cause)
        else:
            log.debug("console on %s: skipped %s", self._url, cause)

    def _call(self, callback: Callable[..., None] | None, name: str, *args: object) -> None:
        if callback is None:
            return
        try:
            callback(*args)
        except Exception:
            # A bug downstream must not silence the console; the journal gets the trace.
            log.exception("%s failed for an answer from %s", name, self._url)
