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


def notes(figures: dict) -> list[str]:
    """What stands in the way of each target, in this run's own figures."""
    lines = []
    classify, forward = figures.get("classify", {}), figures.get("forward", {})
    split = classify.get("cpu_ms_per_clip_one_thread")
    if split:
        lines.append(
            f"- Batch classification: one clip costs {split['decode_ms']:.2f} ms of CPU to decode, "
            f"{split['frontend_ms']:.2f} ms for the MFCC and {split['model_ms']:.2f} ms for the model (one thread, "
            f"batch 64), so two fully used cores top out near {split['two_core_bound_clips_per_s']:.0f} clips/s before "
            "any waiting. 2,000 clips/s needs at most 1 ms of CPU per clip: the model alone is close to that. "
            "Getting there means a cheaper model (fewer LSTM units or frames per clip), not more plumbing. "
            f"The end-to-end figure was taken at a load average of {format_value(figures.get('machine', {}).get('load_average', '?'))} "
            "on these cores, so this process had a fraction of them.")
        if "default_vs_all_threads" in classify:
            lines.append(f"  - with decoding overlapped, the model must leave a core to the decoding threads: "
                         f"{classify['classify_clips_per_s']:.0f} clips/s against {classify['all_threads_clips_per_s']:.0f} "
                         f"with torch's default thread count, whose threads then wait for each other "
                         f"({classify['default_vs_all_threads']:.1f}x), in the same run.")
        for name in ("int8", "onnxruntime"):
            if f"{name}_vs_torch" in classify:
                lines.append(f"  - {name}: {classify[f'{name}_vs_torch']:.2f}x the speed of the float32 torch path, "
                             f"{classify[f'{name}_accuracy_drop_points']:+.2f} accuracy points lost.")
    if forward:
        lines.append(
            f"- Forward pass: {forward['forward_gflops']:.0f} GFLOP per CPU-second against "
            f"{forward['matmul_gflops']:.0f} for torch.matmul ({forward['forward_vs_matmul']:.0%}); the LSTM steps "
            "through its frames one after another, each step a small matrix product.")
    live = figures.get("live", {})
    if live and forward.get("model_cpu_ms_batch1"):
        lines.append(
            f"- Live recognition: {live['shared']['ms_per_hop']:.2f} ms of CPU per 100 ms hop, of which the model on one "
            f"window takes about {forward['model_cpu_ms_batch1']:.2f} ms (the four LSTM passes over 51 steps at batch "
            "1). The MFCC is the small part: sharing its frames between overlapping windows changes the CPU per hop by "
            f"a factor of {live['shared_vs_recompute']:.2f} (shared / recomputed). Below 3% of a core (3 ms a hop) "
            "needs a model whose one-window pass is cheaper, or a longer hop.")
    training = figures.get("training", {})
    if training.get("cached"):
        cached = training["cached"]
        lines.append(
            f"- Training: {cached['gflops']:.0f} GFLOP per CPU-second (forward and backward counted as 3x the forward "
            f"pass) against {cached['matmul_gflops']:.0f} for matmul. Besides the sequential LSTM, each batch's "
            "augmentation (noise mixing, shifts, speed changes), MFCC and SpecAugment run on the CPU between the "
            "matrix products.")
    return lines


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
        "## What stands in the way",
        "",
        *notes(figures),
        "",
        "No GPU was available on this machine: the CUDA (float16 autocast) and MPS paths of training and batch "
        "inference are written but were not measured here.",
        "",
        "## All figures",
        *section_rows(figures),
        "",
    ]
    text = "\n".join(lines)
    path.write_text(text)
    return text
