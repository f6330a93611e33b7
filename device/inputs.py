"""The tick thread's inbox: what the sensor, the buttons and the socket saw, in the order they
saw it, each with the time it happened.

Readings can come in floods (a chattering wire, a serial bridge sending 160,000 lines a second)
and only the newest say where the belt is now, so they are bounded: past READINGS_LIMIT the
oldest make room and are counted. Presses and commands each matter and are few (the buttons
debounce, the socket serves a bounded number of clients, each waiting for its reply), so
every one is kept.
"""

from __future__ import annotations

import heapq
import itertools
import threading
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass
from enum import StrEnum

from device.core.console import ConsoleState, SpeedAnswer
from device.core.modes import ButtonName
from device.ipc.protocol import Request

# Between two ticks (0.1 s) the fastest honest source gives a handful: a hall sensor at
# 25 km/h 44 pulses a second, a serial bridge 1-50 lines. 500 is a hundred times that, and
# small enough that applying them cannot take the tick's time in a flood.
READINGS_LIMIT = 500


class InputKind(StrEnum):
    PULSE = "pulse"  # an edge of the speed sensor
    CHECK_PULSE = "check_pulse"  # an edge of the check sensor
    SPEED = "speed"  # a serial or console reading, value: km/h
    CHECK_SPEED = "check_speed"  # the console checking the hall sensor, value: km/h
    CONSOLE_STATE = "console_state"  # value: the console's new ConsoleState
    CONSOLE_ANSWER = "console_answer"  # value: a SpeedAnswer, the fate of a SetSpeed
    PRESS = "press"  # value: the ButtonName
    RELEASE = "release"  # value: the ButtonName
    COMMAND = "command"  # value: the socket's Request, answered through `reply`


READING_KINDS = frozenset(
    {InputKind.PULSE, InputKind.CHECK_PULSE, InputKind.SPEED, InputKind.CHECK_SPEED}
)


@dataclass(frozen=True)
class Input:
    """Something that happened outside the tick thread, with the time it happened."""

    kind: InputKind
    t: float
    # as InputKind says for each kind
    value: float | ButtonName | ConsoleState | SpeedAnswer | Request | None = None
    reply: Future | None = None


class InputQueue:
    """Many threads put(), the tick thread drain()s. Never blocks a sensor's thread."""

    def __init__(self, readings_limit: int = READINGS_LIMIT) -> None:
        self._lock = threading.Lock()
        self._order = itertools.count()
        self._readings: deque[tuple[int, Input]] = deque(maxlen=readings_limit)
        self._others: deque[tuple[int, Input]] = deque()
        self._dropped = 0

    @property
    def dropped(self) -> int:
        """Readings let go because newer ones kept coming faster than the tick took them."""
        return self._dropped

    def put(self, item: Input) -> None:
        with self._lock:
            entry = (next(self._order), item)
            if item.kind not in READING_KINDS:
                self._others.append(entry)
            else:
                self._dropped += len(self._readings) == self._readings.maxlen
                self._readings.append(entry)  # a full deque lets go of its oldest

    def drain(self) -> list[Input]:
        """Everything put since the last drain, in the order it was put."""
        with self._lock:
            readings, self._readings = self._readings, deque(maxlen=self._readings.maxlen)
            others, self._others = self._others, deque()
        return [item for _, item in heapq.merge(readings, others)]
