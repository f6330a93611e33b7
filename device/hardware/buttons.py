"""The START and DIRECTION buttons on gpiozero: a thin adapter that reports presses upward.

Buttons are wired between the GPIO and ground (internal pull-up). gpiozero's own bounce_time
is ignored by the mock pin factory and differs between factories, so edges closer than
`DEBOUNCE_S` to the last accepted one on the same button are dropped here (a dropped release
is checked again once the contact has settled).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from gpiozero import Button

from device.core.modes import ButtonName
from device.hardware.pins import SETUP_ERRORS, PinError, explain_pin_error

DEBOUNCE_S = 0.05


class ButtonPanel:
    """Calls `on_press(name, t)` and `on_release(name, t)` with name a ButtonName (START or
    DIRECTION) and t in monotonic seconds. Callbacks run on gpiozero's thread: keep them short (the
    daemon puts them on its tick queue)."""

    def __init__(
        self,
        *,
        start_pin: int,
        direction_pin: int,
        on_press: Callable[[ButtonName, float], None],
        on_release: Callable[[ButtonName, float], None],
        pin_factory=None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._clock = clock
        self._on_press = on_press
        self._on_release = on_release
        self._last_edge: dict[ButtonName, float] = {}
        self._down: dict[ButtonName, bool] = {}
        self.buttons: dict[ButtonName, Button] = {}
        self._lock = threading.Lock()
        for name, pin in ((ButtonName.START, start_pin), (ButtonName.DIRECTION, direction_pin)):
            try:
                button = Button(pin, pull_up=True, pin_factory=pin_factory)
            except SETUP_ERRORS as exc:
                self.close()
                what, key = f"the {name.upper()} button", f"[buttons] {name}_pin"
                raise PinError(explain_pin_error(exc, pin, what=what, key=key)) from exc
            button.when_pressed = self._edge(name, pressed=True)
            button.when_released = self._edge(name, pressed=False)
            self.buttons[name] = button

    def _edge(self, name: ButtonName, *, pressed: bool) -> Callable[[], None]:
        def fire() -> None:
            with self._lock:
                self._take(name, pressed, self._clock())

        return fire

    def _take(self, name: ButtonName, pressed: bool, t: float) -> None:
        if self._down.get(name, False) == pressed:
            return  # a repeated edge in the same direction: contact bounce
        if t - self._last_edge.get(name, float("-inf")) < DEBOUNCE_S:
            # Chatter right after the last accepted edge. A release here may be real (a very
            # quick tap), so look at the level again once the contact has settled: a button
            # that missed its release would read as held and end the session.
            if not pressed:
                timer = threading.Timer(DEBOUNCE_S, self._settle, args=(name,))
                timer.daemon = True
                timer.start()
            return
        self._down[name] = pressed
        self._last_edge[name] = t
        (self._on_press if pressed else self._on_release)(name, t)

    def _settle(self, name: ButtonName) -> None:
        with self._lock:
            button = self.buttons.get(name)
            if button is not None and self._down.get(name) and not button.is_pressed:
                self._down[name] = False
                self._last_edge[name] = t = self._clock()
                self._on_release(name, t)

    def close(self) -> None:
        # Out of the table first, under the lock, so a settle timer still pending finds no
        # button rather than a closed one.
        with self._lock:
            buttons = list(self.buttons.values())
            self.buttons.clear()
        for button in buttons:
            button.close()

    def __enter__(self) -> ButtonPanel:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
