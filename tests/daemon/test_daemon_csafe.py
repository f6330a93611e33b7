"""The real daemon reading a gym treadmill's console over CSAFE, on mock pins: the console
emulator on a pty (a USB-serial adapter) or socket:// (a serial-over-Ethernet box) stands in
for the treadmill, the socket tells what the dashboard would show, the relay's pin what the
safety key does. Enforcement through the console (SetSpeed) is in test_daemon_csafe_enforce.py."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from gpiozero.pins.mock import MockFactory
from support import console_daemon
from support.console_daemon import (
    SEE_WITHIN_S,
    ConsoleTreadmill,
    Status,
    Treadmills,
    start_backward,
)
from support.device_process import assert_one_sentence, sessions
from support.waiting import wait_until

from device.config.load import config_from_mapping
from device.hardware.csafe_codec import KMH_PER_SPEED_UNIT, Command
from device.sim.console import ConsoleQuirks
from device.sim.console_serve import ConsoleEmulator

runs = console_daemon.runs  # the fixture, here until tests/conftest.py offers it
StartConsole = Callable[..., ConsoleEmulator]

# Short, real values: a second of grace, a stop pulse of a second, a console silent for a
# second is speed unknown.
QUICK = {"backward": {"grace_s": 1.0}, "enforce": {"pulse_s": 1.0}, "sensor": {"stale_s": 1.0}}
HALL_PIN = 17
EDGE_EVERY_S = 0.35  # a magnet on the roller every 0.157 m: 1.6 km/h
HALL_KMH = 0.157 / EDGE_EVERY_S * 3.6


def shown_kmh(console: ConsoleEmulator) -> float:
    """The belt's speed as the console's GetSpeed gives it, in km/h (whole units of its unit)."""
    with console.treadmill_now() as treadmill:
        return treadmill.speed_value() * KMH_PER_SPEED_UNIT[treadmill.unit]


def press_start_until_it_starts(mill: ConsoleTreadmill) -> None:
    """START, again after each refusal: a belt just started is not known to be slow until
    the hall sensor has seen two pulse intervals of it."""
    wait_until(lambda: mill.client.request({"cmd": "start"})["ok"], within_s=SEE_WITHIN_S,
               what="a backward session started")  # fmt: skip
    assert mill.status()["state"] == "running"


def warned_then_stopped(mill: ConsoleTreadmill, reason: str) -> list[Status]:
    """Watches the status until the relay's pin opens the safety-key loop: a warning for
    `reason` came first, and the status then says the relay is open. Returns what it saw."""
    seen = mill.statuses_until(lambda s: s["relay_pin_open"], what="the relay to open")
    warned = [s["warning"]["reason"] for s in seen if s["warning"] is not None]
    assert reason in warned, "the relay opened without a warning first"
    # the pin first, then the status line of that tick: a moment apart
    mill.wait_status(lambda s: s["relay"] == "open", what="the status's open relay")
    return seen


# -- reading the belt ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("unit", "kmh"),
    [(0x31, 3.7), (0x12, 4.5), (0x33, 5.2)],
    ids=["0.1 km/h", "0.01 mph", "m/min"],
)
def test_the_status_shows_the_belt_speed_the_console_gives_in_its_unit(
    console_emulator: StartConsole, runs: Treadmills, unit: int, kmh: float
) -> None:
    console = console_emulator(unit=unit)
    console.set_target_kmh(kmh, abrupt=True)
    mill = runs.start(console)
    expected = shown_kmh(console)
    assert abs(expected - kmh) <= KMH_PER_SPEED_UNIT[unit] / 2  # what the console would show
    status = mill.wait_status(lambda s: s["speed_kmh"] is not None, what="a speed")
    assert status["speed_kmh"] == pytest.approx(expected, abs=0.005)
    assert status["sensor"]["ok"] is True and status["sensor"]["kind"] == "csafe"
    # the walker slows the belt: the status follows the console, not a speed read once
    console.set_target_kmh(1.5, abrupt=True)
    slower = shown_kmh(console)
    mill.wait_status(lambda s: s["speed_kmh"] == pytest.approx(slower, abs=0.005),
                     what=f"{slower:.2f} km/h")  # fmt: skip


def test_through_a_serial_to_ethernet_box_the_daemon_reads_the_console(
    console_emulator: StartConsole, runs: Treadmills
) -> None:
    console = console_emulator(pty=False, tcp=True)
    assert console.url.startswith("socket://")
    console.set_target_kmh(2.4, abrupt=True)
    mill = runs.start(console)
    status = mill.wait_status(lambda s: s["speed_kmh"] == 2.4, what="2.4 km/h")
    assert status["console"]["state"] == "in use"
    assert status["health"]["console"]["connected"] is True
    assert status["health"]["console"]["error"] is None


def test_the_status_shows_the_consoles_machine_state_and_the_links_health(
    console_emulator: StartConsole, runs: Treadmills
) -> None:
    console = console_emulator()
    mill = runs.start(console)
    resting = mill.wait_status(lambda s: s["console"]["state"] == "ready", what="ready")
    assert resting["console"]["follows"] is False
    assert resting["console"]["speed_answer"] is None  # nothing asked of it yet
    console.set_target_kmh(3.0)  # a member presses a speed: a workout begins
    mill.wait_status(lambda s: s["console"]["state"] == "in use", what="in use")
    with console.treadmill_now() as treadmill:
        treadmill.pause()
    mill.wait_status(lambda s: s["console"]["state"] == "paused", what="paused")
    with console.treadmill_now() as treadmill:
        treadmill.finish()
    status = mill.wait_status(lambda s: s["console"]["state"] == "finished", what="finished")
    health = status["health"]["console"]
    assert health == {
        "connected": True,
        "error": None,
        "unsupported": None,
        "answers": health["answers"],
        "timeouts": 0,
        "rejected_frames": 0,
        "distance_m": health["distance_m"],
    }
    assert health["distance_m"] is not None and health["distance_m"] >= 0  # GetHorizontal
    assert health["answers"] >= 4  # one per state seen at least, and it keeps asking
    later = mill.wait_status(
        lambda s: s["health"]["console"]["answers"] > health["answers"], what="more answers"
    )
    assert later["health"]["sensor_error"] is None


# -- a console that goes quiet, or talks nonsense -----------------------------------------------


def test_a_console_that_stops_answering_is_speed_unknown_then_a_stop_then_read_again(
    console_emulator: StartConsole, runs: Treadmills
) -> None:
    console = console_emulator()
    mill = runs.start(console, QUICK)
    start_backward(mill, console)
    unplugged_at = time.time()
    console.unplug()  # the CSAFE cable is pulled from the console's jack
    unknown = mill.wait_status(lambda s: s["sensor"]["state"] == "stale", what="a stale console")
    assert unknown["speed_kmh"] is None and unknown["sensor"]["ok"] is False
    # in backward mode a speed nobody can vouch for counts as over: a warning, then the stop
    warned_then_stopped(mill, "speed unknown")
    assert mill.status()["health"]["console"]["timeouts"] >= 1
    # the loop stays open while the speed is still unknown, past the 1 s pulse
    mill.wait_event("stop_held", since=unplugged_at)
    assert mill.relay_open
    console.plug()
    back = mill.wait_status(
        lambda s: s["speed_kmh"] == 0.0 and s["relay"] == "closed", what="the console read again"
    )
    assert back["sensor"]["ok"] is True
    assert back["health"]["console"]["error"] is None
    assert not mill.relay_open
    stopped = mill.wait_event("enforced_stop", since=unplugged_at)
    assert stopped["reason"] == "speed unknown"
    lost = mill.wait_event("sensor_lost", since=unplugged_at)
    assert (lost["sensor"], lost["state"]) == ("csafe", "stale")
    mill.wait_event("sensor_restored", since=unplugged_at)


def test_a_dropped_serial_to_ethernet_link_is_speed_unknown_until_it_reconnects(
    console_emulator: StartConsole, runs: Treadmills
) -> None:
    console = console_emulator(pty=False, tcp=True)
    console.set_target_kmh(2.0, abrupt=True)
    mill = runs.start(console, QUICK)
    mill.wait_status(lambda s: s["speed_kmh"] == 2.0, what="2 km/h")
    console.unplug()  # the box is up, the console behind it is not: connections are dropped
    gone = mill.wait_status(lambda s: s["speed_kmh"] is None, what="speed unknown")
    assert gone["sensor"]["state"] == "stale"
    down = mill.wait_status(lambda s: s["health"]["console"]["error"], what="the link's error")
    assert console.url in down["health"]["console"]["error"]
    assert_one_sentence(down["health"]["console"]["error"])
    console.plug()
    back = mill.wait_status(lambda s: s["speed_kmh"] == 2.0, what="the console read again")
    assert back["health"]["console"]["connected"] is True


def test_a_converter_with_the_console_off_is_retried_with_backoff_and_said_once(
    console_emulator: StartConsole, runs: Treadmills, caplog: pytest.LogCaptureFixture
) -> None:
    # A gym's serial-to-Ethernet box stays up all night while the treadmill behind it is off:
    # it takes every connection and drops it. Like a missing port, that is retried with
    # backoff (0.5 s, doubling), and the journal hears of it once, not at every retry.
    console = console_emulator(pty=False, tcp=True)
    mill = runs.start(console, QUICK)
    mill.wait_status(lambda s: s["console"]["state"] == "ready", what="the console")
    accepted = count_connections(console)
    caplog.set_level(logging.INFO, logger="retrotread.csafe")
    caplog.clear()
    console.unplug()
    wait_until(lambda: accepted[0] >= 1, within_s=SEE_WITHIN_S, what="a reconnection")
    begun = accepted[0]
    # a stretch of the night: backoff tries again 0.5, 1.5 and 3.5 s after the first
    threading.Event().wait(3.5)
    said = [r.getMessage() for r in caplog.records if r.name == "retrotread.csafe"]
    retries = accepted[0] - begun
    assert retries <= 3, f"{retries} reconnections in 3.5 s; the journal heard {said}"
    assert len(said) <= 2, said  # the outage, and perhaps its first reconnection


def count_connections(console: ConsoleEmulator) -> list[int]:
    """Counts the connections the emulator's TCP port takes from now on (in a list, to read
    it as it grows)."""
    accepted = [0]
    take = console._accept

    def counted() -> None:
        accepted[0] += 1
        take()

    console._accept = counted  # type: ignore[method-assign]
    return accepted


def test_garbage_on_the_line_is_counted_and_skipped_and_the_speed_stays_right(
    console_emulator: StartConsole, runs: Treadmills
) -> None:
    console = console_emulator(quirks=ConsoleQuirks(garbage_every=2))
    console.set_target_kmh(1.7, abrupt=True)
    mill = runs.start(console)
    first = mill.wait_status(lambda s: s["health"]["console"]["rejected_frames"] >= 10,
                             what="ten rejected frames")  # fmt: skip
    # every status read through a stretch of noisy answers shows the belt's speed, no other
    answers = first["health"]["console"]["answers"]
    seen = mill.statuses_until(lambda s: s["health"]["console"]["answers"] >= answers + 10,
                               what="ten more answers")  # fmt: skip
    assert {s["speed_kmh"] for s in seen} == {1.7}
    assert (
        seen[-1]["health"]["console"]["rejected_frames"]
        > first["health"]["console"]["rejected_frames"]
    )
    assert all(s["sensor"]["ok"] for s in seen)
    assert seen[-1]["health"]["console"]["error"] is None
    assert mill.daemon.ready.is_set() and not mill.daemon.stopping.is_set()


def test_a_console_that_answers_status_only_says_so_in_one_sentence(
    console_emulator: StartConsole, runs: Treadmills
) -> None:
    # Many consoles answer any command they lack with their status byte alone.
    unsupported = frozenset({Command.GET_SPEED, Command.GET_HORIZONTAL})
    console = console_emulator(quirks=ConsoleQuirks(status_only=unsupported))
    console.set_target_kmh(3.0, abrupt=True)
    mill = runs.start(console)
    status = mill.wait_status(lambda s: s["health"]["console"]["unsupported"],
                              what="the console said unsupported")  # fmt: skip
    sentence = status["health"]["console"]["unsupported"]
    assert_one_sentence(sentence)
    assert console.url in sentence and '[sensor] kind = "hall"' in sentence
    assert status["health"]["sensor_error"] == sentence
    assert status["speed_kmh"] is None and status["sensor"]["state"] == "stale"
    # it still gives its state, and the daemon still follows it
    assert status["console"]["state"] == "in use"
    with console.treadmill_now() as treadmill:
        treadmill.finish()
    mill.wait_status(lambda s: s["console"]["state"] == "finished", what="finished")


# -- the console beside a hall sensor, and the console's own workouts ----------------------------


class Magnet(threading.Thread):
    """The hall sensor's magnet passing every EDGE_EVERY_S, while `alive` (its wire intact)."""

    def __init__(self, factory: MockFactory):
        super().__init__(daemon=True, name="magnet")
        self.pin = factory.pin(HALL_PIN)
        self.alive = threading.Event()
        self.alive.set()
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(EDGE_EVERY_S):
            if self.alive.is_set():
                self.pin.drive_low()
                self.pin.drive_high()


@pytest.fixture
def magnet(mock_factory: MockFactory) -> Iterator[Magnet]:
    passing = Magnet(mock_factory)
    passing.start()
    yield passing
    passing.stop.set()
    passing.join(2.0)


def test_the_console_as_check_sensor_catches_a_hall_sensor_that_died(
    console_emulator: StartConsole, runs: Treadmills, magnet: Magnet
) -> None:
    console = console_emulator()
    console.set_target_kmh(round(HALL_KMH, 1), abrupt=True)  # the console shows what hall reads
    config = config_from_mapping({
        **QUICK,
        "sensor": {"kind": "hall", "pin": HALL_PIN, "stale_s": 1.0,
                   "check": {"kind": "csafe", "url": console.url}},
        "session": {"pause_after_stop_s": 600},
    })  # fmt: skip
    mill = runs.start(console, config=config)
    agreed = mill.wait_status(lambda s: s["speed_kmh"] and s["console"]["state"] == "in use",
                              what="both channels reading")  # fmt: skip
    assert agreed["sensor"]["checked"] is True and agreed["sensor"]["ok"] is True
    assert agreed["speed_kmh"] == pytest.approx(HALL_KMH, abs=0.3)
    press_start_until_it_starts(mill)
    broke_at = time.time()
    magnet.alive.clear()  # the hall sensor's wire breaks; the console still reads the belt
    seen = warned_then_stopped(mill, "speed unknown")
    faulty = next(s["sensor"] for s in seen if not s["sensor"]["ok"])
    assert (faulty["state"], faulty["channel"]) == ("silent", "hall")
    lost = mill.wait_event("sensor_lost", since=broke_at)
    assert (lost["sensor"], lost["state"]) == ("hall", "silent")
    assert mill.wait_event("enforced_stop", since=broke_at)["reason"] == "speed unknown"


def test_following_the_console_its_workout_starts_pauses_and_ends_the_session(
    console_emulator: StartConsole, runs: Treadmills
) -> None:
    console = console_emulator()
    mill = runs.start(console, {"session": {"follow_console": True}})
    status = mill.wait_status(lambda s: s["console"]["state"] == "ready", what="ready")
    assert status["console"]["follows"] is True and status["state"] == "idle"
    with console.treadmill_now() as treadmill:
        treadmill.start()  # the member presses Go on the console
    mill.wait_status(lambda s: s["state"] == "running", what="a session started")
    console.set_target_kmh(1.5)
    mill.wait_status(lambda s: s["speed_kmh"] == 1.5, what="walking at 1.5 km/h")
    with console.treadmill_now() as treadmill:
        treadmill.pause()
    mill.wait_status(lambda s: s["state"] == "paused", what="the session paused")
    with console.treadmill_now() as treadmill:
        treadmill.start()  # Go again: the workout goes on
    mill.wait_status(lambda s: s["state"] == "running", what="the session resumed")
    with console.treadmill_now() as treadmill:
        treadmill.finish()
    mill.wait_status(lambda s: s["state"] == "idle", what="the session ended")
    ended = mill.wait_event("session_ended")
    assert ended["reason"] == "console"
    runs.stop(mill)
    assert [row[2] for row in sessions(runs.db_path)] == ["console"]
