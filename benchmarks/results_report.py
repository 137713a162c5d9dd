"""RESULTS.md from the figures of one `benchmarks/bench.py` run: the machine, each figure, each target."""

from __future__ import annotations

import operator
import time
from pathlib import Path

COMPARE = {">=": operator.ge, "<=": operator.le, "<": operator.lt}


def find(figures: dict, key: str):
    """A figure by its key, in whichever section holds it."""
    for section in figures.values():
        if isinstance(section, dict) and key in section:
            return section[key]
    return None


def target_rows(figures: dict, targets: dict) -> list[str]:
    rows = ["| target | measured | goal | met |", "|---|---|---|---|"]
    for key, (comparison, bound, description) in targets.items():
        value = find(figures, key)
        if value is None:
            rows.append(f"| {description} | not measured | {comparison} {bound:g} | - |")
            continue
        met = "yes" if COMPARE[comparison](value, bound) else "**no**"
        rows.append(f"| {description} | {value:.3g} | {comparison} {bound:g} | {met} |")
    return rows


def section_rows(figures: dict) -> list[str]:
    lines = []
    for name, values in figures.items():
        lines += ["", f"### {name}", "", "| figure | value |", "|---|---|"]
        for key, value in flatten(values):
            lines.append(f"| {key} | {format_value(value)} |")
    return lines


def flatten(values: dict, prefix: str = ""):
    for key, value in values.items():
        if isinstance(value, dict):
            yield from flatten(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def format_value(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(format_value(v) for v in value)
    return str(value)


def write_results(figures: dict, path: Path, targets: dict) -> str:
    machine = figures.get("machine", {})
    lines = [
        "# Benchmark results",
        "",
        f"Written by `make bench` (benchmarks/bench.py) on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
        f"Machine: {machine.get('cpu', '?')}, {machine.get('cores', '?')} cores, {machine.get('memory_gib', '?')} GiB; "
        f"{machine.get('os', '?')}; Python {machine.get('python', '?')}, torch {machine.get('torch', '?')} "
        f"({machine.get('torch_threads', '?')} threads); GPU: {machine.get('gpu', '?')}.",
        f"Load average (1, 5, 15 min) at the start: {format_value(machine.get('load_average', '?'))}; "
        f"at the end: {format_value(machine.get('load_average_end', '?'))}. Absolute speeds follow the load;"
        " the ratios compare two things timed one right after the other in the same process.",
        "",
        "## Targets",
        "",
        *target_rows(figures, targets),
        "",
        "## All figures",
        *section_rows(figures),
        "",
    ]
    text = "\n".join(lines)
    path.write_text(text)
    return text
