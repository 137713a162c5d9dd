"""Two-fold test of how a recipe recognizes on/off from speakers it never heard (DEFAULT_MODEL_STUDY.md,
sixth step). The development test holds only 6 "on" and 8 "off" clips; ../shared/data has 29 of each.

    python training/studies/onoff_folds.py make [--folds runs/folds]     # runs/folds/fold{0,1}/speech_commands
    for k in 0 1; do
      DATA_DIR=runs/folds/fold$k/speech_commands EPOCHS=20 OUT=runs/fold$k/m.safetensors \\
        training/train_speech_commands_12_multi_epoch.sh --init-from none --learning-rate 2e-3 \\
        --window-seconds 1.0 --precision bfloat16
    done
    python training/studies/onoff_folds.py score runs/fold0/m.safetensors [runs/fold1/m.safetensors]

`--init-from none` matters: the recipe's default start (the base) has heard every on/off speaker. The
recipe's `--testing-list` keeps the development test's speakers out of training.

`make` splits the on/off speakers outside the development test into two folds of about equal size;
fold k's data folder is the real data (links) less the on/off clips of fold-k speakers and of the
development test. A model trained on fold k's folder has heard neither. `score` gives each real on/off
clip the probabilities of the fold models that did not hear it: a fold's own clips get one model, the
development test's 14 clips the mean of both (with one model: its fold's clips and the development
test). It prints the clips recognized, the mean probability of the right word and where misses went.
"""

from __future__ import annotations

import argparse
import os
import sys
import zlib
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # training/: the development test, devtest.py

from devtest import DEFAULT_DATA, DEFAULT_LIST, PROJECT, read_list  # noqa: E402

from speech_app.audio import decode_files, fit_to_window, is_audio_file  # noqa: E402
from speech_app.data.dataset import speaker_of  # noqa: E402
from speech_app.inference import CommandClassifier  # noqa: E402
from speech_app.modelfile import ModelFileError  # noqa: E402

SCARCE = ("on", "off")  # the commands with about 29 real clips each
DEFAULT_FOLDS = PROJECT / "runs" / "folds"


def clips_of(data_dir: Path, word: str) -> list[Path]:
    if not (data_dir / word).is_dir():
        raise SystemExit(f"{data_dir / word}: no such folder (a Speech Commands data folder has one per word)")
    return sorted(p for p in (data_dir / word).iterdir() if is_audio_file(p))


def fold_of_speaker(data_dir: Path, devtest: set[str]) -> dict[str, int]:
    """Speaker -> fold (0 or 1), each fold holding about half the clips of each word."""
    words_of: dict[str, list[str]] = {}
    for word in SCARCE:
        for path in clips_of(data_dir, word):
            if f"{word}/{path.name}" not in devtest:
                words_of.setdefault(speaker_of(path), []).append(word)
    folds, load = {}, [Counter(), Counter()]
    # greedy balance in a fixed pseudo-random order (not the sorted one, which groups similar hashes);
    # adding clips to the data reshuffles the folds, hence `make` only into an empty folder
    for speaker in sorted(words_of, key=lambda s: zlib.crc32(s.encode())):
        fold = min((0, 1), key=lambda k: (sum(load[k][w] for w in words_of[speaker]), k))
        folds[speaker] = fold
        load[fold].update(words_of[speaker])
    return folds


def make(data_dir: Path, list_file: Path, out: Path) -> None:
    """Two data folders of links, each without its fold's on/off clips and the development test's."""
    if out.exists() and any(out.iterdir()):
        raise SystemExit(f"{out}: not empty; folds made from other data would mix (remove it first)")
    devtest = set(read_list(list_file))
    folds = fold_of_speaker(data_dir, devtest)
    for k in (0, 1):
        root = out / f"fold{k}" / data_dir.name
        root.mkdir(parents=True)
        for entry in sorted(data_dir.iterdir()):
            if entry.name not in SCARCE:
                os.symlink(entry.resolve(), root / entry.name)  # other words, noise, any split lists
                continue
            (root / entry.name).mkdir()
            for path in clips_of(data_dir, entry.name):
                if f"{entry.name}/{path.name}" not in devtest and folds[speaker_of(path)] != k:
                    os.symlink(path.resolve(), root / entry.name / path.name)
        kept = {w: len(list((root / w).iterdir())) for w in SCARCE}
        print(f"{root}: real clips left for training {kept}")


def held_out_mean(probabilities: list[np.ndarray], trained: list[set[str]], names: list[str]) -> tuple[np.ndarray, list[int]]:
    """Per clip, the mean of the probabilities of the models that did not train on it, and the clips'
    indices; clips every model trained on are left out."""
    rows, kept = [], []
    for i, name in enumerate(names):
        unheard = [p[i] for p, seen in zip(probabilities, trained) if name not in seen]
        if unheard:
            rows.append(np.mean(unheard, axis=0))
            kept.append(i)
    return (np.stack(rows) if rows else np.empty((0, probabilities[0].shape[1]))), kept


def load_classifier(model: Path, fold_root: Path) -> CommandClassifier:
    """The model, checked to be trained on the fold's folder (a model that heard the fold's speakers
    would flatter itself)."""
    try:
        classifier = CommandClassifier.from_file(model)
    except (ModelFileError, OSError) as err:
        raise SystemExit(f"{model}: {err}") from None
    trained_on = [Path(d).resolve() for d in classifier.bundle.info.get("trained_on", {}).get("data", [])]
    if fold_root.resolve() not in trained_on:
        raise SystemExit(f"{model}: not trained on {fold_root} (its data: {', '.join(map(str, trained_on)) or 'unknown'})")
    return classifier


def score(data_dir: Path, list_file: Path, folds_dir: Path, models: list[Path]) -> None:
    devtest = set(read_list(list_file))
    fold_roots = [folds_dir / f"fold{k}" / data_dir.name for k in range(len(models))]
    missing = [str(r) for r in fold_roots if not r.is_dir()]
    if missing:
        raise SystemExit(f"{missing[0]}: no such fold folder (run `make` first, or pass --folds)")
    classifiers = [load_classifier(m, r) for m, r in zip(models, fold_roots)]
    labels = classifiers[0].labels
    if any(c.labels != labels for c in classifiers):
        raise SystemExit(f"{models[1]}: labels differ from {models[0]}'s")
    if not set(SCARCE) <= set(labels):
        raise SystemExit(f"{models[0]}: recognizes no {' or '.join(w for w in SCARCE if w not in labels)}")
    covers = " + ".join(f"fold {k}'s speakers" for k in range(len(models))) + " + the development test"
    for word in SCARCE:
        files = clips_of(data_dir, word)
        audio = decode_files([str(f) for f in files], progress=False)
        bad = [(f, a) for f, a in zip(files, audio) if not isinstance(a, np.ndarray)]
        if bad:
            raise SystemExit(f"{bad[0][0]}: {bad[0][1]}")
        probabilities = [c.probabilities(np.stack([fit_to_window(a, c.window_samples) for a in audio]))
                         for c in classifiers]
        trained = [{p.name for p in (r / word).iterdir()} for r in fold_roots]
        mean, kept = held_out_mean(probabilities, trained, [f.name for f in files])
        guesses = [labels[i] for i in mean.argmax(axis=1)]
        in_dev = sum(f"{word}/{files[i].name}" in devtest for i in kept)
        misses = Counter(g for g in guesses if g != word).most_common(3)
        print(f"{word}: {guesses.count(word)}/{len(guesses)} recognized ({covers}: {len(kept) - in_dev} + {in_dev} "
              f"clips), mean probability of {word} {mean[:, labels.index(word)].mean():.2f}; misses {dict(misses)}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("command", choices=("make", "score"))
    p.add_argument("models", nargs="*", type=Path, help="score: the model trained on fold 0's folder, then fold 1's")
    p.add_argument("--data", type=Path, default=DEFAULT_DATA)
    p.add_argument("--list", type=Path, default=DEFAULT_LIST)
    p.add_argument("--folds", type=Path, default=DEFAULT_FOLDS, help="where `make` writes the fold folders")
    args = p.parse_intermixed_args()
    for path in (args.data, args.list):
        if not path.exists():
            p.error(f"{path}: no such file or folder")
    if args.command == "make":
        if args.models:
            p.error("make takes no models")
        make(args.data, args.list, args.folds)
    elif not 1 <= len(args.models) <= 2:
        p.error("score takes the fold-0 model and optionally the fold-1 model")
    else:
        score(args.data, args.list, args.folds, args.models)


if __name__ == "__main__":
    main()
