"""The issue-24 table of RESULTS.md: each row the issue names, its figure then, what this run measured,
the CPU time beside the wall time, and the target. Pure: figures in, Markdown lines out (tested on a
fixture in tests/test_bench_report.py).

Wall-clock figures on a shared machine follow the other processes' load; the CPU seconds do much
less. The "at best on 2 idle cores" column is CPU seconds / 2 (a process cannot finish before its
CPU time spread over both cores): a bound, never a measurement, and shown only for rows whose work
runs on both cores (training, batch classification, the file scan).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

IDLE_CORES = 2  # the target machine's cores
BUSY_LOAD = 0.5  # load average (1 min) per core above which the machine counts as busy


@dataclass(frozen=True)
class Row:
    name: str
    now: str  # the figure
    target: str
    measure: Callable[[dict], "Cell | None"]  # figures -> the measured cell, None when not measured


@dataclass(frozen=True)
class Cell:
    measured: str
    cpu: str = "-"
    idle_bound: str = "-"
    met: bool | None = None
    bound_met: bool | None = None  # whether the idle-core bound would meet the target


def _seconds_cell(section: dict | None, target_s: float) -> Cell | None:
    """A wall-clock row: wall s, CPU s (process and children), the bound CPU / IDLE_CORES."""
    if not section or "wall_s" not in section:
        return None
    bound = section["cpu_s"] / IDLE_CORES
    return Cell(f"{section['wall_s']:.0f} s", f"{section['cpu_s']:.0f} s", f">= {bound:.0f} s",
                section["wall_s"] <= target_s, bound <= target_s)


def listen_memory(figures: dict) -> Cell | None:
    section = figures.get("listen_memory")
    if not section or "auto" not in section:
        return None
    auto, torch = section["auto"], section.get("torch", {})
    measured = f"{auto['rss_mb']:.0f} MB on {auto['runtime']}"
    if torch:
        measured += f" (PyTorch: {torch['rss_mb']:.0f} MB)"
    cpu = f"{auto['cpu_percent']:.2f}% of a core"
    if torch:
        cpu += f" (PyTorch: {torch['cpu_percent']:.2f}%)"
    quiet = section.get("auto_quiet_room")
    if quiet:
        cpu += f"; quiet room {quiet['cpu_percent']:.2f}%"
    return Cell(measured, cpu, met=auto["rss_mb"] <= 200 and auto["cpu_percent"] < 2)


def listen_file(figures: dict) -> Cell | None:
    section = figures.get("listen_file")
    if not section or "x_real_time" not in section:
        return None
    same = "same" if section["same_detections"] else "**different**"
    model = "" if section.get("model_name", "4-word custom") == "4-word custom" else f"{section['model_name']} model, "
    measured = (f"{section['x_real_time']:.0f}x real time ({model}{section['audio_s'] / 60:.0f} min in {section['wall_s']:.0f} s; "
                f"{section['detections']} detections, {same} as the live path)")
    bound_x = section["audio_s"] / (section["cpu_s"] / IDLE_CORES)
    return Cell(measured, f"{section['cpu_s']:.0f} s ({section['audio_s'] / section['cpu_s']:.0f}x per CPU-s)",
                f"<= {bound_x:.0f}x", section["x_real_time"] >= 200 and section["same_detections"],
                bound_x >= 200 and section["same_detections"])


def latency(figures: dict) -> Cell | None:
    """Met when the p90 is within the target on the sample clips and, where measured, on held-out speakers too."""
    section = figures.get("latency")
    if not section or section.get("wall_p90") is None:
        return None
    measured = f"median {section['wall_median']:.0f} ms, p90 {section['wall_p90']:.0f} ms ({section['trials']} words)"
    met = section["wall_p90"] <= 250
    held = section.get("held_out") or {}
    if held.get("wall_p90") is not None:
        measured += (f"; held-out speakers: median {held['wall_median']:.0f} ms, p90 {held['wall_p90']:.0f} ms "
                     f"({held['trials']} words)")
        met = met and held["wall_p90"] <= 250
    return Cell(measured, f"{section['cpu_percent']:.1f}% of a core", met=met)


def batch(figures: dict) -> Cell | None:
    section = figures.get("classify")
    if not section or "classify_clips_per_s" not in section:
        return None
    cpu_ms = section.get("cpu_ms_per_clip", {}).get("wav")
    if cpu_ms is None:
        return Cell(f"{section['classify_clips_per_s']:,.0f} clips/s", met=section["classify_clips_per_s"] >= 5000)
    bound = IDLE_CORES * 1e3 / cpu_ms
    return Cell(f"{section['classify_clips_per_s']:,.0f} clips/s ({section['clips']} clips)", f"{cpu_ms:.2f} ms per clip",
                f"<= {bound:,.0f} clips/s", section["classify_clips_per_s"] >= 5000, bound >= 5000)


ROWS = (
    Row("resident memory and CPU of `speech-app listen`", "688 MB (`import torch, torchaudio` alone: 653 MB)",
        "<= 200 MB, < 2% of a core", listen_memory),
    Row("`listen --file`, long recording, 4-word custom model", "199 s: 40x real time (2.2 h)",
        ">= 200x real time, same detections as the live path", listen_file),
    Row("first custom training, 4 words x 20 takes (synthesis, estimate, training)", "83 s", "<= 30 s",
        lambda f: _seconds_cell(f.get("custom_takes"), 30)),
    Row("the same from text alone", "88 s", "<= 45 s", lambda f: _seconds_cell(f.get("custom_text"), 45)),
    Row("10 words x 10 takes (8 kHz recordings)", "102 s", "<= 45 s", lambda f: _seconds_cell(f.get("custom_8k"), 45)),
    Row("live latency, end of word to detection", "median 119 ms, p90 357 ms", "p90 <= 250 ms", latency),
    Row("batch classification, steady state", "4,173 clips/s", ">= 5,000 clips/s", batch),
)


def _met(cell: Cell) -> str:
    if cell.met is None:
        return "-"
    if cell.met:
        return "yes"
    return "**no**" + ("; the bound on 2 idle cores would" if cell.bound_met else "")


def rows_table(figures: dict) -> list[str]:
    lines = ["| row | now (issue's figure) | measured | CPU | at best on 2 idle cores | target | met |",
             "|---|---|---|---|---|---|---|"]
    for row in ROWS:
        cell = row.measure(figures)
        if cell is None:
            lines.append(f"| {row.name} | {row.now} | not measured | - | - | {row.target} | - |")
        else:
            lines.append(f"| {row.name} | {row.now} | {cell.measured} | {cell.cpu} | {cell.idle_bound} | "
                         f"{row.target} | {_met(cell)} |")
    return lines


def load_line(figures: dict) -> str:
    """The load averages at the start and the end, and whether the machine was busy."""
    machine = figures.get("machine", {})
    start, end = machine.get("load_average"), machine.get("load_average_end")
    cores = machine.get("cores") or IDLE_CORES
    if not start:
        return "Load average: not recorded."
    text = (f"Load average (1, 5, 15 min) at the start: {', '.join(f'{v:.2f}' for v in start)}; at the end: "
            f"{', '.join(f'{v:.2f}' for v in end) if end else '?'} on {cores} cores.")
    busiest = max(start[0], end[0] if end else 0.0)
    if busiest > BUSY_LOAD * cores:
        text += (" The machine was shared with other work during the run: the wall-clock figures are stretched by it,"
                 " the CPU figures much less; a wall-clock target is judged on the wall time measured here.")
    return text


def split_lines(figures: dict) -> list[str]:
    """Where the CPU of each custom-training row went, stage by stage, and its conditions."""
    lines = []
    for key, label in (("custom_takes", "4 words x 20 takes"), ("custom_text", "text alone"),
                       ("custom_8k", "10 words x 10 takes at 8 kHz")):
        section = figures.get(key)
        if not section or "split_cpu_s" not in section:
            continue
        split = ", ".join(f"{stage} {seconds:.1f} s" for stage, seconds in section["split_cpu_s"].items())
        lines.append(f"- {label} ({', '.join(section['words'])}; `{section['command']}`, {section.get('cache', 'empty')} cache): "
                     f"{section['wall_s']:.1f} s wall, {section['cpu_s']:.1f} s CPU; CPU by stage: {split}. "
                     f"Load average before: {section['load_before']:.2f}.")
    return lines


def rows_section(figures: dict) -> list[str]:
    """The whole issue-24 part of RESULTS.md."""
    lines = ["## Issue 24: the rows, side by side in this run", "", load_line(figures), "",
             *rows_table(figures), ""]
    notes = [*(f"- {note}" for note in figures.get("notes", [])), *split_lines(figures), *condition_lines(figures)]
    if notes:
        lines += ["How each row was measured:", "", *notes, ""]
    return lines


MODEL_NAMES = {"4-word custom": "the 4-word custom model of the first training row",
               "shipped": "**the shipped model** (the training row did not run)"}


def condition_lines(figures: dict) -> list[str]:
    lines = []
    memory = figures.get("listen_memory", {})
    for name in ("auto", "torch"):
        if name in memory:
            r = memory[name]
            lines.append(f"- `speech-app listen{'' if name == 'auto' else ' --runtime torch'}` (model on {r['runtime']}) on a "
                         f"virtual PulseAudio microphone, sample clips played for {r['seconds']:.0f} s: resident "
                         f"{r['rss_mb']:.0f} MB at the end (peak {r['peak_rss_mb']:.0f} MB), CPU {r['cpu_percent']:.2f}% "
                         f"of a core (/proc of the process: its threads, capture included), {r['detections']} detections.")
    if "auto_quiet_room" in memory:
        r = memory["auto_quiet_room"]
        lines.append(f"- The same (model on {r['runtime']}) with quiet-room noise alone playing for {r['seconds']:.0f} s "
                     f"(pink noise at -50 dBFS: most of an always-on day): CPU {r['cpu_percent']:.2f}% of a core, "
                     f"{r['detections']} detections.")
    scan = figures.get("listen_file", {})
    if "x_real_time" in scan:
        lines.append(f"- `speech-app listen --file` on {scan['audio_s'] / 60:.1f} min of 16 kHz 16-bit WAV "
                     f"({scan['source']}), model: {MODEL_NAMES.get(scan.get('model_name'), scan.get('model_name'))}, "
                     f"runtime {scan['runtime']}; "
                     f"wall time includes start-up (the ONNX copy of the model made beforehand, once). The live path "
                     f"(the recognizer `listen` builds for a microphone, fed 20 ms blocks) on the same audio: "
                     f"{scan['live_detections']} detections, same as the file scan: {scan['same_detections']}.")
    live = figures.get("latency", {})
    if live.get("wall_p90") is not None:
        lines.append(f"- Latency (benchmarks/bench_live.py through the virtual microphone, shipped model): from the end "
                     f"of the word as played to the detection. In audio time (no audio system): median "
                     f"{_ms(live.get('stream_median'))}, p90 {_ms(live.get('stream_p90'))}; {live['correct_once']} of "
                     f"{live['trials']} words detected right, once.")
    held = live.get("held_out") or {}
    if held.get("wall_p90") is not None:
        lines.append(f"- The same with held-out speakers instead of the sample clips ({held['trials']} clips of the ten "
                     f"commands, each played once; six sample clips played {live['trials'] // 6 or 1} times measure six "
                     f"recordings, and their p90 is mostly one of them, \"up\": training/studies/LATENCY_STUDY.md): "
                     f"median {_ms(held.get('wall_median'))}, p90 {_ms(held.get('wall_p90'))}; in audio time median "
                     f"{_ms(held.get('stream_median'))}, p90 {_ms(held.get('stream_p90'))}; {held['correct_once']} of "
                     f"{held['trials']} detected right, once (a word missed has no latency).")
    return lines


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f} ms"
