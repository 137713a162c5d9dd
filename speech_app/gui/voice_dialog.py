"""Adapt to your voice: record two or three takes of each command of the model in use, prompted one
after the other with the Custom words tab's countdown and level meter, adapt the model to them in a
worker thread (speech_app.training.adapt, as `speech-app adapt`), and use the adapted model in the
Live tab; the base model stays one click away."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Callable

from PySide6.QtCore import QObject, QTimer, Signal, Slot
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (QDialog, QHBoxLayout, QLabel, QListWidget, QPushButton, QSpinBox, QVBoxLayout)

from ..training.adapt import TAKES_SUGGESTED, AdaptRecipe, commands_of
from .plots import LevelMeter
from .services import AppServices
from .userdata import DataFolder
from .workers import TakeRecorder, WorkerThread

COUNTDOWN_S = 2  # seconds counted down before each take (the first of a session: COUNTDOWN_S + 1)
TAKE_SECONDS = 1.5
TAKES_RANGE = (1, 3)
PROMPT_FONT_PT = 16
VOICE_DIR = "voice"  # under the data folder: voice/<base model>/<session>/<command>/take-*.wav


@dataclass
class AdaptJob:
    takes_dir: Path
    out_path: Path
    base_path: Path | None  # None: the shipped model
    recipe: AdaptRecipe  # the recipe of `speech-app adapt`


class AdaptWorker(QObject):
    """Adapts a model in its own thread; the result or the one-line reason comes back as a signal."""

    stage_changed = Signal(str)
    adapt_finished = Signal(object)  # training.adapt.AdaptResult
    adapt_failed = Signal(str)

    @Slot(object)
    def adapt(self, job: AdaptJob) -> None:
        from ..modelfile import load_model
        from ..training.adapt import adapt

        try:
            job.out_path.parent.mkdir(parents=True, exist_ok=True)
            result = adapt(job.takes_dir, job.out_path, job.recipe, base=load_model(job.base_path),
                           on_stage=self.stage_changed.emit)
        except Exception as err:  # unreadable takes, a full disk, a damaged model: shown in the dialog
            self.adapt_failed.emit(" ".join(str(err).split()) or type(err).__name__)
            return
        self.adapt_finished.emit(result)


class VoiceDialog(QDialog):
    """Record, adapt, use. `model_adapted` carries the new model's path; `base_requested` the base's."""

    record_requested = Signal(str, object, float, object)  # command, path, seconds, device
    adapt_requested = Signal(object)  # AdaptJob
    model_adapted = Signal(object)  # Path of the adapted model: use it in the Live tab
    base_requested = Signal(object)  # Path of the base model (None: the shipped one)

    def __init__(self, services: AppServices, data: DataFolder, base_path: Path | None, labels: list[str],
                 device_provider: Callable[[], object], parent=None):
        super().__init__(parent)
        self.setObjectName("voiceDialog")
        self.setWindowTitle("Adapt to your voice")
        self.data, self.base_path, self.device_provider = data, base_path, device_provider
        self.commands = commands_of(labels)
        self.queue: list[tuple[str, int]] = []  # (command, take number) still to record
        self.session: Path | None = None
        self._countdown_left = 0
        self._build()
        self.recorder = TakeRecorder(services)
        self.recorder_thread = WorkerThread(self.recorder, "voice-recorder")
        self.record_requested.connect(self.recorder.record)
        self.recorder.level_changed.connect(self.level_meter.set_level)
        self.recorder.take_saved.connect(self.on_recorder_take_saved)
        self.recorder.recording_failed.connect(self.on_recorder_recording_failed)
        self.adapter = AdaptWorker()
        self.adapter_thread = WorkerThread(self.adapter, "voice-adapter")
        self.adapt_requested.connect(self.adapter.adapt)
        self.adapter.stage_changed.connect(lambda stage: self.prompt.setText(f"Adapting: {stage}..."))
        self.adapter.adapt_finished.connect(self.on_adapter_adapt_finished)
        self.adapter.adapt_failed.connect(self.on_adapter_adapt_failed)
        self.countdown_timer = QTimer(self)
        self.countdown_timer.setInterval(1000)
        self.countdown_timer.timeout.connect(self.on_countdown_timer_timeout)
        self.adapted_path: Path | None = None
        self.adapting = False
        self.recipe = AdaptRecipe()
        self._update_buttons()

    def _build(self) -> None:
        layout = QVBoxLayout(self)
        base = self.base_path.name if self.base_path else "the shipped model"
        intro = QLabel(f"The model in use ({base}) will learn your voice from a few takes of each of its "
                       f"{len(self.commands)} commands. You will be asked for each command in turn; say it "
                       f"when the prompt says now.")
        intro.setWordWrap(True)
        layout.addWidget(intro)
        row = QHBoxLayout()
        row.addWidget(QLabel("Takes of each command:"))
        self.takes_spin = QSpinBox()
        self.takes_spin.setRange(*TAKES_RANGE)
        self.takes_spin.setValue(TAKES_SUGGESTED)
        row.addWidget(self.takes_spin)
        row.addStretch(1)
        layout.addLayout(row)
        self.progress_list = QListWidget()
        layout.addWidget(self.progress_list, 1)
        self.prompt = QLabel("Press Record to begin.")
        font = QFont(self.prompt.font())
        font.setPointSize(PROMPT_FONT_PT)
        self.prompt.setFont(font)
        self.prompt.setWordWrap(True)
        layout.addWidget(self.prompt)
        self.level_meter = LevelMeter()
        layout.addWidget(self.level_meter)
        buttons = QHBoxLayout()
        self.record_button = QPushButton("Record")
        self.record_button.clicked.connect(self.start_recording)
        self.adapt_button = QPushButton("Adapt and use")
        self.adapt_button.clicked.connect(self.start_adapting)
        self.base_button = QPushButton("Use the base model")
        self.base_button.setToolTip(f"Back to {base} in the Live tab")
        self.base_button.clicked.connect(lambda: self.base_requested.emit(self.base_path))
        self.close_button = QPushButton("Close")
        self.close_button.clicked.connect(self.close)
        for button in (self.record_button, self.adapt_button, self.base_button, self.close_button):
            buttons.addWidget(button)
        layout.addLayout(buttons)
        self._show_counts()

    # -- recording --------------------------------------------------------------------------------
    def counts(self) -> dict[str, int]:
        """Takes of each command in this session."""
        folder = self.session
        return {c: len(list((folder / c).glob("*.wav"))) if folder and (folder / c).is_dir() else 0
                for c in self.commands}

    def _show_counts(self) -> None:
        self.progress_list.clear()
        for command, n in self.counts().items():
            self.progress_list.addItem(f"{command}: {n} take{'s' * (n != 1)}")

    @Slot()
    def start_recording(self) -> None:
        """A new session: every command, takes_spin times, prompted in turn (earlier sessions are kept)."""
        stem = self.base_path.stem if self.base_path else "shipped"
        self.session = self.data.root / VOICE_DIR / stem / datetime.now().strftime("%Y%m%d-%H%M%S")
        self.queue = [(c, n) for n in range(1, self.takes_spin.value() + 1) for c in self.commands]
        self._show_counts()
        self._countdown_left = COUNTDOWN_S + 1
        self._next_prompt()

    def _next_prompt(self) -> None:
        command, number = self.queue[0]
        self.prompt.setText(f"{command!r} (take {number}) in {self._countdown_left}...")
        self.countdown_timer.start()
        self._update_buttons()

    @Slot()
    def on_countdown_timer_timeout(self) -> None:
        self._countdown_left -= 1
        command, number = self.queue[0]
        if self._countdown_left > 0:
            self.prompt.setText(f"{command!r} (take {number}) in {self._countdown_left}...")
            return
        self.countdown_timer.stop()
        self.prompt.setText(f"Say {command!r} now")
        path = self.session / command / f"take-{number}_nohash_0.wav"
        self.record_requested.emit(command, path, TAKE_SECONDS, self.device_provider())

    @Slot(str, object)
    def on_recorder_take_saved(self, command: str, path: Path) -> None:
        self.queue.pop(0)
        self._show_counts()
        if self.queue:
            self._countdown_left = COUNTDOWN_S
            self._next_prompt()
        else:
            self.prompt.setText("Every command recorded: press Adapt and use.")
            self._update_buttons()

    @Slot(str)
    def on_recorder_recording_failed(self, message: str) -> None:
        self.queue = []
        self.prompt.setText(f"Recording failed: {message}")
        self._update_buttons()

    # -- adapting ---------------------------------------------------------------------------------
    @Slot()
    def start_adapting(self) -> None:
        if self.session is None or not any(self.counts().values()):
            return
        stem = self.base_path.stem if self.base_path else "shipped"
        out = self.data.models_dir / f"{stem}-my-voice-{datetime.now().strftime('%Y%m%d-%H%M%S')}.safetensors"
        self.adapting = True
        self.prompt.setText("Adapting...")
        self._update_buttons()
        self.adapt_requested.emit(AdaptJob(self.session, out, self.base_path, self.recipe))

    @Slot(object)
    def on_adapter_adapt_finished(self, result) -> None:
        self.adapting = False
        self.adapted_path = Path(result.model_path)
        right, n = result.base_on_takes
        self.prompt.setText(f"Adapted in {result.seconds:.0f} s and in use in the Live tab. (The base model "
                            f"recognized {right} of your {n} takes.)")
        self._update_buttons()
        self.model_adapted.emit(self.adapted_path)

    @Slot(str)
    def on_adapter_adapt_failed(self, message: str) -> None:
        self.adapting = False
        self.prompt.setText(f"Adapting failed: {message}")
        self._update_buttons()

    def _update_buttons(self) -> None:
        busy = bool(self.queue) or self.adapting
        self.record_button.setEnabled(not busy)
        self.adapt_button.setEnabled(not busy and self.session is not None and any(self.counts().values()))
        self.takes_spin.setEnabled(not busy)
        self.close_button.setEnabled(not self.adapting)

    def done(self, result: int) -> None:
        """Closing stops the countdown and the threads (a running adaptation is waited for)."""
        self.countdown_timer.stop()
        self.recorder_thread.stop()
        self.adapter_thread.stop()
        super().done(result)
