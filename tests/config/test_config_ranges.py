"""The ranges live in device.config.rules alone: config.example.toml states each key's range as
its rule has it, and whatever valid config there is, check-config prints it so that it loads
back the same.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from device.config.kinds import (
    Choice,
    ConfigError,
    Count,
    Flag,
    GpioPin,
    Listen,
    Number,
    NumberList,
    Rule,
    SpeedPattern,
    Text,
    range_words,
)
from device.config.load import config_from_mapping, format_config, parse_toml_text
from device.config.rules import RULES, TOPIC_LEVEL

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = (ROOT / "config.example.toml").read_text(encoding="utf-8")
# A range as the example writes one: "0.5-25", "2-27"; "30 s-5 min" is a span of time, no range.
STATED_RANGE = re.compile(r"(?<![\w.])\d+(?:\.\d+)?-\d+(?:\.\d+)?(?!\d)")
KEY_LINE = re.compile(r"^#?\s*([a-z_]+) = ")
TABLE_LINE = re.compile(r"^#?\s*\[([a-z_.]+)\]\s*$")


def example_comments() -> dict[tuple[str, str], str]:
    """(table, key) -> the comment lines between the key before it and this key, in the
    example; a key left commented out ("# pin = 27" under "# [sensor.check]") counts too."""
    found: dict[tuple[str, str], str] = {}
    table, comment = "", []
    for line in EXAMPLE.splitlines():
        if heading := TABLE_LINE.match(line):
            table = heading.group(1)
            continue
        if (key := KEY_LINE.match(line)) and table in RULES and key.group(1) in RULES[table]:
            found[(table, key.group(1))] = " ".join(comment)
            comment = []
        elif line.startswith("#"):
            comment.append(line.lstrip("# ").strip())
    return found


COMMENTS = example_comments()
RANGED = [(t, k) for t, rules in RULES.items() for k, rule in rules.items() if range_words(rule)]


def test_the_example_comments_every_key():
    assert set(COMMENTS) == {(t, k) for t, rules in RULES.items() for k in rules}


@pytest.mark.parametrize(("table", "key"), RANGED, ids=[f"{t}.{k}" for t, k in RANGED])
def test_the_range_the_example_states_for_a_key_is_its_rule(table, key):
    rule = RULES[table][key]
    words = range_words(rule)
    assert words is not None
    comment = COMMENTS[(table, key)]
    stated = STATED_RANGE.search(comment)
    if isinstance(rule, GpioPin) and stated is None:
        return  # a pin's range is said once for its table ("2-27 each"), not for every pin
    assert stated is not None, f"[{table}] {key}: the example states no range; say {words}"
    # the first range in the comment is the key's own (later ones are reasons: "0.8-1.6 km/h
    # to start"); it reads exactly as the rule's, unit and all
    assert comment[stated.start() :].startswith(words), (
        f"[{table}] {key}: the example says {comment[stated.start() :][:40]!r}, the rule {words!r}"
    )


# ---- any valid config prints and loads back the same ----------------------------------------

SPEED_PATTERNS = [
    r"(?P<speed>[0-9]+(?:\.[0-9]+)?)",
    r"SPD:(?P<speed>\d+)",
    r"(?<![0-9.,])(?P<speed>[-+]?(?:[0-9]+(?:[.,][0-9]+)?|\.[0-9]+))",
    "speed=(?P<speed>[0-9.]+) 'km/h'",
]
# strings a name or a path may hold: quotes, backslashes, controls, DEL, non-ASCII
AWKWARD = st.text(alphabet=st.characters(codec="utf-8"), max_size=80)


def valid(table: str, key: str, rule: Rule) -> st.SearchStrategy[Any]:
    """A value `rule` takes, as a TOML file holds it."""
    if isinstance(rule, Number):
        return st.floats(rule.lo, rule.hi) | st.integers(int(-(-rule.lo // 1)), int(rule.hi))
    if isinstance(rule, Count):
        return st.integers(rule.lo, rule.hi)
    if isinstance(rule, NumberList):
        return st.lists(valid(table, key, rule.item), min_size=rule.least, max_size=rule.most)
    if isinstance(rule, Choice):
        return st.sampled_from(rule.options)
    if isinstance(rule, Flag):
        return st.booleans()
    if isinstance(rule, GpioPin):
        pins = st.integers(2, 27)
        return pins | st.just("none") if rule.optional else pins
    if isinstance(rule, SpeedPattern):
        return st.sampled_from(SPEED_PATTERNS)
    if isinstance(rule, Listen):
        hosts = st.sampled_from(["0.0.0.0", "127.0.0.1", "[::]", "[::1]", "pi.local"])
        return st.builds(lambda h, p: f"{h}:{p}", hosts, st.integers(1, 65535))
    assert isinstance(rule, Text)
    if (table, key) == ("fleet", "broker"):  # a URL, which the texts below hardly ever are
        return st.sampled_from(["", "mqtt://gym.local:1883", "mqtts://10.0.0.2:8883"])
    if (table, key) == ("fleet", "site"):  # one topic level: awkward texts never are one
        return st.from_regex(TOPIC_LEVEL, fullmatch=True) | st.just("*")
    if (table, key) == ("fleet", "dashboards"):
        return st.sampled_from(
            ["http://{machine_id}.local:8080/", "https://{site}.gym/{machine_id}"]
        )
    return (AWKWARD | st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,31}", fullmatch=True)).filter(
        lambda text: _takes(rule, text)
    )


def _takes(rule: Text, text: str) -> bool:
    try:
        rule.parse(text)
    except Exception:
        return False
    return True


@st.composite
def valid_files(draw) -> dict[str, Any]:
    """A parsed config file of valid values, arranged so the checks across keys pass: pins
    all different, caps rising and measurable, a relay where one enforces, a console where
    one is followed or asked to slow the belt."""
    data: dict[str, Any] = {}
    for table, rules in RULES.items():
        values = {key: draw(valid(table, key, rule)) for key, rule in rules.items()}
        if table == "sensor.check":
            if draw(st.booleans()):
                data["sensor"]["check"] = values
            continue
        data[table] = values
    pins = draw(st.permutations(range(2, 28)))
    data["sensor"]["pin"], data["buttons"]["start_pin"], data["buttons"]["direction_pin"] = pins[:3]
    check = data["sensor"].get("check")
    if check is not None:
        check["pin"] = pins[3]
        if not check["url"].strip():
            check["url"] = "socket://127.0.0.1:4001"
        if data["sensor"]["kind"] != "hall":  # a console checks a hall sensor, nothing else
            check["kind"] = "hall"
    console = data["sensor"]["kind"] == "csafe" or (check is not None and check["kind"] == "csafe")
    if not console:  # following or slowing a console needs one
        data["session"]["follow_console"] = False
    if not console or data["enforce"]["action"] != "relay":  # soft goes before the relay
        data["enforce"]["soft"] = "none"
    for i, key in enumerate(("led_pin", "buzzer_pin", "relay_pin"), start=4):
        if data["outputs"][key] != "none":
            data["outputs"][key] = pins[i]
    if data["enforce"]["action"] == "relay":
        data["outputs"]["relay_pin"] = pins[6]
    if not data["sensor"]["url"].strip():
        data["sensor"]["url"] = "loop://"
    b = data["backward"]
    caps = sorted(b["level_caps_kmh"])
    b["level_caps_kmh"] = caps
    b["start_cap_kmh"] = min(b["start_cap_kmh"], caps[0])
    b["running_cap_kmh"] = max(b["running_cap_kmh"], caps[-1])
    data["sensor"]["max_speed_kmh"] = max(data["sensor"]["max_speed_kmh"], b["running_cap_kmh"])
    p = data["program"]
    p["session_min_s"], p["session_max_s"] = sorted((p["session_min_s"], p["session_max_s"]))
    return data


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_files())
def test_any_valid_config_prints_as_toml_that_loads_back_the_same(data):
    try:
        config = config_from_mapping(data, source="drawn")
    except ConfigError as exc:  # the strategy's job is to draw only valid ones
        pytest.fail(f"the strategy drew an invalid config: {exc}")
    text = format_config(config, source="drawn")
    assert config_from_mapping(parse_toml_text(text.encode("utf-8"), source="printed")) == config
