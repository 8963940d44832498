"""BENCH lines and the human summary: one figure per line, value against its limit."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100); nan for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(math.ceil(p / 100 * len(ordered)) - 1, 0)
    return ordered[rank]


@dataclass
class Figure:
    name: str
    value: float
    unit: str
    limit: float | None
    note: str = ""
    # True when the limit was measured in this run (a baseline), not a fixed target.
    measured_limit: bool = False

    @property
    def ratio(self) -> float | None:
        if self.limit is None or self.limit == 0 or math.isnan(self.value):
            return None
        return _round(self.value / self.limit)

    def line(self) -> str:
        body = {"name": self.name, "value": _round(self.value), "unit": self.unit,
                "limit": _round(self.limit), "ratio": self.ratio}
        return "BENCH " + json.dumps(body)


def _round(value: float | None) -> float | None:
    """Three decimals, or four significant digits for smaller numbers: a 5 ms stop is a
    ratio of 0.05 to its target, and three decimals would be a 1% error in it."""
    if value is None or math.isnan(value):
        return None
    if value == 0 or math.isinf(value):
        return value
    return round(value, max(3, 3 - math.floor(math.log10(abs(value)))))


@dataclass
class Report:
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, figure: Figure) -> None:
        self.figures.append(figure)
        print(figure.line(), flush=True)

    def note(self, text: str) -> None:
        self.notes.append(text)
        print(f"# {text}", flush=True)

    def summary(self) -> str:
        lines = ["", "Summary (limit = target, or a baseline measured in this run):"]
        for f in self.figures:
            verdict = "" if f.ratio is None else ("ok" if f.ratio <= 1 else "MISSED")
            if f.measured_limit and f.ratio is not None:
                verdict = "ok" if f.ratio <= 2 else "MISSED"  # target: within 2x the baseline
            limit = "-" if f.limit is None else f"{_round(f.limit)}"
            lines.append(f"  {f.name:36s} {_round(f.value)!s:>10} {f.unit:6s} "
                         f"limit {limit:>8}  {verdict} {f.note}")
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)
