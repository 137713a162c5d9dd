"""Custom-word retraining time: three words of 20 takes, with the tool's default recipe.

    python benchmarks/bench_custom_words.py [--takes N] [--words computer,jarvis,sheila]

Measures side by side, on the same decoded data:
- synthesis of the words, filler words and near misses (a second run reuses the cache: timed too);
- the retraining alone (`--estimate-runs 0`), the figure of the < 60 s target;
- the default run, which adds the estimate by rotation.
Takes come from the real recordings in /work/shared/data (wake_words/<word> or speech_commands/<word>).
The load average is printed with the figures: on a shared machine the times scale with it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from speech_app.training.custom_words import CustomWordsRecipe, synthesize_for_words, train_custom_words
from speech_app.modelfile import load_model

DATA = Path("/work/shared/data")
TARGET_SECONDS = 60.0


def take_folder(words: list[str], n: int, root: Path) -> Path:
    for word in words:
        source = next(d for d in (DATA / "wake_words" / word, DATA / "speech_commands" / word) if d.is_dir())
        (root / word).mkdir(parents=True)
        for path in sorted(source.iterdir())[:n]:
            os.symlink(path, root / word / path.name)
    return root


def timed(label: str, function):
    """Wall seconds of the call; the CPU seconds (all threads) are printed beside them: on a machine
    shared with other jobs, CPU seconds / threads is about what an idle machine would take."""
    started, cpu_started = time.perf_counter(), time.process_time()
    result = function()
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    print(f"{label:<40} {seconds:7.1f} s wall, {cpu:7.1f} s CPU   (load average {os.getloadavg()[0]:.1f})", flush=True)
    return result, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--words", default="computer,jarvis,sheila")
    parser.add_argument("--takes", type=int, default=20)
    args = parser.parse_args()
    words = args.words.split(",")
    print(f"torch threads {torch.get_num_threads()}, cores {os.cpu_count()}")
    recipe = CustomWordsRecipe(device="cpu")
    start = load_model(None)
    with tempfile.TemporaryDirectory() as tmp:
        takes = take_folder(words, args.takes, Path(tmp) / "takes")
        synthetic, _ = timed("synthesis (first run, or cached)", lambda: synthesize_for_words(words, recipe, progress=False))
        timed("synthesis again (cached)", lambda: synthesize_for_words(words, recipe, progress=False))
        out = Path(tmp) / "m.safetensors"
        _, retrain = timed("retrain, no estimate", lambda: train_custom_words(
            [takes], words, out, replace(recipe, estimate_folds=0), init_from=start, synthetic_dir=synthetic,
            progress=False))
        result, full = timed("retrain with the estimate (default)", lambda: train_custom_words(
            [takes], words, out, recipe, init_from=start, synthetic_dir=synthetic, progress=False))
        shutil.rmtree(out.with_name("m_report"), ignore_errors=True)
    print(f"retrain {retrain:.1f} s ({'meets' if retrain < TARGET_SECONDS else 'misses'} the {TARGET_SECONDS:.0f} s "
          f"target); with the estimate {full:.1f} s, {full / retrain:.1f}x")
    print("\n".join(result.estimate.lines()))


if __name__ == "__main__":
    main()
