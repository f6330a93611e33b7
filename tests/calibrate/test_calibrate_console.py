"""`retrotread calibrate --console`: the hall sensor's magnet passes (gpiozero's mock pin) counted
against the speed a gym console reports over CSAFE (the emulator on a pty, polled by the
daemon's own ConsoleLink), and a console that is the only sensor, which has nothing to
calibrate."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import gpiozero.pins.mock as mock_pins
import pytest
from hypothesis import given
from hypothesis import strategies as st
from support.calibrating import EXAMPLE, ScriptedTerminal, parse
from support.virtual_clock import VirtualClock
from support.waiting import wait_until

from device.calibrate.arithmetic import console_speeds, count_edges, mpp_from_console
from device.calibrate.command import calibrate_main
from device.calibrate.rig import Rig
from device.config.load import load_config
from device.hardware.csafe_codec import KMH_PER_SPEED_UNIT, Command
from device.sim.console import ConsoleQuirks
from device.sim.console_serve import ConsoleEmulator

HALL_PIN = 17
KMH_PER_MPH = 1.609344
PROMPT = "Press Enter when the belt runs steadily: "


class GymTreadmill:
    """A treadmill with a CSAFE console (the emulator, answering in real time) and a magnet
    passing the hall sensor (a mock pin, in virtual time). The belt really runs at `true`
    times the speed the console reports. `sleep(dt)` moves the virtual clock on, passing
    the magnet as the belt would; once a virtual second it first waits (real time) until the
    console has answered twice, so a speed heard at this virtual moment has reached
    calibrate (the console link asks again only once it has taken an answer)."""

    SYNC_EVERY_S = 1.0

    def __init__(self, console: ConsoleEmulator, pin, clock: VirtualClock, *,
                 meters_per_pulse: float, true: float = 1.0):  # fmt: skip
        self.console, self.pin, self.clock = console, pin, clock
        self.mpp, self.true = meters_per_pulse, true
        self.unplug_at: float | None = None
        self.change_at: tuple[float, float] | None = None  # (t, km/h): the + button
        self._synced_at = -float("inf")
        self._next_pass_m = 0.37 * meters_per_pulse  # the magnet anywhere to begin with
        self._travel_m = 0.0

    def reported_kmh(self) -> float:
        with self.console.treadmill_now() as treadmill:
            return treadmill.speed_value() * KMH_PER_SPEED_UNIT[treadmill.unit]

    def sync(self) -> None:
        if self.unplug_at is not None and self.clock() >= self.unplug_at:
            self.console.unplug()
        if self.change_at is not None and self.clock() >= self.change_at[0]:
            self.console.set_target_kmh(self.change_at[1], abrupt=True)  # the belt follows
            self.change_at = None
        if self.console.plugged:
            answered = self.console.answered
            wait_until(
                lambda: self.console.answered >= answered + 2,
                within_s=5.0,
                what="two answers from the console",
            )
        self._synced_at = self.clock()

    def sleep(self, seconds: float) -> None:
        if self.clock() >= self._synced_at + self.SYNC_EVERY_S:
            self.sync()
        end = self.clock() + seconds
        speed_mps = self.reported_kmh() * self.true / 3.6
        if speed_mps > 0:
            reach_m = self._travel_m + speed_mps * (end - self.clock())
            while self._next_pass_m <= reach_m:
                self.clock.now += (self._next_pass_m - self._travel_m) / speed_mps
                self._travel_m = self._next_pass_m
                self.pin.drive_low()
                self.pin.drive_high()
                self._next_pass_m += self.mpp
            self._travel_m = reach_m
        self.clock.now = end


class Person(ScriptedTerminal):
    """At the treadmill: `on_enter()` (start the belt, wait for it) before pressing Enter."""

    def __init__(self, on_enter: Callable[[], None] | None = None):
        super().__init__()
        self.on_enter = on_enter

    def ask(self, prompt: str) -> str:
        self.prompts.append(prompt)
        if self.on_enter is not None:
            self.on_enter()
        return ""


@pytest.fixture
def clock(monkeypatch) -> VirtualClock:
    """One virtual clock for the mock pins' edge ticks, the countdown and the console's
    readings."""
    clock = VirtualClock(100.0)
    monkeypatch.setattr(mock_pins, "monotonic", clock)
    return clock


def checked_by(tmp_path: Path, url: str) -> Path:
    """The example config, every comment in it, with one magnet on a 0.2 m pitch, checked by
    the console at `url`."""
    path = tmp_path / "config.toml"
    text = EXAMPLE.read_text().replace("meters_per_pulse = 0.157", "meters_per_pulse = 0.2")
    path.write_text(text + f'\n[sensor.check]\nkind = "csafe"\nurl = "{url}"\n')
    return path


def at_the_treadmill(console, mock_factory, clock, *, meters_per_pulse: float,
                     start_kmh: float | None, true: float = 1.0,
                     speed_up_after_s: tuple[float, float] | None = None,
                     unplug_after_s: float | None = None):  # fmt: skip
    """The gym treadmill and the person who starts its belt at `start_kmh` on the console
    when told to, then presses Enter once the console shows it (the count begins). With
    `speed_up_after_s` = (s, km/h) she presses + to that speed s seconds into the count; with
    `unplug_after_s` she pulls the console's cable that long into it."""
    treadmill = GymTreadmill(
        console, mock_factory.pin(HALL_PIN), clock, meters_per_pulse=meters_per_pulse, true=true
    )

    def start_the_belt() -> None:
        if start_kmh is not None:
            console.set_target_kmh(start_kmh, abrupt=True)
        treadmill.sync()
        if speed_up_after_s is not None:
            after_s, kmh = speed_up_after_s
            treadmill.change_at = (clock() + after_s, kmh)
        if unplug_after_s is not None:
            treadmill.unplug_at = clock() + unplug_after_s

    person = Person(on_enter=start_the_belt)
    rig = Rig(terminal=person, pin_factory=mock_factory, clock=clock, sleep=treadmill.sleep)
    return treadmill, person, rig


# -- counting against the console --------------------------------------------------------


@pytest.mark.parametrize(
    ("unit", "start_kmh", "reads", "steps"),
    [
        (0x31, 5.0, "5.00", "It counts in steps of 0.1 km/h: up to 1.0 % either way"),
        (0x11, 3.1 * KMH_PER_MPH, "4.99", "It counts in steps of 0.161 km/h: up to 1.6 %"),
    ],
    ids=["0.1 km/h", "0.1 mph"],
)
def test_counting_against_the_console_finds_the_belt_travel_per_pulse(
    console_emulator, mock_factory, clock, tmp_path, unit, start_kmh, reads, steps
):
    console = console_emulator(unit=unit)
    path = checked_by(tmp_path, console.url)
    _, person, rig = at_the_treadmill(
        console, mock_factory, clock, meters_per_pulse=0.1934, start_kmh=start_kmh
    )
    args = parse("--config", str(path), "--console", "--seconds", "10")
    assert calibrate_main(args, rig=rig) == 0, person.errors
    assert person.prompts == [PROMPT]
    assert "The console answers: 0.00 km/h now." in person.lines  # before the belt started
    assert re.search(
        rf"The console reported {reads} km/h on average meanwhile \(\d+ readings\)\.", person.text
    )
    assert steps in person.text
    assert f"meters_per_pulse = 0.1934 m (at {reads} km/h read from the console)." in (person.lines)
    assert "changed during the count" not in person.text
    assert person.lines[-1].startswith("Nothing written")
    assert load_config(path)[0].sensor.meters_per_pulse == 0.2


def test_a_console_reading_3_percent_fast_goes_into_the_value_written(
    console_emulator, mock_factory, clock, tmp_path
):
    console = console_emulator()
    path = checked_by(tmp_path, console.url)
    before = path.read_text().splitlines()
    _, person, rig = at_the_treadmill(
        console, mock_factory, clock, meters_per_pulse=0.2, start_kmh=5.0, true=0.97
    )
    args = parse("--config", str(path), "--console", "--seconds", "10", "--write")
    assert calibrate_main(args, rig=rig) == 0, person.errors
    # the belt really runs at 4.85 km/h: the magnet's true 0.2 m reads the console's speed
    assert (
        "With the current 0.2 m retrotread reads 4.85 km/h at 5.00 km/h on the console (-3.0 %)."
        in person.lines
    )
    assert "consoles commonly read 2.5-6 % fast" in person.text
    assert "meters_per_pulse = 0.2062 m (at 5.00 km/h read from the console)." in person.lines
    assert f"Wrote [sensor] meters_per_pulse = 0.2062 into {path}, comments kept." in person.lines
    after = path.read_text().splitlines()
    changed = [(a, b) for a, b in zip(before, after, strict=True) if a != b]
    assert changed == [("meters_per_pulse = 0.2", "meters_per_pulse = 0.2062")]
    assert load_config(path)[0].sensor.check.url == console.url


def test_a_speed_changed_during_the_count_is_added_up_and_said(
    console_emulator, mock_factory, clock, tmp_path
):
    console = console_emulator()
    _, person, rig = at_the_treadmill(
        console,
        mock_factory,
        clock,
        meters_per_pulse=0.1934,
        start_kmh=5.0,
        speed_up_after_s=(3.0, 6.0),
    )
    args = parse("--config", str(checked_by(tmp_path, console.url)), "--console",
                 "--seconds", "10")  # fmt: skip
    assert calibrate_main(args, rig=rig) == 0, person.errors
    assert re.search(r"\(\d+ readings, 5\.00-6\.00 km/h\)\.", person.text)
    assert "Its speed changed during the count: the result holds only if the belt followed" in (
        person.text
    )
    # this belt did follow at once, and each speed counts for as long as it was reported
    assert "meters_per_pulse = 0.1934 m" in person.text


def test_a_console_unplugged_during_the_count_gives_no_value(
    console_emulator, mock_factory, clock, tmp_path
):
    console = console_emulator()
    path = checked_by(tmp_path, console.url)
    before = path.read_bytes()
    _, person, rig = at_the_treadmill(
        console, mock_factory, clock, meters_per_pulse=0.2, start_kmh=5.0, unplug_after_s=3.0
    )
    args = parse("--config", str(path), "--console", "--seconds", "20", "--write")
    assert calibrate_main(args, rig=rig) == 2
    (error,) = person.errors
    assert re.fullmatch(
        rf"the console on {re.escape(console.url)} gave no speed for \d+ s during the count; "
        "check its cable and count again.",
        error,
    )
    assert path.read_bytes() == before


def test_a_standing_belt_on_the_console_is_one_sentence(
    console_emulator, mock_factory, clock, tmp_path
):
    console = console_emulator()
    path = checked_by(tmp_path, console.url)
    _, person, rig = at_the_treadmill(
        console, mock_factory, clock, meters_per_pulse=0.2, start_kmh=None
    )
    args = parse("--config", str(path), "--console", "--seconds", "5")
    assert calibrate_main(args, rig=rig) == 2
    assert person.errors == [
        f"the console on {console.url} reported a standing belt the whole count; start the "
        "belt on the console and count again."
    ]


# -- consoles that cannot be read -------------------------------------------------------


def test_a_console_without_speed_over_csafe_is_one_sentence_before_the_belt_starts(
    console_emulator, mock_factory, tmp_path
):
    quirks = ConsoleQuirks(status_only=frozenset({Command.GET_SPEED, Command.GET_HORIZONTAL}))
    console = console_emulator(quirks=quirks)
    person = Person()
    args = parse("--config", str(checked_by(tmp_path, console.url)), "--console")
    assert calibrate_main(args, rig=Rig(terminal=person, pin_factory=mock_factory)) == 2
    assert person.errors == [
        f"the console on {console.url} answers GetSpeed with its status only: it does not "
        "give its speed over CSAFE; type the speed it shows instead (--console-kmh V)."
    ]
    assert person.prompts == []  # nobody was asked to start the belt


def test_a_console_port_that_is_not_there_names_the_check_sensors_url(mock_factory, tmp_path):
    missing = str(tmp_path / "ttyUSB7")
    person = Person()
    args = parse("--config", str(checked_by(tmp_path, missing)), "--console")
    assert calibrate_main(args, rig=Rig(terminal=person, pin_factory=mock_factory)) == 2
    assert person.errors == [
        f"serial port {missing} does not exist; plug in the treadmill's cable or fix "
        "[sensor.check] url (ls /dev/serial/by-id/ lists the ports)."
    ]
    assert person.prompts == []


def test_console_with_no_console_in_the_config_is_one_sentence(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text(EXAMPLE.read_text())
    person = Person()
    assert calibrate_main(parse("--config", str(path), "--console"), rig=Rig(terminal=person)) == 2
    assert person.errors == [
        "--console counts the hall sensor's pulses against a CSAFE console's speed, but the "
        'config reads no console; set [sensor.check] kind = "csafe" and its url, or type the '
        "console's speed with --console-kmh V."
    ]


# -- the console as the only sensor -------------------------------------------------------


def console_only(tmp_path: Path) -> Path:
    path = tmp_path / "config.toml"
    text = EXAMPLE.read_text().replace('\nkind = "hall"\n', '\nkind = "csafe"\n')
    path.write_text(text.replace('url = ""', 'url = "/dev/ttyUSB0"'))
    return path


@pytest.mark.parametrize(
    "method", [("--console",), ("--console-kmh", "5"), ("--check", "2", "5")], ids=str
)
def test_a_console_that_is_the_sensor_has_nothing_to_calibrate(tmp_path, method):
    person = Person()
    args = parse("--config", str(console_only(tmp_path)), *method)
    assert calibrate_main(args, rig=Rig(terminal=person)) == 2
    assert person.errors == [
        '[sensor] kind is "csafe": the console\'s own speed is the reading, so there is '
        "nothing to calibrate; consoles commonly read 2.5-6 % fast, which makes the guard act "
        "a little early, never late (a hall sensor checked by the console can be calibrated "
        "with --console)."
    ]
    assert person.prompts == []


def test_a_belt_measured_for_a_hall_sensor_still_to_come_says_it_counts_only_then(tmp_path):
    person = Person()
    args = parse("--config", str(console_only(tmp_path)), "--belt-length-m", "3.162",
                 "--magnets", "1")  # fmt: skip
    assert calibrate_main(args, rig=Rig(terminal=person)) == 0, person.errors
    assert "meters_per_pulse = 3.162 m (belt 3.162 m / 1 magnet on the belt)." in person.lines
    assert '[sensor] kind is "csafe": meters_per_pulse counts only with a hall sensor.' in (
        person.lines
    )


# -- the arithmetic ----------------------------------------------------------------------


@given(
    kmh=st.floats(0.5, 25.0),
    times=st.lists(st.floats(0.0, 30.0), min_size=1, max_size=60),
    start_s=st.floats(1.0, 10.0),
    span_s=st.floats(1.0, 20.0),
)
def test_a_steady_console_speed_adds_up_to_speed_times_time_whenever_it_is_read(
    kmh, times, start_s, span_s
):
    speeds = console_speeds([(t, kmh) for t in times], start_s=start_s, end_s=start_s + span_s)
    assert speeds.distance_m == pytest.approx(kmh / 3.6 * span_s)
    assert speeds.mean_kmh == pytest.approx(kmh)
    assert speeds.lowest_kmh == speeds.highest_kmh == kmh
    # readings + 1 stretches cover the span at least: one of them is that long
    assert speeds.longest_gap_s >= span_s / (speeds.readings + 1) - 1e-9
    assert speeds.readings == sum(start_s < t < start_s + span_s for t in times)


def test_each_console_speed_holds_until_the_next_one():
    # 3 km/h said at 0 s, 6 km/h at 10 s; counted from 5 s to 15 s: 5 s of each
    speeds = console_speeds([(0.0, 3.0), (10.0, 6.0)], start_s=5.0, end_s=15.0)
    assert speeds.distance_m == pytest.approx(3 / 3.6 * 5 + 6 / 3.6 * 5)
    assert (speeds.lowest_kmh, speeds.highest_kmh, speeds.readings) == (3.0, 6.0, 1)
    assert speeds.longest_gap_s == 10.0  # from the 3 km/h at 0 s to the 6 km/h at 10 s
    # nothing heard before the count: the first speed heard holds from its start
    late = console_speeds([(7.0, 4.0)], start_s=5.0, end_s=15.0)
    assert late.distance_m == pytest.approx(4 / 3.6 * 10)
    assert late.longest_gap_s == 8.0


def test_meters_per_pulse_is_the_console_s_distance_over_the_intervals():
    edges = [10.0 + 0.144 * k for k in range(70)]  # a pass every 144 ms
    count = count_edges(edges, window_s=10.0, bounce_s=0.005)
    speeds = console_speeds([(9.0, 5.0)], start_s=edges[0], end_s=edges[-1])
    assert mpp_from_console(count, speeds) == pytest.approx(0.2)
