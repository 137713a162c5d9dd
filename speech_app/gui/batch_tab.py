"""The Batch tab: add files and folders (dialogs or drag-and-drop), see each file's label."""

from __future__ import annotations

import csv
from pathlib import Path

from PySide6.QtCore import QSettings, QSortFilterProxyModel, Qt, Signal, Slot
from PySide6.QtWidgets import (QAbstractItemView, QFileDialog, QHBoxLayout, QHeaderView, QLabel, QProgressBar,
                               QPushButton, QTableView, QVBoxLayout, QWidget)

from ..atomic_files import atomic_write
from ..audio import AUDIO_EXTENSIONS, SAMPLE_RATE, AudioDecodeError, load_audio
from .batch_results import SORT_ROLE, BatchResultsModel
from .services import AppServices
from .widgets import ElidedLabel
from .workers import BatchJob, BatchWorker, WorkerThread

AUDIO_FILTER = "Audio files (" + " ".join(f"*{ext}" for ext in AUDIO_EXTENSIONS) + ");;All files (*)"


class BatchTab(QWidget):
    classify_requested = Signal(object)  # BatchJob, queued to the worker
    status_text_changed = Signal(str)

    def __init__(self, services: AppServices, settings: QSettings, parent=None):
        super().__init__(parent)
        self.services, self.settings = services, settings
        self.model_path: Path | None = None
        self.last_job = 0
        self.running_jobs: set[int] = set()
        self.setAcceptDrops(True)
        self._build()
        self.worker = BatchWorker(services)
        self.worker_thread = WorkerThread(self.worker, "batch-classification")
        self.classify_requested.connect(self.worker.classify)
        self.worker.files_found.connect(self.on_worker_files_found)
        self.worker.results_ready.connect(self.on_worker_results_ready)
        self.worker.progress_changed.connect(self.on_worker_progress_changed)
        self.worker.job_finished.connect(self.on_worker_job_finished)
        self.worker.job_failed.connect(self.on_worker_job_failed)

    def _build(self) -> None:
        layout = QVBoxLayout(self)
        buttons = QHBoxLayout()
        self.add_files_button = QPushButton("Add files...")
        self.add_files_button.clicked.connect(self.on_add_files_button_clicked)
        self.add_folder_button = QPushButton("Add folder...")
        self.add_folder_button.clicked.connect(self.on_add_folder_button_clicked)
        self.play_button = QPushButton("Play")
        self.play_button.clicked.connect(self.play_selected)
        self.export_button = QPushButton("Export CSV...")
        self.export_button.clicked.connect(self.on_export_button_clicked)
        self.clear_button = QPushButton("Clear")
        self.clear_button.clicked.connect(self.clear_results)
        for button in (self.add_files_button, self.add_folder_button, self.play_button, self.export_button,
                       self.clear_button):
            buttons.addWidget(button)
        self.model_label = ElidedLabel("Model: shipped")
        self.model_label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        buttons.addWidget(self.model_label, 1)
        layout.addLayout(buttons)
        hint = QLabel("Drop audio files or folders here (WAV, FLAC, OGG); folders are searched with their subfolders.")
        hint.setEnabled(False)
        hint.setWordWrap(True)
        layout.addWidget(hint)
        self.results = BatchResultsModel(self)
        self.sorted_results = QSortFilterProxyModel(self)
        self.sorted_results.setSourceModel(self.results)
        self.sorted_results.setSortRole(SORT_ROLE)
        self.table = QTableView()
        self.table.setModel(self.sorted_results)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(0, Qt.SortOrder.AscendingOrder)  # Qt's default indicator is Z to A
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.table.horizontalHeader().setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)  # reasons can be long
        self.table.verticalHeader().hide()
        self.table.doubleClicked.connect(self.play_selected)
        layout.addWidget(self.table, 1)
        progress_row = QHBoxLayout()
        self.progress = QProgressBar()
        self.progress.setFormat("%v of %m files")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        progress_row.addWidget(self.progress, 1)
        progress_row.addWidget(self.cancel_button)
        layout.addLayout(progress_row)

    # -- public actions ---------------------------------------------------------------------------
    def set_model(self, path: Path | None) -> None:
        self.model_path = path
        self.model_label.setText(f"Model: {Path(path).stem if path else 'shipped'}")

    def add_paths(self, paths: list) -> None:
        """Classify files and folders in the worker thread; results appear as they come."""
        paths = [Path(p) for p in paths]
        if not paths:
            return
        self.last_job += 1
        self.running_jobs.add(self.last_job)
        self.cancel_button.setEnabled(True)
        self.progress.setRange(0, 0)  # busy until the folders are searched
        self.classify_requested.emit(BatchJob(self.last_job, paths, self.model_path))

    @Slot()
    def cancel(self) -> None:
        self.worker.cancel_through(self.last_job)

    def is_busy(self) -> bool:
        return bool(self.running_jobs)

    def rows(self) -> list[list[str]]:
        """The results in the order they came, as shown."""
        return [list(self.results.row(r).cells) for r in range(self.results.rowCount())]

    def export_csv(self, path: Path) -> None:
        with atomic_write(path, "w", newline="", encoding="utf-8", errors="surrogateescape") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(["path", "label", "confidence", "error"])
            for r in range(self.results.rowCount()):
                writer.writerow([str(self._row_path(r)), *self.results.row(r).cells[1:]])

    def _row_path(self, row: int) -> Path:
        """The Path itself: Qt strings would drop the undecodable bytes of a file name that is not UTF-8."""
        return self.results.row(row).path

    @Slot()
    def clear_results(self) -> None:
        self.results.clear()
        self.progress.reset()

    def selected_path(self) -> Path | None:
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            return None
        source = self.sorted_results.mapToSource(rows[0])
        return self._row_path(source.row())

    @Slot()
    def play_selected(self) -> None:
        path = self.selected_path()
        if path is None:
            self.status_text_changed.emit("Select a file to play")
            return
        try:
            self.services.play(load_audio(path), SAMPLE_RATE)
            self.status_text_changed.emit(f"Playing {path.name}")
        except (AudioDecodeError, OSError) as err:
            self.status_text_changed.emit(f"Cannot play {path.name}: {err}")
        except Exception as err:  # sounddevice.PortAudioError: no output device
            self.status_text_changed.emit(f"Cannot play {path.name}: {' '.join(str(err).split())}")

    def shutdown(self) -> None:
        self.worker.cancel_through(self.last_job)
        self.worker_thread.stop()

    # -- drag and drop ----------------------------------------------------------------------------
    def dragEnterEvent(self, event) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        paths = [url.toLocalFile() for url in event.mimeData().urls() if url.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.add_paths(paths)

    # -- slots ------------------------------------------------------------------------------------
    @Slot()
    def on_add_files_button_clicked(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Add audio files", self._last_dir(), AUDIO_FILTER)
        if paths:
            self.settings.setValue("batch/last_dir", str(Path(paths[0]).parent))
            self.add_paths(paths)

    @Slot()
    def on_add_folder_button_clicked(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Add a folder of audio files", self._last_dir())
        if folder:
            self.settings.setValue("batch/last_dir", folder)
            self.add_paths([folder])

    @Slot()
    def on_export_button_clicked(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export results", str(Path(self._last_dir()) / "results.csv"),
                                              "CSV files (*.csv)")
        if path:
            self.export_csv(Path(path))

    def _last_dir(self) -> str:
        return str(self.settings.value("batch/last_dir", str(Path.home())))

    @Slot(int, list)
    def on_worker_files_found(self, job: int, files: list) -> None:
        self.progress.setRange(0, max(1, len(files)))
        self.progress.setValue(0)
        self.status_text_changed.emit(f"Classifying {len(files)} files")

    @Slot(int, list)
    def on_worker_results_ready(self, job: int, results: list) -> None:
        self.results.append(results)

    @Slot(int, int)
    def on_worker_progress_changed(self, done: int, total: int) -> None:
        self.progress.setRange(0, max(1, total))
        self.progress.setValue(done)

    @Slot(int, bool)
    def on_worker_job_finished(self, job: int, cancelled: bool) -> None:
        self._job_done(job, "Cancelled" if cancelled else f"Classified {self.results.rowCount()} files")

    @Slot(int, str)
    def on_worker_job_failed(self, job: int, message: str) -> None:
        self._job_done(job, f"Batch failed: {message}")

    def _job_done(self, job: int, message: str) -> None:
        self.running_jobs.discard(job)
        if not self.running_jobs:
            self.cancel_button.setEnabled(False)
            if self.progress.maximum() == 0:
                self.progress.setRange(0, 1)
        self.status_text_changed.emit(message)
