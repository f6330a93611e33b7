"""GPIO set-up for every device on the header (sensor, buttons, LED, buzzer, relay): the pin
factory, and one sentence for each way a pin can be refused, naming the pin, the config key
and the fix."""

from __future__ import annotations

import errno
import logging
import os
import warnings

from gpiozero import Device
from gpiozero.exc import (
    BadPinFactory,
    GPIOPinInUse,
    GPIOZeroError,
    NativePinFactoryFallback,
    PinFixedPull,
    PinInvalidPin,
)

from device.errors import RetrotreadError

try:  # only on a Pi with the [pi] extra; its errors (busy line, no chip) are user-fixable too
    from lgpio import error as _LgpioError
except ImportError:  # pragma: no cover - depends on the machine
    SETUP_ERRORS: tuple[type[BaseException], ...] = (GPIOZeroError, OSError)
else:  # pragma: no cover - depends on the machine
    SETUP_ERRORS = (GPIOZeroError, OSError, _LgpioError)

log = logging.getLogger("retrotread.pins")


class PinError(RetrotreadError):
    """A pin cannot be used for a reason the user can fix; str() is one sentence."""


def default_pin_factory(pin: int | str, *, what: str, key: str):
    """gpiozero's default pin factory, or a PinError saying why none loads here."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            Device.ensure_pin_factory()
        except BadPinFactory as exc:
            reasons = [str(w.message) for w in caught]
            raise PinError(_explain_no_factory(pin, reasons, what)) from exc
        except SETUP_ERRORS as exc:  # GPIOZERO_PIN_FACTORY's factory failed to open
            raise PinError(explain_pin_error(exc, pin, what=what, key=key)) from exc
    for w in caught:
        if issubclass(w.category, NativePinFactoryFallback):
            log.warning("%s on pin %s: %s", what, pin, w.message)
        else:
            log.debug("%s on pin %s: %s", what, pin, w.message)
    return Device.pin_factory


def _explain_no_factory(pin: int | str, reasons: list[str], what: str) -> str:
    chosen = os.environ.get("GPIOZERO_PIN_FACTORY")
    if chosen:
        return (
            f"GPIOZERO_PIN_FACTORY={chosen!r} names no installed pin factory, so {what} "
            f"on pin {pin} cannot start; unset it or install that factory."
        )
    if any(_is_permission_problem(reason) for reason in reasons):
        return _permission_sentence(pin, what)
    return (
        f"no GPIO driver could be loaded for {what} on pin {pin}: on a Raspberry Pi "
        "install the [pi] extra (pip install 'retrotread[pi]', which brings lgpio), on any "
        "other computer run `retrotread demo` instead."
    )


def explain_pin_error(exc: BaseException, pin: int | str, *, what: str, key: str) -> str:
    """One sentence for a pin `what` (e.g. "the hall sensor") cannot use, naming the pin, the
    config `key` (e.g. "[sensor] pin") and the fix."""
    if isinstance(exc, GPIOPinInUse):
        return (
            f"GPIO pin {pin} for {what} is already used by another device; "
            f"give {key} a free pin in the config."
        )
    if isinstance(exc, PinInvalidPin):
        return (
            f"{pin!r} is not a GPIO pin on this board; set {key} to the BCM number "
            f"{what} is wired to."
        )
    if isinstance(exc, PinFixedPull):
        return (
            f"GPIO pin {pin} has a fixed pull resistor that does not suit {what}; "
            f"wire it to another pin and set {key} to match."
        )
    if isinstance(exc, BadPinFactory):
        return _explain_no_factory(pin, [str(exc)], what)
    code = getattr(exc, "errno", None)
    text = str(exc).lower()
    if code in (errno.EACCES, errno.EPERM) or _is_permission_problem(text):
        return _permission_sentence(pin, what)
    if code == errno.EBUSY or "busy" in text:
        return (
            f"GPIO pin {pin} is busy: another program or a kernel driver (such as 1-wire) "
            f"holds it; stop that or move {what} to a free pin."
        )
    return f"cannot set up {what} on GPIO pin {pin} ({exc}); check {key} and the wiring."


def _is_permission_problem(text: str) -> bool:
    text = text.lower()
    return "permission" in text or "gpiochip" in text or "/dev/gpiomem" in text


def _permission_sentence(pin: int | str, what: str) -> str:
    return (
        f"cannot open the GPIO chip for {what} on pin {pin}: add the user running "
        "retrotread to the gpio group (sudo usermod -aG gpio USER) and restart it."
    )
