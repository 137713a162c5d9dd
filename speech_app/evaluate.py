"""Evaluating a model file on a data folder: accuracy, per-class figures and the report."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .audio import fit_to_window
from .clips import load_split_clips, to_float
from .dataset import SILENCE_LABEL, SPLITS, UNKNOWN_LABEL, build_index
from .inference import CommandClassifier
from .noise import NoiseBank
from .report import accuracy, class_metrics, confusion_matrix, format_table, publish_report


@dataclass
class EvaluationResult:
    accuracy: float
    matrix: np.ndarray
    rows: list[dict]
    report_dir: Path | None


def evaluate_model(classifier: CommandClassifier, data_dirs: list[Path], split: str = "all",
                   report_dir: Path | None = None, seed: int = 0, progress: bool = True) -> EvaluationResult:
    """Score the model on the clips of `data_dirs` (one split, or all of them), labelled as it was trained."""
    labels = classifier.labels
    words = [w for w in labels if w not in (SILENCE_LABEL, UNKNOWN_LABEL)]
    index = build_index(data_dirs, words, seed=seed, allow_missing=True)
    examples = [e for e in index.examples if (split == "all" or e.split == split) and e.label in labels]
    if not examples:
        raise ValueError(f"no clips of the model's words in {', '.join(map(str, data_dirs))} ({split} split)")
    noise = NoiseBank.from_files(index.noise_files, seed=seed)
    clips, errors = load_split_clips(examples, classifier.bundle.features.clip_seconds, noise, seed=seed,
                                     progress=progress, use_cache=False)
    for error in errors:
        print(f"skipped: {error}", file=sys.stderr)
    truth = np.array([labels.index(e.label) for e in examples])
    predicted = classifier.probabilities(to_float(clips)).argmax(axis=1)
    matrix = confusion_matrix(truth, predicted, len(labels))
    if report_dir is not None:
        header = f"Evaluation of {classifier.bundle.path.name if classifier.bundle.path else 'model'} ({split})"
        publish_report(report_dir, labels, {split: matrix}, header=header)
    return EvaluationResult(accuracy(matrix), matrix, class_metrics(matrix, labels), report_dir)


def print_evaluation(result: EvaluationResult) -> None:
    print(format_table(result.rows, result.accuracy))
    if result.report_dir:
        print(f"report: {result.report_dir}/report.md", file=sys.stderr)


__all__ = ["evaluate_model", "print_evaluation", "EvaluationResult", "SPLITS"]


NOISE_WINDOW_HOP_SECONDS = 0.5  # noise files are cut into overlapping one-window clips
NOISE_VOLUMES = (1.0, 0.3)  # the recordings as they are, and quieter, as a room's noise would be


@dataclass
class RejectionResult:
    speech_clips: int
    speech_false_accepts: int
    per_word: dict[str, tuple[int, int]]  # word -> (false accepts, clips)
    noise_windows: int
    noise_false_accepts: int

    def summary(self) -> str:
        speech = self.speech_false_accepts / max(self.speech_clips, 1)
        noise = self.noise_false_accepts / max(self.noise_windows, 1)
        return (f"non-command speech taken for a command: {self.speech_false_accepts}/{self.speech_clips} "
                f"({speech:.1%}); noise windows taken for a command: {self.noise_false_accepts}/"
                f"{self.noise_windows} ({noise:.1%})")


def measure_rejection(classifier: CommandClassifier, data_dirs: list[Path], seed: int = 0,
                      splits: tuple[str, ...] = ("validation", "testing"), progress: bool = True) -> RejectionResult:
    """How often real non-command speech (every clip of the other words, from speakers of `splits`,
    i.e. not heard in training) and background noise are taken for one of the model's commands."""
    from .audio import load_audio, seconds_to_samples
    from .dataset import word_folders, which_set

    commands = {i for i, label in enumerate(classifier.labels) if label not in (SILENCE_LABEL, UNKNOWN_LABEL)}
    index = build_index(data_dirs, [classifier.labels[i] for i in sorted(commands)], seed=seed, allow_missing=True)
    other = [(w, p) for d in data_dirs for w, files in word_folders(Path(d)).items()
             if w not in classifier.labels for p in files if which_set(p) in splits]
    per_word: dict[str, list[int]] = {}
    accepted = 0
    if other:
        from .audio import decode_files

        window = classifier.window_samples
        decoded = decode_files([str(p) for _, p in other], progress)
        rows = [(w, fit_to_window(a, window)) for (w, _), a in zip(other, decoded) if isinstance(a, np.ndarray)]
        predicted = classifier.probabilities(np.stack([r for _, r in rows])).argmax(axis=1)
        for (word, _), label in zip(rows, predicted):
            hit = int(label in commands)
            accepted += hit
            per_word.setdefault(word, [0, 0])
            per_word[word][0] += hit
            per_word[word][1] += 1
    hop = seconds_to_samples(NOISE_WINDOW_HOP_SECONDS)
    windows = []
    for path in index.noise_files:
        audio = load_audio(path)
        for start in range(0, len(audio) - classifier.window_samples + 1, hop):
            windows += [audio[start : start + classifier.window_samples] * v for v in NOISE_VOLUMES]
    noise_hits = int(np.isin(classifier.probabilities(np.stack(windows)).argmax(axis=1), list(commands)).sum()) if windows else 0
    return RejectionResult(sum(v[1] for v in per_word.values()), accepted,
                           {w: tuple(v) for w, v in sorted(per_word.items())}, len(windows), noise_hits)
