"""Training a model on the user's words: options, progress, a live chart and the evaluation."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Callable

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (QCheckBox, QGroupBox, QHBoxLayout, QLabel, QMessageBox, QProgressBar, QPushButton,
                               QSpinBox, QSplitter, QTextBrowser, QVBoxLayout, QWidget)

from ..custom_words import TAKES_ENOUGH, TAKES_MINIMUM, CustomWordsRecipe, Estimate, take_warnings
from .plots import TrainingChart
from .userdata import DataFolder
from .workers import TrainingJob, TrainingWorker, WorkerThread

SYNTH_PER_WORD_DEFAULT = CustomWordsRecipe().synth_per_word
SYNTH_PER_WORD_MAX = 2000
CONFUSION_IMAGE_WIDTH = 360  # pixels


def expectation_summary(estimate: Estimate | None) -> str:
    """One line for the status bar: the estimate, never a validation figure on a few clips."""
    if estimate is None:
        return ""
    parts = []
    if estimate.word_accuracy is not None:
        parts.append(f"expect about {estimate.word_accuracy:.0%} of your words recognized")
    if estimate.rejection is not None:
        parts.append(f"{estimate.rejection:.0%} of other speech ignored")
    return ("Estimate: " + ", ".join(parts) + ".") if parts else ""


def synth_available() -> bool:
    """The synthetic-speech module exists (its engines are checked when it runs)."""
    try:
        return importlib.util.find_spec("speech_app.synth") is not None
    except ImportError:
        return False


class TrainingPanel(QGroupBox):
    training_requested = Signal(object)  # TrainingJob, queued to the worker
    model_trained = Signal(object)  # Path of the new model
    use_model_requested = Signal(object)  # Path: switch the Live tab to it
    status_text_changed = Signal(str)

    def __init__(self, data: DataFolder, words_provider: Callable[[], list[str]], parent=None):
        super().__init__("Train", parent)
        self.data = data
        self.words_provider = words_provider  # the words typed in the Custom words tab
        self.recipe = CustomWordsRecipe()  # the recipe of `speech-app train` on takes
        self.base_model: Path | None = None  # the model in use: the start when the box is ticked
        self.trained_model: Path | None = None
        self.training = False
        self._build()
        self.worker = TrainingWorker()
        self.worker_thread = WorkerThread(self.worker, "training")
        self.training_requested.connect(self.worker.train)
        self.worker.stage_changed.connect(self.on_worker_stage_changed)
        self.worker.batch_finished.connect(self.on_worker_batch_finished)
        self.worker.epoch_finished.connect(self.on_worker_epoch_finished)
        self.worker.training_finished.connect(self.on_worker_training_finished)
        self.worker.training_failed.connect(self.on_worker_training_failed)
        self.worker.training_cancelled.connect(self.on_worker_training_cancelled)

    def _build(self) -> None:
        layout = QVBoxLayout(self)
        options = QHBoxLayout()
        self.fine_tune_check = QCheckBox("Start from the model in use")
        self.fine_tune_check.setChecked(False)
        self.fine_tune_check.setToolTip("Otherwise training starts from the shipped model, which already "
                                        "knows many real voices")
        self.synth_check = QCheckBox("Add synthetic speech:")
        self.synth_check.setChecked(True)
        self.synth_check.setToolTip("Speech of your words, of other words and of near misses by the installed "
                                    "speech synthesizers: helps most with few takes")
        self.synth_spin = QSpinBox()
        self.synth_spin.setRange(1, SYNTH_PER_WORD_MAX)
        self.synth_spin.setValue(SYNTH_PER_WORD_DEFAULT)
        self.synth_spin.setSuffix(" clips per word")
        has_synth = synth_available()
        self.synth_check.setEnabled(has_synth)
        self.synth_spin.setEnabled(has_synth)
        if not has_synth:
            self.synth_check.setToolTip("Synthetic speech is not available in this installation")
        self.train_button = QPushButton("Train")
        self.train_button.clicked.connect(self.on_train_button_clicked)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        for widget in (self.fine_tune_check, self.synth_check, self.synth_spin):
            options.addWidget(widget)
        options.addStretch(1)
        options.addWidget(self.train_button)
        options.addWidget(self.cancel_button)
        layout.addLayout(options)
        self.progress = QProgressBar()
        self.stage_label = QLabel(f"Record at least {TAKES_MINIMUM} takes of each word ({TAKES_ENOUGH} from a few "
                                  f"voices is enough), then train.")
        self.stage_label.setWordWrap(True)
        layout.addWidget(self.stage_label)
        layout.addWidget(self.progress)
        splitter = QSplitter(Qt.Orientation.Horizontal)
        self.chart = TrainingChart()
        splitter.addWidget(self.chart)
        splitter.addWidget(self._build_evaluation())
        layout.addWidget(splitter, 1)

    def _build_evaluation(self) -> QWidget:
        box = QWidget()
        layout = QVBoxLayout(box)
        layout.setContentsMargins(0, 0, 0, 0)
        self.evaluation = QTextBrowser()
        self.evaluation.setPlaceholderText("What to expect from the new model appears here.")
        self.confusion_image = QLabel()
        self.confusion_image.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.use_button = QPushButton("Use in Live tab")
        self.use_button.setEnabled(False)
        self.use_button.clicked.connect(self.on_use_button_clicked)
        layout.addWidget(self.evaluation, 1)
        layout.addWidget(self.confusion_image)
        layout.addWidget(self.use_button)
        return box

    # -- public actions ---------------------------------------------------------------------------
    def start_training(self, words: list[str]) -> bool:
        missing = [w for w in words if not self.data.takes(w)]
        synth = self.synth_spin.value() if self.synth_check.isChecked() and self.synth_check.isEnabled() else 0
        if not words or (missing and not synth):
            self.stage_label.setText(f"Record takes first: none yet for {', '.join(missing) or 'any word'}")
            return False
        warnings = take_warnings({w: len(self.data.takes(w)) for w in words}, bool(synth))
        if warnings and not self.confirm_few_takes(warnings):
            self.stage_label.setText(f"Record more takes: {TAKES_MINIMUM} of each word at least, {TAKES_ENOUGH} is enough.")
            return False
        out_path = self.data.new_model_path(words)
        job = TrainingJob(words, self.data.training_dirs(), out_path, self.recipe,
                          init_from=self.base_model if self.fine_tune_check.isChecked() else None,
                          synth_per_word=synth, synth_root=self.data.synthetic_dir)
        self.training, self.trained_model = True, None
        self.chart.clear_points()
        self.evaluation.clear()
        self.confusion_image.clear()
        self.progress.setRange(0, 0)
        self.train_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.use_button.setEnabled(False)
        self.stage_label.setText("Preparing the data...")
        self.training_requested.emit(job)
        return True

    def confirm_few_takes(self, warnings: list[str]) -> bool:
        """Ask before training on too few takes; the answer is the user's."""
        answer = QMessageBox.question(
            self, "Few takes", "\n".join(warnings) + "\n\nTrain anyway? (Train measures what to expect, "
            "so you can record more and train again.)")
        return answer == QMessageBox.StandardButton.Yes

    @Slot()
    def cancel(self) -> None:
        self.worker.cancel()
        self.stage_label.setText("Cancelling...")

    def shutdown(self) -> None:
        self.worker.cancel()
        self.worker_thread.stop()

    # -- slots ------------------------------------------------------------------------------------
    @Slot()
    def on_train_button_clicked(self) -> None:
        self.start_training(self.words_provider())

    @Slot()
    def on_use_button_clicked(self) -> None:
        if self.trained_model is not None:
            self.use_model_requested.emit(self.trained_model)

    @Slot(str)
    def on_worker_stage_changed(self, stage: str) -> None:
        self._stage = stage.capitalize()
        self.stage_label.setText(self._stage + "...")
        if stage == "training":  # the chart follows the final run, not the estimate's short ones
            self.chart.clear_points()

    @Slot(dict)
    def on_worker_batch_finished(self, info: dict) -> None:
        self.progress.setRange(0, info["batches"])
        self.progress.setValue(info["batch"])
        self.stage_label.setText(f"{getattr(self, '_stage', 'Training')}: batch {info['batch']} of {info['batches']}, "
                                 f"loss {info['loss']:.3f}")
        self.chart.add_batch(info)
        self.chart.refresh()

    @Slot(dict)
    def on_worker_epoch_finished(self, info: dict) -> None:
        self.chart.add_epoch(info)

    @Slot(object)
    def on_worker_training_finished(self, result) -> None:
        self._finish(f"Trained in {result.seconds:.0f} s. " + expectation_summary(result.estimate))
        self.progress.setValue(self.progress.maximum())
        self.trained_model = Path(result.model_path)
        self.use_button.setEnabled(True)
        self.show_estimate(result.estimate, result.warnings)
        self.model_trained.emit(self.trained_model)

    @Slot(str)
    def on_worker_training_failed(self, message: str) -> None:
        self._finish(f"Training failed: {message}")

    @Slot()
    def on_worker_training_cancelled(self) -> None:
        self._finish("Training cancelled; nothing was saved.")

    def _finish(self, message: str) -> None:
        self.training = False
        if self.progress.maximum() == 0:
            self.progress.setRange(0, 1)
        self.train_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        self.stage_label.setText(message)
        self.status_text_changed.emit(message)

    def show_estimate(self, estimate: Estimate | None, warnings: list[str]) -> None:
        """What the user can expect, measured on held-out takes and unseen speakers of other words."""
        lines = ["**What to expect** (each take and each speaker of other words held out once while a "
                 "short run trained on the rest):", ""]
        lines += [f"- {line.strip()}" for line in (estimate.lines() if estimate else ["No estimate was made."])]
        lines += [""] + [f"**Warning:** {w}" for w in warnings]
        self.evaluation.setMarkdown("\n".join(lines))
        self.confusion_image.clear()

    def show_evaluation(self, report_dir: Path) -> None:
        """The report's figures: accuracy per split and recall per word, and the confusion matrix."""
        metrics_file = report_dir / "metrics.json"
        if not metrics_file.is_file():
            self.evaluation.setMarkdown("No evaluation was written.")
            return
        metrics = json.loads(metrics_file.read_text())
        lines = []
        for split in ("validation", "testing"):
            if split not in metrics:
                continue
            values = metrics[split]
            lines += [f"**{split.capitalize()}:** accuracy {values['accuracy']:.1%} on {values['clips']} clips", "",
                      "| word | recall | precision | clips |", "|---|---|---|---|"]
            lines += [f"| {c['label']} | {c['recall']:.0%} | {c['precision']:.0%} | {c['support']} |"
                      for c in values["classes"]]
            lines.append("")
        self.evaluation.setMarkdown("\n".join(lines) or "No validation clips: record more takes per word.")
        image = report_dir / "confusion_matrix_validation.png"
        if image.is_file():
            pixmap = QPixmap(str(image))
            self.confusion_image.setPixmap(pixmap.scaledToWidth(CONFUSION_IMAGE_WIDTH,
                                                                Qt.TransformationMode.SmoothTransformation))
