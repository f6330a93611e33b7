"""The serial line pattern: a regular expression with a named group `speed`, run on a
linear-time-safe footing.

Python's `re` holds the interpreter while it backtracks, so one catastrophic pattern
(`(?P<speed>(\\d+\\.?\\d*)+) km/h` on a line of digits) froze the whole daemon, the guard and
SIGTERM included. Patterns run on the `regex` module instead: it gives the interpreter back
while it matches (`concurrent`), stops at a hard time limit, and check-config tries each
pattern on lines made to make backtracking explode, refusing one that does not finish. Lines
are at most 256 bytes (device/hardware/serial_speed.py) before they get here.
"""

from __future__ import annotations

import math
import re

import regex

# A line is matched in microseconds; this bounds a bad pattern, not a good one.
MATCH_TIMEOUT_S = 0.02
# Lines that make nested repetition backtrack without end, as long as a line may be.
PROBES = tuple(
    body + tail
    for body in ("1" * 120, "1." * 60, "a" * 120, " " * 120, "1,5 " * 30)
    for tail in ("", "!", " km", "x")
)


# Counted repeats are unrolled when a pattern compiles: nested {1000}s multiply, and
# (?:(?:a{1000}){1000}){1000} would compile for hours (a compile cannot be stopped). A line is
# at most 256 bytes, so no useful pattern counts past a few hundred.
MAX_REPEAT_PRODUCT = 10_000
_COUNTED = re.compile(r"(?<!\\)\{\s*(\d*)\s*(?:,\s*(\d*)\s*)?\}")


class PatternError(ValueError):
    """str() says what is wrong with the pattern, to follow "[sensor] pattern ... ,". Not a
    RetrotreadError: its message is the end of a sentence, never one on its own; the config
    rules and the serial source wrap it into a ConfigError or a SourceError."""


def _repeat_product(pattern: str) -> int:
    """The product of every counted repeat's largest count: an upper bound on how far
    nesting them could unroll (siblings are counted as if nested, to err on the safe side)."""
    counts = []
    for low, high in _COUNTED.findall(pattern):
        digits = high or low
        counts.append(int(digits[:9]) if digits else 1)  # 9 digits: past any bound anyway
    return math.prod(counts)


def compile_speed_pattern(pattern: str) -> regex.Pattern[str]:
    if _repeat_product(pattern) > MAX_REPEAT_PRODUCT:
        raise PatternError(
            f"whose counted repeats ({{n}}) multiply past {MAX_REPEAT_PRODUCT}, more than a "
            "256-byte line can hold; use + or * or smaller counts"
        )
    try:
        compiled = regex.compile(pattern, regex.VERSION0)
    except (regex.error, ValueError) as exc:  # ValueError: a (?V1) flag inside the pattern
        raise PatternError(f"which does not compile: {exc}") from None
    except RecursionError:
        raise PatternError(
            "which nests its groups deeper than the regular expression compiler can follow"
        ) from None
    if "speed" not in compiled.groupindex:
        raise PatternError("which has no group named speed")
    return compiled


def check_speed_pattern(pattern: str) -> regex.Pattern[str]:
    """Compile and try the pattern on the probes; PatternError if it is too slow on one."""
    compiled = compile_speed_pattern(pattern)
    for probe in PROBES:
        try:
            compiled.search(probe, timeout=MATCH_TIMEOUT_S * 5)
        except TimeoutError:
            raise PatternError(
                f"which takes too long on a line like {probe[:12]!r}...: a repeated group "
                "inside a repetition, such as (\\d+)+, backtracks without end; write it "
                "with one repetition"
            ) from None
    return compiled


def search_speed(compiled: regex.Pattern[str], text: str) -> str | None:
    """The `speed` group's text in one line, or None (no match, or too slow to tell)."""
    try:
        match = compiled.search(text, timeout=MATCH_TIMEOUT_S, concurrent=True)
    except TimeoutError:
        return None
    if match is None:
        return None
    return match.group("speed")
