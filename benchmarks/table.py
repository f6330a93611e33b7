"""One aligned table of benchmark rows, with a verdict per row."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Row:
    """One figure. `passed` None means informational (no target). `gating` False marks a
    comparison row (a peer algorithm): its verdict is shown in parentheses and never fails
    the run. A row with only a label is a sub-heading."""

    label: str
    figure: str = ""
    target: str = ""
    passed: bool | None = None
    gating: bool = True

    @property
    def verdict(self) -> str:
        if self.passed is None:
            return ""
        word = "pass" if self.passed else "FAIL"
        return word if self.gating else f"({word.lower()})"

    @property
    def failed(self) -> bool:
        return self.gating and self.passed is False


def render(sections: list[tuple[str, list[Row]]]) -> str:
    """The table as text: a title line per section, then label | figure | target | verdict."""
    rows = [row for _, section_rows in sections for row in section_rows if row.figure]
    header = Row("", "figure", "target")
    width_label = max([len(r.label) for r in rows] + [10])
    width_figure = max([len(r.figure) for r in [*rows, header]])
    width_target = max([len(r.target) for r in [*rows, header]])
    total = width_label + width_figure + width_target + 14

    def line(row: Row, verdict: str) -> str:
        return (
            f"{row.label:<{width_label}}  {row.figure:>{width_figure}}  "
            f"{row.target:<{width_target}}  {verdict}"
        ).rstrip()

    out = [line(header, "result"), "=" * total]
    for title, section_rows in sections:
        out += ["", title, "-" * total]
        out += [line(row, row.verdict) if row.figure else row.label for row in section_rows]
    return "\n".join(out)
