"""`retrotread calibrate`: find the belt travel per pulse at the treadmill (or a serial
bridge's speed factor) and, with --write, save it into the config file with its comments kept.

    retrotread calibrate --console-kmh 5                 count pulses with the belt at 5 km/h
    retrotread calibrate --belt-length-m 3.162 --magnets 1
    retrotread calibrate --roller-diameter-mm 50 --magnets 2 --belt-thickness-mm 1.6
    retrotread calibrate --check 2 5                     the current value's error at 2, 5 km/h

A method combines with --check (which then checks the new value) and --write. With a serial
bridge, --console-kmh finds [sensor] serial_scale instead, on top of the one in use. Counting
needs the sensor's pin, which the daemon owns: stop retrotread-device first. While counting,
the safety-key relay is held in its rest state (loop closed), so a treadmill wired fail-safe
can run; no cap is enforced, so nobody walks on the belt. The arithmetic is
device/calibrate/arithmetic.py, the pin, serial port and terminal device/calibrate/rig.py.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from device.calibrate.arithmetic import (
    CONSOLE_READS_FAST_PCT,
    MIN_INTERVALS,
    SURPRISE_PCT,
    BeltCount,
    CalibrationError,
    SpeedCheck,
    check_verdict,
    mpp_from_belt,
    mpp_from_count,
    mpp_from_roller,
    percent_off,
    rounded,
    save_setting,
    scale_for_console,
    signed_pct,
)
from device.calibrate.rig import Rig, count_belt, read_bridge
from device.config.kinds import ConfigError
from device.config.load import DEFAULT_PATH, load_config
from device.config.model import Config, SensorKind

DEFAULT_SECONDS = 30.0
DESCRIPTION = """\
Find the belt travel per pulse ([sensor] meters_per_pulse) at the treadmill, or check it at
two console speeds; --write saves the result into the config file, comments kept. Stop
retrotread-device first: counting needs the sensor's pin. Nobody walks on the belt meanwhile.

  retrotread calibrate --console-kmh 5               count pulses, belt at 5 km/h
  retrotread calibrate --belt-length-m 3.162 --magnets 1
  retrotread calibrate --roller-diameter-mm 50 --magnets 2 --belt-thickness-mm 1.6
  retrotread calibrate --check 2 5                   the error now at 2 and 5 km/h
  retrotread calibrate --console-kmh 5 --check 2 5 --write

With a serial speed bridge ([sensor] kind = "serial"), --console-kmh and --check read the
bridge's speed instead, and --console-kmh finds [sensor] serial_scale, the factor on its
readings. hardware.md explains each method."""
STOP_DAEMON = "sudo systemctl stop retrotread-device"
RESTART_DAEMON = "sudo systemctl restart retrotread-device"


def _ready(rig: Rig, config: Config, console_kmh: float, seconds: float) -> None:
    """Tell the person what to do, and wait for Enter."""
    say = rig.terminal.say
    if config.sensor.kind == SensorKind.SERIAL:
        say(f"Reading the speed bridge on {config.sensor.url} for {seconds:g} s.")
    else:
        say(f"Counting pulses from the hall sensor on GPIO {config.sensor.pin} for {seconds:g} s.")
        say(f"Stop the daemon first if it runs ({STOP_DAEMON}): it owns the pin.")
    say(
        f"With nobody on the belt, run it at {console_kmh:g} km/h on the console "
        "(no cap is enforced meanwhile)."
    )
    rig.terminal.ask(f"Press Enter when the belt runs steadily at {console_kmh:g} km/h: ")


def measure_kmh(
    config: Config, *, mpp: float, console_kmh: float, seconds: float, rig: Rig
) -> SpeedCheck:
    """One check: what retrotread reads with the belt at `console_kmh` on the console."""
    _ready(rig, config, console_kmh, seconds)
    if config.sensor.kind == SensorKind.SERIAL:
        return SpeedCheck(console_kmh, read_bridge(config, seconds=seconds, rig=rig).mean_kmh)
    count = count_belt(config, seconds=seconds, console_kmh=console_kmh, rig=rig)
    _report_count(rig, count)
    return SpeedCheck(console_kmh, count.speed_kmh(mpp))


def _report_count(rig: Rig, count: BeltCount) -> None:
    say = rig.terminal.say
    say(
        f"Counted {count.edges} pulses: {count.intervals} intervals in {count.span_s:.2f} s"
        + (f", {count.bounces} bounce(s) dropped." if count.bounces else ".")
    )
    if count.intervals < MIN_INTERVALS:
        say(
            f"Only {count.intervals} intervals: the result may be a few percent off; count "
            "longer (--seconds) or at a higher console speed."
        )
    if count.uneven and count.shortest_s and count.longest_s:
        shortest_ms, longest_ms = count.shortest_s * 1000, count.longest_s * 1000
        say(
            f"Pulses came unevenly ({shortest_ms:.0f}-{longest_ms:.0f} ms apart): with one "
            "magnet that means missed or extra pulses (check the gap, at most 3 mm); with "
            "several magnets it may be their spacing."
        )


# -- the command -------------------------------------------------------------------------


@dataclass(frozen=True)
class Result:
    """A calibrated value for `[sensor] key`, how it was found, and what to re-measure if it
    is refused."""

    key: str
    value: float
    how: str
    hint: str


def _calibrate_hall(args, config: Config, rig: Rig) -> Result | None:
    now = config.sensor.meters_per_pulse
    if args.console_kmh is not None:
        _ready(rig, config, args.console_kmh, args.seconds)
        count = count_belt(config, seconds=args.seconds, console_kmh=args.console_kmh, rig=rig)
        mpp = mpp_from_count(count, console_kmh=args.console_kmh)
        _report_count(rig, count)
        was = count.speed_kmh(now)
        off = percent_off(was, args.console_kmh)
        rig.terminal.say(
            f"With the current {now:g} m retrotread reads {was:.2f} km/h at "
            f"{args.console_kmh:g} km/h on the console ({signed_pct(off)})."
        )
        low, high = CONSOLE_READS_FAST_PCT
        rig.terminal.say(
            f"This takes the console as right; consoles commonly read {low:g}-{high:g} % fast "
            "(measuring the belt's length avoids that)."
        )
        how = f"at {args.console_kmh:g} km/h on the console"
        hint = "check the console speed and that the sensor sees every magnet"
    elif args.belt_length_m is not None:
        mpp = mpp_from_belt(args.belt_length_m, magnets=args.magnets)
        how = f"belt {args.belt_length_m:g} m / {_magnets(args.magnets)} on the belt"
        hint = "check the belt length (metres) and the magnet count"
    elif args.roller_diameter_mm is not None:
        mpp = mpp_from_roller(
            args.roller_diameter_mm, magnets=args.magnets, belt_thickness_mm=args.belt_thickness_mm
        )
        wrap = args.roller_diameter_mm + args.belt_thickness_mm
        how = f"pi x {wrap:g} mm / {_magnets(args.magnets)} on the roller"
        hint = "check the roller diameter (millimetres) and the magnet count"
    else:
        return None
    value = rounded(mpp)
    rig.terminal.say(f"meters_per_pulse = {value:g} m ({how}).")
    rig.terminal.say(f"Every speed reads {_compare(value, now)} than with the current {now:g} m.")
    if abs(percent_off(value, now)) > SURPRISE_PCT:
        rig.terminal.say(
            "A change this large usually means a magnet more or less than you counted, or a "
            "wrong console speed: check before you --write."
        )
    if config.sensor.kind == SensorKind.SERIAL:
        rig.terminal.say(
            '[sensor] kind is "serial": meters_per_pulse counts only with a hall sensor.'
        )
    return Result("meters_per_pulse", value, how, hint)


def _calibrate_bridge(args, config: Config, rig: Rig) -> Result | None:
    if args.console_kmh is None:
        return _calibrate_hall(args, config, rig)  # the arithmetic methods need no bridge
    _ready(rig, config, args.console_kmh, args.seconds)
    reading = read_bridge(config, seconds=args.seconds, rig=rig)
    off = percent_off(reading.mean_kmh, args.console_kmh)
    rig.terminal.say(
        f"The bridge reported {reading.mean_kmh:.2f} km/h on average ({reading.readings} "
        f"readings, {reading.rejected} lines without a speed) at {args.console_kmh:g} km/h "
        f"on the console ({signed_pct(off)})."
    )
    # The readings already carry the scale in use, so the new one is relative to it.
    now = config.sensor.serial_scale
    scale = rounded(scale_for_console(reading.mean_kmh, console_kmh=args.console_kmh, current=now))
    rig.terminal.say(f"serial_scale = {scale:g} (now {now:g}).")
    if abs(percent_off(scale, now)) > SURPRISE_PCT:
        rig.terminal.say(
            "A change this large usually means a wrong [sensor] unit or console speed: check "
            "before you --write."
        )
    how = f"at {args.console_kmh:g} km/h on the console"
    return Result("serial_scale", scale, how, "check the console speed and the bridge's unit")


def _compare(new: float, now: float) -> str:
    ratio = new / now
    if not 0.5 < ratio < 2:
        return f"{ratio:.3g} times higher" if ratio > 1 else f"{1 / ratio:.3g} times lower"
    change = percent_off(new, now)
    return f"{abs(change):.1f} % {'higher' if change >= 0 else 'lower'}"


def _magnets(n: int) -> str:
    return f"{n} magnet" + ("" if n == 1 else "s")


def _check_args(args) -> None:
    """One sentence for options that do not go together (argparse checks each alone)."""
    arithmetic = args.belt_length_m is not None or args.roller_diameter_mm is not None
    method = arithmetic or args.console_kmh is not None
    if not method and args.check is None:
        raise CalibrationError(
            "say how to calibrate: --console-kmh V, --belt-length-m M --magnets N, "
            "--roller-diameter-mm D --magnets N, or --check V1 V2 (see retrotread calibrate "
            "--help)."
        )
    if arithmetic and args.magnets is None:
        raise CalibrationError(
            "add --magnets N: how many magnets pass the sensor per turn of the belt "
            "(--belt-length-m) or of the roller (--roller-diameter-mm)."
        )
    if args.magnets is not None and not arithmetic:
        raise CalibrationError(
            "--magnets goes with --belt-length-m or --roller-diameter-mm; counting at a "
            "console speed needs no magnet count."
        )
    if args.belt_thickness_mm and args.roller_diameter_mm is None:
        raise CalibrationError("--belt-thickness-mm goes with --roller-diameter-mm.")
    if args.write and not method:
        raise CalibrationError(
            "--write saves a calibrated value: add --console-kmh, --belt-length-m or "
            "--roller-diameter-mm."
        )


def _run(args, rig: Rig) -> int:
    _check_args(args)
    try:
        config, source = load_config(args.config)
    except ConfigError as exc:
        raise CalibrationError(str(exc)) from None
    path = args.config or DEFAULT_PATH
    bridge = config.sensor.kind == SensorKind.SERIAL
    say = rig.terminal.say
    say(f"Config: {source}.")
    result = (_calibrate_bridge if bridge else _calibrate_hall)(args, config, rig)

    if args.check is not None:
        _run_check(args, config, result, rig)
    if result is None:
        return 0
    if not args.write:
        say(f"Nothing written; add --write to save it into {path}.")
        return 0
    save_setting(path, result.key, result.value, config=config, hint=result.hint)
    say(f"Wrote [sensor] {result.key} = {result.value:g} into {path}, comments kept.")
    say(f"Restart the daemon to use it: {RESTART_DAEMON}.")
    return 0


def _run_check(args, config: Config, result: Result | None, rig: Rig) -> None:
    """Read the belt at the two --check speeds with the new meters_per_pulse or serial_scale
    (or the current one) and say what the errors mean."""
    if result is not None:
        calibrated: dict[str, Any] = {result.key: result.value}  # a float [sensor] key
        config = replace(config, sensor=replace(config.sensor, **calibrated))
    mpp = config.sensor.meters_per_pulse
    checks = [
        measure_kmh(config, mpp=mpp, console_kmh=kmh, seconds=args.seconds, rig=rig)
        for kmh in args.check
    ]
    for check in checks:
        rig.terminal.say(
            f"At {check.console_kmh:g} km/h on the console retrotread reads "
            f"{check.measured_kmh:.2f} km/h ({signed_pct(check.error_pct)})."
        )
    setting, current = "[sensor] meters_per_pulse", mpp
    if config.sensor.kind == SensorKind.SERIAL:
        setting, current = "[sensor] serial_scale", config.sensor.serial_scale
    for line in check_verdict(checks, setting=setting, current=current):
        rig.terminal.say(line)


def calibrate_main(args: argparse.Namespace, *, rig: Rig | None = None) -> int:
    """`retrotread calibrate`: 0 when done, 2 with one sentence on stderr when something
    needs fixing, 130 when cancelled with Ctrl-C."""
    rig = rig or Rig()
    try:
        return _run(args, rig)
    except CalibrationError as exc:
        rig.terminal.error(str(exc))
        return 2
    except KeyboardInterrupt:
        rig.terminal.error("Cancelled; the config file is unchanged.")
        return 130


# -- the command line --------------------------------------------------------------------


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
