"""`retrotread calibrate`: find the belt travel per pulse at the treadmill (or a serial
bridge's speed factor) and, with --write, save it into the config file with its comments kept.

    retrotread calibrate --console-kmh 5                 count pulses with the belt at 5 km/h
    retrotread calibrate --console                       the same, the console's CSAFE port
                                                         saying the speed
    retrotread calibrate --belt-length-m 3.162 --magnets 1
    retrotread calibrate --roller-diameter-mm 50 --magnets 2 --belt-thickness-mm 1.6
    retrotread calibrate --check 2 5                     the current value's error at 2, 5 km/h

A method combines with --check (which then checks the new value) and --write. With a serial
bridge, --console-kmh finds [sensor] serial_scale instead, on top of the one in use. Counting
needs the sensor's pin, which the daemon owns: stop retrotread-device first. While counting,
the safety-key relay is held in its rest state (loop closed), so a treadmill wired fail-safe
can run; no cap is enforced, so nobody walks on the belt.

A console that is the only sensor ([sensor] kind = "csafe") has nothing to calibrate: its
speed is the reading, and retrotread puts no factor on it (serial_scale is read by the serial
bridge's source alone, so offering one would write a setting nothing uses). Consoles commonly
read 2.5-6 % fast, which makes the guard act a little early, never late.

The arithmetic is device/calibrate/arithmetic.py; the pin, serial port, console and terminal
device/calibrate/rig.py; the options device/calibrate/options.py.
"""

from __future__ import annotations

import argparse
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
    mpp_from_console,
    mpp_from_count,
    mpp_from_roller,
    percent_off,
    rounded,
    save_setting,
    scale_for_console,
    signed_pct,
)
from device.calibrate.options import add_calibrate_parser
from device.calibrate.rig import (
    STOP_DAEMON,
    ConsoleReader,
    Rig,
    count_against_console,
    count_belt,
    read_bridge,
)
from device.config.kinds import ConfigError
from device.config.load import DEFAULT_PATH, load_config
from device.config.model import Config, SensorKind

__all__ = ["add_calibrate_parser", "calibrate_main", "measure_kmh"]  # the CLI's parser too

RESTART_DAEMON = "sudo systemctl restart retrotread-device"
LOW, HIGH = CONSOLE_READS_FAST_PCT
CONSOLE_IS_THE_SENSOR = (
    '[sensor] kind is "csafe": the console\'s own speed is the reading, so there is nothing to '
    f"calibrate; consoles commonly read {LOW:g}-{HIGH:g} % fast, which makes the guard act a "
    "little early, never late (a hall sensor checked by the console can be calibrated with "
    "--console)."
)
NO_CONSOLE = (
    "--console counts the hall sensor's pulses against a CSAFE console's speed, but the "
    'config reads no console; set [sensor.check] kind = "csafe" and its url, or type the '
    "console's speed with --console-kmh V."
)


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
        _console_as_right(rig)
        how = f"at {args.console_kmh:g} km/h on the console"
        hint = "check the console speed and that the sensor sees every magnet"
    elif args.console:
        mpp, how = _count_against_console(args, config, rig)
        hint = "check that the belt ran steadily and that the sensor sees every magnet"
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
    if config.sensor.kind != SensorKind.HALL:
        rig.terminal.say(
            f'[sensor] kind is "{config.sensor.kind}": meters_per_pulse counts only with a hall '
            "sensor."
        )
    return Result("meters_per_pulse", value, how, hint)


def _console_as_right(rig: Rig) -> None:
    rig.terminal.say(
        f"This takes the console as right; consoles commonly read {LOW:g}-{HIGH:g} % fast "
        "(measuring the belt's length avoids that)."
    )


def _count_against_console(args, config: Config, rig: Rig) -> tuple[float, str]:
    """Count magnet passes while the console reports the belt's speed over CSAFE: the
    meters_per_pulse its speeds make of the count, and how it was found."""
    console = config.sensor.console
    if console is None:
        raise CalibrationError(NO_CONSOLE)
    url, baud = console
    say = rig.terminal.say
    say(
        f"Counting pulses from the hall sensor on GPIO {config.sensor.pin} for "
        f"{args.seconds:g} s against the speed the console on {url} reports over CSAFE."
    )
    say(f"Stop the daemon first if it runs ({STOP_DAEMON}): it owns the pin and polls the console.")
    with ConsoleReader(url, baud, rig=rig) as reader:
        say(f"The console answers: {reader.speed_kmh:.2f} km/h now.")
        say(
            "With nobody on the belt, run it at a steady 5 km/h or more on the console: its "
            "speed comes in steps, which weigh less at speed (no cap is enforced meanwhile)."
        )
        rig.terminal.ask("Press Enter when the belt runs steadily: ")
        counted = count_against_console(config, reader, seconds=args.seconds, rig=rig)
        step_kmh = reader.step_kmh
    count, speeds = counted.count, counted.speeds
    _report_count(rig, count)
    mean = speeds.mean_kmh
    low, high = speeds.lowest_kmh, speeds.highest_kmh
    spread = f", {low:.2f}-{high:.2f} km/h" if high > low else ""
    say(
        f"The console reported {mean:.2f} km/h on average meanwhile ({speeds.readings} "
        f"readings{spread})."
    )
    if step_kmh is not None:
        say(
            f"It counts in steps of {step_kmh:.3g} km/h: up to "
            f"{step_kmh / 2 / mean * 100:.1f} % either way at this speed."
        )
    if high - low > (step_kmh or 0.0) * 1.01:  # more than its last digit wavering
        say(
            "Its speed changed during the count: the result holds only if the belt followed "
            "at once; count again at a steady speed to be sure."
        )
    now = config.sensor.meters_per_pulse
    was = count.speed_kmh(now)
    say(
        f"With the current {now:g} m retrotread reads {was:.2f} km/h at {mean:.2f} km/h on "
        f"the console ({signed_pct(percent_off(was, mean))})."
    )
    _console_as_right(rig)
    return mpp_from_console(count, speeds), f"at {mean:.2f} km/h read from the console"


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
    method = arithmetic or args.console_kmh is not None or args.console
    if not method and args.check is None:
        raise CalibrationError(
            "say how to calibrate: --console-kmh V, --console, --belt-length-m M --magnets N, "
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
            "--write saves a calibrated value: add --console-kmh, --console, --belt-length-m "
            "or --roller-diameter-mm."
        )


def _run(args, rig: Rig) -> int:
    _check_args(args)
    try:
        config, source = load_config(args.config)
    except ConfigError as exc:
        raise CalibrationError(str(exc)) from None
    path = args.config or DEFAULT_PATH
    bridge = config.sensor.kind == SensorKind.SERIAL
    measures = args.console_kmh is not None or args.console or args.check is not None
    if config.sensor.kind == SensorKind.CSAFE and measures:
        raise CalibrationError(CONSOLE_IS_THE_SENSOR)
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
