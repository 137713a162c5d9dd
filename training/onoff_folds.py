"""Two-fold test of how a recipe recognizes on/off from speakers it never heard (DEFAULT_MODEL_STUDY.md,
sixth step). The development test holds only 6 "on" and 8 "off" clips; ../shared/data has 29 of each.

    python training/onoff_folds.py make --out runs/folds      # runs/folds/fold{0,1}/speech_commands
    training/train_speech_commands_12_multi_epoch.sh ... with DATA_DIR=runs/folds/fold0/speech_commands
    python training/onoff_folds.py score --folds runs/folds FOLD0_MODEL [FOLD1_MODEL]

`make` splits the on/off speakers outside the development test into two folds of about equal size
(balanced greedily, in a hash order); fold k's data folder is the real data (links) less the on/off
clips of fold-k speakers. A model trained on fold k's folder has never heard those speakers, nor the
development test's. `score` gives each real on/off clip the probabilities of the fold models that did
not train on it (the development-test clips: the mean of both) and prints the clips recognized, the
mean probability of the right word and where the misses went.
"""

from __future__ import annotations

import argparse
import os
import sys
import zlib
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from devtest import DEFAULT_DATA, DEFAULT_LIST, read_list  # noqa: E402

from speech_app.audio import decode_files, fit_to_window  # noqa: E402
from speech_app.data.dataset import speaker_of  # noqa: E402
from speech_app.inference import CommandClassifier  # noqa: E402

SCARCE = ("on", "off")  # the commands with about 29 real clips each


def fold_of_speaker(data_dir: Path, devtest: set[str]) -> dict[str, int]:
    """Speaker -> fold (0 or 1), each fold holding about half the clips of each word."""
    words_of: dict[str, list[str]] = {}
    for word in SCARCE:
        for path in sorted((data_dir / word).iterdir()):
            if f"{word}/{path.name}" not in devtest:
                words_of.setdefault(speaker_of(path), []).append(word)
    folds, load = {}, [Counter(), Counter()]
    for speaker in sorted(words_of, key=lambda s: zlib.crc32(s.encode())):
        fold = min((0, 1), key=lambda k: (sum(load[k][w] for w in words_of[speaker]), k))
        folds[speaker] = fold
        load[fold].update(words_of[speaker])
    return folds


def make(data_dir: Path, list_file: Path, out: Path) -> None:
    folds = fold_of_speaker(data_dir, set(read_list(list_file)))
    for k in (0, 1):
        root = out / f"fold{k}" / data_dir.name
        root.mkdir(parents=True, exist_ok=True)
        for folder in sorted(p for p in data_dir.iterdir() if p.is_dir()):
            if folder.name not in SCARCE:
                if not (root / folder.name).exists():
                    os.symlink(folder.resolve(), root / folder.name)
                continue
            (root / folder.name).mkdir(exist_ok=True)
            for path in sorted(folder.iterdir()):
                if folds.get(speaker_of(path), k) != k and not (root / folder.name / path.name).exists():
                    os.symlink(path.resolve(), root / folder.name / path.name)
        kept = {w: len(list((root / w).iterdir())) for w in SCARCE}
        print(f"{root}: real clips kept for training {kept}")


def score(data_dir: Path, folds_dir: Path, models: list[Path]) -> None:
    files = {w: sorted((data_dir / w).iterdir()) for w in SCARCE}
    gathered = {w: [[] for _ in files[w]] for w in SCARCE}
    labels = None
    for k, model in enumerate(models):
        classifier = CommandClassifier.from_file(model)
        labels = classifier.labels
        for word in SCARCE:
            audio = decode_files([str(f) for f in files[word]], progress=False)
            probs = classifier.probabilities(np.stack([fit_to_window(a, classifier.window_samples) for a in audio]))
            trained = folds_dir / f"fold{k}" / data_dir.name / word
            for i, path in enumerate(files[word]):
                if not (trained / path.name).exists():
                    gathered[word][i].append(probs[i])
    for word in SCARCE:
        mean = np.stack([np.mean(p, axis=0) for p in gathered[word] if p])
        guesses = [labels[i] for i in mean.argmax(axis=1)]
        misses = Counter(g for g in guesses if g != word).most_common(3)
        print(f"{word}: {guesses.count(word)}/{len(guesses)} recognized, mean probability of {word} "
              f"{mean[:, labels.index(word)].mean():.2f}; misses {dict(misses)}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("command", choices=("make", "score"))
    p.add_argument("models", nargs="*", type=Path, help="score: the model trained on fold 0's folder, then fold 1's")
    p.add_argument("--data", type=Path, default=DEFAULT_DATA)
    p.add_argument("--list", type=Path, default=DEFAULT_LIST)
    p.add_argument("--out", "--folds", dest="folds", type=Path, default=Path("runs/folds"))
    args = p.parse_intermixed_args()
    if args.command == "make":
        make(args.data, args.list, args.folds)
    elif not 1 <= len(args.models) <= 2:
        p.error("score takes the fold-0 model and optionally the fold-1 model")
    else:
        score(args.data, args.folds, args.models)


if __name__ == "__main__":
    main()
