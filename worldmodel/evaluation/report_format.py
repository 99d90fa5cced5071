"""Markdown cells and tables of the evaluation report."""

from __future__ import annotations

import math
from typing import Any


def fmt(v: Any) -> str:
    if isinstance(v, float):
        return "n/a" if math.isnan(v) else f"{v:.4g}"
    if isinstance(v, list):
        return ", ".join(fmt(x) for x in v)
    return str(v)


def pct(v: float | None) -> str:
    return "n/a" if v is None or math.isnan(v) else f"{100 * v:.0f}%"


def table(rows: dict[str, Any]) -> str:
    lines = ["| metric | value |", "|---|---|"]
    lines += [f"| {k} | {fmt(v)} |" for k, v in rows.items()]
    return "\n".join(lines)


def grid(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)
