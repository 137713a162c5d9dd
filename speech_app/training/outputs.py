"""What a training run writes: the model file (with its metrics and training record inside) and
the report folder, swapped in together; and the checks, made before any work, that it can."""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..atomic_files import atomic_write, check_writable, staged_folder, swap_in_folder
from ..model import count_parameters, flops_per_clip
from ..modelfile import ModelBundle, model_file_bytes
from .distributed import log
from .evaluate import evaluate_clips
from .report import REPORT_FILE_PATTERNS, write_report

if TYPE_CHECKING:
    from .trainer import Trainer


def check_outputs(out_path: Path, report_dir: Path) -> None:
    """Refuse now, not after hours of training, an output that could not be written."""
    check_writable(out_path, "file")
    report_dir.parent.mkdir(parents=True, exist_ok=True)
    check_writable(report_dir, "folder")


def default_report_dir(model_path: Path) -> Path:
    return model_path.with_name(model_path.stem + "_report")


def describe(trainer: Trainer) -> str:
    counts = trainer.index.counts()
    lines = [f"device {trainer.device} x{trainer.dist.world}; window {trainer.features.clip_seconds:.2f} s; "
             f"{count_parameters(trainer.model):,} parameters; "
             f"{flops_per_clip(trainer.model_config, trainer.features.n_frames) / 1e6:.1f} MFLOPs per clip"]
    for label in trainer.index.labels:
        lines.append(f"  {label:<12} " + "  ".join(f"{split[:5]} {counts[split][label]:>5}" for split in counts))
    return "\n".join(lines)


def evaluation_matrices(trainer: Trainer) -> dict[str, np.ndarray]:
    """Confusion matrices on real speech, and separately on synthetic speech where some is held out
    (only for words with no real clips): synthetic figures flatter a model and never mix in."""
    n_classes, matrices = len(trainer.index.labels), {}
    for split in ("validation", "testing"):
        clips, labels = trainer.splits[split]
        examples = trainer.index.split(split)
        synthetic = np.array([e.source == "synthetic" for e in examples], dtype=bool)
        if not any(e.path and e.source == "real" for e in examples):
            synthetic[:] = True  # `_silence_` alone is no real-speech figure: it joins the synthetic one
        for name, rows in ((split, ~synthetic), (f"{split}_synthetic", synthetic)):
            if rows.any():
                matrices[name] = evaluate_clips(trainer.model, trainer.frontend, clips[rows], labels[rows], n_classes)[1]
    return matrices


def finish(trainer: Trainer, data_dirs: list[Path], synthetic_dirs: list[Path], out_path: Path, report_dir: Path,
           extra_info: dict | None = None) -> None:
    """Evaluate the best weights, write the report and the model file (with its metrics inside).

    Both are written under temporary names first and swapped in together at the end: a failure
    (a full disk) leaves the previous model and its report as they were, and matching."""
    matrices = evaluation_matrices(trainer)
    with staged_folder(report_dir) as staging:
        summary = write_report(staging, trainer.index.labels, matrices, trainer.history,
                               header=f"Training report: {out_path.name}")
        bundle = ModelBundle(trainer.model.cpu(), trainer.index.labels, trainer.features,
                             model_info(trainer, data_dirs, synthetic_dirs, summary, extra_info))
        with atomic_write(out_path, "wb") as handle:
            handle.write(model_file_bytes(out_path, bundle))
            handle.flush()
            os.fsync(handle.fileno())  # the model is safely on disk before its report replaces the old one
            swap_in_folder(staging, report_dir, REPORT_FILE_PATTERNS)
    validated = len(trainer.splits["validation"][1]) > 0
    log(f"wrote {out_path} and {report_dir}/" + (f" (best validation accuracy {trainer.best_accuracy:.4f} "
        f"at epoch {trainer.best_epoch}; kept epoch {trainer.kept_epoch})" if validated else ""), trainer.dist, trainer.hooks)


def model_info(trainer: Trainer, data_dirs: list[Path], synthetic_dirs: list[Path], summary: dict,
               extra_info: dict | None = None) -> dict:
    """What the model file says about its training: data, settings, metrics, size."""
    counts = trainer.index.counts()
    info = {
        "trained_on": {"data": [str(d) for d in data_dirs], "synthetic": [str(d) for d in synthetic_dirs],
                       "clips": {s: dict(c) for s, c in counts.items()},
                       "sources": sorted({e.source for e in trainer.index.examples if e.path})},
        "training": {**asdict(trainer.config), "best_epoch": trainer.best_epoch, "epochs_run": trainer.epoch,
                     "kept_epoch": trainer.kept_epoch},
        "metrics": {split: {"accuracy": v["accuracy"], "clips": v["clips"],
                            "recall": {r["label"]: r["recall"] for r in v["classes"]},
                            "precision": {r["label"]: r["precision"] for r in v["classes"]}}
                    for split, v in summary.items() if split != "history"},
        "parameters": count_parameters(trainer.model),
        "flops_per_clip": flops_per_clip(trainer.model_config, trainer.features.n_frames),
        **({"distilled_from": trainer.teachers.paths} if trainer.teachers else {}),
        **(extra_info or {}),
    }
    return info
