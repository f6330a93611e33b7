"""Whatever is in the config file, the device runs on a Config or refuses with one sentence
naming the file (and the key): never a traceback, from load_config or from check-config.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given, settings
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
    SpeedPattern,
    Text,
    toml_key,
)
from device.config.load import format_config, load_config
from device.config.model import Config
from device.config.rules import RULES

FUZZ = settings(max_examples=200, deadline=None)
ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = (ROOT / "config.example.toml").read_text(encoding="utf-8")
RETROTREAD = Path(sys.executable).with_name("retrotread")
BOM = b"\xef\xbb\xbf"


@pytest.fixture(scope="module")
def config_path(tmp_path_factory) -> Path:
    """One file rewritten by every example (hypothesis reruns a test; a fixture per example
    would not be reset between them)."""
    return tmp_path_factory.mktemp("fuzz") / "config.toml"


def assert_config_or_one_sentence(path: Path, content: bytes) -> Config | None:
    path.write_bytes(content)
    try:
        config, source = load_config(path)
    except ConfigError as exc:
        assert_one_sentence(exc, path)
        return None
    assert source == str(path)
    # what check-config prints loads back to the same config
    path.write_text(format_config(config, source=source), encoding="utf-8")
    assert load_config(path)[0] == config
    return config


def assert_one_sentence(exc: ConfigError, path: Path) -> None:
    message = str(exc)
    assert message.startswith(f"{path}: "), message
    assert len(message.splitlines()) == 1, message  # no \n, \r, \u2028 or the like inside
    assert message.endswith((".", "?")), message
    assert len(message) - len(str(path)) < 600, message[:300]  # a sentence, not the file back
    assert "Traceback" not in message
    if exc.key is not None:  # the key the settings page points at is named in the sentence
        table = exc.key.partition(".")[0]
        assert table in message or toml_key(exc.key) in message, message


# ---- TOML the fuzz writes: every value type, under the real tables and keys ---------------


@dataclass(frozen=True)
class Raw:
    """TOML text written as it is: a whole number too long for Python's int() to print."""

    text: str


huge_ints = st.builds(
    lambda sign, digits: Raw(sign + "9" * digits),
    st.sampled_from(["", "-", "+"]),
    st.integers(4200, 6000),
)
# Serial patterns from the pieces of regular-expression syntax, flags and nesting included.
REGEX_PIECES = [
    *"()[]{}?*+|^$.-,:\\0123456789adsSwbx",
    "(?P<speed>", "(?P<speed>", "(?:", "(?i)", "(?V1)", "(?r)", "(?f)", "{e<=1}", "(?|",
    "(?(", "\\g<", "(?R)", "(?1)", "(?&speed)", "(*PRUNE)", "(*SKIP)", "(*FAIL)", "\\G",
    "\\p{", "\\N{", "\\X", "(?P=speed)", "\\K", "{99999999999}", "(" * 300, ")" * 300,
]  # fmt: skip
patterns = st.lists(st.sampled_from(REGEX_PIECES), max_size=12).map("".join)
listens = st.builds(
    lambda host, port: f"{host}:{port}",
    st.sampled_from(["0.0.0.0", "[::]", "::1", "", "localhost", " "]),
    st.text(alphabet="0123456789", max_size=8) | st.integers(4200, 6000).map(lambda n: "9" * n),
)
scalars = (
    st.booleans()
    | st.integers()
    | st.sampled_from([0, 1, -1, 2**63, -(2**63) - 1, 10**100])
    | huge_ints
    | st.floats()
    | st.sampled_from([math.nan, math.inf, -math.inf, -0.0, 1e308, 5e-324])
    | st.text(max_size=20)
    | st.text(alphabet="0123456789.:[]none-_ ", max_size=12)
    | st.sampled_from(["none", "serial", "hall", "loop://", "0.0.0.0:8080", "[::]:1", "km/h"])
    | st.sampled_from(["(?P<speed>x)", "(?V1)(?P<speed>x)", "(?P<speed>" + "(" * 300 + ")" * 300])
    | patterns
    | listens
    | st.datetimes()
    | st.datetimes(timezones=st.just(dt.UTC))
    | st.dates()
    | st.times()
)
toml_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=8,
)


def toml_text(value) -> str:
    """`value` written as TOML (inline)."""
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        # JSON's escapes are TOML's, but for DEL, which TOML wants escaped
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(toml_text(v) for v in value) + "]"
    return "{" + ", ".join(f"{toml_text(k)} = {toml_text(v)}" for k, v in value.items()) + "}"


TABLES = [*RULES, "sensors", "web.extra", "machine.id"]
keys_of = {table: [*RULES.get(table, {}), "check", "colour"] for table in TABLES}


@st.composite
def documents(draw) -> str:
    """A TOML document of the real tables with real (and a few unknown) keys, each holding a
    value of any type, or a table that is not a table."""
    lines = []
    for table in draw(st.lists(st.sampled_from(TABLES), unique=True, max_size=5)):
        if draw(st.integers(0, 9)) == 0:
            lines.append(f"{toml_text(table)} = {toml_text(draw(toml_values))}")
            continue
        lines.append(f"[{table}]")
        keys = st.sampled_from(keys_of[table]) | st.text(max_size=8)
        for key in draw(st.lists(keys, unique=True, max_size=5)):
            lines.append(f"{toml_text(key)} = {toml_text(draw(toml_values))}")
    return "\n".join(lines) + "\n"


@st.composite
def edited_example(draw) -> str:
    """config.example.toml with a few of its `key = value` lines given another value."""
    lines = EXAMPLE.splitlines()
    settings_at = [i for i, line in enumerate(lines) if " = " in line and not line.startswith("#")]
    for i in draw(st.lists(st.sampled_from(settings_at), max_size=4)):
        key = lines[i].partition(" = ")[0]
        lines[i] = f"{key} = {toml_text(draw(toml_values))}"
    return "\n".join(lines) + "\n"


def nested(depth: int, kind: str) -> str:
    if kind == "array":
        return "[" * depth + "1" + "]" * depth
    if kind == "table":
        return "{a = " * depth + "1" + "}" * depth
    return "[{a = " * depth + "1" + "}]" * depth


deep_documents = st.builds(
    lambda table_key, depth, kind: f"[{table_key[0]}]\n{table_key[1]} = {nested(depth, kind)}\n",
    st.sampled_from([(t, k) for t, keys in RULES.items() for k in keys]),
    st.integers(1, 1200),
    st.sampled_from(["array", "table", "mixed"]),
)


@st.composite
def damaged(draw, text: str) -> bytes:
    """`text` as bytes with a BOM, a NUL, a flipped byte or a cut, as a bad copy gives it."""
    raw = text.encode("utf-8")
    if draw(st.booleans()):
        raw = BOM + raw
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(0, len(raw)))
        raw = raw[:at] + draw(st.binary(min_size=1, max_size=3)) + raw[at:]
    if draw(st.booleans()):
        raw = raw[: draw(st.integers(0, len(raw)))]
    return raw


# ---- properties ---------------------------------------------------------------------------


@FUZZ
@given(st.binary(max_size=400) | st.binary(max_size=40).map(lambda b: BOM + b))
def test_any_bytes_give_a_config_or_one_sentence(config_path, content):
    assert_config_or_one_sentence(config_path, content)


@FUZZ
@given(st.text(max_size=400))
def test_any_text_gives_a_config_or_one_sentence(config_path, text):
    assert_config_or_one_sentence(config_path, text.encode("utf-8"))


@FUZZ
@given(documents())
def test_any_values_under_the_real_tables_give_a_config_or_one_sentence(config_path, text):
    assert_config_or_one_sentence(config_path, text.encode("utf-8"))


def near(lo: float, hi: float):
    """Numbers at, just past and far from the edges of lo..hi, as ints and floats."""
    edges = [lo, hi, lo - 1, hi + 1, lo - 1e-9, hi + 1e-9, 0, -lo, -hi, 2 * hi]
    return (
        st.sampled_from(edges)
        | st.sampled_from(edges).map(int)
        | st.floats(lo - 1, hi + 1)
        | st.integers(int(lo) - 2, int(hi) + 2)
    )


def values_for(rule) -> st.SearchStrategy:
    """Values a user might put in a key of this kind: its edges and its lookalikes."""
    if isinstance(rule, Number):
        return near(rule.lo, rule.hi) | near(rule.lo, rule.hi).map(str)
    if isinstance(rule, Count):
        return near(rule.lo, rule.hi) | huge_ints
    if isinstance(rule, NumberList):
        item = near(rule.item.lo, rule.item.hi)
        return st.lists(item, max_size=rule.most + 2) | st.lists(st.lists(item, max_size=3))
    if isinstance(rule, Choice):
        options = st.sampled_from(rule.options)
        return options | options.map(lambda o: str(o).upper()) | options.map(lambda o: f" {o}")
    if isinstance(rule, Flag):
        return st.sampled_from(["true", "false", 0, 1, "yes"])
    if isinstance(rule, GpioPin):
        return st.integers(-5, 40) | st.sampled_from(["none", "None", "GPIO17", 17.0])
    if isinstance(rule, SpeedPattern):
        return patterns
    if isinstance(rule, Listen):
        return listens
    assert isinstance(rule, Text)
    return st.text(max_size=90) | st.sampled_from(["guest", " ", "a\nb", "x" * 100])


KEYS_BY_KIND: dict[type, list[tuple[str, str]]] = {}
for _table, _rules in RULES.items():
    for _key, _rule in _rules.items():
        KEYS_BY_KIND.setdefault(type(_rule), []).append((_table, _key))


@st.composite
def one_key(draw, kind: type) -> str:
    table, key = draw(st.sampled_from(KEYS_BY_KIND[kind]))
    value = draw(values_for(RULES[table][key]) | toml_values)
    return f"[{table}]\n{key} = {toml_text(value)}\n"


@pytest.mark.parametrize("kind", KEYS_BY_KIND, ids=lambda kind: kind.__name__)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_any_value_in_a_key_of_each_kind_gives_a_config_or_one_sentence(config_path, kind, data):
    text = data.draw(one_key(kind))
    assert_config_or_one_sentence(config_path, text.encode("utf-8"))


@FUZZ
@given(edited_example())
def test_the_example_with_values_changed_gives_a_config_or_one_sentence(config_path, text):
    assert_config_or_one_sentence(config_path, text.encode("utf-8"))


@FUZZ
@given(st.one_of(st.just(EXAMPLE), documents(), edited_example()).flatmap(damaged))
def test_a_damaged_copy_gives_a_config_or_one_sentence(config_path, content):
    assert_config_or_one_sentence(config_path, content)


@settings(max_examples=60, deadline=None)
@given(deep_documents)
def test_nesting_to_any_depth_is_one_sentence(config_path, text):
    assert assert_config_or_one_sentence(config_path, text.encode("utf-8")) is None


# ---- what fuzzing found: each was a traceback -----------------------------------------------

CRASHES = [
    # (id, file content, words the sentence must hold)
    ("int-over-4300-digits", b"[sensor]\nbaud = " + b"9" * 5000 + b"\n", ["digits"]),
    (
        "port-over-4300-digits",
        b'[web]\nlisten = "0.0.0.0:' + b"9" * 5000 + b'"\n',
        ["[web] listen", "1 to 65535"],
    ),
    (
        "list-nested-400-deep",
        b"[machine]\nid = " + b"[" * 400 + b"]" * 400 + b"\n",
        ["[machine] id", "[[[...]]]"],
    ),
    (
        "pattern-flag-v1",
        b"[sensor]\npattern = '(?V1)(?P<speed>[0-9]+)'\n",
        ["[sensor] pattern", "does not compile"],
    ),
    (
        "pattern-nested-groups",
        b"[sensor]\npattern = '(?P<speed>" + b"(" * 2000 + b"1" + b")" * 2000 + b")'\n",
        ["[sensor] pattern", "nests"],
    ),
]


@pytest.mark.parametrize(
    ("content", "words"), [c[1:] for c in CRASHES], ids=[c[0] for c in CRASHES]
)
def test_a_file_that_gave_a_traceback_is_one_sentence(config_path, content, words):
    config_path.write_bytes(content)
    with pytest.raises(ConfigError) as caught:
        load_config(config_path)
    assert_one_sentence(caught.value, config_path)
    for word in words:
        assert word in str(caught.value)


@pytest.mark.parametrize(
    ("content", "start"),
    [
        (b'[machine]\n"' + b"k" * 100_000 + b'" = 1\n', '[machine] "kkk'),
        (b'["' + b"t" * 100_000 + b'"]\n', '["ttt'),
        (b"[machine]\nid = " + b"9" * 4000 + b"\n", "[machine] id must be"),
    ],
    ids=["key", "table", "number"],
)
def test_a_sentence_quotes_a_huge_name_or_number_cut_short(config_path, content, start):
    # found by fuzzing: each came back whole, a 100 kB "sentence"
    config_path.write_bytes(content)
    with pytest.raises(ConfigError) as caught:
        load_config(config_path)
    message = str(caught.value).removeprefix(f"{config_path}: ")
    assert message.startswith(start)
    assert "..." in message
    assert len(message) < 300


# ---- the command an operator runs: exit 2, one line, no traceback --------------------------


def check_config(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(RETROTREAD), "check-config", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def assert_refused_in_one_line(result: subprocess.CompletedProcess[str], path: Path) -> None:
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert result.stderr.endswith("\n")
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert result.stderr.startswith(f"{path}: ")


@pytest.mark.parametrize("content", [c[1] for c in CRASHES], ids=[c[0] for c in CRASHES])
def test_check_config_refuses_each_former_crash_in_one_line(tmp_path, content):
    path = tmp_path / "config.toml"
    path.write_bytes(content)
    assert_refused_in_one_line(check_config(path), path)


# Always refused: a NUL, bytes that are not UTF-8, a broken line, an unknown table.
bad_files = st.one_of(
    st.binary(max_size=200).map(lambda b: b"\x00" + b),
    st.binary(max_size=200).map(lambda b: b"\xff" + b),
    edited_example().map(lambda t: (t + "\n[sensor\n").encode()),
    documents().map(lambda t: ("[no_such_table]\n" + t).encode()),
    deep_documents.map(str.encode),
)


@settings(max_examples=5, deadline=None)
@given(bad_files)
def test_check_config_refuses_generated_bad_files_in_one_line(config_path, content):
    config_path.write_bytes(content)
    assert_refused_in_one_line(check_config(config_path), config_path)
