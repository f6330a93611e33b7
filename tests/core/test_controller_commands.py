"""The Controller told what to do through the socket, with the shipped config: the
dashboard's commands (what each may do in each state, and the sentence that refuses it) and a
new config from the settings page. The walker's own presses and the belt are in
tests/core/test_controller.py."""

from __future__ import annotations

import pytest
from support.ticking import Treadmill, walking

from device.config.load import merge_overrides
from device.config.model import Config
from device.core.controller import CommandRefused, Controller
from device.core.events import EventKind
from device.core.modes import Mode, SessionState
from device.ipc.protocol import Command

# ---- commands from the dashboard -----------------------------------------------------------


def test_commands_start_pause_resume_and_end_a_session():
    mill = walking(1.0)
    for cmd in ("start", "pause", "resume", "end"):
        mill.device.command(mill.now, cmd)
        mill.run(5)
    assert [(e.kind.value, e.details["reason"]) for e in mill.events()] == [
        ("session_started", "command"),
        ("session_paused", "command"),
        ("session_resumed", "command"),
        ("session_ended", "command"),
    ]
    assert mill.state is SessionState.IDLE


def test_mode_command_faces_the_walker_the_asked_way():
    mill = Treadmill()
    mill.device.command(mill.now, "mode", Mode.FORWARD)
    mill.run(1)
    (changed,) = mill.events(EventKind.MODE_CHANGED)
    assert changed.details == {"mode": "forward", "from": "backward", "reason": "command"}
    assert mill.outputs("led")[-1] == "steady"


@pytest.mark.parametrize(
    ("cmd", "sentence"),
    [
        ("end", "There is no session to end."),
        ("pause", "Cannot pause while the session is idle."),
        ("resume", "Cannot resume while the session is idle."),
        ("mode", 'The "mode" command needs "mode": "forward" or "backward".'),
        ("jump", "Unknown command 'jump'."),
    ],
)
def test_commands_that_make_no_sense_now_are_refused_with_a_sentence(cmd, sentence):
    mill = Treadmill()
    with pytest.raises(CommandRefused) as refused:
        mill.device.command(mill.now, cmd)
    assert str(refused.value) == sentence
    assert mill.state is SessionState.IDLE


@pytest.mark.parametrize("cmd", [Command.STATUS, Command.SUBSCRIBE, Command.RELOAD])
def test_a_socket_command_that_is_no_session_command_is_refused_by_its_name(cmd):
    # the daemon passes its Command enum: the sentence names the command as the client wrote
    # it, as it did when the daemon passed the plain string
    mill = Treadmill()
    with pytest.raises(CommandRefused) as refused:
        mill.device.command(mill.now, cmd)
    assert str(refused.value) == f"Unknown command '{cmd.value}'."
    assert mill.state is SessionState.IDLE


def test_start_command_while_running_is_refused():
    mill = walking(1.0)
    mill.device.command(mill.now, "start")
    with pytest.raises(CommandRefused, match=r"^Cannot start while the session is running\.$"):
        mill.device.command(mill.now + 1, "start")


def test_start_command_refused_at_speed_says_why():
    mill = walking(4.0)
    with pytest.raises(CommandRefused) as refused:
        mill.device.command(mill.now, "start")
    assert "4.0 km/h" in str(refused.value)
    assert str(refused.value).endswith(".")
    mill.run(1)
    assert len(mill.events(EventKind.START_REFUSED)) == 1
    assert mill.state is SessionState.IDLE


# ---- a new config from the settings page ---------------------------------------------------


def test_reconfigure_with_a_lower_start_cap_takes_effect_at_once():
    mill = walking(2.0)
    lower = merge_overrides(Config(), {"backward": {"start_cap_kmh": 1.5}})
    note = mill.device.reconfigure(mill.now, lower)
    assert note == ""
    assert mill.device.status(mill.now)["cap_kmh"] == 1.5
    mill.press_start()  # 2.0 km/h was fine; now the limit is 1.5 + 0.3
    assert mill.state is SessionState.IDLE
    (refused,) = mill.events(EventKind.START_REFUSED)
    assert refused.details["limit_kmh"] == pytest.approx(1.8)
    assert len(mill.events(EventKind.CONFIG_RELOADED)) == 1


def test_reconfigure_says_when_wiring_needs_a_restart():
    device = Controller(Config(), t=0.0)
    moved = merge_overrides(Config(), {"buttons": {"start_pin": 12}})
    assert "restart" in device.reconfigure(1.0, moved)


SERIAL = {"sensor": {"kind": "serial", "url": "/dev/ttyUSB0"}}


@pytest.mark.parametrize(
    "change",
    [{"serial_scale": 0.95}, {"url": "/dev/ttyUSB1"}, {"baud": 19200}, {"unit": "mph"},
     {"pattern": r"SPD:(?P<speed>[0-9.]+)"}],
)  # fmt: skip
def test_a_reload_that_changes_what_the_serial_source_was_opened_with_says_restart(change):
    # serial_scale said nothing, yet the running source kept the old factor
    before = merge_overrides(Config(), SERIAL)
    device = Controller(before, t=0.0)
    after = merge_overrides(before, {"sensor": change})
    assert "restart" in device.reconfigure(1.0, after)


@pytest.mark.parametrize("change", [{"stale_s": 1.0}, {"max_speed_kmh": 12.0}])
def test_a_reload_of_what_the_controller_reads_itself_needs_no_restart(change):
    before = merge_overrides(Config(), SERIAL)
    device = Controller(before, t=0.0)
    assert device.reconfigure(1.0, merge_overrides(before, {"sensor": change})) == ""


@pytest.mark.parametrize(
    "change",
    [{"fleet": {"broker": "mqtt://broker.local:1883"}}, {"fleet": {"site": "gym-south"}},
     {"machine": {"id": "treadmill-9"}}],
)  # fmt: skip
def test_a_reload_that_changes_the_fleet_link_or_the_topics_says_restart(change):
    device = Controller(Config(), t=0.0)
    note = device.reconfigure(1.0, merge_overrides(Config(), change))
    assert note == "restart the device for the [fleet] link changes"


def test_a_reload_of_wiring_and_fleet_names_both():
    device = Controller(Config(), t=0.0)
    both = merge_overrides(Config(), {"buttons": {"start_pin": 12}, "fleet": {"site": "x"}})
    assert device.reconfigure(1.0, both) == (
        "restart the device for pin and sensor wiring and the [fleet] link changes"
    )


def test_a_reload_of_the_machines_name_alone_needs_no_restart():
    device = Controller(Config(), t=0.0)
    renamed = merge_overrides(Config(), {"machine": {"name": "Backward lane"}})
    assert device.reconfigure(1.0, renamed) == ""
