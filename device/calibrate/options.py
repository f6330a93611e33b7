"""`retrotread calibrate`'s command line: its options, each checked alone (the combinations
are device/calibrate/command.py's), and its --help."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from device.config.load import DEFAULT_PATH

DEFAULT_SECONDS = 30.0
DESCRIPTION = """\
Find the belt travel per pulse ([sensor] meters_per_pulse) at the treadmill, or check it at
two console speeds; --write saves the result into the config file, comments kept. Stop
retrotread-device first: counting needs the sensor's pin. Nobody walks on the belt meanwhile.

  retrotread calibrate --console-kmh 5               count pulses, belt at 5 km/h
  retrotread calibrate --console                     count pulses, the console says the speed
  retrotread calibrate --belt-length-m 3.162 --magnets 1
  retrotread calibrate --roller-diameter-mm 50 --magnets 2 --belt-thickness-mm 1.6
  retrotread calibrate --check 2 5                   the error now at 2 and 5 km/h
  retrotread calibrate --console-kmh 5 --check 2 5 --write

With a serial speed bridge ([sensor] kind = "serial"), --console-kmh and --check read the
bridge's speed instead, and --console-kmh finds [sensor] serial_scale, the factor on its
readings. With a CSAFE console as the check sensor ([sensor.check] kind = "csafe"),
--console reads the console's speed over CSAFE while counting, so nobody types it. With the
console as the only sensor ([sensor] kind = "csafe") there is nothing to calibrate: its speed
is the reading. hardware.md explains each method."""


def _number(lo: float, hi: float, unit: str) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"{text} is outside {lo:g}-{hi:g} {unit}")
        return value

    return parse


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 1 <= value <= 100:
        raise argparse.ArgumentTypeError(f"{text} is outside 1-100")
    return value


def add_calibrate_parser(commands) -> argparse.ArgumentParser:
    """The `calibrate` subcommand on the `retrotread` parser's subparsers."""
    parser = commands.add_parser(
        "calibrate",
        help="measure [sensor] meters_per_pulse (or a bridge's serial_scale) at the treadmill",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", help=f"config file (default {DEFAULT_PATH})")
    how = parser.add_argument_group("how (one of)").add_mutually_exclusive_group()
    how.add_argument(
        "--console-kmh",
        type=_number(0.5, 30, "km/h"),
        metavar="V",
        help="count pulses with the belt at V km/h on the console (a bridge: read its speed)",
    )
    how.add_argument(
        "--console",
        action="store_true",
        help="count pulses while reading the belt speed from the CSAFE console ([sensor.check] "
        'kind = "csafe")',
    )
    how.add_argument(
        "--belt-length-m",
        type=_number(0.1, 50, "m"),
        metavar="M",
        help="magnets fixed on the belt, whose whole length is M metres",
    )
    how.add_argument(
        "--roller-diameter-mm",
        type=_number(5, 500, "mm"),
        metavar="D",
        help="magnets on the roller the belt runs on, D millimetres across",
    )
    parser.add_argument(
        "--magnets", type=_count, metavar="N", help="magnets on the belt or on the roller"
    )
    parser.add_argument(
        "--belt-thickness-mm",
        type=_number(0, 10, "mm"),
        default=0.0,
        metavar="T",
        help="belt thickness for --roller-diameter-mm, measured at its edge (default 0)",
    )
    parser.add_argument(
        "--check",
        type=_number(0.5, 30, "km/h"),
        nargs=2,
        metavar=("V1", "V2"),
        help="then read the belt at two console speeds and report the error at each",
    )
    parser.add_argument(
        "--seconds",
        type=_number(1, 600, "s"),
        default=DEFAULT_SECONDS,
        metavar="N",
        help=f"how long each count runs (default {DEFAULT_SECONDS:g} s)",
    )
    parser.add_argument("--write", action="store_true", help="save the result into the config file")
    return parser
