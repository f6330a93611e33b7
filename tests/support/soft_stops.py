"""What the soft stop's tests share: the built-in cap, line and grace, the two ways the guard
sees the speed (measured by a hall sensor the console checks, or the console's own word), a
config with [enforce] soft = "csafe", a SetSpeed asked and the watch's word when the grace ran
out."""

from __future__ import annotations

from typing import Any

from device.config.load import config_from_mapping
from device.config.model import Config
from device.core.overspeed import REFILL_PER_S, Decision, Verdict
from device.core.soft_stop import SlowDown

CAP, LINE, GRACE_S = 2.0, 2.3, 5.0  # the built-in start cap, + tolerance, and grace
FAST = 4.0  # over the line, near enough it for either speed source to be asked
REST_S = GRACE_S / REFILL_PER_S  # a soft stop is granted once per refill: 150 s
CONSOLE = {"kind": "csafe", "url": "loop://"}
# The speed the guard sees: measured on the belt by a hall sensor (the console checks it), or
# the console's own word (the console is the speed source: it says the speed it is set to).
MEASURED, REPORTED = {"check": CONSOLE}, CONSOLE


def soft_config(sensor: dict[str, Any] = MEASURED, **enforce: Any) -> Config:
    return config_from_mapping({"sensor": sensor, "enforce": {"soft": "csafe", **enforce}})


HALL, WORD = soft_config(MEASURED), soft_config(REPORTED)


def asked(at: float = 10.0, *, from_kmh: float | None = FAST, down_from: float | None = None):
    """SetSpeed sent at `at`; a speed under the line believed from `down_from` (a hall
    sensor's at once)."""
    return SlowDown(at, CAP, LINE, from_kmh, at if down_from is None else down_from)


def out_of_grace(speed_kmh: float = FAST) -> Decision:
    """The watch's word at the tick the budget ran out."""
    return Decision(
        Verdict.ENFORCED, speed_kmh, CAP, seconds_left=0.0, reason="over the cap", over=True,
        scope="session", enforce=True,
    )  # fmt: skip
