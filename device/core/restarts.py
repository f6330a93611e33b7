"""What a reload cannot change while the daemon runs: the adapters are opened once, at start.

The pins, the sensor as its adapter was opened (device.config.model SensorConfig.opened_with),
the check sensor, and the fleet's link and topics (the publisher would have to say "offline"
and connect again, which the tick cannot wait for). A reload takes everything else at once.
"""

from __future__ import annotations

from device.config.model import Config


def restart_note(old: Config, new: Config) -> str:
    """What of the change from `old` to `new` waits for a restart, in words for the reload's
    answer ("" when nothing does)."""
    rewired = (
        old.sensor.opened_with() != new.sensor.opened_with()
        or _check_wiring(old) != _check_wiring(new)
        or (
            (old.buttons.start_pin, old.buttons.direction_pin, old.outputs)
            != (new.buttons.start_pin, new.buttons.direction_pin, new.outputs)
        )
    )
    relinked = (old.fleet, old.machine.id) != (new.fleet, new.machine.id)
    changes = " and ".join(
        what
        for what, changed in (("pin and sensor wiring", rewired), ("the [fleet] link", relinked))
        if changed
    )
    return f"restart the device for {changes} changes" if changes else ""


def _check_wiring(config: Config) -> tuple[object, ...] | None:
    """What the check sensor's adapter was opened with: its pin, or the console's port."""
    check = config.sensor.check
    if check is None:
        return None
    return (check.kind, check.pin) if check.kind == "hall" else (check.kind, check.url, check.baud)
