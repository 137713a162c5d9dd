"""The Live tab: pick a microphone, listen, and watch commands appear with their confidence."""

from __future__ import annotations

import csv
import os
from datetime import datetime
from pathlib import Path

import numpy as np
from PySide6.QtCore import QMetaObject, QSettings, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (QAbstractItemView, QApplication, QComboBox, QFileDialog, QGroupBox, QHBoxLayout,
                               QHeaderView, QLabel, QPushButton, QSlider, QSplitter, QTableWidget,
                               QTableWidgetItem, QVBoxLayout, QWidget)

from ..onnx_runtime import RUNTIMES
from ..streaming import AVERAGING_MS, DETECTION_THRESHOLD
from .expectations import sensitivity_text, sensitivity_tip
from .plots import ConfidenceBars, SpectrogramView, WaveformView
from .services import RUNTIME_NAMES, AppServices
from .widgets import ElidedLabel
from .workers import LiveModel, LiveRecognitionWorker, LiveStats, WorkerThread

REDRAW_MS = 50  # waveform and spectrogram repaint period (20 frames a second)
SENSITIVITY_RANGE = (5, 95)  # percent; sensitivity = 100 - threshold in percent
DEFAULT_SENSITIVITY = int(round(100 * (1.0 - DETECTION_THRESHOLD)))
DEVICE_COMBO_MIN_WIDTH = 160  # pixels
DEVICE_COMBO_MIN_CHARS = 18
SPLIT_SIZES = (420, 240)  # pixels: live views above, transcript below
TRANSCRIPT_COLUMNS = ("Time", "Seconds", "Word", "Score when heard")
# the two numbers a user compares, and why they differ: both are the model's probability for a word
# averaged over the last AVERAGING_MS of evaluations, but taken at different moments
BARS_TITLE = f"Confidence now (averaged over {AVERAGING_MS / 1000:.1f} s)"
BARS_TIP = ("Each word's probability right now, averaged over the last {:.1f} s. After a word is heard its bar "
            "keeps rising for a moment, so it often ends higher than the score in the transcript.")
TRANSCRIPT_TIPS = ("Clock time of the detection",
                   "Seconds of listening since the transcript began (pauses between Starts are not counted)",
                   "The word heard",
                   "The averaged probability at the moment the word crossed the detection threshold")
VALUE_ROLE = Qt.ItemDataRole.UserRole  # the number behind a cell's text, for the CSV
RUNTIME_CHOICES = {"auto": "Automatic (ONNX Runtime where the model has an export)", "onnx": "ONNX Runtime",
                   "torch": "PyTorch"}  # the Live menu's runtime choices, by onnx_runtime.RUNTIMES name
NO_DEVICE_TEXT = ("No microphone found. Connect one and press Refresh. "
                  "The Batch and Custom words tabs work without one.")


def preferred_device(devices: list, wanted: str) -> int:
    """Position in `devices` of the one asked for (a name, a number or part of a name), else the default."""
    tests = (lambda d: d.name == wanted, lambda d: str(d.index) == wanted,
             lambda d: bool(wanted) and wanted.lower() in d.name.lower(), lambda d: d.is_default)
    for test in tests:
        for position, device in enumerate(devices):
            if test(device):
                return position
    return 0 if devices else -1


def sensitivity_to_threshold(sensitivity_percent: int) -> float:
    return 1.0 - sensitivity_percent / 100.0


def threshold_to_sensitivity(threshold: float) -> int:
    """The slider's position for a threshold, within its range."""
    return int(np.clip(round(100 * (1.0 - threshold)), *SENSITIVITY_RANGE))


class LiveTab(QWidget):
    status_text_changed = Signal(str)
    listening_changed = Signal(bool)
    devices_changed = Signal(list)  # [InputDevice]; empty: no microphone
    model_loaded = Signal(object, list)  # path (None: shipped), labels
    # requests to the worker (queued into its thread)
    devices_requested = Signal()
    model_requested = Signal(object)
    listening_requested = Signal(object)
    stop_requested = Signal()
    threshold_changed = Signal(float)
    runtime_requested = Signal(str)
    clock_reset_requested = Signal()

    def __init__(self, services: AppServices, settings: QSettings, parent=None):
        super().__init__(parent)
        self.settings = settings
        self.listening = False
        self.model_path: Path | None = None
        self.model: LiveModel | None = None
        self.devices = []
        self._build()
        self.worker = LiveRecognitionWorker(services)
        self.worker.runtime = self.runtime()  # before the worker's thread runs: the first model loads on it
        self.worker_thread = WorkerThread(self.worker, "live-recognition")
        self._connect_worker()
        self.redraw_timer = QTimer(self)
        self.redraw_timer.setInterval(REDRAW_MS)
        self.redraw_timer.timeout.connect(self.on_redraw_timer_timeout)
        self.on_sensitivity_slider_value_changed(self.sensitivity_slider.value())
        self.devices_requested.emit()

    # -- layout ---------------------------------------------------------------------------------
    def _build(self) -> None:
        layout = QVBoxLayout(self)
        layout.addLayout(self._build_controls())
        # what the sensitivity means for the model in use (its file's conversation check)
        self.expectation_label = QLabel()
        self.expectation_label.setWordWrap(True)
        layout.addWidget(self.expectation_label)
        self.no_device_label = QLabel(NO_DEVICE_TEXT)
        self.no_device_label.setWordWrap(True)
        self.no_device_label.setObjectName("noDeviceBanner")
        self.no_device_label.setStyleSheet("QLabel#noDeviceBanner { padding: 8px; border: 1px solid #c77700; "
                                           "border-radius: 4px; background: rgba(255, 170, 0, 40); }")
        self.no_device_label.hide()
        layout.addWidget(self.no_device_label)
        splitter = QSplitter(Qt.Orientation.Vertical)
        views = QSplitter(Qt.Orientation.Horizontal)
        plots = QWidget()
        plot_layout = QVBoxLayout(plots)
        plot_layout.setContentsMargins(0, 0, 0, 0)
        self.waveform = WaveformView()
        self.spectrogram = SpectrogramView()
        plot_layout.addWidget(self.waveform, 1)
        plot_layout.addWidget(self.spectrogram, 1)
        self.bars_box = bars_box = QGroupBox(BARS_TITLE)
        bars_box.setToolTip(BARS_TIP.format(AVERAGING_MS / 1000))  # the model's own average once it is loaded
        self.confidence_bars = ConfidenceBars()
        QVBoxLayout(bars_box).addWidget(self.confidence_bars)
        views.addWidget(plots)
        views.addWidget(bars_box)
        views.setStretchFactor(0, 3)
        views.setStretchFactor(1, 1)
        splitter.addWidget(views)
        splitter.addWidget(self._build_transcript())
        splitter.setSizes(list(SPLIT_SIZES))
        layout.addWidget(splitter, 1)

    def _build_controls(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.device_combo = QComboBox()
        self.device_combo.setMinimumWidth(DEVICE_COMBO_MIN_WIDTH)
        self.device_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.device_combo.setMinimumContentsLength(DEVICE_COMBO_MIN_CHARS)  # long device names elide
        self.device_combo.setToolTip("Microphone to listen to")
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.setToolTip("Look for microphones again")
        self.refresh_button.clicked.connect(self.on_refresh_button_clicked)
        self.start_button = QPushButton("Start listening")
        self.start_button.setEnabled(False)
        self.start_button.clicked.connect(self.on_start_button_clicked)
        self.sensitivity_slider = QSlider(Qt.Orientation.Horizontal)
        self.sensitivity_slider.setRange(*SENSITIVITY_RANGE)
        self.sensitivity_slider.setValue(int(self.settings.value("live/sensitivity", DEFAULT_SENSITIVITY, int)))
        self.sensitivity_slider.setToolTip("Higher: hears quieter or less clear words, and makes more mistakes")
        self.sensitivity_slider.valueChanged.connect(self.on_sensitivity_slider_value_changed)
        self.sensitivity_label = QLabel()
        self.model_label = ElidedLabel("Model: loading...")
        for widget in (QLabel("Input:"), self.device_combo, self.refresh_button, self.start_button,
                       QLabel("Sensitivity:"), self.sensitivity_slider, self.sensitivity_label):
            row.addWidget(widget)
        row.addWidget(self.model_label, 1)
        return row

    def _build_transcript(self) -> QWidget:
        box = QGroupBox("Transcript")
        layout = QVBoxLayout(box)
        self.transcript = QTableWidget(0, len(TRANSCRIPT_COLUMNS))
        self.transcript.setHorizontalHeaderLabels(TRANSCRIPT_COLUMNS)
        for column, tip in enumerate(TRANSCRIPT_TIPS):
            self.transcript.horizontalHeaderItem(column).setToolTip(tip)
        self.transcript.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.transcript.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.transcript.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.transcript.verticalHeader().hide()
        copy_action = QAction("Copy", self.transcript)
        copy_action.setShortcut(QKeySequence.StandardKey.Copy)
        copy_action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        copy_action.triggered.connect(self.copy_transcript)
        self.transcript.addAction(copy_action)
        buttons = QHBoxLayout()
        self.copy_button = QPushButton("Copy")
        self.copy_button.clicked.connect(self.copy_transcript)
        self.export_button = QPushButton("Export CSV...")
        self.export_button.clicked.connect(self.on_export_button_clicked)
        self.clear_button = QPushButton("Clear")
        self.clear_button.clicked.connect(self.clear_transcript)
        buttons.addStretch(1)
        for button in (self.copy_button, self.export_button, self.clear_button):
            buttons.addWidget(button)
        layout.addWidget(self.transcript)
        layout.addLayout(buttons)
        return box

    def _connect_worker(self) -> None:
        w = self.worker
        self.devices_requested.connect(w.list_devices)
        self.model_requested.connect(w.load_model)
        self.listening_requested.connect(w.start_listening)
        self.stop_requested.connect(w.stop_listening)
        self.threshold_changed.connect(w.set_threshold)
        self.runtime_requested.connect(w.set_runtime)
        self.clock_reset_requested.connect(w.reset_clock)
        w.devices_listed.connect(self.on_worker_devices_listed)
        w.model_loaded.connect(self.on_worker_model_loaded)
        w.model_failed.connect(self.on_worker_model_failed)
        w.listening_started.connect(self.on_worker_listening_started)
        w.listening_stopped.connect(self.on_worker_listening_stopped)
        w.listening_failed.connect(self.on_worker_listening_failed)
        w.audio_captured.connect(self.on_worker_audio_captured)
        w.prediction_ready.connect(self.on_worker_prediction_ready)
        w.detection_made.connect(self.on_worker_detection_made)
        w.stats_changed.connect(self.on_worker_stats_changed)
        w.source_notice.connect(self.on_worker_source_notice)

    # -- public actions (menus call these too) ------------------------------------------------------
    def set_model(self, path: Path | None) -> None:
        """Load a model in the worker thread; `model_loaded` says when it is in use."""
        self.model_label.setText("Model: loading...")
        self.model_requested.emit(path)

    def runtime(self) -> str:
        """The runtime asked for (onnx_runtime.RUNTIMES), saved between sessions."""
        saved = str(self.settings.value("live/runtime", "auto"))
        return saved if saved in RUNTIMES else "auto"

    def set_runtime(self, runtime: str) -> None:
        """Run the model on `runtime` ("auto", "onnx", "torch") from now on; the model reloads on it."""
        self.settings.setValue("live/runtime", runtime)
        self.model_label.setText("Model: loading...")
        self.runtime_requested.emit(runtime)

    def expectation_text(self) -> str:
        """What the sensitivity set now means for the model in use."""
        if self.model is None:
            return ""
        threshold = sensitivity_to_threshold(self.sensitivity_slider.value())
        return sensitivity_text(self.model.curve, threshold, shipped=self.model.path is None)

    def selected_device(self):
        return self.device_combo.currentData()

    def start_listening(self) -> None:
        if not self.listening and self.start_button.isEnabled():
            self.start_button.setEnabled(False)
            self.listening_requested.emit(self.selected_device())

    def stop_listening(self) -> None:
        if self.listening:
            self.stop_requested.emit()

    def toggle_listening(self) -> None:
        self.stop_listening() if self.listening else self.start_listening()

    def has_input_device(self) -> bool:
        return bool(self.devices)

    def transcript_rows(self) -> list[list[str]]:
        return [[self.transcript.item(r, c).text() for c in range(self.transcript.columnCount())]
                for r in range(self.transcript.rowCount())]

    def detected_words(self) -> list[str]:
        return [row[2] for row in self.transcript_rows()]

    @Slot()
    def copy_transcript(self) -> None:
        rows = sorted({i.row() for i in self.transcript.selectedIndexes()}) or range(self.transcript.rowCount())
        every = self.transcript_rows()
        text = "\n".join("\t".join(every[r]) for r in rows)
        QApplication.clipboard().setText("\t".join(TRANSCRIPT_COLUMNS) + "\n" + text + "\n")

    def export_transcript(self, path: Path) -> None:
        """CSV through a temporary file and a rename."""
        path = Path(path)
        tmp = path.with_name(f".{path.name}.tmp")
        with open(tmp, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(["time", "seconds", "label", "confidence"])
            for r in range(self.transcript.rowCount()):
                items = [self.transcript.item(r, c) for c in range(self.transcript.columnCount())]
                writer.writerow([item.data(VALUE_ROLE) or item.text() for item in items])
        os.replace(tmp, path)

    @Slot()
    def clear_transcript(self) -> None:
        """Empty the transcript; its clock starts again from zero at the next Start."""
        self.transcript.setRowCount(0)
        self.clock_reset_requested.emit()

    def idle_status(self) -> str:
        """What the status bar says while not listening."""
        if not self.confidence_bars.labels:
            return "Loading the model..."
        if not self.devices:
            return "No input device: live recognition is off"
        name = Path(self.model_path).stem if self.model_path else "the shipped model"
        return f"Ready: {name} is loaded. Press Start listening (F5)."

    def shutdown(self) -> None:
        self.redraw_timer.stop()
        if not self.worker_thread.thread.isRunning():
            return
        # close the stream in the worker's own thread (its timer lives there), then end the thread
        QMetaObject.invokeMethod(self.worker, "stop_listening", Qt.ConnectionType.BlockingQueuedConnection)
        self.worker_thread.stop()

    # -- slots ------------------------------------------------------------------------------------
    @Slot()
    def on_refresh_button_clicked(self) -> None:
        self.devices_requested.emit()

    @Slot()
    def on_start_button_clicked(self) -> None:
        self.toggle_listening()

    @Slot()
    def on_export_button_clicked(self) -> None:
        start = str(Path(self.settings.value("live/export_dir", str(Path.home()))) / "transcript.csv")
        path, _ = QFileDialog.getSaveFileName(self, "Export transcript", start, "CSV files (*.csv)")
        if path:
            self.export_transcript(Path(path))
            self.settings.setValue("live/export_dir", str(Path(path).parent))

    @Slot(int)
    def on_sensitivity_slider_value_changed(self, value: int) -> None:
        self.sensitivity_label.setText(f"{value}%")
        self.settings.setValue("live/sensitivity", value)
        self.threshold_changed.emit(sensitivity_to_threshold(value))
        self.expectation_label.setText(self.expectation_text())

    @Slot(list)
    def on_worker_devices_listed(self, devices: list) -> None:
        self.devices = devices
        saved = self.settings.value("live/device", "")
        self.device_combo.clear()
        for device in devices:
            self.device_combo.addItem(f"{device.name} ({device.host_api})", device.index)
        self.device_combo.setCurrentIndex(preferred_device(devices, str(saved)))
        self.no_device_label.setVisible(not devices)
        self.device_combo.setEnabled(bool(devices))
        self._update_start_button()
        if not self.listening:
            self.status_text_changed.emit(self.idle_status())
        self.devices_changed.emit(devices)

    @Slot(object)
    def on_worker_model_loaded(self, model: LiveModel) -> None:
        path, labels = model.path, model.labels
        self.model_path, self.model = path, model
        runtime = RUNTIME_NAMES.get(model.runtime, model.runtime)
        self.model_label.setText(f"Model: {Path(path).stem if path else 'shipped'} on {runtime}")
        self.model_label.set_details("Words: " + ", ".join(labels) + (f"\n{model.note}" if model.note else ""))
        self.confidence_bars.set_labels(labels)
        own_threshold = model.own_settings.get("threshold")
        if own_threshold is not None:  # the model's own sensitivity to start from; a move of the slider wins
            self.sensitivity_slider.setValue(threshold_to_sensitivity(own_threshold))
        self.expectation_label.setText(self.expectation_text())
        self.expectation_label.setToolTip(sensitivity_tip(model.curve, model.settings))
        self.bars_box.setToolTip(BARS_TIP.format(model.settings.averaging_ms / 1000))
        self._update_start_button()
        if not self.listening:
            self.status_text_changed.emit(self.idle_status())
        self.model_loaded.emit(path, labels)

    @Slot(str)
    def on_worker_model_failed(self, message: str) -> None:
        self.model_label.setText("Model: none")
        self.status_text_changed.emit(f"Could not load the model: {message}")
        self._update_start_button()

    @Slot(object)
    def on_worker_listening_started(self, stats) -> None:
        self.listening = True
        if self.device_combo.currentText():
            self.settings.setValue("live/device", self.devices[self.device_combo.currentIndex()].name)
        self.waveform.clear_audio()
        self.spectrogram.clear_audio()
        self.redraw_timer.start()
        self.start_button.setText("Stop listening")
        self._update_start_button()
        self.status_text_changed.emit(f"Listening on {stats.device_name} at {stats.device_rate_hz} Hz, "
                                      f"latency {stats.latency_s * 1000:.0f} ms")
        self.listening_changed.emit(True)

    @Slot()
    def on_worker_listening_stopped(self) -> None:
        self.listening = False
        self.redraw_timer.stop()
        self.start_button.setText("Start listening")
        self._update_start_button()
        self.status_text_changed.emit("Stopped. " + self.idle_status())
        self.listening_changed.emit(False)

    @Slot(str)
    def on_worker_listening_failed(self, message: str) -> None:
        self.listening = False
        self.start_button.setText("Start listening")
        self._update_start_button()
        self.status_text_changed.emit(f"Cannot listen: {message}")

    @Slot(object)
    def on_worker_audio_captured(self, samples) -> None:
        self.waveform.append(samples)
        self.spectrogram.append(samples)

    @Slot(object)
    def on_worker_prediction_ready(self, frame) -> None:
        self.confidence_bars.show_scores(frame.smoothed)

    @Slot(object)
    def on_worker_detection_made(self, detection) -> None:
        row = self.transcript.rowCount()
        self.transcript.insertRow(row)
        clock = datetime.now().strftime("%H:%M:%S")
        cells = ((clock, None), (f"{detection.time_s:.2f}", None), (detection.label, None),
                 (f"{detection.confidence:.0%}", f"{detection.confidence:.4f}"))  # percent, like the bars
        for column, (text, value) in enumerate(cells):
            item = QTableWidgetItem(text)
            item.setData(VALUE_ROLE, value)
            if column != 2:
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            self.transcript.setItem(row, column, item)
        self.transcript.scrollToBottom()

    @Slot(object)
    def on_worker_stats_changed(self, stats: LiveStats) -> None:
        c = stats.capture
        self.status_text_changed.emit(
            f"Input: {c.device_name} | {c.device_rate_hz} Hz | latency {c.latency_s * 1000:.0f} ms | "
            f"model {stats.inference_ms:.1f} ms per hop on {self.runtime_name()} | dropped {c.dropped_s:.2f} s "
            f"({c.overflows} overflows)")

    @Slot(str)
    def on_worker_source_notice(self, notice: str) -> None:
        self.status_text_changed.emit(f"Microphone: {notice}")  # listening goes on; the device may return

    @Slot()
    def on_redraw_timer_timeout(self) -> None:
        self.waveform.refresh()
        self.spectrogram.refresh()

    def runtime_name(self) -> str:
        """The runtime the model in use runs on, in words."""
        return RUNTIME_NAMES.get(self.model.runtime, self.model.runtime) if self.model else "no model"

    def _update_start_button(self) -> None:
        ready = bool(self.devices) and bool(self.confidence_bars.labels)
        self.start_button.setEnabled(self.listening or ready)
