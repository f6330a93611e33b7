"""What this treadmill's config makes the device do, as the guide tells a beginner: the start
cap and the start gate, the hold and the ramp, the warning, the grace and the stop.

Every number comes from the web's config ([backward], [enforce], [program]), so the guide
reads what the operator set; the sentences say only what device.core does with them
(device/core/governor.py, guard.py, soft_stop.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from device.config.model import Config
from device.core.soft_stop import SOFT_WINDOW_S
from web.formats import setting_kmh, setting_s


@dataclass(frozen=True)
class DeviceRules:
    """The device's rules for a backward session on this treadmill, in the guide's words.

    `start_line` is the start cap plus the tolerance: a backward start above it is refused.
    `enforced` is false when [enforce] action = "none": the device only warns. `stop` says
    what happens when the grace runs out; `soft` the console's soft stop first, "" without.
    `stops_outside_sessions` follows [enforce] without_session: with "warn" (the default) a
    belt over the start cap with no session started is only warned about.
    """

    start_cap: str
    tolerance: str
    start_line: str
    hold: str
    ramp_step: str
    ramp_every: str
    first_level_cap: str
    grace: str
    enforced: bool
    stop: str
    soft: str
    stops_outside_sessions: bool


def device_rules(config: Config) -> DeviceRules:
    b, enforce = config.backward, config.enforce
    enforced = enforce.action == "relay"
    if not enforced:
        stop = (
            "The cap is not enforced on this machine: the device only warns, and slowing "
            "the belt is up to you."
        )
    elif enforce.mode == "latch":
        stop = (
            "The relay opens the treadmill's safety-key loop, as if you pulled the key, and "
            "the belt stops; it stays stopped until START on the device is pressed."
        )
    else:
        stop = (
            "The relay opens the treadmill's safety-key loop, as if you pulled the key, and "
            f"the belt stops; after {setting_s(enforce.pulse_s)} the treadmill can be started "
            "again from its console."
        )
    soft = ""
    if enforced and enforce.soft == "csafe":
        soft = (
            "First the device asks the treadmill's console to slow the belt to the cap; if "
            f"the belt is not back under the limit within {setting_s(SOFT_WINDOW_S)}, or the "
            "console does not do it, the relay stops the belt."
        )
    return DeviceRules(
        start_cap=setting_kmh(b.start_cap_kmh),
        tolerance=setting_kmh(b.tolerance_kmh),
        start_line=setting_kmh(b.start_cap_kmh + b.tolerance_kmh),
        hold=setting_s(b.hold_s),
        ramp_step=setting_kmh(b.ramp_step_kmh),
        ramp_every=setting_s(b.ramp_every_s),
        first_level_cap=setting_kmh(b.level_caps_kmh[0]),
        grace=setting_s(b.grace_s),
        enforced=enforced,
        stop=stop,
        soft=soft,
        stops_outside_sessions=enforce.without_session == "stop",
    )


def essentials(config: Config) -> tuple[str, ...]:
    """The first-session card's short list: the few rules to read before the first
    backward session (the guide has them in full)."""
    line = setting_kmh(config.backward.start_cap_kmh + config.backward.tolerance_kmh)
    return (
        "Balance check first: 10 steps forward, then 9 steps back.",
        "Walk 20 m backward on flat ground before you try the belt.",
        f"Start the belt as slowly as it goes: a backward start above {line} is refused.",
        "Hold the rails at first.",
        "On the belt, keep looking ahead; never turn to look over your shoulder.",
        "Run backward only once walking backward is mastered.",
    )
