"""The invariant properties' choices drawn by hypothesis (tests/support/stories.py's Draw), and
the settings they share."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, Phase
from hypothesis import strategies as st


class HypothesisDraw:
    """tests/support/stories.py's source of choices, drawn by hypothesis so a failure shrinks."""

    def __init__(self, data: st.DataObject):
        self.data = data

    def integer(self, low: int, high: int) -> int:
        return self.data.draw(st.integers(low, high))


SLOW_DRAWS = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example]
# Shrinking a failing story takes minutes of simulations (hypothesis gives up after five), so
# by default a failure is reported whole, as TOML, and the database replays it first next
# time; RETROTREAD_SHRINK=1 shrinks it to a minimal story like the ones the tests spell out.
PHASES = tuple(Phase) if os.environ.get("RETROTREAD_SHRINK") else tuple(set(Phase) - {Phase.shrink})
