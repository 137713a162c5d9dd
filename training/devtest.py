"""The development test: speakers never heard in training, in the official test's composition.

    python training/devtest.py make  [--data DIR] [--extra DIR ...] [--out training/devtest_list.txt]
    python training/devtest.py score MODEL [MODEL ...] [--data DIR] [--extra DIR ...] [--json FILE]

`make` lists the clips (paths relative to the data folder) of every speaker the speaker hash puts
outside training (the dataset's validation and testing bands, which the shipped model never trained
on): each command's clips up to 400, and for `_unknown_` up to 16 clips of each of the 25 other
words, the official test's even spread. `score` adds 408 `_silence_` windows of the background noise
and reports recall per class, `_unknown_` per word, and two summaries that predict the official
Speech Commands v0.02 test: overall accuracy with the official class counts as weights, and
`_unknown_` recall with every other word weighted alike. training/DEVTEST.md says why.

A second data folder in the same layout (`--extra`, by default ../shared/data/on_off_extra: real on/off
from outside Speech Commands) gives the test part of its clips: every one-clip pseudo-speaker whose
speaker hash falls in the lower EXTRA_HELD_OUT_PERCENT, never a self-recorded person (whose many takes
train). Its lines are named `<folder name>/<word>/<file>`; the main folder's lines stay `<word>/<file>`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from speech_app.audio import decode_files, fit_to_window
from speech_app.data.dataset import (BACKGROUND_NOISE_DIR, SILENCE_LABEL, STANDARD_WORDS, UNKNOWN_LABEL, speaker_of,
                                which_set, word_folders)
from speech_app.inference import CommandClassifier
from speech_app.data.noise import SILENCE_MAX_VOLUME, NoiseBank

PROJECT = Path(__file__).resolve().parent.parent
# ../shared/data next to the checkout (a worktree one level deeper looks one level further up)
DEFAULT_DATA = next((d for d in (PROJECT.parent / "shared/data/speech_commands",
                                 PROJECT.parent.parent / "shared/data/speech_commands") if d.is_dir()),
                    PROJECT.parent / "shared/data/speech_commands")
DEFAULT_EXTRA = DEFAULT_DATA.parent / "on_off_extra"
DEFAULT_LIST = PROJECT / "training" / "devtest_list.txt"
EXTRA_HELD_OUT_PERCENT = 50  # share of the second folder's one-clip speakers that test (the rest train)
PERSON_MIN_TAKES = 10  # a speaker with this many clips in the second folder is one person's own takes
MAX_PER_COMMAND = 400  # the official test has about 400 clips of every class
UNKNOWN_PER_WORD = 16  # the official test's `_unknown_`: about 16 clips of each of the 25 other words
SILENCE_WINDOWS = 408  # as many `_silence_` clips as the official test
SILENCE_SEED = 20260
# clips per class in the official v0.02 12-class test set (4,890 clips): the weights of the overall figure
OFFICIAL_COUNTS = {SILENCE_LABEL: 408, UNKNOWN_LABEL: 408, "yes": 419, "no": 405, "up": 425, "down": 406,
                   "left": 412, "right": 396, "on": 396, "off": 402, "stop": 411, "go": 402}


def _stable_order(paths: list[Path]) -> list[Path]:
    """A fixed order that does not depend on the file system (so the cap keeps the same clips)."""
    return sorted(paths, key=lambda p: hashlib.sha1(p.name.encode()).hexdigest())


def make_list(data_dir: Path) -> list[str]:
    """Relative paths of the development-test clips: held-out speakers only."""
    lines = []
    for word, files in word_folders(data_dir).items():
        held_out = _stable_order([p for p in files if which_set(p) != "training"])
        cap = MAX_PER_COMMAND if word in STANDARD_WORDS else UNKNOWN_PER_WORD
        lines += sorted(p.relative_to(data_dir).as_posix() for p in held_out[:cap])
    return lines


def make_extra_list(extra_dir: Path) -> list[str]:
    """Lines of the second folder's held-out clips: one-clip speakers in the hash's lower band, all of
    them (no cap: these are the scarce words the first folder cannot measure)."""
    takes = Counter(speaker_of(p) for files in word_folders(extra_dir).values() for p in files)
    lines = []
    for files in word_folders(extra_dir).values():
        lines += sorted(f"{extra_dir.name}/{p.relative_to(extra_dir).as_posix()}" for p in files
                        if takes[speaker_of(p)] < PERSON_MIN_TAKES
                        and which_set(p, EXTRA_HELD_OUT_PERCENT, 0.0) == "validation")
    return lines


def resolve(line: str, data_dir: Path, extra_dirs: list[Path]) -> tuple[Path, str]:
    """(file, word) of a list line: `<extra folder name>/<word>/<file>` or `<word>/<file>` of `data_dir`."""
    parts = line.split("/")
    for extra in extra_dirs:
        if len(parts) == 3 and parts[0] == extra.name:
            return extra / parts[1] / parts[2], parts[1]
    if len(parts) == 3:
        raise SystemExit(f"{line}: a clip of a second data folder named {parts[0]!r}; pass it with --extra")
    return data_dir / line, parts[0]


def read_list(list_file: Path) -> list[str]:
    return [line.strip() for line in list_file.read_text().splitlines() if line.strip() and not line.startswith("#")]


def silence_windows(data_dir: Path, n_samples: int) -> np.ndarray:
    noise_files = sorted(p for p in (data_dir / BACKGROUND_NOISE_DIR).iterdir() if p.is_file())
    bank, rng = NoiseBank.from_files(noise_files), np.random.default_rng(SILENCE_SEED)
    return np.stack([bank.window(rng, n_samples) * rng.uniform(0.0, SILENCE_MAX_VOLUME) for _ in range(SILENCE_WINDOWS)])


def default_extra_dirs() -> list[Path]:
    return [DEFAULT_EXTRA] if DEFAULT_EXTRA.is_dir() else []


def load_devtest(data_dir: Path, list_file: Path, n_samples: int,
                 extra_dirs: list[Path] | None = None) -> tuple[np.ndarray, list[str], list[str], list[str]]:
    """(waves (N, n_samples), label, word and speaker per clip), `_silence_` windows last (speaker "")."""
    extra_dirs = default_extra_dirs() if extra_dirs is None else list(extra_dirs)
    files, clip_words = zip(*(resolve(line, data_dir, extra_dirs) for line in read_list(list_file)))
    decoded = decode_files([str(f) for f in files], progress=False)
    waves, labels, words = [], [], []
    for path, word, audio in zip(files, clip_words, decoded):
        if not isinstance(audio, np.ndarray):
            raise SystemExit(f"{path}: {audio}")
        waves.append(fit_to_window(audio, n_samples))
        words.append(word)
        labels.append(word if word in STANDARD_WORDS else UNKNOWN_LABEL)
    silence = silence_windows(data_dir, n_samples)
    return (np.concatenate([np.stack(waves), silence]).astype(np.float32),
            labels + [SILENCE_LABEL] * len(silence), words + [SILENCE_LABEL] * len(silence),
            [speaker_of(f) for f in files] + [""] * len(silence))


def clustered_standard_error(right: list[bool], speakers: list[str]) -> float:
    """Standard error of a recall whose clips come in speakers (a speaker's takes fail together):
    sqrt(sum over speakers of (right - recall x clips)^2) / clips. Windows of noise are each their own."""
    recall, by_speaker = float(np.mean(right)), defaultdict(lambda: [0, 0])
    for i, (ok, speaker) in enumerate(zip(right, speakers)):
        key = speaker or f"#{i}"
        by_speaker[key][0] += ok
        by_speaker[key][1] += 1
    return float(np.sqrt(sum((c - recall * n) ** 2 for c, n in by_speaker.values()))) / len(right)


def score(classifier: CommandClassifier, waves: np.ndarray, labels: list[str], words: list[str],
          speakers: list[str] | None = None) -> dict:
    predicted = [classifier.labels[i] for i in classifier.probabilities(waves).argmax(axis=1)]
    speakers = speakers or [""] * len(labels)
    per_class, per_word, confusions = defaultdict(lambda: [0, 0]), defaultdict(lambda: [0, 0]), defaultdict(int)
    for truth, word, guess in zip(labels, words, predicted):
        per_class[truth][0] += guess == truth
        per_class[truth][1] += 1
        if truth == UNKNOWN_LABEL:
            per_word[word][0] += guess == truth
            per_word[word][1] += 1
        if guess != truth:
            confusions[f"{word if truth == UNKNOWN_LABEL else truth}->{guess}"] += 1
    recall = {label: per_class[label][0] / per_class[label][1] for label in OFFICIAL_COUNTS if per_class[label][1]}
    standard_error = {label: clustered_standard_error(
        [g == t for t, g in zip(labels, predicted) if t == label], [s for t, s in zip(labels, speakers) if t == label])
        for label in recall}
    word_recall = {w: c / n for w, (c, n) in sorted(per_word.items())}
    balanced_unknown = float(np.mean(list(word_recall.values())))
    weighted = {**recall, UNKNOWN_LABEL: balanced_unknown}
    return {
        "predicted_official_accuracy": sum(weighted[c] * n for c, n in OFFICIAL_COUNTS.items()) / sum(OFFICIAL_COUNTS.values()),
        "accuracy": sum(c for c, _ in per_class.values()) / len(labels),
        "clips": len(labels),
        "recall": recall,
        "recall_standard_error": standard_error,
        "counts": {label: per_class[label][1] for label in recall},
        "unknown_word_balanced": balanced_unknown,
        "unknown_per_word": {w: per_word[w] for w in word_recall},
        "confusions": dict(sorted(confusions.items(), key=lambda kv: -kv[1])[:15]),
    }


def print_score(name: str, result: dict) -> None:
    print(f"## {name}\npredicted official accuracy {result['predicted_official_accuracy']:.4f}; "
          f"plain accuracy {result['accuracy']:.4f} on {result['clips']} clips; "
          f"_unknown_ word-balanced {result['unknown_word_balanced']:.4f}")
    errors = result.get("recall_standard_error", {})
    print("  " + ", ".join(f"{label} {r:.3f}" + (f"+-{errors[label]:.3f}" if label in errors else "")
                           + f" ({result['counts'][label]})" for label, r in result["recall"].items()))
    print("  unknown per word: " + ", ".join(f"{w} {c}/{n}" for w, (c, n) in result["unknown_per_word"].items()))
    print("  confusions: " + ", ".join(f"{k} {v}" for k, v in result["confusions"].items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    make = sub.add_parser("make")
    make.add_argument("--data", type=Path, default=DEFAULT_DATA)
    make.add_argument("--extra", type=Path, action="append", help=f"a second data folder (default {DEFAULT_EXTRA})")
    make.add_argument("--out", type=Path, default=DEFAULT_LIST)
    run = sub.add_parser("score")
    run.add_argument("models", type=Path, nargs="+")
    run.add_argument("--data", type=Path, default=DEFAULT_DATA)
    run.add_argument("--extra", type=Path, action="append", help=f"a second data folder (default {DEFAULT_EXTRA})")
    run.add_argument("--list", type=Path, default=DEFAULT_LIST)
    run.add_argument("--json", type=Path, help="write every model's figures here")
    args = parser.parse_args()
    extra_dirs = args.extra or default_extra_dirs()
    if args.command == "make":
        lines = make_list(args.data) + [line for d in extra_dirs for line in make_extra_list(d)]
        args.out.write_text("# development test: `python training/devtest.py make` (see training/DEVTEST.md)\n"
                            + "\n".join(lines) + "\n")
        print(f"{args.out}: {len(lines)} clips")
        return
    results, loaded = {}, {}
    for model in args.models:
        classifier = CommandClassifier.from_file(model)
        key = classifier.window_samples
        if key not in loaded:
            loaded[key] = load_devtest(args.data, args.list, key, extra_dirs)
        results[str(model)] = score(classifier, *loaded[key])
        print_score(str(model), results[str(model)])
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
