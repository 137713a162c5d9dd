"""`speech-app listen` on PyTorch and on ONNX Runtime, side by side: resident memory and CPU of the live
process, and the speed and memory of `listen --file` on a long recording, with their detections compared.

    python benchmarks/bench_listen.py [--minutes 30] [--data DIR] [--json out.json]

Each configuration runs in its own process (so one's imports never count against another's memory):
- live: the recognizer `listen` builds (its `_make_recognizer`), fed a stream of real clips in 20 ms
  blocks as the microphone delivers them. CPU: process CPU time per second of audio fed, in percent of
  one core (what it costs listening in real time); memory: resident set at the end (VmRSS) and its peak.
  "quiet room": the same, fed room noise alone (the pink noise of _background_noise_ at -50 dBFS), what
  most of an always-on day sounds like: the quiet-audio gate
  (speech_app/quiet_gate.py) answers `_silence_` there without the model once the noise floor is known.
- file: `listen --file` on a long 16 kHz recording (real commands and other words over quiet noise,
  `--minutes` long): x real time (audio seconds per wall second), CPU seconds, peak resident memory.
  "before" is the old path: the file decoded whole, PyTorch on one thread, 32 windows per call; "main
  thread" reads in blocks but runs the model where the features are made (64 windows per call, 10 s blocks).
  On a loaded machine the wall clock follows the other processes; "2-core bound" is the audio per second
  two cores of its own would give: audio / max(CPU of the main thread, all CPU / 2).
Detections: each configuration's (label, time) list against PyTorch live's, and, with --data, on the
streaming benchmark's held-out streams (benchmarks/bench_streaming.py) at the default settings, on both
runtimes and on ONNX Runtime without the quiet-audio gate (which must not change them).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
SAMPLES_DIR = REPO / "datasets" / "samples"
MIC_BLOCK_SAMPLES = 320  # 20 ms: capture.BLOCK_MS
LIVE_SECONDS = 60.0  # audio fed to each live configuration
GAP_S = 1.5
DEFAULT_DATA = Path("/work/shared/data/speech_commands")
QUIET_ROOM_NOISE = "pink_noise"  # _background_noise_ recording under the quiet-room stream
QUIET_ROOM_RMS = 0.0033  # -50 dBFS: the pink noise recording as it is (a quiet room through a laptop's microphone)
CONFIGS = {  # name -> (runtime, file scan: threads, windows per call, decode whole)
    "live torch": ("torch", None),
    "live onnx": ("onnx", None),
    "live torch, quiet room": ("torch", None),
    "live onnx, quiet room": ("onnx", None),
    "file before (torch, 1 thread, 32 per call, whole file)": ("torch", "before"),
    "file torch, model on the main thread (64 per call, 10 s blocks)": ("torch", "main thread"),
    "file torch": ("torch", "file"),
    "file onnx": ("onnx", "file"),
}


def sample_stream(seconds: float) -> np.ndarray:
    from speech_app.audio import SAMPLE_RATE, load_audio

    clips = [load_audio(p) for p in sorted(SAMPLES_DIR.iterdir()) if p.suffix in (".wav", ".flac", ".ogg")]
    gap = np.zeros(int(GAP_S * SAMPLE_RATE), np.float32)
    one = np.concatenate([part for c in clips for part in (c, gap)])
    return np.resize(one, int(seconds * SAMPLE_RATE)).astype(np.float32)


def quiet_room_stream(seconds: float, data_dir: Path) -> np.ndarray:
    """Room noise alone: a _background_noise_ recording at a low level (white noise at that level without the data)."""
    from speech_app.audio import SAMPLE_RATE, load_audio

    noise_dir = data_dir / "_background_noise_"
    found = sorted(noise_dir.glob(f"{QUIET_ROOM_NOISE}.*")) if noise_dir.is_dir() else []
    noise = load_audio(found[0]) if found else np.random.default_rng(0).standard_normal(SAMPLE_RATE * 10)
    noise = noise * (QUIET_ROOM_RMS / max(float(np.std(noise)), 1e-9))
    return np.resize(noise, int(seconds * SAMPLE_RATE)).astype(np.float32)


def long_recording(path: Path, minutes: float, data_dir: Path) -> Path:
    """Real clips (held-out speakers' commands and other words, as the streaming benchmark builds
    them) over quiet noise, repeated to `minutes`, written as 16 kHz 16-bit WAV."""
    import soundfile as sf

    from speech_app.audio import SAMPLE_RATE

    if data_dir.is_dir():
        sys.path.insert(0, str(REPO / "benchmarks"))
        sys.path.insert(0, str(REPO / "training"))
        import bench_streaming

        stream = bench_streaming_stream(bench_streaming, data_dir).samples
    else:
        stream = sample_stream(60.0)
    sf.write(path, np.resize(stream, int(minutes * 60 * SAMPLE_RATE)), SAMPLE_RATE, subtype="PCM_16")
    return path


def bench_streaming_stream(bench_streaming, data_dir: Path):
    from speech_app.audio import decode_files, load_audio

    rng = np.random.default_rng(bench_streaming.SEED)
    commands, others = bench_streaming.held_out_clips(data_dir, rng)
    decoded = decode_files([str(p) for _, p in commands + others])
    clips = [(w, a) for (w, _), a in zip(commands + others, decoded) if isinstance(a, np.ndarray)]
    clips = [clips[i] for i in rng.permutation(len(clips))]
    noise_dir = data_dir / bench_streaming.BACKGROUND_NOISE_DIR
    noise = load_audio(sorted(p for p in noise_dir.iterdir() if p.is_file())[0])
    return bench_streaming.build_stream(clips, noise, rng)


# -- what runs in each child process ----------------------------------------------------------------

def memory_mb() -> tuple[float, float]:
    status = Path("/proc/self/status").read_text()
    field = lambda name: int(status.split(f"{name}:")[1].split()[0]) / 1024  # noqa: E731
    return field("VmRSS"), field("VmHWM")


def child(config: str, audio: Path, out: Path) -> None:
    from speech_app.cli import listen

    runtime, mode = CONFIGS[config]
    args = argparse.Namespace(model=None, runtime=runtime, precision="float32", threshold=None, suppression_ms=None,
                              list_devices=False, device=None,
                              file=audio if mode else None, format="jsonl", duration=None)
    started_cpu, started = time.process_time(), time.perf_counter()
    if mode == "before":
        detections = run_before(args)
    elif mode in ("file", "main thread"):
        lines, recognizer = _StringOut(), listen._make_recognizer(args)
        if mode == "main thread":
            from speech_app.streaming import StreamingRecognizer

            recognizer.close()
            recognizer = StreamingRecognizer(recognizer.classifier, recognizer.settings, batch_windows=64)
            listen.FILE_BLOCK_SECONDS = 10.0
        scan_cpu, scan = time.process_time(), time.perf_counter()  # the scan alone, as "before" reports it
        main_cpu = time.thread_time()
        assert listen._listen_to_file(recognizer, args, lines) == 0
        print(json.dumps({"scan_cpu_s": time.process_time() - scan_cpu, "scan_wall_s": time.perf_counter() - scan,
                          "main_thread_cpu_s": time.thread_time() - main_cpu}))
        detections = [(r["label"], r["time"]) for r in map(json.loads, lines.lines)]
    else:
        detections = run_live(listen._make_recognizer(args), audio)
    rss, peak = memory_mb()
    modules = sorted(m for m in ("torch", "torchaudio", "librosa", "onnxruntime") if m in sys.modules)
    out.write_text(json.dumps({"cpu_s": time.process_time() - started_cpu, "wall_s": time.perf_counter() - started,
                               "rss_mb": rss, "peak_rss_mb": peak, "modules": modules, "detections": detections}))


class _StringOut:
    def __init__(self):
        self.lines = []

    def write(self, text: str) -> None:
        self.lines += [line for line in text.splitlines() if line.strip()]

    def flush(self) -> None:
        pass


def run_live(recognizer, audio: Path) -> list:
    from speech_app.audio import load_audio
    from speech_app.streaming import iter_blocks

    samples = load_audio(audio)
    detections = []
    started = time.process_time()  # the stream's decoding is not the live path's
    for block in iter_blocks(samples, MIC_BLOCK_SAMPLES):
        detections += [(d.label, round(d.time_s, 3)) for d in recognizer.feed(block)]
    detections += [(d.label, round(d.time_s, 3)) for d in recognizer.feed(np.zeros(16_000, np.float32))]
    print(json.dumps({"live_cpu_s": time.process_time() - started, "audio_s": len(samples) / 16_000}), flush=True)
    return detections


def run_before(args) -> list:
    """The path `listen --file` took before: decoded whole, PyTorch on one thread, 32 windows per call."""
    import torch

    from speech_app.audio import load_audio
    from speech_app.inference import CommandClassifier
    from speech_app.streaming import StreamingRecognizer, recognize_samples

    torch.set_num_threads(1)
    recognizer = StreamingRecognizer(CommandClassifier.from_file(None), batch_windows=32)
    scan_cpu, scan = time.process_time(), time.perf_counter()
    detections = recognize_samples(recognizer, load_audio(args.file), 1_600)
    print(json.dumps({"scan_cpu_s": time.process_time() - scan_cpu, "scan_wall_s": time.perf_counter() - scan,
                      "main_thread_cpu_s": time.process_time() - scan_cpu}))
    return [(d.label, round(d.time_s, 3)) for d in detections]


# -- the parent -------------------------------------------------------------------------------------

def run_config(config: str, audio: Path) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "result.json"
        done = subprocess.run([sys.executable, __file__, "--child", config, str(audio), str(out)], cwd=REPO,
                              capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
        if done.returncode != 0:
            raise SystemExit(f"{config} failed:\n{done.stderr}")
        result = json.loads(out.read_text())
    for line in done.stdout.splitlines():
        if line.startswith("{"):
            result.update(json.loads(line))
    if "live_cpu_s" in result:
        result["cpu_percent_of_core"] = 100 * result["live_cpu_s"] / result["audio_s"]
    return result


def streaming_benchmark_parity(data_dir: Path) -> dict:
    """Default-setting detections of the streaming benchmark's held-out speech stream, on both runtimes."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    sys.path.insert(0, str(REPO / "training"))
    import bench_streaming
    import torch

    from speech_app.inference import CommandClassifier
    from speech_app.onnx_runtime import choose_runtime, limit_numpy_threads
    from speech_app.streaming import StreamingRecognizer, recognize_samples

    torch.set_num_threads(1)
    limit_numpy_threads()  # as `listen` does
    stream = bench_streaming_stream(bench_streaming, data_dir)
    found = {}
    onnx = choose_runtime(None).classifier
    for name, classifier, gate in (("torch", CommandClassifier.from_file(), True), ("onnx", onnx, True),
                                   ("onnx_without_gate", onnx, False)):
        recognizer = StreamingRecognizer(classifier, quiet_gate=gate)
        detections = recognize_samples(recognizer, stream.samples, bench_streaming.BLOCK_SAMPLES)
        found[name] = {"detections": [(d.label, round(d.time_s, 3)) for d in detections],
                       **bench_streaming.score_detections(stream, detections)}
        if gate:
            found[name]["windows_skipped"] = recognizer.quiet_gate.skipped / max(1, recognizer.evaluations)
    same = found["torch"]["detections"] == found["onnx"]["detections"]
    same_gate = found["onnx"]["detections"] == found["onnx_without_gate"]["detections"]
    return {"minutes": len(stream.samples) / 16_000 / 60, "same_detections": same,
            "same_detections_without_gate": same_gate, "windows_skipped_by_gate": found["onnx"]["windows_skipped"],
            **{f"{k}_{m}": found[k][m] for k in found for m in ("recall", "precision", "detections")}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="length of the long recording for --file")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="Speech Commands folder (held-out clips)")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child[0], Path(args.child[1]), Path(args.child[2]))
    import soundfile as sf

    results: dict = {"cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory() as folder:
        live_audio, quiet_audio = Path(folder) / "live.wav", Path(folder) / "quiet.wav"
        sf.write(live_audio, sample_stream(LIVE_SECONDS), 16_000, subtype="PCM_16")
        sf.write(quiet_audio, quiet_room_stream(LIVE_SECONDS, args.data), 16_000, subtype="PCM_16")
        long_audio = long_recording(Path(folder) / "long.wav", args.minutes, args.data)
        audio_s = sf.info(str(long_audio)).duration
        for config, (_, mode) in CONFIGS.items():
            result = run_config(config, long_audio if mode else quiet_audio if "quiet" in config else live_audio)
            if mode:  # the scan, after the model is loaded (start-up: wall_s - scan_wall_s)
                result["x_real_time"], result["audio_s"] = audio_s / result["scan_wall_s"], audio_s
                result["x_real_time_2_core_bound"] = audio_s / max(result["main_thread_cpu_s"], result["scan_cpu_s"] / 2)
            results[config] = result
            print(summary_line(config, result), flush=True)
    reference = {"live": results["live torch"]["detections"], "quiet": results["live torch, quiet room"]["detections"],
                 "file": results[next(iter(c for c in CONFIGS if "before" in c))]["detections"]}
    for config, (_, mode) in CONFIGS.items():
        kind = "file" if mode else "quiet" if "quiet" in config else "live"
        results[config]["same_detections"] = results[config]["detections"] == reference[kind]
    print("same detections as PyTorch:", {c: results[c]["same_detections"] for c in CONFIGS})
    if args.data.is_dir():
        results["streaming_benchmark"] = streaming_benchmark_parity(args.data)
        print("streaming benchmark streams:", results["streaming_benchmark"])
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")


def summary_line(config: str, r: dict) -> str:
    speed = (f"{r['x_real_time']:6.0f}x real time ({r['x_real_time_2_core_bound']:.0f}x on 2 free cores), "
             if "x_real_time" in r else "")
    cpu = (f"CPU {r['cpu_percent_of_core']:.2f}% of a core, " if "cpu_percent_of_core" in r
           else f"CPU {r['audio_s'] / r['scan_cpu_s']:.0f} s of audio per CPU second, ")
    return (f"{config:<56} {speed}{cpu}RSS {r['rss_mb']:.0f} MB (peak {r['peak_rss_mb']:.0f}), "
            f"{len(r['detections'])} detections, loaded: {', '.join(r['modules'])}")


if __name__ == "__main__":
    main()
