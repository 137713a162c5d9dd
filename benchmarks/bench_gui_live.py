"""The Live tab's inference worker on PyTorch and on ONNX Runtime, side by side in one GUI process.

    python benchmarks/bench_gui_live.py [--model M] [--seconds 30] [--rounds 3] [--json out.json]

The app imports torch whatever the Live tab runs on (the Batch and Custom words tabs need it:
speech_app/gui/workers.py), so the runtime cannot save the process the memory `listen` saves; what it
can save is CPU per hop. This process imports the GUI's workers module first, as the app does, then
feeds the same stream of sample clips (datasets/samples, with gaps) to a StreamingRecognizer on each
runtime in POLL_MS blocks, as the worker's timer does, one thread each (the worker's settings), in
alternating rounds. Reported: process CPU per hop (median of the rounds), and whether the detections
are the same on both runtimes. NumPy's BLAS threads are left as the app leaves them ("onnx"), and
capped to one as `listen` caps them ("onnx, 1 BLAS thread").
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_listen import sample_stream  # noqa: E402


def feed(recognizer, stream: np.ndarray, block: int) -> tuple[float, list]:
    """Process CPU seconds per hop, and the detections, of one pass over the stream."""
    recognizer.reset()
    detections = []
    started = time.process_time()
    for begin in range(0, len(stream), block):
        detections += [(d.label, round(d.time_s, 3)) for d in recognizer.feed(stream[begin : begin + block])]
    return (time.process_time() - started) / max(1, recognizer.evaluations), detections


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None, help="model file (default: the shipped model)")
    parser.add_argument("--seconds", type=float, default=30.0, help="audio fed per round and runtime")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    from speech_app.gui import workers  # torch and the GUI's modules, as in the app

    import torch
    from threadpoolctl import threadpool_limits

    from speech_app.audio import SAMPLE_RATE
    from speech_app.inference import CommandClassifier
    from speech_app.onnx_runtime import choose_runtime
    from speech_app.streaming import LIVE_TORCH_THREADS, StreamingRecognizer

    torch.set_num_threads(LIVE_TORCH_THREADS)  # as the live worker sets its thread
    stream = sample_stream(args.seconds)
    block = int(SAMPLE_RATE * workers.POLL_MS / 1000)
    recognizers = {"torch": StreamingRecognizer(CommandClassifier.from_file(args.model, "cpu")),
                   "onnx": StreamingRecognizer(choose_runtime(args.model, "onnx").classifier)}
    runs = {"torch": "torch", "onnx": "onnx", "onnx, 1 BLAS thread": "onnx"}
    cpu = {name: [] for name in runs}
    found = {}
    for name, runtime in runs.items():  # warm-up pass (first calls allocate), detections kept
        with threadpool_limits(1, user_api="blas") if "BLAS" in name else _nothing():
            found[name] = feed(recognizers[runtime], stream, block)[1]
    for _ in range(args.rounds):
        for name, runtime in runs.items():
            with threadpool_limits(1, user_api="blas") if "BLAS" in name else _nothing():
                cpu[name].append(feed(recognizers[runtime], stream, block)[0])
    hop_ms = 1000 * recognizers["torch"].settings.hop_samples / SAMPLE_RATE
    results = {"stream_s": args.seconds, "rounds": args.rounds, "block_ms": workers.POLL_MS, "hop_ms": hop_ms,
               "torch_imported": "torch" in sys.modules, "model": str(args.model or "shipped")}
    for name in runs:
        ms = 1000 * statistics.median(cpu[name])
        results[name] = {"cpu_ms_per_hop": ms, "core_percent": 100 * ms / hop_ms, "rounds_ms": [1000 * c for c in cpu[name]],
                         "detections": len(found[name]), "same_detections_as_torch": found[name] == found["torch"]}
        print(f"{name:<22} {ms:6.3f} ms CPU per {hop_ms:.0f} ms hop ({100 * ms / hop_ms:.2f}% of a core), "
              f"{len(found[name])} detections, same as torch: {found[name] == found['torch']}")
    for name in runs:
        if name != "torch":
            results[f"{name} / torch"] = results[name]["cpu_ms_per_hop"] / results["torch"]["cpu_ms_per_hop"]
            print(f"{name} / torch CPU per hop: {results[f'{name} / torch']:.2f}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


if __name__ == "__main__":
    main()
