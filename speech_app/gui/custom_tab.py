"""The Custom words tab: type words, record takes of each, train a model on them, pick models."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import soundfile
from PySide6.QtCore import QSettings, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (QDoubleSpinBox, QGroupBox, QHBoxLayout, QHeaderView, QLabel, QLineEdit, QMessageBox, QPushButton,
                               QSplitter, QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget)

from ..audio import SAMPLE_RATE, AudioDecodeError, load_audio
from ..training.custom_words import TAKES_ENOUGH, TAKES_MINIMUM
from .models_panel import ModelsPanel
from .plots import LevelMeter
from .services import AppServices
from .training_panel import TrainingPanel
from .userdata import DataFolder, clean_words
from .workers import TakeRecorder, WorkerThread

COUNTDOWN_S = 3  # seconds counted down before a take starts
TAKE_SECONDS_DEFAULT = 1.5
TAKE_SECONDS_RANGE = (0.5, 5.0)
COUNTDOWN_FONT_PT = 16
PATH_ROLE = Qt.ItemDataRole.UserRole
WORD_ROLE = Qt.ItemDataRole.UserRole + 1
TAKES_PANE_SHARE = 30  # percent of the tab's width for the words and takes
MAX_LISTED_TAKES = 200  # newest takes listed per word: a folder of 10,000 took 1.3 s of the GUI thread to list


class CustomWordsTab(QWidget):
    record_requested = Signal(str, object, float, object)  # word, path, seconds, device
    status_text_changed = Signal(str)

    def __init__(self, services: AppServices, settings: QSettings, data: DataFolder,
                 device_provider: Callable[[], object], parent=None):
        super().__init__(parent)
        self.setObjectName("customWordsTab")
        self.services, self.settings, self.data = services, settings, data
        self.device_provider = device_provider  # the microphone chosen in the Live tab
        self.input_available = False
        self._countdown_left = 0
        self._pending_word = ""
        self._recording = False
        self.training = TrainingPanel(data, self.committed_words)
        self.models = ModelsPanel(data)
        self._build()
        self.recorder = TakeRecorder(services)
        self.recorder_thread = WorkerThread(self.recorder, "take-recorder")
        self.record_requested.connect(self.recorder.record)
        self.recorder.level_changed.connect(self.level_meter.set_level)
        self.recorder.take_saved.connect(self.on_recorder_take_saved)
        self.recorder.recording_failed.connect(self.on_recorder_recording_failed)
        self.countdown_timer = QTimer(self)
        self.countdown_timer.setInterval(1000)
        self.countdown_timer.timeout.connect(self.on_countdown_timer_timeout)
        self.training.model_trained.connect(self.on_training_model_trained)
        self.training.status_text_changed.connect(self.status_text_changed)
        self.words_edit.setText(str(self.settings.value("custom/words", "")))
        self.on_words_edit_editing_finished()

    def _build(self) -> None:
        layout = QHBoxLayout(self)
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.setObjectName("customSplitter")
        splitter.addWidget(self._build_takes())
        right = QSplitter(Qt.Orientation.Vertical)
        right.setObjectName("trainModelsSplitter")
        right.addWidget(self.training)
        right.addWidget(self.models)
        right.setStretchFactor(0, 3)  # training gets most of the height; the models list scrolls
        right.setStretchFactor(1, 1)
        for each in (splitter, right):
            each.setChildrenCollapsible(False)  # a dragged handle never hides a pane entirely
        splitter.addWidget(right)
        splitter.setStretchFactor(1, 2)
        splitter.setSizes([TAKES_PANE_SHARE, 100 - TAKES_PANE_SHARE])  # proportions at the first layout
        layout.addWidget(splitter)

    def _build_takes(self) -> QWidget:
        box = QGroupBox("Words and takes")
        layout = QVBoxLayout(box)
        words_label = QLabel("Words to recognize, separated by commas:")
        words_label.setWordWrap(True)  # the pane may be narrow on a laptop screen
        layout.addWidget(words_label)
        layout.addLayout(self._build_words_row())
        self.takes_hint = QLabel(f"Record at least {TAKES_MINIMUM} takes of each word; {TAKES_ENOUGH}, from a few "
                                 f"voices and distances, is enough.")
        self.takes_hint.setWordWrap(True)
        layout.addWidget(self.takes_hint)
        self.takes_tree = QTreeWidget()
        self.takes_tree.setHeaderLabels(["Word / take", "Seconds"])
        self.takes_tree.header().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.takes_tree.header().setStretchLastSection(False)
        self.takes_tree.currentItemChanged.connect(self._update_buttons)
        self.takes_tree.itemDoubleClicked.connect(self.play_selected)
        layout.addWidget(self.takes_tree, 1)
        layout.addLayout(self._build_record_row())
        self.countdown_label = QLabel("Select a word, then press Record take.")
        font = QFont(self.countdown_label.font())
        font.setPointSize(COUNTDOWN_FONT_PT)
        self.countdown_label.setFont(font)
        self.countdown_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.countdown_label.setWordWrap(True)
        self.level_meter = LevelMeter()
        layout.addWidget(self.countdown_label)
        layout.addWidget(self.level_meter)
        return box

    def _build_words_row(self) -> QHBoxLayout:
        words_row = QHBoxLayout()
        self.words_edit = QLineEdit()
        self.words_edit.setPlaceholderText("lights on, lights off, music")
        # Enter and leaving the field both use the words: typed words are never left unsaved
        self.words_edit.editingFinished.connect(self.on_words_edit_editing_finished)
        self.words_edit.textEdited.connect(self.on_words_edit_text_edited)
        self.set_words_button = QPushButton("Use these words")
        self.set_words_button.setToolTip("Lists the words below, ready for takes (Enter does the same)")
        self.set_words_button.setEnabled(False)
        self.set_words_button.clicked.connect(self.on_words_edit_editing_finished)
        words_row.addWidget(self.words_edit, 1)
        words_row.addWidget(self.set_words_button)
        return words_row

    def _build_record_row(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.take_seconds = QDoubleSpinBox()
        self.take_seconds.setRange(*TAKE_SECONDS_RANGE)
        self.take_seconds.setSingleStep(0.5)
        self.take_seconds.setValue(float(self.settings.value("custom/take_seconds", TAKE_SECONDS_DEFAULT, float)))
        self.take_seconds.setSuffix(" s")
        self.record_button = QPushButton("Record take")
        self.record_button.setToolTip("Counts down, then records one take of the selected word (Ctrl+R)")
        self.record_button.clicked.connect(self.record_take)
        self.play_button = QPushButton("Play")
        self.play_button.clicked.connect(self.play_selected)
        self.delete_button = QPushButton("Delete")
        self.delete_button.clicked.connect(self.on_delete_button_clicked)
        for widget in (self.take_seconds, self.record_button, self.play_button, self.delete_button):
            row.addWidget(widget)
        return row

    # -- words and takes --------------------------------------------------------------------------
    def words(self) -> list[str]:
        try:
            return clean_words(self.words_edit.text())
        except ValueError:
            return []

    def committed_words(self) -> list[str]:
        """The words as typed, saved and listed first if they were not yet (training reads them)."""
        if self.words_edit.text() != str(self.settings.value("custom/words", "")):
            self.on_words_edit_editing_finished()
        return self.words()

    def set_words(self, text: str) -> None:
        self.words_edit.setText(text)
        self.on_words_edit_editing_finished()

    def set_input_available(self, available: bool) -> None:
        self.input_available = available
        self._update_buttons()

    def refresh_takes(self, select: Path | None = None) -> None:
        selected_word = self.selected_word()
        self.takes_tree.clear()
        for word in self.words():
            takes = self.data.takes(word)
            parent = QTreeWidgetItem([f"{word}  ({len(takes)} takes{take_advice(len(takes))})", ""])
            parent.setData(0, WORD_ROLE, word)
            if len(takes) > MAX_LISTED_TAKES:  # each row reads its file's header on the GUI thread
                older = QTreeWidgetItem([f"{len(takes) - MAX_LISTED_TAKES} older takes not listed", ""])
                older.setData(0, WORD_ROLE, word)  # selecting it selects the word, as its takes do
                parent.addChild(older)
                takes = takes[-MAX_LISTED_TAKES:]  # take names sort by their time
            for path in takes:
                child = QTreeWidgetItem([path.name, f"{_duration_s(path):.2f}"])
                child.setData(0, PATH_ROLE, str(path))
                child.setData(0, WORD_ROLE, word)
                parent.addChild(child)
            self.takes_tree.addTopLevelItem(parent)
            parent.setExpanded(True)
            if select is None and word == selected_word:
                self.takes_tree.setCurrentItem(parent)
        if self.takes_tree.currentItem() is None and self.takes_tree.topLevelItemCount():
            self.takes_tree.setCurrentItem(self.takes_tree.topLevelItem(0))
        if select is not None:
            for item in self._all_items():
                if item.data(0, PATH_ROLE) == str(select):
                    self.takes_tree.setCurrentItem(item)
        self._update_buttons()

    def _all_items(self) -> list[QTreeWidgetItem]:
        items = []
        for i in range(self.takes_tree.topLevelItemCount()):
            parent = self.takes_tree.topLevelItem(i)
            items += [parent] + [parent.child(j) for j in range(parent.childCount())]
        return items

    def selected_word(self) -> str:
        item = self.takes_tree.currentItem()
        return item.data(0, WORD_ROLE) if item is not None else ""

    def select_word(self, word: str) -> None:
        for item in self._all_items():
            if item.parent() is None and item.data(0, WORD_ROLE) == word:
                self.takes_tree.setCurrentItem(item)

    def selected_take(self) -> Path | None:
        item = self.takes_tree.currentItem()
        path = item.data(0, PATH_ROLE) if item is not None else None
        return Path(path) if path else None

    @Slot()
    def record_take(self) -> None:
        """Count down, then record one take of the selected word in the recorder's thread."""
        word = self.selected_word()
        if not word or not self.input_available or self.countdown_timer.isActive():
            return
        self._pending_word = word
        self._countdown_left = COUNTDOWN_S
        self.countdown_label.setText(f"{word!r} in {self._countdown_left}...")
        self.record_button.setEnabled(False)
        self.countdown_timer.start()

    @Slot()
    def play_selected(self, *_) -> None:
        path = self.selected_take()
        if path is None:
            return
        try:
            self.services.play(load_audio(path), SAMPLE_RATE)
        except (AudioDecodeError, OSError) as err:
            self.status_text_changed.emit(f"Cannot play {path.name}: {err}")
        except Exception as err:  # sounddevice.PortAudioError: no output device
            self.status_text_changed.emit(f"Cannot play {path.name}: {' '.join(str(err).split())}")

    def delete_selected(self) -> None:
        path = self.selected_take()
        if path is not None:
            self.data.delete_take(path)
            self.status_text_changed.emit(f"Deleted {path.name}")
            self.refresh_takes()

    def shutdown(self) -> None:
        self.settings.setValue("custom/words", self.words_edit.text())  # typed, even if never used
        self.countdown_timer.stop()
        self.recorder_thread.stop()
        self.training.shutdown()

    # -- slots ------------------------------------------------------------------------------------
    @Slot(str)
    def on_words_edit_text_edited(self, text: str) -> None:
        """Typed but not yet used: say how to use them."""
        changed = text != str(self.settings.value("custom/words", ""))
        self.set_words_button.setEnabled(changed)
        if changed:
            self.countdown_label.setText("Press Use these words (or Enter) to list the words for recording.")

    @Slot()
    def on_words_edit_editing_finished(self) -> None:
        self.settings.setValue("custom/words", self.words_edit.text())  # as typed: a bad word is fixed, not lost
        try:
            words = clean_words(self.words_edit.text())
        except ValueError as err:
            self.countdown_label.setText(str(err))
            return
        self.set_words_button.setEnabled(False)
        self.refresh_takes()
        if words:
            self.countdown_label.setText(f"{len(words)} word{'s' * (len(words) != 1)} ready: select one, "
                                         f"then press Record take.")

    @Slot()
    def on_delete_button_clicked(self) -> None:
        path = self.selected_take()
        if path is None:
            return
        answer = QMessageBox.question(self, "Delete take", f"Delete {path.name}?")
        if answer == QMessageBox.StandardButton.Yes:
            self.delete_selected()

    @Slot()
    def on_countdown_timer_timeout(self) -> None:
        self._countdown_left -= 1
        if self._countdown_left > 0:
            self.countdown_label.setText(f"{self._pending_word!r} in {self._countdown_left}...")
            return
        self.countdown_timer.stop()
        seconds = self.take_seconds.value()
        self.settings.setValue("custom/take_seconds", seconds)
        self.countdown_label.setText(f"Say {self._pending_word!r} now")
        path = self.data.new_take_path(self._pending_word)
        self._recording = True
        self.record_requested.emit(self._pending_word, path, seconds, self.device_provider())

    @Slot(str, object)
    def on_recorder_take_saved(self, word: str, path: Path) -> None:
        self._recording = False
        count = len(self.data.takes(word))
        self.countdown_label.setText(f"Saved take {count} of {word!r}")
        self.status_text_changed.emit(f"Saved {path}")
        self.refresh_takes()
        self.select_word(word)
        self._update_buttons()

    @Slot(str)
    def on_recorder_recording_failed(self, message: str) -> None:
        self._recording = False
        self.countdown_label.setText(f"Recording failed: {message}")
        self._update_buttons()

    @Slot(object)
    def on_training_model_trained(self, path: Path) -> None:
        self.models.select(path)

    @Slot()
    def _update_buttons(self, *_) -> None:
        busy = self._recording or (hasattr(self, "countdown_timer") and self.countdown_timer.isActive())
        self.record_button.setEnabled(bool(self.selected_word()) and self.input_available and not busy)
        self.record_button.setToolTip("" if self.input_available else "No microphone: connect one and press "
                                                                       "Refresh in the Live tab")
        has_take = self.selected_take() is not None
        self.play_button.setEnabled(has_take)
        self.delete_button.setEnabled(has_take)


def take_advice(count: int) -> str:
    """After a word's take count: how far it is from enough."""
    if count < TAKES_MINIMUM:
        return f", {TAKES_MINIMUM - count} more needed"
    if count < TAKES_ENOUGH:
        return f", {TAKES_ENOUGH - count} more would help"
    return ", enough"


def _duration_s(path: Path) -> float:
    try:
        return soundfile.info(str(path)).duration
    except (RuntimeError, soundfile.LibsndfileError):
        return 0.0
