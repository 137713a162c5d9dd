"""Custom words with the tool's default settings, measured on real voices.

    python training/studies/custom_words_study.py [--wake-words DIR] [--speech-commands DIR] [--out DIR]

For N = 20, 5 and 0 (text only) takes per word, `speech-app train` is run exactly as a user would
run it (no flags beyond the words and the output), on N takes of each wake word drawn at random.
The model is then tested on
- the other takes of each word (every take when N = 0), and
- every clip of the 35 Speech Commands words from speakers the dataset's speaker hash puts in
  validation or testing: none of them is among the bundled negatives (training speakers only),
  so the false-accept figure is for unseen voices.
Writes <out>/takes_<N>_seed_<S>/result.json and prints the table of training/studies/CUSTOM_WORDS_STUDY.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]  # the repository, above training/studies/
sys.path.insert(0, str(ROOT))
from speech_app.audio import decode_files, fit_to_window  # noqa: E402
from speech_app.data.dataset import word_folders  # noqa: E402
from speech_app.training.rejection import measure_rejection  # noqa: E402
from speech_app.inference import CommandClassifier  # noqa: E402

WORDS = ("computer", "jarvis")
TAKE_COUNTS = (20, 5, 0)
TARGETS = {20: (0.95, 0.90, 0.95), 5: (0.90, 0.80, 0.90), 0: (0.95, 0.90, 0.90)}  # takes, worst word, rejection


def pick_takes(wake_words: Path, n: int, seed: int, folder: Path) -> dict[str, list[Path]]:
    """Link n random takes of each word into folder/<word>/; return the takes left for testing."""
    rest = {}
    for word in WORDS:
        files = sorted((wake_words / word).iterdir())
        order = np.random.default_rng([seed, n, WORDS.index(word)]).permutation(len(files))
        (folder / word).mkdir(parents=True, exist_ok=True)
        for i in order[:n]:
            (folder / word / files[i].name).symlink_to(files[i])
        rest[word] = [files[i] for i in order[n:]]
    return rest


def run_train(folder: Path | None, out: Path, log: Path, train_seed: int | None = None) -> float:
    command = [sys.executable, "-m", "speech_app", "train", "--words", ",".join(WORDS), "--out", str(out), "--quiet"]
    command += ["--seed", str(train_seed)] if train_seed is not None else []
    command += [str(folder)] if folder else ["--synth"]
    started = time.monotonic()
    with open(log, "w") as handle:
        subprocess.run(command, check=True, stdout=handle, stderr=subprocess.STDOUT, cwd=ROOT,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    return time.monotonic() - started


def takes_right(classifier: CommandClassifier, rest: dict[str, list[Path]]) -> dict[str, list[int]]:
    result = {}
    for word, files in rest.items():
        audio = [a for a in decode_files(files) if isinstance(a, np.ndarray)]
        windows = np.stack([fit_to_window(a, classifier.window_samples) for a in audio])
        predicted = [classifier.labels[i] for i in classifier.probabilities(windows).argmax(axis=1)]
        result[word] = [sum(p == word for p in predicted), len(predicted)]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wake-words", type=Path, default=Path("/work/shared/data/wake_words"))
    parser.add_argument("--speech-commands", type=Path, default=Path("/work/shared/data/speech_commands"))
    parser.add_argument("--out", type=Path, default=Path("custom_words_study"))
    parser.add_argument("--seed", type=int, default=0, help="which takes are drawn")
    parser.add_argument("--takes", default=",".join(map(str, TAKE_COUNTS)), help="take counts to run")
    parser.add_argument("--train-seed", type=int, help="train with --seed S (default: the tool's default): "
                        "text only has no draw of takes, so its run-to-run noise is measured by this seed")
    parser.add_argument("--table", action="store_true", help="only print the table of the runs in --out")
    args = parser.parse_args()
    if args.table:
        print(TABLE_HEADER)
        for path in sorted(args.out.glob("takes_*/result.json"), key=lambda p: (-json.loads(p.read_text())["takes"], p)):
            print(format_row(json.loads(path.read_text())))
        return
    args.out.mkdir(parents=True, exist_ok=True)
    for n in (int(x) for x in args.takes.split(",")):
        run_dir = args.out / (f"takes_{n}_seed_{args.seed}" + (f"_train_{args.train_seed}" if args.train_seed is not None else ""))
        run_dir.mkdir(parents=True, exist_ok=True)
        folder = run_dir / "takes" if n else None
        rest = pick_takes(args.wake_words, n, args.seed, folder) if n else {
            w: sorted((args.wake_words / w).iterdir()) for w in WORDS}
        model = run_dir / "model.safetensors"
        seconds = run_train(folder, model, run_dir / "train.log", args.train_seed)
        classifier = CommandClassifier.from_file(model)
        per_word = takes_right(classifier, rest)
        rejection = measure_rejection(classifier, [args.speech_commands], progress=False)
        estimate = json.loads(json.dumps(classifier.bundle.info.get("estimate")))
        row = {"takes": n, "seed": args.seed, "train_seed": args.train_seed, "seconds": round(seconds, 1), "per_word": per_word,
               "takes_right": sum(v[0] for v in per_word.values()) / sum(v[1] for v in per_word.values()),
               "other_speech": [rejection.speech_clips - rejection.speech_false_accepts, rejection.speech_clips],
               "rejected": 1 - rejection.speech_false_accepts / rejection.speech_clips,
               "worst_other_words": sorted(rejection.per_word.items(), key=lambda kv: -kv[1][0])[:5],
               "noise_windows": [rejection.noise_windows - rejection.noise_false_accepts, rejection.noise_windows],
               "estimate": estimate}
        (run_dir / "result.json").write_text(json.dumps(row, indent=2))
        print(format_row(row), flush=True)


TABLE_HEADER = ("| takes per word | draw | other takes recognized | worst word | other speech rejected | "
                "tool's own estimate (takes / rejection) | train time | targets met |\n|---|---|---|---|---|---|---|---|")


def format_row(row: dict) -> str:
    targets = TARGETS.get(row["takes"], (0, 0, 0))
    worst = min(r / t for r, t in row["per_word"].values())
    words = ", ".join(f"{w} {r}/{t}" for w, (r, t) in row["per_word"].items())
    met = row["takes_right"] >= targets[0] and worst >= targets[1] and row["rejected"] >= targets[2]
    estimate = row["estimate"] or {}
    guess = (f"{estimate['word_accuracy']:.1%}" if estimate.get("word_accuracy") is not None else "-") + " / " + (
        f"{estimate['rejection']:.1%}" if estimate.get("rejection") is not None else "-")
    return (f"| {row['takes']} | {row['seed']} | {row['takes_right']:.1%} ({words}) | {worst:.1%} | "
            f"{row['rejected']:.1%} ({row['other_speech'][0]}/{row['other_speech'][1]}) | {guess} | "
            f"{row['seconds']:.0f} s | {'yes' if met else 'no'} |")


if __name__ == "__main__":
    main()
