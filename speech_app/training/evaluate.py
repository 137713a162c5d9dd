"""Evaluating a model file on a data folder: accuracy, per-class figures and the report."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..data.clips import load_split_clips, to_float
from ..data.dataset import SILENCE_LABEL, SPLITS, UNKNOWN_LABEL, build_index
from ..inference import CommandClassifier, predict_logits
from ..data.noise import NoiseBank
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


def evaluate_clips(model, frontend, clips: np.ndarray, labels: np.ndarray, n_classes: int):
    """(mean loss, confusion matrix) of the model on decoded clips."""
    model.eval()
    logits = predict_logits(model, frontend, to_float(clips)) if len(clips) else torch.zeros(0, n_classes)
    targets = torch.from_numpy(labels)
    loss = F.cross_entropy(logits, targets).item() if len(labels) else float("nan")
    return loss, confusion_matrix(labels, logits.argmax(dim=1).numpy(), n_classes)


def print_evaluation(result: EvaluationResult) -> None:
    print(format_table(result.rows, result.accuracy))
    if result.report_dir:
        print(f"report: {result.report_dir}/report.md", file=sys.stderr)


__all__ = ["evaluate_model", "print_evaluation", "EvaluationResult", "SPLITS"]
