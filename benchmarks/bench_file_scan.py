"""CPU of `speech-app listen --file` per minute of audio, for one code tree or several side by side (issue 24).

    python benchmarks/bench_file_scan.py [--model M] [--minutes 37.2] [--rounds 2] [--code DIR ...] [--json OUT]

The recording is bench_rows.long_recording's (the continuous speech files, sorted and concatenated: the
`listen_file` row of `make bench`), written once to /tmp. Each run is a child process running the `listen`
command exactly as `speech-app listen --file REC --model M --format jsonl` would; CPU time, not wall time (the
machine is shared):
- scan: process CPU (every thread: the model's workers too) from the command's start to its end, per audio
  minute; main: the main thread's share of it (features, decisions);
- total: the child's whole CPU (rusage), start-up (interpreter, imports) included.
"2 idle cores" projects x real time: audio / (start-up + max(main thread, scan / 2)), what two cores of its own
would give. With several `--code` trees (e.g. /work/main and this worktree) the runs alternate, round by
round, and the detections of every tree are compared with the first tree's.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RECORDING = Path("/tmp/speech-app-bench-file-scan.wav")
CHILD_FLAG = "--child"


def child(argv: list[str]) -> None:
    """Run the CLI in this process; its CPU (all threads, and the main thread's) goes to stderr as JSON."""
    from speech_app.cli import main

    wall, cpu, main_cpu = time.perf_counter(), time.process_time(), time.thread_time()
    status = main(argv)
    figures = {"wall_s": time.perf_counter() - wall, "scan_cpu_s": time.process_time() - cpu,
               "main_cpu_s": time.thread_time() - main_cpu, "status": status}
    print("FIGURES " + json.dumps(figures), file=sys.stderr, flush=True)
    sys.exit(status)


def run_once(code: Path, model: Path, audio: Path, minutes: float | None) -> dict:
    command = [sys.executable, str(Path(__file__).resolve()), CHILD_FLAG, "listen", "--file", str(audio),
               "--model", str(model), "--format", "jsonl"] + (["--duration", str(minutes * 60)] if minutes else [])
    env = {**os.environ, "PYTHONPATH": str(code)}
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=code)
    out, err = proc.communicate()
    figures = next((json.loads(line[8:]) for line in err.splitlines() if line.startswith("FIGURES ")), None)
    if proc.returncode or figures is None:
        raise RuntimeError(f"{code}: exit status {proc.returncode}: {err[-2000:]}")
    lines = (line for line in out.splitlines() if line.startswith("{"))
    figures["detections"] = [(d["label"], d["time"]) for d in map(json.loads, lines)]
    return figures


def timed_child(code: Path, model: Path, audio: Path, minutes: float | None) -> dict:
    """run_once with the child's whole CPU from rusage (resource.getrusage of children: the delta)."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    figures = run_once(code, model, audio, minutes)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    figures["total_cpu_s"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return figures


def recording(minutes: float | None) -> tuple[Path, float]:
    import soundfile as sf

    if not RECORDING.is_file():
        sys.path.insert(0, str(REPO / "benchmarks"))
        sys.path.insert(0, str(REPO))
        from bench_rows import long_recording

        long_recording(RECORDING, None)
    seconds = sf.info(str(RECORDING)).duration
    return RECORDING, min(seconds, minutes * 60) if minutes else seconds


def summary(runs: list[dict], audio_s: float) -> dict:
    minutes = audio_s / 60
    best = min(runs, key=lambda r: r["scan_cpu_s"])
    startup = min(r["total_cpu_s"] - r["scan_cpu_s"] for r in runs)
    return {"scan_cpu_s_per_audio_min": [round(r["scan_cpu_s"] / minutes, 4) for r in runs],
            "main_thread_cpu_s_per_audio_min": [round(r["main_cpu_s"] / minutes, 4) for r in runs],
            "total_cpu_s": [round(r["total_cpu_s"], 2) for r in runs], "startup_cpu_s": round(startup, 2),
            "wall_s": [round(r["wall_s"], 2) for r in runs],
            "x_real_time_2_idle_cores": round(audio_s / (startup + max(best["main_cpu_s"], best["scan_cpu_s"] / 2)), 1),
            "detections": len(runs[0]["detections"])}


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == CHILD_FLAG:
        return child(sys.argv[2:])
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=REPO / "model" / "speech_commands_12.safetensors")
    parser.add_argument("--minutes", type=float, default=None, help="scan this much of the recording (default: all)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--code", type=Path, action="append", help="code trees to compare (default: this one)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    codes = [c.resolve() for c in (args.code or [REPO])]
    audio, audio_s = recording(args.minutes)
    for code in codes:  # the ONNX copy of the model, made once and untimed
        run_once(code, args.model.resolve(), audio, 1 / 60)
    runs = {str(c): [] for c in codes}
    for round_ in range(args.rounds):
        for code in codes:
            figures = timed_child(code, args.model.resolve(), audio, args.minutes)
            runs[str(code)].append(figures)
            print(f"round {round_ + 1} {code}: scan {figures['scan_cpu_s']:.2f} s CPU "
                  f"({figures['scan_cpu_s'] / (audio_s / 60):.3f} s per audio min), main thread "
                  f"{figures['main_cpu_s']:.2f}, total {figures['total_cpu_s']:.2f}, wall {figures['wall_s']:.1f}, "
                  f"{len(figures['detections'])} detections", flush=True)
    reference = runs[str(codes[0])][0]["detections"]
    result = {"audio_s": round(audio_s, 1), "model": str(args.model),
              "trees": {code: {**summary(r, audio_s), "same_detections_as_first": all(
                  len(x["detections"]) == len(reference) and all(a[0] == b[0] and abs(a[1] - b[1]) < 0.0015
                                                                  for a, b in zip(x["detections"], reference))
                  for x in r)} for code, r in runs.items()}}
    print(json.dumps(result, indent=1))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
