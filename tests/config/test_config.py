"""The config file: the example is the defaults, and every mistake is one sentence, exit 2."""

from __future__ import annotations

import dataclasses
import logging
import tomllib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import device.config.load as config_module
from device.config.kinds import ConfigError
from device.config.load import (
    check_config_main,
    config_from_mapping,
    config_to_dict,
    load_config,
    merge_overrides,
)
from device.config.model import CheckSensorConfig, Config
from device.config.rules import RULES

EXAMPLE = Path(__file__).resolve().parents[2] / "config.example.toml"


def write(tmp_path: Path, text: str, name: str = "config.toml") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


# ---- the example and the defaults -------------------------------------------------------


def test_example_file_loads_to_exactly_the_built_in_defaults():
    config, source = load_config(EXAMPLE)
    assert config == Config()
    assert source == str(EXAMPLE)


def test_example_file_shows_every_key_the_device_knows():
    with open(EXAMPLE, "rb") as fh:
        example = tomllib.load(fh)
    # [sensor.check] is shown commented out: no second sensor is fitted by default
    commented = EXAMPLE.read_text().split("# [sensor.check]\n", 1)[1].split("\n\n", 1)[0]
    check = tomllib.loads("\n".join(line.removeprefix("# ") for line in commented.splitlines()
                                     if line.startswith("# ") and "=" in line))  # fmt: skip
    example["sensor.check"] = check
    assert {table: set(keys) for table, keys in example.items()} == {
        table: set(rules) for table, rules in RULES.items()
    }
    assert config_from_mapping({"sensor": {"check": check}}).sensor.check == CheckSensorConfig()


def test_every_config_field_has_a_validation_rule():
    tables = {f.name: f.default_factory for f in dataclasses.fields(Config)}
    tables["sensor.check"] = CheckSensorConfig
    assert set(tables) == set(RULES)
    for name, cls in tables.items():
        keys = {f.name for f in dataclasses.fields(cls)} - {"check"}  # [sensor.check] is a table
        assert keys == set(RULES[name]), name


def test_a_check_sensor_that_is_not_a_table_is_one_sentence():
    with pytest.raises(ConfigError) as caught:
        config_from_mapping({"sensor": {"check": 22}})
    assert "sensor.check must be a table ([sensor.check] with its keys below)" in str(caught.value)
    assert caught.value.key == "sensor.check"


def test_missing_default_file_runs_on_built_in_defaults_and_says_so(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(config_module, "DEFAULT_PATH", str(tmp_path / "absent.toml"))
    with caplog.at_level(logging.INFO, logger="retrotread.config"):
        config, source = load_config(None)
    assert config == Config()
    assert source == "built-in defaults"
    assert any(
        "absent.toml" in r.getMessage() and "defaults" in r.getMessage() for r in caplog.records
    )


def test_default_file_is_read_when_it_exists(tmp_path, monkeypatch):
    path = write(tmp_path, '[session]\ninitial_mode = "forward"\n')
    monkeypatch.setattr(config_module, "DEFAULT_PATH", path)
    config, source = load_config(None)
    assert config.session.initial_mode == "forward"
    assert source == path


def test_explicit_path_that_does_not_exist_is_an_error(tmp_path):
    missing = str(tmp_path / "nope.toml")
    with pytest.raises(ConfigError, match="no such config file") as caught:
        load_config(missing)
    assert missing in str(caught.value)


def test_keys_left_out_keep_their_defaults_and_ints_count_as_floats(tmp_path):
    path = write(tmp_path, "[backward]\nstart_cap_kmh = 1\nlevel_caps_kmh = [2, 3]\n")
    config, _ = load_config(path)
    assert config.backward.start_cap_kmh == 1.0
    assert isinstance(config.backward.start_cap_kmh, float)
    assert config.backward.level_caps_kmh == (2.0, 3.0)
    assert config.backward.running_cap_kmh == Config().backward.running_cap_kmh
    assert config.sensor == Config().sensor


def test_outputs_not_fitted_are_none_and_written_back_as_none(tmp_path):
    path = write(
        tmp_path,
        '[outputs]\nled_pin = "none"\nbuzzer_pin = "none"\nrelay_pin = "none"\n'
        '[enforce]\naction = "none"\n',
    )
    config, _ = load_config(path)
    assert (config.outputs.led_pin, config.outputs.relay_pin) == (None, None)
    assert config_to_dict(config)["outputs"]["relay_pin"] == "none"
    assert config_from_mapping(config_to_dict(config)) == config


def test_serial_sensor_leaves_its_gpio_free_for_a_button(tmp_path):
    path = write(tmp_path, '[sensor]\nkind = "serial"\nurl = "loop://"\npin = 5\n')
    config, _ = load_config(path)
    assert config.sensor.pin == config.buttons.start_pin == 5


def test_scenario_overrides_merge_over_the_defaults_through_the_same_rules():
    config = merge_overrides(
        Config(), {"backward": {"start_cap_kmh": 1.5}}, source="walk.toml [config]"
    )
    assert config.backward.start_cap_kmh == 1.5
    assert config.backward.hold_s == Config().backward.hold_s
    with pytest.raises(ConfigError) as caught:
        merge_overrides(config, {"backward": {"start_cap_kmh": 4.5}}, source="walk.toml [config]")
    assert str(caught.value).startswith("walk.toml [config]: [backward] start_cap_kmh")
    assert caught.value.key == "backward.start_cap_kmh"


def test_check_config_prints_a_resolved_config_that_loads_back_the_same(tmp_path, capsys):
    path = write(tmp_path, '[machine]\nname = "Gym \\"A\\" \\\\ 2"\n[sensor]\nbaud = 115200\n')
    assert check_config_main(path) == 0
    out, err = capsys.readouterr()
    assert err == ""
    printed = write(tmp_path, out, name="printed.toml")
    assert load_config(printed)[0] == load_config(path)[0]
    assert "baud = 115200" in out.splitlines()


def test_check_config_without_a_file_prints_the_defaults(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(config_module, "DEFAULT_PATH", str(tmp_path / "absent.toml"))
    assert check_config_main(None) == 0
    out, _ = capsys.readouterr()
    assert "built-in defaults" in out
    assert config_from_mapping(tomllib.loads(out)) == Config()


# ---- every mistake: exit 2, one sentence naming the file and the key ---------------------

MISTAKES = [
    # (id, file text, words the message must hold)
    ("bad-toml", "[sensor]\npin 17\n", ["line 2", "not valid TOML"]),
    ("duplicate-table", "[sensor]\n[sensor]\n", ["line 2", "not valid TOML"]),
    ("unfinished-list", "[backward]\nlevel_caps_kmh = [3,\n", ["end of the file", "TOML"]),
    ("unknown-table", "[sensors]\npin = 17\n", ["[sensors]", "did you mean [sensor]?"]),
    ("unknown-key", "[backward]\nstart_cap = 1.0\n", ["start_cap", "did you mean start_cap_kmh"]),
    ("unknown-key-far", "[web]\ncolour = 1\n", ["colour", "listen, open_controls"]),
    ("table-not-table", "sensor = 3\n", ["sensor must be a table", "not 3"]),
    ("word-not-number", '[backward]\nstart_cap_kmh = "fast"\n', ["start_cap_kmh", '"fast"']),
    ("bool-not-number", "[sensor]\nmax_speed_kmh = true\n", ["max_speed_kmh", "not true"]),
    ("nan-not-number", "[backward]\ngrace_s = nan\n", ["grace_s", "1 to 20 s"]),
    ("caps-not-list", "[backward]\nlevel_caps_kmh = 3.0\n", ["level_caps_kmh", "a list of"]),
    ("caps-word", '[backward]\nlevel_caps_kmh = [3, "4"]\n', ["level_caps_kmh", '"4"']),
    ("caps-empty", "[backward]\nlevel_caps_kmh = []\n", ["level_caps_kmh", "1 to 10"]),
    (
        "meters-per-pulse",
        "[sensor]\nmeters_per_pulse = 0.001\n",
        ["meters_per_pulse", "0.01 to 5 m"],
    ),
    ("max-speed", "[sensor]\nmax_speed_kmh = 31\n", ["max_speed_kmh", "1 to 30 km/h"]),
    ("stale", "[sensor]\nstale_s = 0.1\n", ["stale_s", "0.2 to 60 s"]),
    ("button-hold", "[buttons]\nhold_s = 11\n", ["hold_s", "0.5 to 10 s"]),
    ("pause-after", "[session]\npause_after_stop_s = 0.5\n", ["pause_after_stop_s", "1 to 600"]),
    ("end-after", "[session]\nend_after_pause_s = 7201\n", ["end_after_pause_s", "10 to 7200"]),
    ("start-cap-range", "[backward]\nstart_cap_kmh = 0.4\n", ["start_cap_kmh", "0.5 to 10"]),
    ("tolerance", "[backward]\ntolerance_kmh = -0.1\n", ["tolerance_kmh", "0 to 1 km/h"]),
    ("grace", "[backward]\ngrace_s = 21\n", ["grace_s", "1 to 20 s"]),
    ("pulse", "[enforce]\npulse_s = 0.1\n", ["pulse_s", "0.2 to 30 s"]),
    ("baud", "[sensor]\nbaud = 9601\n", ["baud", "9600", "115200", "not 9601"]),
    ("baud-float", "[sensor]\nbaud = 9600.0\n", ["baud", "not 9600.0"]),
    ("kind", '[sensor]\nkind = "reed"\n', ["kind", '"hall", "serial" or "csafe"']),
    ("unit", '[sensor]\nunit = "kmh"\n', ["unit", '"km/h", "mph" or "m/s"']),
    ("initial-mode", '[session]\ninitial_mode = "sideways"\n', ["initial_mode", '"backward"']),
    ("action", '[enforce]\naction = "brake"\n', ["action", '"relay" or "none"']),
    ("enforce-mode", '[enforce]\nmode = "toggle"\n', ["mode", '"pulse" or "latch"']),
    ("auto-start", '[session]\nauto_start = "yes"\n', ["auto_start", "true or false"]),
    ("pin-off-header", "[sensor]\npin = 28\n", ["[sensor] pin", "from 2 to 27"]),
    ("pin-eeprom", "[buttons]\nstart_pin = 1\n", ["start_pin", "from 2 to 27"]),
    ("sensor-pin-none", '[sensor]\npin = "none"\n', ["[sensor] pin", 'not "none"']),
    ("button-pin-none", '[buttons]\ndirection_pin = "none"\n', ["direction_pin", 'not "none"']),
    ("output-pin-word", '[outputs]\nled_pin = "off"\n', ["led_pin", 'or "none"']),
    ("output-pin-float", "[outputs]\nbuzzer_pin = 19.0\n", ["buzzer_pin", "not 19.0"]),
    (
        "two-functions-one-pin",
        "[outputs]\nled_pin = 6\n",
        ["[buttons] direction_pin and [outputs] led_pin", "GPIO 6"],
    ),
    ("sensor-on-button", "[sensor]\npin = 5\n", ["[sensor] pin and [buttons] start_pin", "GPIO 5"]),
    ("serial-without-url", '[sensor]\nkind = "serial"\n', ["[sensor] url", '"serial"']),
    ("regex-broken", "[sensor]\npattern = '(\\d+'\n", ["pattern", "does not compile"]),
    ("regex-no-group", "[sensor]\npattern = '(\\d+)'\n", ["pattern", "no group named speed"]),
    (
        "start-cap-over-level-1",
        "[backward]\nstart_cap_kmh = 3.5\n",
        ["start_cap_kmh (3.5 km/h)", "level_caps_kmh (3 km/h)"],
    ),
    (
        "caps-falling",
        "[backward]\nlevel_caps_kmh = [3, 5, 4]\n",
        ["level_caps_kmh", "4 km/h follows 5"],
    ),
    (
        "running-under-walking",
        "[backward]\nrunning_cap_kmh = 5\n",
        ["running_cap_kmh (5 km/h)", "top walking cap"],
    ),
    (
        "cap-over-sensor-max",
        "[sensor]\nmax_speed_kmh = 5.8\n",
        ["running_cap_kmh (6 km/h)", "[sensor] max_speed_kmh (5.8 km/h)"],
    ),
    (
        "relay-action-without-relay",
        '[outputs]\nrelay_pin = "none"\n',
        ['[enforce] action is "relay"', "[outputs] relay_pin"],
    ),
    ("listen-port-only", '[web]\nlisten = "8080"\n', ["listen", "HOST:PORT", '"8080"']),
    ("listen-port-range", '[web]\nlisten = "0.0.0.0:99999"\n', ["listen", "1 to 65535"]),
    ("listen-no-host", '[web]\nlisten = ":8080"\n', ["listen", "HOST:PORT"]),
    ("listen-bare-ipv6", '[web]\nlisten = "::1:8080"\n', ["listen", '"[::]:8080"']),
    ("machine-id", '[machine]\nid = "gym 1"\n', ["[machine] id", '"gym 1"']),
    ("newline-in-value", '[machine]\nid = "a\\nb"\n', ["[machine] id", '"a\\u000ab"']),
    ("nested-too-deep", "a = " + "[" * 5000 + "]" * 5000 + "\n", ["nests arrays or tables"]),
    ("nul-bytes", "[machine]\x00\n", ["NUL bytes"]),
]


@pytest.mark.parametrize(("text", "words"), [m[1:] for m in MISTAKES], ids=[m[0] for m in MISTAKES])
def test_each_mistake_exits_2_with_one_sentence_naming_file_and_key(tmp_path, capsys, text, words):
    path = write(tmp_path, text)
    assert check_config_main(path) == 2
    out, err = capsys.readouterr()
    assert out == ""
    message = err.rstrip("\n")
    assert "\n" not in message
    assert "Traceback" not in err
    assert message.startswith(f"{path}: ")
    assert message.endswith((".", "?"))
    for word in words:
        assert word in message


def test_a_config_saved_with_a_byte_order_mark_loads(tmp_path):
    path = tmp_path / "config.toml"
    path.write_bytes(b"\xef\xbb\xbf[backward]\ngrace_s = 4\n")  # as Windows Notepad saves it
    config, _ = load_config(path)
    assert config.backward.grace_s == 4.0


def test_a_file_far_bigger_than_any_config_is_one_sentence(tmp_path, capsys):
    path = tmp_path / "config.toml"
    path.write_bytes(b"# " + b"x" * (2 * 1024 * 1024))
    assert check_config_main(str(path)) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"{path}: is over 1024 KiB") and "Traceback" not in err


def test_directory_given_as_config_exits_2_without_traceback(tmp_path, capsys):
    assert check_config_main(str(tmp_path)) == 2
    err = capsys.readouterr().err
    assert err.strip() == f"{tmp_path}: is a directory; give the path of the config.toml file."


def test_missing_file_exits_2_naming_the_path(tmp_path, capsys):
    assert check_config_main(str(tmp_path / "nope.toml")) == 2
    err = capsys.readouterr().err
    assert "nope.toml: no such config file" in err
    assert err.count("\n") == 1


def test_unreadable_file_exits_2_and_says_permission(tmp_path, monkeypatch, capsys):
    path = write(tmp_path, "")

    # Tests may run as root, which reads any file whatever its mode; so the refusal the
    # daemon's user would get is raised where the file is opened.
    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied", path)

    monkeypatch.setattr(config_module, "open", refuse, raising=False)
    assert check_config_main(path) == 2
    err = capsys.readouterr().err
    assert "permission denied" in err
    assert "Traceback" not in err


def test_file_that_is_not_utf8_exits_2(tmp_path, capsys):
    path = tmp_path / "config.toml"
    path.write_bytes(b'[machine]\nname = "Laufband \xfc"\n')
    assert check_config_main(str(path)) == 2
    assert "not UTF-8" in capsys.readouterr().err


def test_error_carries_the_key_for_the_settings_page():
    with pytest.raises(ConfigError) as caught:
        config_from_mapping({"outputs": {"relay_pin": 30}}, source="settings")
    assert caught.value.key == "outputs.relay_pin"


# ---- whatever a scenario or the settings page sends, the answer is Config or ConfigError ---

KNOWN_KEYS = [(table, key) for table, rules in RULES.items() for key in rules]
ANY_VALUE = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(["none", "serial", "loop://", "0.0.0.0:80", "(?P<speed>x)"])
    | st.datetimes(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=6,
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(KNOWN_KEYS), ANY_VALUE), max_size=4))
def test_any_values_give_a_config_or_one_sentence(entries):
    data: dict[str, dict[str, object]] = {}
    for (table, key), value in entries:
        data.setdefault(table, {})[key] = value
    try:
        config = config_from_mapping(data, source="fuzz")
    except ConfigError as exc:
        message = str(exc)
        assert message.startswith("fuzz: ")
        assert "\n" not in message
    else:
        assert config_from_mapping(config_to_dict(config)) == config


def test_a_reload_of_a_broken_file_keeps_the_running_config_and_says_why(tmp_path):
    from device.core.controller import Controller
    from device.daemon import Daemon
    from device.ipc.protocol import Command, Request

    path = tmp_path / "config.toml"
    path.write_text("[backward]\ngrace_s = 4\n")
    config, _ = load_config(path)
    daemon = Daemon(config, socket_path="", db_path="", config_path=str(path))
    controller = Controller(config, t=0.0)
    path.write_text("a = " + "[" * 5000 + "]" * 5000 + "\n")  # nested past the parser
    reply = daemon._command(controller, Request(Command.RELOAD), 1.0)
    assert reply["ok"] is False and "nests arrays or tables" in reply["error"]
    assert controller.config.backward.grace_s == 4.0 and daemon.config is config
