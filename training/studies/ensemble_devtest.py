"""Development-test figures of ensembles: the average of several models' class probabilities.

    python training/studies/ensemble_devtest.py A.safetensors,B.safetensors [A.safetensors,C.safetensors ...] [--json FILE]

Each argument is one ensemble, its models separated by commas (one model alone is scored as it is).
Every model is run once on the test however many ensembles hold it; the figures are
training/devtest.py's (`score`), so `compare_devtest.py` reads the JSON. An ensemble is what a
distilled model (`speech-app train --teacher`) learns from, and is scored here before distilling.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # training/: the development test, devtest.py

from devtest import DEFAULT_DATA, DEFAULT_LIST, load_devtest, print_score, score  # noqa: E402

from speech_app.inference import CommandClassifier  # noqa: E402


class AveragedProbabilities:
    """The part of CommandClassifier that devtest.score uses, for the mean of several models."""

    def __init__(self, members: list[CommandClassifier], cache: dict[str, np.ndarray], names: list[str]):
        self.labels, self.window_samples = members[0].labels, members[0].window_samples
        for name, member in zip(names, members):
            if member.labels != self.labels or member.window_samples != self.window_samples:
                raise SystemExit(f"{name}: other labels or another window than {names[0]}; cannot average")
        self.members, self.cache, self.names = members, cache, names

    def probabilities(self, waves: np.ndarray) -> np.ndarray:
        for name, member in zip(self.names, self.members):
            if name not in self.cache:  # the test's waves are the same for every ensemble
                self.cache[name] = member.probabilities(waves)
        return np.mean([self.cache[name] for name in self.names], axis=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("ensembles", nargs="+", help="comma-separated model files, one ensemble per argument")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--list", type=Path, default=DEFAULT_LIST)
    parser.add_argument("--json", type=Path, help="write every ensemble's figures here")
    args = parser.parse_args()
    classifiers: dict[str, CommandClassifier] = {}
    cache: dict[str, np.ndarray] = {}
    tests, results = {}, {}
    for ensemble in args.ensembles:
        names = ensemble.split(",")
        for name in names:
            classifiers.setdefault(name, CommandClassifier.from_file(Path(name)))
        averaged = AveragedProbabilities([classifiers[n] for n in names], cache, names)
        window = averaged.window_samples
        if window not in tests:
            tests[window] = load_devtest(args.data, args.list, window)
        results[ensemble] = score(averaged, *tests[window])
        print_score(ensemble, results[ensemble])
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
