"""Custom-word retraining time: four words of 20 takes, with the tool's default recipe.

    python benchmarks/bench_custom_words.py [--threads 2] [--takes N] [--words computer,jarvis,sheila,marvin]
                                            [--text-only | --no-takes] [--synth-cache DIR] [--sample-rate HZ]
                                            [--split-only] [--in-turn] [--recipe JSON]

A first training, as a new user pays it: `XDG_CACHE_HOME=$(mktemp -d) python ... --split-only` (no
synthetic speech, decoded clips or conversation windows cached yet). The rows of issue 24:
`--split-only`, `--split-only --no-takes`, and `--split-only --words bed,bird,cat,dog,happy,house,
marvin,sheila,tree,wow --takes 10 --sample-rate 8000` (the takes as 8 kHz WAV files).

Measures side by side, in one process, on the same decoded data (wall and CPU seconds, load average):
- synthesis of the words, filler words and near misses (a second run reuses the cache: timed too);
- a one-batch warm-up run: the imports and first-use costs every `speech-app train` pays once;
- the retraining alone (`--estimate-runs 0`);
- the default run (training and the estimate), the figure of the "retrain in under 60 s on the
  2-core CPU" target. The verdict is on the warm-up and the default run together (what a fresh
  `speech-app train` of new takes pays: imports, decoding every clip, training, the estimate), wall
  time at --threads torch threads (default 2).
- where the CPU goes (this process and its children: the synthesis workers and engines), stage by
  stage: synthesis, choosing the window, decoding, the estimate run, the final run, the report and
  model file, in CPU and wall seconds. A busy machine stretches wall time, not CPU time: the CPU
  split is the figure to compare.
  With --text-only, the same split for a model of the words from text alone (no takes).
  The estimate runs in a side process beside the final run where it can (training/side_process.py): its CPU
  is counted when the parent waits for it, its wall time is that wait. `--in-turn` runs it before the final
  run in the same process, as before the side process (SPEECH_APP_NO_SIDE_PROCESS=1).
`--recipe '{"steps": 100, "hard_negative_steps": 30}'` changes recipe settings (e.g. the step budgets of the final
run and the second pass), as bench_conversation.py's --recipe.
Takes come from the real recordings in /work/shared/data (wake_words/<word> or speech_commands/<word>).
On a busy machine (load average above QUIET_LOAD before the runs) the wall times are not the
target's: the verdict says so, and CPU seconds / threads is about what a quiet machine would take.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from speech_app.modelfile import load_model
from speech_app.training import custom_words, hard_negatives, outputs, side_process, trainer
from speech_app.training.custom_words import CustomWordsRecipe, synthesize_for_words, train_custom_words

DATA = Path("/work/shared/data")
TARGET_SECONDS = 60.0
QUIET_LOAD = 0.5  # load average (1 min) under which the machine counts as quiet


def take_folder(words: list[str], n: int, root: Path, sample_rate: int | None = None) -> Path:
    """N takes of each word: links to the recordings, or with `sample_rate` WAV copies resampled to it
    (as a phone or headset records: the recipe decodes and resamples every take)."""
    from speech_app.audio import load_audio, write_wav

    for word in words:
        source = next(d for d in (DATA / "wake_words" / word, DATA / "speech_commands" / word) if d.is_dir())
        (root / word).mkdir(parents=True)
        for path in sorted(source.iterdir())[:n]:
            if sample_rate is None:
                os.symlink(path, root / word / path.name)
            else:
                write_wav(root / word / (path.stem + ".wav"), load_audio(path, sample_rate), sample_rate)
    return root


def timed(label: str, function):
    """(result, wall seconds, CPU seconds of all threads) of the call, printed with the load average."""
    started, cpu_started = time.perf_counter(), time.process_time()
    result = function()
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    print(f"{label:<42} {seconds:7.1f} s wall, {cpu:7.1f} s CPU   (load average {os.getloadavg()[0]:.1f})", flush=True)
    return result, seconds, cpu


def cpu_seconds() -> float:
    """CPU of this process and of its finished children (synthesis workers and the engines they run)."""
    return sum(r.ru_utime + r.ru_stime for r in map(resource.getrusage, (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)))


class StageSplit:
    """CPU and wall seconds per stage of the recipe, by wrapping the functions that do each stage."""

    STAGES = ((custom_words, "custom_window_seconds", "choosing the window"), (trainer, "prepare_data", "decoding"),
              (custom_words, "add_conversation", "conversation windows"),
              (hard_negatives, "firing_windows", "listening for hard negatives"),
              (custom_words, "conversation_check", "conversation check"),
              (outputs, "finish", "report and model file"),
              # the estimate beside the final run: its CPU counts here once the side process is waited for
              # (RUSAGE_CHILDREN), its wall time is what the parent waited for it after the final run
              # (a side process of the final plan's other runs is counted in the final runs around it)
              (side_process.SideCall, "result", lambda args: "estimate run(s)" if args[0].name == "estimate_aside" else None))

    def __init__(self):
        self.seconds: dict[str, float] = {}
        self.wall: dict[str, float] = {}
        self._undo = []

    def add(self, stage: str, seconds: float, wall: float = 0.0) -> None:
        self.seconds[stage] = self.seconds.get(stage, 0.0) + seconds
        self.wall[stage] = self.wall.get(stage, 0.0) + wall

    def _wrap(self, owner, name, stage_of):
        original = getattr(owner, name)

        def wrapped(*args, **kwargs):
            stage = stage_of(args)
            if stage is None:  # counted in the stage around it
                return original(*args, **kwargs)
            started, wall_started = cpu_seconds(), time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.add(stage, cpu_seconds() - started, time.perf_counter() - wall_started)

        setattr(owner, name, wrapped)
        self._undo.append((owner, name, original))

    def __enter__(self):
        for owner, name, stage in self.STAGES:
            self._wrap(owner, name, stage if callable(stage) else lambda args, stage=stage: stage)
        # a plan that measures held-out clips is the estimate; the other is the final model
        self._wrap(trainer.Trainer, "execute", lambda args: self.run_stage(args[1]))
        return self

    @staticmethod
    def run_stage(plan) -> str:
        """A plan that measures held-out clips is the estimate; the second pass says so; the other is the final model."""
        if plan.runs[0].measure is not None:
            return "estimate run(s)"
        return "second pass (hard negatives)" if (plan.runs[0].stage or "").startswith("second pass") else "final run(s)"

    def __exit__(self, *exc):
        for owner, name, original in reversed(self._undo):
            setattr(owner, name, original)

    def lines(self, total: float, total_wall: float) -> list[str]:
        rows = [(stage, seconds, self.wall[stage]) for stage, seconds in self.seconds.items()]
        rows.append(("other (index, model set-up)", total - sum(self.seconds.values()),
                     total_wall - sum(self.wall.values())))
        return [f"  {stage:<30} {seconds:7.1f} s CPU  {seconds / total:4.0%}  {wall:7.1f} s wall"
                for stage, seconds, wall in rows]


def split_run(label: str, words: list[str], takes: list[Path], recipe: CustomWordsRecipe, out: Path, start,
              synth_cache: Path | None) -> None:
    """One default run from synthesis to model file, with its CPU and wall time split by stage."""
    with StageSplit() as split:
        started, wall_started = cpu_seconds(), time.perf_counter()
        synthetic = synthesize_for_words(words, recipe, progress=False, cache_root=synth_cache)
        split.add("synthesis", cpu_seconds() - started, time.perf_counter() - wall_started)
        result = train_custom_words(takes, words, out, recipe, init_from=start, synthetic_dir=synthetic, progress=False)
        total, wall = cpu_seconds() - started, time.perf_counter() - wall_started
    print(f"split, {label}: {total:.1f} s CPU, {wall:.1f} s wall in all (load average {os.getloadavg()[0]:.1f})")
    print("\n".join(split.lines(total, wall)), flush=True)
    if result.estimate is not None:
        print("\n".join("  " + line for line in result.estimate.lines()), flush=True)


def verdict(wall: float, cpu: float, threads: int, load: float) -> str:
    met = "MEETS" if wall < TARGET_SECONDS else "MISSES"
    line = (f"verdict: warm-up and default run took {wall:.1f} s wall at {threads} torch thread(s): {met} the "
            f"{TARGET_SECONDS:.0f} s target")
    if load > QUIET_LOAD:
        line += (f" on a busy machine (load average {load:.1f} before the runs): rerun on a quiet one; "
                 f"CPU / threads = {cpu / threads:.1f} s")
    return line


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--words", default="computer,jarvis,sheila,marvin")
    parser.add_argument("--takes", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2, help="torch threads (the target machine has 2 cores)")
    parser.add_argument("--text-only", action="store_true", help="also split a model of the words from text alone")
    parser.add_argument("--synth-cache", type=Path, default=None,
                        help="synthetic-speech cache (default: the user's; an empty folder times a first synthesis)")
    parser.add_argument("--sample-rate", type=int, default=None,
                        help="takes resampled to this rate and written as WAV (default: the 16 kHz recordings)")
    parser.add_argument("--no-takes", action="store_true", help="split only the model from text alone")
    parser.add_argument("--split-only", action="store_true", help="only the CPU split, not the side-by-side runs")
    parser.add_argument("--in-turn", action="store_true",
                        help="the estimate before the final run in this process, not beside it in a side process")
    parser.add_argument("--recipe", default="{}", help="recipe settings to change, as JSON: "
                        "{\"steps\": 100, \"hard_negative_steps\": 30}")
    args = parser.parse_args()
    if args.in_turn:
        os.environ[side_process.DISABLE_ENV] = "1"
    torch.set_num_threads(args.threads)
    words = args.words.split(",")
    load = os.getloadavg()[0]
    print(f"torch threads {torch.get_num_threads()}, cores {os.cpu_count()}, load average {load:.1f}")
    recipe = CustomWordsRecipe(device="cpu", **json.loads(args.recipe))
    start = load_model(None)
    with tempfile.TemporaryDirectory() as tmp:
        takes = take_folder(words, args.takes, Path(tmp) / "takes", args.sample_rate)
        out = Path(tmp) / "m.safetensors"
        rate = f" at {args.sample_rate} Hz" if args.sample_rate else ""
        if not args.no_takes:
            split_run(f"{len(words)} words x {args.takes} takes{rate} (synthesis first, or cached)", words, [takes],
                      recipe, out, start, args.synth_cache)
        if args.text_only or args.no_takes:
            split_run(f"{len(words)} words from text alone", words, [], recipe, out, start, args.synth_cache)
        if args.split_only:
            return
        synthetic = timed("synthesis again (cached)",
                          lambda: synthesize_for_words(words, recipe, progress=False, cache_root=args.synth_cache))[0]

        def train(r: CustomWordsRecipe):
            return train_custom_words([takes], words, out, r, init_from=start, synthetic_dir=synthetic, progress=False)

        _, warm, warm_cpu = timed("warm-up: one batch, no estimate", lambda: train(replace(recipe, steps=1, estimate_folds=0)))
        _, alone, alone_cpu = timed("retrain, no estimate", lambda: train(replace(recipe, estimate_folds=0)))
        result, full, full_cpu = timed("default run: estimate and retrain", lambda: train(recipe))
        shutil.rmtree(out.with_name("m_report"), ignore_errors=True)
    print(f"estimate: {result.estimate.to_dict()['method']}; the default run is {full / alone:.2f}x the "
          f"retraining alone in wall time, {full_cpu / alone_cpu:.2f}x in CPU")
    print("\n".join(result.estimate.lines()))
    print(verdict(warm + full, warm_cpu + full_cpu, args.threads, load))


if __name__ == "__main__":
    main()
