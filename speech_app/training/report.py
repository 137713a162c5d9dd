"""Evaluation figures: confusion matrix, per-class precision/recall, and the plots of a report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..atomic_files import atomic_path, check_writable, output_lock, staged_folder, swap_in_folder, write_text

# the files a report folder holds: a new report replaces these and leaves anything else in the folder alone
REPORT_FILE_PATTERNS = ("report.md", "metrics.json", "confusion_matrix_*.png", "training_curves.png")


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Rows: true class; columns: predicted class."""
    matrix = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(y_true), np.asarray(y_pred)), 1)
    return matrix


def class_metrics(matrix: np.ndarray, labels: list[str]) -> list[dict]:
    rows = []
    for i, label in enumerate(labels):
        true_positive = int(matrix[i, i])
        support, predicted = int(matrix[i].sum()), int(matrix[:, i].sum())
        precision = true_positive / predicted if predicted else 0.0
        recall = true_positive / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        rows.append({"label": label, "precision": precision, "recall": recall, "f1": f1, "support": support})
    return rows


def accuracy(matrix: np.ndarray) -> float:
    total = matrix.sum()
    return float(np.trace(matrix) / total) if total else 0.0


def format_table(rows: list[dict], overall_accuracy: float) -> str:
    lines = [f"{'class':<12} {'precision':>9} {'recall':>7} {'f1':>6} {'support':>8}"]
    for r in rows:
        lines.append(f"{r['label']:<12} {r['precision']:>9.3f} {r['recall']:>7.3f} {r['f1']:>6.3f} {r['support']:>8d}")
    lines.append(f"accuracy {overall_accuracy:.4f} on {sum(r['support'] for r in rows)} clips")
    return "\n".join(lines)


def markdown_table(rows: list[dict]) -> str:
    lines = ["| class | precision | recall | f1 | clips |", "|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['label']} | {r['precision']:.3f} | {r['recall']:.3f} | {r['f1']:.3f} | {r['support']} |")
    return "\n".join(lines)


def plot_confusion_matrix(matrix: np.ndarray, labels: list[str], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")  # files only: no window, works headless
    import matplotlib.pyplot as plt

    recall_rows = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    size = max(5.0, 0.55 * len(labels) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(recall_rows, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=60, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    for (i, j), count in np.ndenumerate(matrix):
        if count:
            ax.text(j, i, str(count), ha="center", va="center", fontsize=7,
                    color="white" if recall_rows[i, j] > 0.6 else "black")
    fig.tight_layout()
    _save_figure(fig, path)


def plot_training_curves(history: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [h["epoch"] for h in history]
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(10, 4))
    loss_ax.plot(epochs, [h["train_loss"] for h in history], label="training")
    loss_ax.plot(epochs, [h["val_loss"] for h in history], label="validation")
    loss_ax.set(xlabel="epoch", ylabel="cross-entropy loss", title="loss")
    acc_ax.plot(epochs, [h["train_accuracy"] for h in history], label="training")
    acc_ax.plot(epochs, [h["val_accuracy"] for h in history], label="validation")
    acc_ax.set(xlabel="epoch", ylabel="accuracy", title="accuracy")
    for ax in (loss_ax, acc_ax):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    _save_figure(fig, path)


def _save_figure(fig, path: Path) -> None:
    import matplotlib.pyplot as plt

    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=110, format=path.suffix.lstrip("."))
    finally:
        plt.close(fig)


NO_PLOTS_MESSAGE = "plots left out: matplotlib is not installed (pip install 'speech-app[train]')"


def _can_plot() -> bool:
    """True when matplotlib (the `train` extra) is installed; otherwise say that the plots are left out."""
    import importlib.util
    import sys

    if importlib.util.find_spec("matplotlib") is not None:
        return True
    print(f"report: {NO_PLOTS_MESSAGE}", file=sys.stderr)
    return False


def write_report(report_dir: Path, labels: list[str], matrices: dict[str, np.ndarray],
                 history: list[dict] | None = None, header: str = "") -> dict:
    """Write report.md, metrics.json, one confusion-matrix PNG per evaluated split, and the curves.
    Without matplotlib the figures are all there but the PNGs are left out."""
    report_dir = Path(report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    plots = _can_plot()
    summary, sections = {}, [f"# {header or 'Evaluation report'}\n"]
    for split, matrix in matrices.items():
        rows = class_metrics(matrix, labels)
        summary[split] = {"accuracy": accuracy(matrix), "clips": int(matrix.sum()), "classes": rows,
                          "confusion_matrix": matrix.tolist()}
        png = f"confusion_matrix_{split}.png"
        if plots:
            plot_confusion_matrix(matrix, labels, report_dir / png, f"{split}: accuracy {accuracy(matrix):.3f}")
        sections.append(f"## {split}: accuracy {accuracy(matrix):.4f} on {int(matrix.sum())} clips\n\n"
                        f"{markdown_table(rows)}\n" + (f"\n![confusion matrix]({png})\n" if plots else ""))
    if history:
        summary["history"] = history
        if plots:
            plot_training_curves(history, report_dir / "training_curves.png")
            sections.append("## Training curves\n\n![training curves](training_curves.png)\n")
    write_text(report_dir / "metrics.json", json.dumps(summary, indent=2))
    write_text(report_dir / "report.md", "\n".join(sections))
    return summary


def publish_report(report_dir: Path, labels: list[str], matrices: dict[str, np.ndarray],
                   history: list[dict] | None = None, header: str = "") -> dict:
    """`write_report`, made whole first in a folder of its own and then moved in, under a lock:
    a report folder never mixes two runs or holds half a report."""
    report_dir = Path(report_dir)
    report_dir.parent.mkdir(parents=True, exist_ok=True)
    check_writable(report_dir, "folder")
    with output_lock(report_dir), staged_folder(report_dir) as staging:
        summary = write_report(staging, labels, matrices, history, header)
        swap_in_folder(staging, report_dir, REPORT_FILE_PATTERNS)
    return summary

