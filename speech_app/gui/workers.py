"""Work that must not run on the GUI thread: QObject workers on QThreads that report through signals.

Each worker is moved onto its own `QThread` (`WorkerThread`); the GUI calls its slots through
queued signals and hears back through typed signals named for what happened. Long jobs (a batch,
a training run, a take) check a cancel flag that the GUI thread sets directly.
"""

from __future__ import annotations

import gc
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from PySide6.QtCore import QObject, QThread, QTimer, Signal, Slot

from ..atomic_files import OutputError
from ..audio import SAMPLE_RATE, write_wav
from ..capture import CaptureStats, NoInputDeviceError
from ..decision import file_metadata, recorded_settings, settings_for
from ..modelfile import ModelFileError
from ..streaming import LIVE_TORCH_THREADS, Detection, RecognizerSettings, StreamingRecognizer
from .expectations import ConversationCurve, model_curve
from .services import AppServices

POLL_MS = 30  # how often the live worker drains the capture ring buffer
STATS_MS = 500  # how often the status bar hears about latency and dropped audio
BATCH_SIZE = 16  # files per model call in the batch tab: small, so progress and cancel are prompt
RESULTS_EMIT_MS = 100  # the batch worker hands results over in chunks at most this often: one signal
# and one table insertion per file kept the GUI thread busy (median period 50 ms with thousands of files)
LEVEL_MS = 50  # level-meter updates while recording a take
READ_TIMEOUT_S = 0.02
RECORD_GRACE_S = 3.0  # a take that has not filled up this long after its end: the microphone stalled
SILENCE_DBFS = -90.0
# torch's intra-op thread count is kept per thread: live inference (one small window per hop) runs
# on LIVE_TORCH_THREADS, which keeps up even on a busy two-core machine where two threads took 10x
# longer; batches and training use every core
DEFAULT_TORCH_THREADS = torch.get_num_threads()


_frozen_by: set[str] = set()  # the kinds of work that have frozen their imports already


def freeze_long_lived_objects(kind: str) -> None:
    """Leave the objects that exist now (modules, models, the GUI) out of the garbage collector's full
    passes. With torch, librosa and the GUI loaded, a full pass scans about 400,000 objects: 190 ms of
    CPU, which a worker thread holding the GIL meanwhile turns into a 350-470 ms freeze of the window
    on two busy cores (tests/test_gui_responsive.py). Once per kind of work, after its first load:
    frozen objects are never collected, so freezing after every job would keep each job's garbage."""
    if kind not in _frozen_by:
        _frozen_by.add(kind)
        gc.freeze()


class WorkerThread:
    """One worker QObject living on its own QThread; `stop()` quits the thread and waits for it."""

    def __init__(self, worker: QObject, name: str):
        self.worker = worker
        self.thread = QThread()
        self.thread.setObjectName(name)
        worker.moveToThread(self.thread)
        self.thread.start()

    def stop(self) -> None:
        self.thread.quit()
        self.thread.wait()


def level_dbfs(samples: np.ndarray) -> float:
    """RMS level in dB relative to full scale."""
    if samples.size == 0:
        return SILENCE_DBFS
    rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))
    return max(SILENCE_DBFS, 20.0 * np.log10(max(rms, 1e-12)))


@dataclass(frozen=True)
class LiveModel:
    """The model the live worker has loaded, as the Live tab shows it."""

    path: Path | None  # None: the shipped model
    labels: list[str]
    runtime: str  # "onnx", "torch" (services.RUNTIME_NAMES), or a stand-in's name
    note: str  # why it is not on ONNX Runtime, or that an export was made ("" when nothing to say)
    curve: ConversationCurve | None  # its false alarms in conversation by threshold, where the file has them
    # the decision settings it is listened with (decision.settings_for), and those its file chose itself
    settings: RecognizerSettings = field(default_factory=RecognizerSettings)
    own_settings: dict = field(default_factory=dict)


@dataclass(frozen=True)
class LiveStats:
    capture: CaptureStats
    inference_ms: float  # model time per hop, averaged since the last report
    listened_s: float


class LiveRecognitionWorker(QObject):
    """Owns the audio source and the streaming recognizer; a timer in its thread feeds one to the other."""

    devices_listed = Signal(list)  # [InputDevice]
    model_loaded = Signal(object)  # LiveModel
    model_failed = Signal(str)
    listening_started = Signal(object)  # CaptureStats
    listening_stopped = Signal()
    listening_failed = Signal(str)
    audio_captured = Signal(object)  # np.ndarray (samples,) float32 at 16 kHz
    prediction_ready = Signal(object)  # ScoreFrame
    detection_made = Signal(object)  # Detection, time counted from the start of listening
    stats_changed = Signal(object)  # LiveStats
    source_notice = Signal(str)  # the microphone was lost, came back, stalled (one line)

    def __init__(self, services: AppServices, settings: RecognizerSettings | None = None):
        super().__init__()
        self.services = services
        self.base_settings = settings or RecognizerSettings()  # under the model file's own settings
        self.settings = replace(self.base_settings)  # in use: the recognizer's (set_threshold changes it live)
        self.given: dict = {}  # what the user chose explicitly (the sensitivity): wins over the model file's
        self.recognizer: StreamingRecognizer | None = None
        self.runtime = "auto"  # asked for: "auto", "onnx" or "torch" (onnx_runtime.RUNTIMES)
        self._model_path: Path | None = None
        self.source = None
        self._timer: QTimer | None = None
        self._offset_s = 0.0  # audio heard before the recognizer's own clock began (earlier Starts, other models)
        self._inference_s = 0.0
        self._evaluations_reported = 0
        self._last_stats = 0.0

    @Slot()
    def list_devices(self) -> None:
        try:
            devices = self.services.list_devices()
        except NoInputDeviceError:
            devices = []
        self.devices_listed.emit(devices)

    @Slot(object)
    def load_model(self, path: Path | None) -> None:
        torch.set_num_threads(LIVE_TORCH_THREADS)  # for this (the live worker's) thread
        try:
            live = self.services.load_live_classifier(path, self.runtime)
            metadata = file_metadata(path)
            settings = settings_for(metadata, self.given, self.base_settings)
            recognizer = StreamingRecognizer(live.classifier, settings)
        except ModelFileError as err:  # names its file already
            self.model_failed.emit(str(err))
            return
        except Exception as err:  # a model file can fail in many ways; the user sees why
            self.model_failed.emit(f"{path or 'shipped model'}: {err}")
            return
        if self.recognizer is not None:
            self._offset_s += self.recognizer.fed_seconds
        self.recognizer, self._evaluations_reported, self._model_path = recognizer, 0, path
        self.settings = settings
        self.model_loaded.emit(LiveModel(path, list(recognizer.labels), live.runtime, live.note, model_curve(path),
                                         replace(settings), recorded_settings(metadata)))
        freeze_long_lived_objects("live")

    @Slot(str)
    def set_runtime(self, runtime: str) -> None:
        """Run the model on another runtime from now on: the model in use is loaded again on it."""
        self.runtime = runtime
        if self.recognizer is not None:
            self.load_model(self._model_path)

    @Slot(float)
    def set_threshold(self, threshold: float) -> None:
        self.given["threshold"] = threshold
        self.settings.threshold = threshold

    @Slot(object)
    def start_listening(self, device) -> None:
        if self.recognizer is None:
            self.listening_failed.emit("no model is loaded")
            return
        self.stop_listening()
        try:
            self.source = self.services.open_source(device)
            self.source.start()
        except (NoInputDeviceError, OSError, ValueError) as err:
            self.source = None
            self.listening_failed.emit(str(err))
            return
        self._offset_s += self.recognizer.fed_seconds  # one clock over every Start until reset_clock()
        self.recognizer.reset()
        self._inference_s = 0.0
        self._evaluations_reported = 0
        if self._timer is None:
            self._timer = QTimer(self)
            self._timer.setInterval(POLL_MS)
            self._timer.timeout.connect(self.on_timer_timeout)
        self._timer.start()
        self.listening_started.emit(self.source.stats())

    @Slot()
    def reset_clock(self) -> None:
        """Detection times count from zero again (the transcript was cleared)."""
        self._offset_s = -self.recognizer.fed_seconds if self.recognizer is not None else 0.0

    @Slot()
    def stop_listening(self) -> None:
        if self._timer is not None:
            self._timer.stop()
        if self.source is not None:
            self.source.stop()
            self.source = None
            self.listening_stopped.emit()

    @Slot()
    def on_timer_timeout(self) -> None:
        if self.source is None or self.recognizer is None:
            return
        samples = self.source.read()
        for notice in getattr(self.source, "pop_notices", list)():  # a FileCapture has none
            self.source_notice.emit(notice)
        if samples.size == 0:
            return
        self.audio_captured.emit(samples)
        evaluations = self.recognizer.evaluations
        started = time.perf_counter()
        detections = self.recognizer.feed(samples)
        self._inference_s += time.perf_counter() - started
        if self.recognizer.evaluations != evaluations:
            self.prediction_ready.emit(self.recognizer.last_frame)
        for detection in detections:
            self.detection_made.emit(Detection(detection.time_s + self._offset_s, detection.label, detection.confidence))
        self._report_stats()

    def _report_stats(self) -> None:
        now = time.monotonic()
        if now - self._last_stats < STATS_MS / 1000:
            return
        self._last_stats = now
        evaluations = self.recognizer.evaluations - self._evaluations_reported
        listened = self._offset_s + self.recognizer.fed_seconds
        self.stats_changed.emit(LiveStats(self.source.stats(), 1000 * self._inference_s / max(1, evaluations), listened))
        self._inference_s, self._evaluations_reported = 0.0, self.recognizer.evaluations


@dataclass
class BatchJob:
    job_id: int
    inputs: list[Path]
    model_path: Path | None


class BatchWorker(QObject):
    """Classifies files (folders expanded) with the chosen model, one result at a time."""

    files_found = Signal(int, list)  # job id, [Path]
    results_ready = Signal(int, list)  # job id, [FileResult]: a chunk (see RESULTS_EMIT_MS)
    progress_changed = Signal(int, int)  # done, total
    job_finished = Signal(int, bool)  # job id, cancelled
    job_failed = Signal(int, str)

    def __init__(self, services: AppServices):
        super().__init__()
        self.services = services
        self.cancelled_through = 0  # jobs with an id up to this one stop (set from the GUI thread)
        self._classifiers: dict = {}

    def cancel_through(self, job_id: int) -> None:
        self.cancelled_through = job_id

    def _classifier(self, path: Path | None):
        if path not in self._classifiers:
            self._classifiers = {path: self.services.load_classifier(path)}
        return self._classifiers[path]

    @Slot(object)
    def classify(self, job: BatchJob) -> None:
        from ..audio import expand_paths

        if job.job_id <= self.cancelled_through:
            self.job_finished.emit(job.job_id, True)
            return
        torch.set_num_threads(DEFAULT_TORCH_THREADS)
        chunk = []
        try:
            files = expand_paths(job.inputs, recursive=True)
            self.files_found.emit(job.job_id, files)
            classifier = self._classifier(job.model_path)
            freeze_long_lived_objects("batch")
            chunk, emitted_at = [], time.monotonic()
            for done, result in enumerate(classifier.classify_files(files, batch_size=BATCH_SIZE), start=1):
                if job.job_id <= self.cancelled_through:
                    self.job_finished.emit(job.job_id, True)
                    return
                chunk.append(result)
                if done == len(files) or time.monotonic() - emitted_at >= RESULTS_EMIT_MS / 1000:
                    self.results_ready.emit(job.job_id, chunk)
                    self.progress_changed.emit(done, len(files))
                    chunk, emitted_at = [], time.monotonic()
        except Exception as err:  # a model that cannot load, an unreadable folder: shown, never fatal
            if chunk:  # the results finished before the failure still reach the table
                self.results_ready.emit(job.job_id, chunk)
            self.job_failed.emit(job.job_id, str(err))
            return
        self.job_finished.emit(job.job_id, False)


@dataclass
class TrainingJob:
    words: list[str]
    data_dirs: list[Path]
    out_path: Path
    recipe: object  # custom_words.CustomWordsRecipe: the same recipe as `speech-app train` on takes
    init_from: Path | None = None  # the model to start from; None: the shipped model
    synth_per_word: int = 0  # synthetic clips per word, with filler words and near misses (0: none)
    synth_root: Path | None = None  # where synthetic sets are kept (one folder per request, reused)


class TrainingWorker(QObject):
    stage_changed = Signal(str)
    batch_finished = Signal(dict)  # {"epoch", "batch", "batches", "loss", "accuracy"}
    epoch_finished = Signal(dict)  # the history entry: train/val loss and accuracy
    training_finished = Signal(object)  # custom_words.CustomWordsResult
    training_failed = Signal(str)
    training_cancelled = Signal()
    log_written = Signal(str)  # a line the command line would print to stderr (epoch summaries, skipped files)

    def __init__(self):
        super().__init__()
        self.stop_requested = threading.Event()

    def cancel(self) -> None:
        self.stop_requested.set()

    @Slot(object)
    def train(self, job: TrainingJob) -> None:
        from ..training.custom_words import train_custom_words
        from ..modelfile import load_model
        from ..training.trainer import TrainHooks, TrainingCancelled, checkpoint_path

        self.stop_requested.clear()
        torch.set_num_threads(DEFAULT_TORCH_THREADS)
        job.out_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            synthetic = self._synthesize(job) if job.synth_per_word and job.synth_root is not None else None
            hooks = TrainHooks(on_batch=self._on_batch, on_epoch=self.epoch_finished.emit,
                               should_stop=self.stop_requested.is_set, on_log=self.log_written.emit)
            result = train_custom_words(job.data_dirs, job.words, job.out_path, job.recipe,
                                        init_from=load_model(job.init_from), synthetic_dir=synthetic,
                                        progress=False, hooks=hooks, on_stage=self.stage_changed.emit)
        except TrainingCancelled:
            checkpoint_path(job.out_path).unlink(missing_ok=True)
            self.training_cancelled.emit()
            return
        except Exception as err:  # bad data, too few takes, a full disk: shown in the tab
            self.training_failed.emit(" ".join(str(err).split()) or type(err).__name__)
            return
        checkpoint_path(job.out_path).unlink(missing_ok=True)  # the GUI never resumes: keep only the model
        self.training_finished.emit(result)

    def _on_batch(self, info: dict) -> None:
        if info.get("batch") == 1:  # training has imported and loaded all it needs by now
            freeze_long_lived_objects("training")
        self.batch_finished.emit(info)

    def _synthesize(self, job: TrainingJob) -> Path:
        """The words' synthetic speech plus filler words and near misses for `_unknown_`, as `speech-app
        train` makes them; a set made before for the same words is reused."""
        from dataclasses import replace

        from ..training.custom_words import synthesize_for_words

        self.stage_changed.emit(f"synthesizing {job.synth_per_word} clips per word")
        return synthesize_for_words(job.words, replace(job.recipe, synth_per_word=job.synth_per_word),
                                    progress=False, cache_root=job.synth_root)


class TakeRecorder(QObject):
    """Records one take from the microphone and writes it to disk the moment it ends."""

    level_changed = Signal(float)  # dBFS
    take_saved = Signal(str, object)  # word, Path
    recording_failed = Signal(str)

    def __init__(self, services: AppServices):
        super().__init__()
        self.services = services

    @Slot(str, object, float, object)
    def record(self, word: str, path: Path, seconds: float, device) -> None:
        try:
            source = self.services.open_source(device)
            source.start()
        except (NoInputDeviceError, OSError, ValueError) as err:
            self.recording_failed.emit(str(err))
            return
        wanted = int(seconds * SAMPLE_RATE)
        parts, got, last_level = [], 0, 0.0
        deadline = time.monotonic() + seconds + RECORD_GRACE_S
        try:
            while got < wanted:
                if time.monotonic() > deadline:
                    self.recording_failed.emit("the microphone stopped delivering audio; nothing was saved")
                    return
                block = source.read(READ_TIMEOUT_S)
                parts.append(block)
                got += block.size
                if time.monotonic() - last_level >= LEVEL_MS / 1000:
                    last_level = time.monotonic()
                    self.level_changed.emit(level_dbfs(block))
        finally:
            source.stop()
        self.level_changed.emit(SILENCE_DBFS)
        try:
            write_wav(path, np.concatenate(parts)[:wanted])
        except OutputError as err:  # a read-only or full data folder: the take is lost, and the user told why
            self.recording_failed.emit(f"the take could not be saved: {err}")
            return
        self.take_saved.emit(word, Path(path))
