"""Training a model on the user's words: options, progress, a live chart and the evaluation."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Callable

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import (QAbstractItemView, QCheckBox, QComboBox, QGridLayout, QGroupBox, QHBoxLayout,
                               QHeaderView, QLabel, QMessageBox, QProgressBar, QPushButton, QSpinBox, QSplitter,
                               QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from ..training.custom_words import (TAKES_ENOUGH, TAKES_MINIMUM, CustomWordsRecipe, Estimate, lower_bound,
                                     take_warnings)
from .expectations import rate_text
from .plots import ConfusionMatrixView, TrainingChart
from .userdata import DataFolder
from .workers import TrainingJob, TrainingWorker, WorkerThread

SYNTH_PER_WORD_DEFAULT = CustomWordsRecipe().synth_per_word
SYNTH_PER_WORD_MAX = 2000
LOG_TOOLTIP_LINES = 30  # the last lines of the training log, on hover over the stage line
ROW_PADDING_PX = 6  # table rows just taller than their text: more words fit without scrolling
EVALUATION_COLUMNS = ("Word", "Recall", "Precision", "Clips")
EVALUATION_TIPS = ("The word said", "Share of this word's clips heard as this word",
                   "Share of the clips heard as this word that really were it", "Clips of this word evaluated")


def expectation_summary(estimate: Estimate | None) -> str:
    """One line for the status bar: the estimate, never a validation figure on a few clips."""
    if estimate is None:
        return ""
    parts = []
    if estimate.word_accuracy is not None:
        right, total = (sum(v[i] for v in estimate.per_word.values()) for i in (0, 1))
        parts.append(f"expect about {estimate.word_accuracy:.0%} of your words recognized "
                     f"(at least {lower_bound(right, total):.0%}: {total} takes held out)")
    if estimate.rejection is not None:
        parts.append(f"{estimate.rejection:.0%} of other speech ignored")
    return ("Estimate: " + ", ".join(parts) + ".") if parts else ""


def conversation_summary(check) -> str:
    """One line on the conversation check (conversation.ConversationCheck; None: none was made)."""
    if check is None:
        return ""
    heard = (f"; {check.heard[0]} of {check.heard[1]} of your held-out takes heard at it" if check.heard else "")
    where = "its own listening settings" if check.settings else "the default sensitivity"
    return (f"While people talk: about {rate_text(check.per_hour)} false alarms an hour at {where} "
            f"(likely under {check.per_hour_bound:.0f}; {check.minutes:.1f} min of conversation it never trained on"
            f"{heard}).")


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
        self.log_lines: list[str] = []  # the run's log, shown as the stage line's tooltip
        self.stage = "Training"
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
        self.worker.log_written.connect(self.on_worker_log_written)

    def _build(self) -> None:
        layout = QVBoxLayout(self)
        layout.addLayout(self._build_options())
        self.progress = QProgressBar()
        self.stage_label = QLabel(f"Record at least {TAKES_MINIMUM} takes of each word ({TAKES_ENOUGH} from a few "
                                  f"voices is enough), then train.")
        self.stage_label.setWordWrap(True)  # messages can be long (a failure names its file)
        layout.addWidget(self.stage_label)
        layout.addWidget(self.progress)
        self.results_splitter = splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.setChildrenCollapsible(False)
        self.chart = TrainingChart()
        splitter.addWidget(self.chart)
        splitter.addWidget(self._build_evaluation())
        self._split_evenly = True
        layout.addWidget(splitter, 1)

    def _build_options(self) -> QGridLayout:
        """Two short rows instead of one long one, so the panel fits a narrow window."""
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
        self.synth_spin.setSuffix(" per word")
        self.synth_spin.setToolTip("Synthetic clips made per word by the text-to-speech engines")
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
        grid = QGridLayout()
        synth_row = QHBoxLayout()
        synth_row.addWidget(self.synth_check)
        synth_row.addWidget(self.synth_spin)
        synth_row.addStretch(1)
        grid.addWidget(self.fine_tune_check, 0, 0)
        grid.addLayout(synth_row, 1, 0)
        grid.addWidget(self.train_button, 0, 1)
        grid.addWidget(self.cancel_button, 1, 1)
        grid.setColumnStretch(0, 1)
        return grid

    def _build_evaluation(self) -> QWidget:
        box = QWidget()
        layout = QVBoxLayout(box)
        layout.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        self.split_combo = QComboBox()
        self.split_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)  # items come later
        self.split_combo.setToolTip("Which held-out clips the table and the matrix are for")
        self.split_combo.currentIndexChanged.connect(self.on_split_combo_current_index_changed)
        self.accuracy_label = QLabel()
        self.accuracy_label.setWordWrap(True)
        row.addWidget(self.split_combo)
        row.addWidget(self.accuracy_label, 1)
        self.evaluation = QTableWidget(0, len(EVALUATION_COLUMNS))
        self.evaluation.setHorizontalHeaderLabels(EVALUATION_COLUMNS)
        for column, tip in enumerate(EVALUATION_TIPS):
            self.evaluation.horizontalHeaderItem(column).setToolTip(tip)
        self.evaluation.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.evaluation.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.evaluation.verticalHeader().hide()
        self.evaluation.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + ROW_PADDING_PX)
        self.evaluation.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.confusion = ConfusionMatrixView()
        parts = QSplitter(Qt.Orientation.Vertical)
        parts.setChildrenCollapsible(False)
        parts.addWidget(self.evaluation)
        parts.addWidget(self.confusion)
        self.use_button = QPushButton("Use in Live tab")
        self.use_button.setEnabled(False)
        self.use_button.clicked.connect(self.on_use_button_clicked)
        layout.addLayout(row)
        layout.addWidget(parts, 1)
        layout.addWidget(self.use_button)
        self.metrics: dict = {}
        return box

    def showEvent(self, event) -> None:  # noqa: N802
        super().showEvent(event)
        if self._split_evenly:  # once the panel has its real width: chart and evaluation share it
            self._split_evenly = False
            half = self.results_splitter.width() // 2
            self.results_splitter.setSizes([half, half])

    # -- public actions ---------------------------------------------------------------------------
    def start_training(self, words: list[str]) -> bool:
        missing = [w for w in words if not self.data.takes(w)]
        synth = self.synth_spin.value() if self.synth_check.isChecked() and self.synth_check.isEnabled() else 0
        if not words or (missing and not synth):
            self.stage_label.setText(f"Record takes first: none yet for {', '.join(missing) or 'any word'}")
            return False
        # a word with no takes trains from text (a mode of its own); one with a few takes asks first
        recorded = {w: n for w in words if (n := len(self.data.takes(w)))}
        warnings = take_warnings(recorded, bool(synth))
        if warnings and not self.confirm_few_takes(warnings):
            self.stage_label.setText(f"Record more takes: {TAKES_MINIMUM} of each word at least, {TAKES_ENOUGH} is enough.")
            return False
        out_path = self.data.new_model_path(words)
        job = TrainingJob(words, self.data.training_dirs(), out_path, self.recipe,
                          init_from=self.base_model if self.fine_tune_check.isChecked() else None,
                          synth_per_word=synth, synth_root=self.data.synthetic_dir)
        self.training, self.trained_model = True, None
        self.log_lines = []
        self.stage_label.setToolTip("")
        self.chart.clear_points(1)
        self.show_metrics({})
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
            self, "Few takes", "\n".join(warnings) + "\n\nTrain anyway? (Training measures what to expect, "
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
        self.stage = stage.capitalize()
        self.stage_label.setText(self.stage + "...")
        if stage.startswith("training"):  # the chart follows each final run, not the estimate's short ones
            self.chart.clear_points(1)

    @Slot(dict)
    def on_worker_batch_finished(self, info: dict) -> None:
        self.progress.setRange(0, info["batches"])
        self.progress.setValue(info["batch"])
        self.stage_label.setText(f"{self.stage}: batch {info['batch']} of {info['batches']}, loss {info['loss']:.3f}")
        self.chart.add_batch(info)
        self.chart.refresh()

    @Slot(str)
    def on_worker_log_written(self, line: str) -> None:
        self.log_lines.append(line)
        self.stage_label.setToolTip("\n".join(self.log_lines[-LOG_TOOLTIP_LINES:]))
        if line.startswith(("left out:", "warning:")):  # a take that could not be read: the user should know
            self.status_text_changed.emit(line)

    @Slot(dict)
    def on_worker_epoch_finished(self, info: dict) -> None:
        self.chart.add_epoch(info)

    @Slot(object)
    def on_worker_training_finished(self, result) -> None:
        summary = " ".join(part for part in (expectation_summary(result.estimate),
                                             conversation_summary(result.conversation)) if part)
        self._finish(f"Trained in {result.seconds:.0f} s. " + summary)
        self.progress.setValue(self.progress.maximum())
        self.trained_model = Path(result.model_path)
        self.use_button.setEnabled(True)
        self.show_estimate(result.estimate, result.warnings)
        self.show_conversation(result.conversation)
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
        """What the user can expect, measured on held-out takes and unseen speakers of other words
        (never a validation figure on a few clips): a row per word, one for other speech, and the
        held-out clips' confusion matrix."""
        self.show_metrics({})
        if estimate is None:
            self.accuracy_label.setText("No estimate was made. " + " ".join(warnings))
            return
        if estimate.confusion is not None and estimate.labels:  # what each held-out clip was taken for
            self.confusion.set_matrix(estimate.confusion, estimate.labels)
        rows = [(word, right / total, f"{right}/{total}") for word, (right, total) in estimate.per_word.items() if total]
        if estimate.rejection is not None:
            accepted, total = estimate.false_accepts
            rows.append(("other speech ignored", estimate.rejection, f"{total - accepted}/{total}"))
        self.evaluation.setRowCount(len(rows))
        for row, (name, share, count) in enumerate(rows):
            for column, text in enumerate((name, f"{share:.0%}", "", count)):
                item = QTableWidgetItem(text)
                item.setToolTip("Held out while a short run trained on the rest" if column else text)
                self.evaluation.setItem(row, column, item)
        self.accuracy_label.setText("What to expect: " + expectation_summary(estimate).removeprefix("Estimate: ")
                                    + ("\n" + "\n".join(warnings) if warnings else ""))
        self.accuracy_label.setToolTip("\n".join(estimate.lines()))

    def show_conversation(self, check) -> None:
        """The conversation check under the estimate: false alarms an hour while people talk, and each
        word's threshold for the budget (the tooltip); the Live tab's sensitivity shows the whole curve."""
        if check is None:
            return
        self.accuracy_label.setText("\n".join(part for part in (self.accuracy_label.text(), conversation_summary(check))
                                              if part))
        self.accuracy_label.setToolTip("\n".join(part for part in (self.accuracy_label.toolTip(), *check.lines()) if part))

    def show_evaluation(self, report_dir: Path) -> None:
        """The report's figures (metrics.json): per split, accuracy, recall and precision per word,
        and the confusion matrix."""
        metrics_file = report_dir / "metrics.json"
        if not metrics_file.is_file():
            self.show_metrics({})
            self.accuracy_label.setText("No evaluation was written.")
            return
        self.show_metrics(json.loads(metrics_file.read_text()))

    def show_metrics(self, metrics: dict) -> None:
        self.metrics = {split: values for split, values in metrics.items() if split != "history"}
        self.split_combo.blockSignals(True)
        self.split_combo.clear()
        for split in self.metrics:
            self.split_combo.addItem(split.replace("_", " "), split)
        self.split_combo.blockSignals(False)
        self.split_combo.setVisible(bool(self.metrics))
        self.on_split_combo_current_index_changed(self.split_combo.currentIndex())

    @Slot(int)
    def on_split_combo_current_index_changed(self, index: int) -> None:
        split = self.split_combo.itemData(index)
        values = self.metrics.get(split)
        if values is None:
            self.evaluation.setRowCount(0)
            self.confusion.clear()
            self.accuracy_label.setText("The evaluation of the new model appears here." if not self.metrics else "")
            return
        self.accuracy_label.setText(f"accuracy {values['accuracy']:.1%} on {values['clips']} clips")
        classes = values["classes"]
        self.evaluation.setRowCount(len(classes))
        for row, c in enumerate(classes):  # plain items: `_silence_` shows as written
            cells = (c["label"], f"{c['recall']:.0%}", f"{c['precision']:.0%}", str(c["support"]))
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip(f"{c['label']}: {EVALUATION_TIPS[column].lower()}" if column else text)
                if column:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.evaluation.setItem(row, column, item)
        self.confusion.set_matrix(values["confusion_matrix"], [c["label"] for c in classes])

    def evaluation_rows(self) -> list[list[str]]:
        return [[self.evaluation.item(r, c).text() for c in range(self.evaluation.columnCount())]
                for r in range(self.evaluation.rowCount())]
