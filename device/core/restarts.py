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
    check = new.sensor.check
    fitted = (old.sensor.check is None, old.sensor.check and old.sensor.check.pin)
    rewired = (
        old.sensor.opened_with() != new.sensor.opened_with()
        or (fitted != (check is None, check and check.pin))
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
