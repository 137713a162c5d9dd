"""Training a model on the user's words: options, progress, a live chart and the evaluation."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Callable

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (QCheckBox, QGroupBox, QHBoxLayout, QLabel, QProgressBar, QPushButton, QSpinBox,
                               QSplitter, QTextBrowser, QVBoxLayout, QWidget)

from ..train import TrainConfig
from .plots import TrainingChart
from .userdata import DataFolder
from .workers import TrainingJob, TrainingWorker, WorkerThread

GUI_TRAIN_CONFIG = TrainConfig(epochs=20, batch_size=32, patience=5, device="auto")  # a few minutes on a laptop
SYNTH_PER_WORD_DEFAULT = 100
SYNTH_PER_WORD_MAX = 2000
CONFUSION_IMAGE_WIDTH = 360  # pixels


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
        self.train_config = GUI_TRAIN_CONFIG
        self.base_model: Path | None = None  # the model to fine-tune from (the one in use)
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
        self.fine_tune_check.setChecked(True)
        self.fine_tune_check.setToolTip("Fine-tuning needs far fewer takes than training from scratch")
        self.synth_check = QCheckBox("Add synthetic speech:")
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
        self.stage_label = QLabel("Record a few takes of each word, then train.")
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
        self.evaluation.setPlaceholderText("The evaluation of the new model appears here.")
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
        if not words or (missing and not self.synth_check.isChecked()):
            self.stage_label.setText(f"Record takes first: none yet for {', '.join(missing) or 'any word'}")
            return False
        out_path = self.data.new_model_path(words)
        synth = self.synth_spin.value() if self.synth_check.isChecked() and self.synth_check.isEnabled() else 0
        job = TrainingJob(words, self.data.training_dirs(), out_path, self.train_config,
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
        self.stage_label.setText(stage.capitalize() + "...")

    @Slot(dict)
    def on_worker_batch_finished(self, info: dict) -> None:
        total = self.train_config.epochs * info["batches"]
        self.progress.setRange(0, total)
        self.progress.setValue((info["epoch"] - 1) * info["batches"] + info["batch"])
        self.stage_label.setText(f"Epoch {info['epoch']}: loss {info['loss']:.3f}, accuracy {info['accuracy']:.1%}")
        self.chart.add_batch(info)
        self.chart.refresh()

    @Slot(dict)
    def on_worker_epoch_finished(self, info: dict) -> None:
        self.chart.add_epoch(info)

    @Slot(object)
    def on_worker_training_finished(self, result) -> None:
        self._finish(f"Trained: validation accuracy {result.val_accuracy:.1%} (best epoch {result.best_epoch})")
        self.progress.setValue(self.progress.maximum())
        self.trained_model = Path(result.model_path)
        self.use_button.setEnabled(True)
        self.show_evaluation(Path(result.report_dir))
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
