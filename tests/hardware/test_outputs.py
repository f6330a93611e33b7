"""The LED, the buzzer and the safety-key relay on gpiozero's mock pins: they start and end
safe, and play what the controller asks."""

from __future__ import annotations

import itertools
import time

import pytest
from gpiozero.pins.mock import MockPin
from support.waiting import wait_until

from device.config.model import OutputsConfig
from device.core.signals import TUNES, Tune
from device.hardware.outputs import Outputs

LED, BUZZER, RELAY = 13, 19, 26


def levels(pin: MockPin) -> list[bool]:
    """Every level the pin has been at, oldest first (the first is before it was claimed)."""
    return [state.state for state in pin.states]


def rises(pin: MockPin) -> int:
    seen = levels(pin)
    return sum(1 for before, after in itertools.pairwise(seen) if after and not before)


@pytest.fixture
def make_outputs(mock_factory):
    made: list[Outputs] = []

    def make(**config) -> Outputs:
        outputs = Outputs(OutputsConfig(**config), pin_factory=mock_factory)
        made.append(outputs)
        return outputs

    yield make
    for outputs in made:
        outputs.close()


@pytest.mark.parametrize(("active_high", "closed_level"), [(True, False), (False, True)])
def test_outputs_start_dark_quiet_and_with_the_safety_loop_closed(
    make_outputs, mock_factory, active_high, closed_level
):
    make_outputs(relay_active_high=active_high)
    assert mock_factory.pin(LED).state is False
    assert mock_factory.pin(BUZZER).state is False
    relay = mock_factory.pin(RELAY)
    assert relay.function == "output"
    assert relay.state is closed_level


@pytest.mark.parametrize(("active_high", "open_level"), [(True, True), (False, False)])
def test_relay_open_drives_the_level_that_cuts_the_safety_loop(
    make_outputs, mock_factory, active_high, open_level
):
    outputs = make_outputs(relay_active_high=active_high)
    relay = mock_factory.pin(RELAY)
    outputs.apply("relay", "open")
    assert relay.state is open_level
    outputs.apply("relay", "closed")
    assert relay.state is (not open_level)


def test_led_steady_for_forward_and_off_when_asked(make_outputs, mock_factory):
    outputs = make_outputs()
    led = mock_factory.pin(LED)
    outputs.apply("led", "steady")
    assert led.state is True
    outputs.apply("led", "off")
    assert led.state is False


def test_led_slow_blink_for_backward_turns_on_then_off(make_outputs, mock_factory):
    outputs = make_outputs()
    led = mock_factory.pin(LED)
    led.clear_states()
    outputs.apply("led", "slow_blink")
    # 0.5 s on, then off: the first blink is over well within a second
    assert wait_until(
        lambda: levels(led)[:3] == [False, True, False],
        within_s=2.0,
        what="one slow blink",
        showing=lambda: levels(led),
    )


def test_led_off_stops_a_blink(make_outputs, mock_factory):
    outputs = make_outputs()
    led = mock_factory.pin(LED)
    outputs.apply("led", "fast_blink")
    assert wait_until(lambda: rises(led) >= 2, within_s=2.0, what="two fast blinks")
    outputs.apply("led", "off")
    assert led.state is False
    seen = len(led.states)
    time.sleep(0.3)  # a fast blink still running would toggle the pin within 0.1 s
    assert len(led.states) == seen
    assert led.state is False


def test_start_tune_is_one_beep_that_ends_quiet(make_outputs, mock_factory):
    outputs = make_outputs()
    buzzer = mock_factory.pin(BUZZER)
    buzzer.clear_states()
    outputs.apply("buzzer", "start")
    assert wait_until(
        lambda: levels(buzzer) == [False, True, False],
        within_s=2.0,
        what="one beep",
        showing=lambda: levels(buzzer),
    )


def test_refused_tune_beeps_three_times(make_outputs, mock_factory):
    outputs = make_outputs()
    buzzer = mock_factory.pin(BUZZER)
    buzzer.clear_states()
    outputs.apply("buzzer", "refused")
    assert TUNES[Tune.REFUSED].count == 3
    assert wait_until(
        lambda: rises(buzzer) == 3 and buzzer.state is False, within_s=2.0, what="three beeps"
    )
    assert levels(buzzer) == [False, True, False, True, False, True, False]


def test_silent_stops_a_tune_at_once(make_outputs, mock_factory):
    outputs = make_outputs()
    buzzer = mock_factory.pin(BUZZER)
    outputs.apply("buzzer", "end")  # one 0.8 s beep
    assert wait_until(lambda: buzzer.state is True, within_s=1.0, what="the beep to begin")
    outputs.apply("buzzer", "silent")
    assert buzzer.state is False


def test_outputs_not_fitted_are_skipped(make_outputs, mock_factory):
    outputs = make_outputs(led_pin=None, buzzer_pin=None, relay_pin=None)
    for name, state in [("led", "steady"), ("led", "slow_blink"), ("buzzer", "refused"),
                        ("relay", "open"), ("relay", "closed")]:  # fmt: skip
        outputs.apply(name, state)
    # no pin was claimed, so the same numbers are free for a fitted set
    fitted = make_outputs()
    fitted.apply("led", "steady")
    assert mock_factory.pin(LED).state is True


def test_unknown_output_name_is_a_programming_error(make_outputs):
    outputs = make_outputs()
    with pytest.raises(ValueError, match="fan"):
        outputs.apply("fan", "on")


@pytest.mark.parametrize(("active_high", "closed_level"), [(True, False), (False, True)])
def test_close_leaves_everything_safe_and_frees_the_pins(mock_factory, active_high, closed_level):
    outputs = Outputs(OutputsConfig(relay_active_high=active_high), pin_factory=mock_factory)
    outputs.apply("led", "steady")
    outputs.apply("buzzer", "end")
    outputs.apply("relay", "open")
    assert mock_factory.pin(RELAY).state is (not closed_level)
    outputs.close()
    assert mock_factory.pin(LED).state is False
    assert mock_factory.pin(BUZZER).state is False
    assert mock_factory.pin(RELAY).state is closed_level
    # the pins are released: a restarted daemon can claim them again
    again = Outputs(OutputsConfig(relay_active_high=active_high), pin_factory=mock_factory)
    again.close()
