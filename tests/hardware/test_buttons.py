"""The START and DIRECTION buttons on gpiozero's mock pins: presses and releases reported with
their time, contact bounce dropped."""

from __future__ import annotations

import threading
import time

import pytest
from support.virtual_clock import VirtualClock
from support.waiting import wait_until

from device.hardware.buttons import DEBOUNCE_S, ButtonPanel

START, DIRECTION = 5, 6


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(100.0)


@pytest.fixture
def heard() -> list[tuple[str, str, float]]:
    return []


@pytest.fixture
def panel(mock_factory, clock, heard):
    with ButtonPanel(
        start_pin=START,
        direction_pin=DIRECTION,
        on_press=lambda name, t: heard.append(("press", name, t)),
        on_release=lambda name, t: heard.append(("release", name, t)),
        pin_factory=mock_factory,
        clock=clock,
    ) as panel:
        yield panel


def test_buttons_rest_high_on_their_pull_ups(panel, mock_factory, heard):
    assert mock_factory.pin(START).state is True
    assert mock_factory.pin(DIRECTION).state is True
    assert heard == []


def test_start_press_and_release_are_reported_with_their_times(panel, mock_factory, clock, heard):
    start = mock_factory.pin(START)
    start.drive_low()
    clock.advance(0.3)
    start.drive_high()
    assert heard == [("press", "start", 100.0), ("release", "start", 100.3)]


def test_direction_press_names_the_direction_button(panel, mock_factory, clock, heard):
    direction = mock_factory.pin(DIRECTION)
    direction.drive_low()
    clock.advance(0.1)
    direction.drive_high()
    assert heard == [("press", "direction", 100.0), ("release", "direction", 100.1)]


def test_contact_bounce_within_the_debounce_window_is_dropped(panel, mock_factory, clock, heard):
    start = mock_factory.pin(START)
    start.drive_low()  # the press
    clock.advance(0.01)
    start.drive_high()  # the contact springs open ...
    clock.advance(0.01)
    start.drive_low()  # ... and closes again, 20 ms after the press: bounce
    clock.advance(0.01)
    start.drive_high()  # and settles open: a brief tap
    # the release may be reported at once or once the contact has settled (a real-time wait)
    wait_until(lambda: heard[-1][0] == "release", within_s=1.0, what="the release")
    assert [event for event in heard if event[0] == "press"] == [("press", "start", 100.0)]
    assert heard[-1][:2] == ("release", "start")


def test_bounce_as_the_contact_closes_keeps_a_long_press_one_press(
    panel, mock_factory, clock, heard
):
    # Contacts chatter for a millisecond or two as they close. The walker then holds START
    # 2.5 s to end the session; a release reported during the chatter would turn that long
    # press into a short one (pause) and lose the real release.
    start = mock_factory.pin(START)
    start.drive_low()
    clock.advance(0.001)
    start.drive_high()
    clock.advance(0.001)
    start.drive_low()
    clock.advance(2.5)
    start.drive_high()
    assert heard == [("press", "start", 100.0), ("release", "start", pytest.approx(102.502))]


def test_a_second_press_after_the_debounce_window_counts(panel, mock_factory, clock, heard):
    start = mock_factory.pin(START)
    start.drive_low()  # a quick double tap: pause, then resume at once
    clock.advance(0.15)
    start.drive_high()
    clock.advance(2 * DEBOUNCE_S)
    start.drive_low()
    presses = [event for event in heard if event[0] == "press"]
    clock.advance(0.2)
    start.drive_high()  # closing a held gpiozero Button waits out its hold_time
    assert presses == [("press", "start", 100.0), ("press", "start", pytest.approx(100.25))]


def test_each_button_is_debounced_on_its_own(panel, mock_factory, clock, heard):
    mock_factory.pin(START).drive_low()
    clock.advance(0.01)
    mock_factory.pin(DIRECTION).drive_low()
    clock.advance(0.2)
    mock_factory.pin(START).drive_high()
    mock_factory.pin(DIRECTION).drive_high()
    assert heard[:2] == [("press", "start", 100.0), ("press", "direction", 100.01)]


def test_close_frees_the_pins_for_the_next_daemon(mock_factory, clock, heard):
    def open_panel() -> ButtonPanel:
        return ButtonPanel(
            start_pin=START,
            direction_pin=DIRECTION,
            on_press=lambda name, t: heard.append(("press", name, t)),
            on_release=lambda name, t: heard.append(("release", name, t)),
            pin_factory=mock_factory,
            clock=clock,
        )

    open_panel().close()
    with open_panel():
        mock_factory.pin(START).drive_low()
        clock.advance(0.2)
        mock_factory.pin(START).drive_high()
    assert heard == [("press", "start", 100.0), ("release", "start", 100.2)]


def test_closing_while_a_chattering_release_settles_raises_nothing(
    mock_factory, clock, monkeypatch
):
    # The daemon stops (SIGTERM) just as a walker taps START: the check of the release
    # that runs once the contact has settled must not touch buttons already closed.
    crashes: list[BaseException] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: crashes.append(args.exc_value))
    for _ in range(5):  # the check runs on a timer: give it several chances to collide
        panel = ButtonPanel(
            start_pin=START,
            direction_pin=DIRECTION,
            on_press=lambda name, t: None,
            on_release=lambda name, t: None,
            pin_factory=mock_factory,
            clock=clock,
        )
        start = mock_factory.pin(START)
        start.drive_low()
        start.drive_high()  # at the same instant: chatter, to be checked again
        panel.close()
        time.sleep(2 * DEBOUNCE_S)
        clock.advance(1.0)
    assert crashes == []
