"""Batch classification speed: the `classify` path (parallel decoding, batched inference) against
a naive loop (decode one file, run the model on it, repeat), side by side in one run.

    python benchmarks/bench_classify.py [--files N] [--model M]

Clips are written to a temporary folder first (real samples from datasets/samples, repeated),
so both paths read the same files from the page cache.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from speech_app.audio import fit_to_window, load_audio
from speech_app.inference import CommandClassifier
from speech_app.model import count_parameters, flops_per_clip

SAMPLES_DIR = Path(__file__).resolve().parent.parent / "datasets" / "samples"


def make_corpus(folder: Path, n_files: int) -> list[Path]:
    sources = sorted(p for p in SAMPLES_DIR.iterdir() if p.suffix in (".wav", ".flac", ".ogg"))
    paths = []
    for i in range(n_files):
        source = sources[i % len(sources)]
        target = folder / f"{i:05d}{source.suffix}"
        shutil.copy(source, target)
        paths.append(target)
    return paths


def naive(classifier: CommandClassifier, paths: list[Path]) -> list[str]:
    labels = []
    for path in paths:
        window = fit_to_window(load_audio(path), classifier.window_samples)
        labels.append(classifier.labels[int(np.argmax(classifier.probabilities(window[None])[0]))])
    return labels


def batched(classifier: CommandClassifier, paths: list[Path], batch_size: int) -> list[str]:
    return [r.label for r in classifier.classify_files(paths, 1, batch_size)]


def timed(fn, *args) -> tuple[float, list[str]]:
    start = time.perf_counter()
    result = fn(*args)
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=400)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--model", type=Path)
    args = parser.parse_args()
    classifier = CommandClassifier.from_file(args.model)
    config = classifier.bundle.model.config
    print(f"model: {count_parameters(classifier.model):,} parameters, "
          f"{flops_per_clip(config, classifier.bundle.features.n_frames) / 1e6:.1f} MFLOPs per clip; "
          f"torch threads {torch.get_num_threads()}")
    with tempfile.TemporaryDirectory() as tmp:
        paths = make_corpus(Path(tmp), args.files)
        naive(classifier, paths[:8])  # warm-up: page cache, lazy imports, first-call allocations
        t_naive, labels_naive = timed(naive, classifier, paths)
        t_batched, labels_batched = timed(batched, classifier, paths, args.batch_size)
    agree = sum(a == b for a, b in zip(labels_naive, labels_batched)) / len(paths)
    print(f"{'path':<34} {'seconds':>8} {'files/s':>9}")
    print(f"{'naive (one file at a time)':<34} {t_naive:>8.2f} {len(paths) / t_naive:>9.1f}")
    print(f"{'classify (parallel decode, batch ' + str(args.batch_size) + ')':<34} {t_batched:>8.2f} "
          f"{len(paths) / t_batched:>9.1f}")
    print(f"speed-up: {t_naive / t_batched:.2f}x; same labels on {agree:.1%} of {len(paths)} files")


if __name__ == "__main__":
    main()
