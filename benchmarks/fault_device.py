"""`python -m benchmarks.fault_device FD device ...`: the real `retrotread device` command
(device.cli.main, the same argv) on gpiozero's mock pins, each pin reporting its changes.

The only difference from `GPIOZERO_PIN_FACTORY=mock retrotread device` is the mock pin class:
every change of a pin's level is written to the inherited file descriptor FD as one line,
`GPIO26 0 12345.678901` (pin, new level, time.monotonic() when it changed). CLOCK_MONOTONIC is
one clock for every process on the machine, so the fault bench (benchmarks/fault_bench.py)
times the relay opening in the daemon's process against moments on its own side, with no
polling of the socket to steal time from the loop it measures.
"""

from __future__ import annotations

import os
import sys

from gpiozero import Device
from gpiozero.pins.mock import MockFactory, MockPin


class ReportingPin(MockPin):
    """A mock pin that says every change of its level on `report_fd`."""

    report_fd = -1

    def _change_state(self, value: bool) -> bool:
        changed = super()._change_state(value)
        if changed and self.report_fd >= 0:
            line = f"{self.info.name} {int(value)} {self._last_change:.6f}\n"
            try:
                os.write(self.report_fd, line.encode())
            except OSError:  # the bench stopped listening: the daemon carries on
                self.report_fd = -1
        return changed


def main(argv: list[str]) -> int:
    ReportingPin.report_fd = int(argv[0])
    Device.pin_factory = MockFactory(pin_class=ReportingPin)
    from device.cli import main as retrotread

    return retrotread(argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
