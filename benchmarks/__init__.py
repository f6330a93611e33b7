"""Benchmarks: `python -m benchmarks` (or `make bench`) prints one table of figures against
their targets, section by section, and exits non-zero when one of our own figures misses.

A section is a function returning `Row`s (see `benchmarks.table`); add it to `SECTIONS` in
`benchmarks/__main__.py`.
"""

import sys
from pathlib import Path

# The benches share the tests' helpers, imported as the tests import them (`support.X`, with
# tests/ on the path), never as `tests.support.X`: garmin-fit-sdk's wheel installs a top-level
# package named `tests` into site-packages, which would shadow ours.
_TESTS = str(Path(__file__).resolve().parent.parent / "tests")
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)
