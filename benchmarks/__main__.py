"""`python -m benchmarks [SECTION ...]`: run every section (or those whose title contains one
of the words given) and print one table. Exit status 1 when one of our figures misses its
target; peer rows are for comparison and never fail the run."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

from benchmarks import (
    csafe_bench,
    estimator_bench,
    fault_bench,
    fleet_bench,
    live_bench,
    reaction_bench,
    safety_bench,
    simulate_bench,
    web_bench,
)
from benchmarks.table import Row, render

# (title, function returning the section's rows); later sections append here.
SECTIONS: list[tuple[str, Callable[[], list[Row]]]] = [
    (estimator_bench.TITLE, estimator_bench.rows),
    (simulate_bench.TITLE, simulate_bench.rows),
    (reaction_bench.TITLE, reaction_bench.rows),
    (web_bench.TITLE, web_bench.rows),
    (live_bench.TITLE, live_bench.rows),
    (safety_bench.TITLE, safety_bench.rows),
    (fault_bench.STORAGE_TITLE, fault_bench.storage_rows),
    (fault_bench.FLOOD_TITLE, fault_bench.flood_rows),
    (fault_bench.KILL_TITLE, fault_bench.kill_rows),
    (fleet_bench.TITLE, fleet_bench.rows),
    (csafe_bench.POLL_TITLE, csafe_bench.poll_rows),
    (csafe_bench.LATENCY_TITLE, csafe_bench.latency_rows),
    (csafe_bench.CODEC_TITLE, csafe_bench.codec_rows),
]


def main(argv: list[str]) -> int:
    wanted = [word.lower() for word in argv]
    results: list[tuple[str, list[Row]]] = []
    started = time.perf_counter()
    for title, section in SECTIONS:
        if wanted and not any(word in title.lower() for word in wanted):
            continue
        section_started = time.perf_counter()
        rows = section()
        took = time.perf_counter() - section_started
        results.append((f"{title}  [{took:.1f} s]", rows))
    if not results:
        print(
            f"No section matches {' '.join(argv)!r}; sections: "
            + "; ".join(title for title, _ in SECTIONS),
            file=sys.stderr,
        )
        return 2
    print(render(results))
    failed = []
    for _, rows in results:
        heading = ""
        for row in rows:
            heading = heading if row.figure else row.label
            if row.failed:
                failed.append(f"{heading}: {row.label.strip()}" if heading else row.label.strip())
    print(
        f"\n{len(failed)} target(s) missed"
        + (": " + "; ".join(failed) if failed else "")
        + f"  (total {time.perf_counter() - started:.1f} s)"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
