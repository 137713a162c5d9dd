"""RESULTS.md from the figures of one `benchmarks/bench.py` run: the machine, each figure, each target."""

from __future__ import annotations

import operator
import time
from pathlib import Path

from rows_report import rows_section  # benchmarks/rows_report.py, next to this file

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
    """What each figure rests on and what stands in the way, in this run's own figures."""
    load = format_value(figures.get("machine", {}).get("load_average", "?"))
    return [*startup_notes(figures.get("startup", {})),
            *classify_notes(figures.get("classify", {}), figures.get("forward", {}), load),
            *live_notes(figures.get("live", {})), *training_notes(figures.get("training", {}))]


def startup_notes(startup: dict) -> list[str]:
    if not startup:
        return []
    return [f"- Start-up: `classify` on one file took {startup['classify_s']:.2f} s against {startup['import_s']:.2f} s "
            f"for importing torch and torchaudio ({startup['classify_cpu_s']:.2f} against {startup['import_cpu_s']:.2f} "
            "CPU-seconds); the rest is the package's own imports, loading the model and one clip's decoding and "
            "inference (a single batch stays float32: a bfloat16 copy would add about 0.4 s)."]


def classify_notes(classify: dict, forward: dict, load: str) -> list[str]:
    lines = []
    split = classify.get("cpu_ms_per_clip_one_thread")
    if split:
        lines.append(
            f"- Batch classification ({classify['clips']} real one-second clips as 16-bit WAV, "
            f"{classify['workers']} workers, model in {classify['precision']}): {classify['classify_clips_per_s']:.0f} "
            f"clips/s; the same clips as FLAC: {classify['flac_clips_per_s']:.0f} clips/s. One clip costs "
            f"{split['decode_wav_ms']:.2f} ms of CPU to decode from WAV ({split['decode_flac_ms']:.2f} from FLAC), "
            f"{split['frontend_ms']:.2f} ms for the MFCC and {split['model_ms']:.2f} ms for the model "
            f"({split['float32_model_ms']:.2f} in float32), one thread, batch 64: two fully used cores top out near "
            f"{split['two_core_bound_clips_per_s']:.0f} clips/s. Load average at the start: {load} on these 2 cores.")
        cpu_ms = classify.get("cpu_ms_per_clip", {})
        if cpu_ms.get("wav"):
            lines.append(
                f"  - End to end the default path used {cpu_ms['wav']:.2f} ms of CPU per WAV clip ({cpu_ms['flac']:.2f} per "
                f"FLAC clip): with both cores to itself, {2e3 / cpu_ms['wav']:.0f} clips/s. The wall-clock figures "
                "follow the other processes' load, which changes between one variant and the next; the CPU per "
                "clip does much less.")
        lines.append(f"  - The tutorial loop ({classify['loop_clips']} clips, librosa and torch's default threads) ran "
                     f"{classify['loop_clips_per_s']:.1f} clips/s; on a busy machine its threads wait for each other, "
                     "which inflates the ratio (issue 11 measured 54 clips/s on a quiet one).")
        for name in ("float32", "bfloat16", "int8", "onnxruntime"):
            if name in classify:
                variant = classify[name]
                cpu_ratio = cpu_ms[name] / cpu_ms["wav"] if cpu_ms.get(name) and cpu_ms.get("wav") else float("nan")
                lines.append(f"  - {name}: {variant['clips_per_s']:.0f} clips/s ({variant['vs_default']:.2f}x the default "
                             f"path's rate), {cpu_ratio:.2f}x its CPU per clip, "
                             f"{variant['accuracy_drop_points']:+.2f} accuracy points lost.")
    if forward:
        for name in ("float32", "bfloat16"):
            if name in forward:
                rate = forward[name]
                lines.append(f"- Forward pass in {name}: {rate['gflops']:.0f} GFLOP per CPU-second against "
                             f"{rate['matmul_gflops']:.0f} for float32 torch.matmul ({rate['vs_matmul']:.0%}); "
                             f"one window at batch 1: {rate['model_cpu_ms_batch1']:.2f} ms.")
    return lines


def live_notes(live: dict) -> list[str]:
    if not live.get("default"):
        return []
    default = live["default"]
    hop_ms = live.get("hop_ms", 100.0)
    return [
        f"- Live recognition ({live['precision']}): {default['ms_per_hop']:.2f} ms of CPU per {hop_ms:g} ms hop, of which "
        f"the model on one window takes {default.get('model_ms_batch1', float('nan')):.2f} ms (two bidirectional LSTM "
        "layers stepping through 51 frames at batch 1, each step a small matrix-vector product). "
        f"bfloat16 instead: {live['bfloat16_vs_default']:.2f}x the CPU (same detections: "
        f"{live['same_detections_as_bfloat16']}); sharing feature frames between overlapping windows: "
        f"{live['shared_vs_recompute']:.2f}x (same detections: {live['same_detections_recomputed']}). The hop is "
        f"{hop_ms:g} ms (speech_app/streaming.py: 100 ms cost 3.6% of a core on a quiet machine; {hop_ms:g} ms kept the "
        "streaming benchmark's recall and precision); below 3% of a core on a busy machine needs a model whose "
        "one-window pass is cheaper."]


def training_notes(training: dict) -> list[str]:
    if not training.get("cached"):
        return []
    cached = training["cached"]
    precision = training.get("precision", "float32")
    lines = [
        f"- Training (`--precision auto`: {precision} on this CPU): {cached['gflops']:.0f} GFLOP per CPU-second "
        f"(forward and backward counted as 3x the forward pass) against {cached['matmul_gflops']:.0f} for float32 "
        f"matmul ({cached['vs_matmul']:.0%}, the target's yardstick)."]
    if "vs_bfloat16_matmul" in cached:
        lines[-1] += (f" Against bfloat16 matmul ({training['bfloat16_matmul_gflops']:.0f} GFLOP per CPU-second in "
                      f"the same run) it is {cached['vs_bfloat16_matmul']:.0%}: bfloat16 arithmetic, with the weights "
                      "and the optimizer in float32 (autocast).")
    if training.get("cached_float32"):
        fp32 = training["cached_float32"]
        lines.append(f"  - The same cached epoch in float32: {fp32['gflops']:.0f} GFLOP per CPU-second "
                     f"({fp32['vs_matmul']:.0%} of float32 matmul); the default ran {training['default_vs_float32']:.2f}x "
                     "its clips per CPU-second. training/studies/PRECISION.md compares models trained both ways on "
                     "held-out data.")
    lines.append(
        "  - A profile of a cached float32 epoch (cProfile, one thread) put about 90% of it in the LSTM's forward and "
        "backward passes; augmentation, MFCC, SpecAugment and the optimizer share the rest.")
    step = training.get("step")
    if step:
        lines.append(
            f"  - One training step of the same model, features ready: {step['float32_vs_matmul']:.0%} of the float32 "
            f"matmul rate in float32, {step['bfloat16_autocast_vs_matmul']:.0%} under CPU bfloat16 autocast.")
    return lines


def section_rows(figures: dict) -> list[str]:
    lines = []
    for name, values in figures.items():
        if not isinstance(values, dict):  # "notes": said with the rows
            continue
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
        *(["", "**Quick mode (`--quick`): every section shrunk to a smoke test; these are not the targets' figures.**"]
          if machine.get("quick") else []),
        "",
        *rows_section(figures),
        "## Earlier targets",
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
        "Batch sizes: every clip is fitted to the model's one-second window before batching, so batching by "
        "length has nothing to group; the front end runs in chunks of 16 clips (speech_app/features.py, CPU_CHUNK_CLIPS).",
        "",
        "## All figures",
        *section_rows(figures),
        "",
    ]
    text = "\n".join(lines)
    temporary = path.with_name(path.name + ".tmp")  # written whole, then renamed: never half a file
    temporary.write_text(text)
    temporary.replace(path)
    return text
