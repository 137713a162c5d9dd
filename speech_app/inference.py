"""Batch inference: waveforms or files in, labels and confidences out. No Qt, no terminal."""

from __future__ import annotations

import copy
import os
import warnings
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .audio import AudioDecodeError, fit_to_window, load_audio
from .daemon_pool import DaemonThreadPool, wait_result
from .device import autocast_for, bfloat16_pays, pick_device
from .features import MfccFrontend
from .modelfile import ModelBundle, load_model

DEFAULT_BATCH_SIZE = 64
PREFETCH_BATCHES = 2  # batches queued beyond the ones the workers are on
PRECISIONS = ("auto", "float32", "bfloat16", "int8")


def resolve_precision(precision: str, device: torch.device) -> str:
    """auto: bfloat16 on a CPU where it is faster (device.bfloat16_pays), else float32 (CUDA runs float16 autocast
    anyway)."""
    if precision not in PRECISIONS:
        raise ValueError(f"--precision {precision}: choose one of {', '.join(PRECISIONS)}")
    if precision == "auto":
        return "bfloat16" if device.type == "cpu" and bfloat16_pays() else "float32"
    return precision


def batch_precision(precision: str, n_files: int, batch_size: int) -> str:
    """The precision to classify `n_files` at: auto stays float32 for a single batch, where making the
    bfloat16 copy and its first call cost more start-up time (about 0.4 s) than they save."""
    return "float32" if precision == "auto" and n_files <= batch_size else precision


def model_for_precision(model: torch.nn.Module, precision: str) -> torch.nn.Module:
    """The model to run at `precision` (resolved): float32 is the model itself; the others are copies.
    int8: dynamic quantization of the LSTM and linear layers (torch.ao), measured beside bfloat16."""
    if precision == "bfloat16":
        return copy.deepcopy(model).to(torch.bfloat16)
    if precision == "int8":
        with warnings.catch_warnings():  # torch.ao announces its move to torchao; the API still works
            warnings.simplefilter("ignore")
            return torch.ao.quantization.quantize_dynamic(model, {torch.nn.LSTM, torch.nn.Linear}, dtype=torch.qint8)
    return model


@torch.no_grad()
def predict_logits(model: torch.nn.Module, frontend: MfccFrontend, waves: np.ndarray | torch.Tensor,
                   batch_size: int = DEFAULT_BATCH_SIZE) -> torch.Tensor:
    """(N, window_samples) float waveforms -> (N, n_classes) logits on the CPU."""
    device = frontend.window.device
    waves = torch.as_tensor(waves, dtype=torch.float32)
    outputs = []
    for start in range(0, len(waves), batch_size):
        # features in float32 always: a loud frame's power spectrum overflows float16
        features = frontend(waves[start : start + batch_size].to(device))
        outputs.append(run_model(model, features))
    return torch.cat(outputs) if outputs else torch.zeros(0, model.config.n_classes)


def run_model(model: torch.nn.Module, features: torch.Tensor) -> torch.Tensor:
    """float32 features -> float32 logits on the CPU, in the model's own precision (a bfloat16 copy gets
    bfloat16 features; CUDA autocasts to float16)."""
    if model.feature_mean.dtype == torch.bfloat16:
        features = features.to(torch.bfloat16)
    with autocast_for(features.device):
        return model(features).float().cpu()


def batch_threads(n_files: int, batch_size: int) -> int:
    """Batch workers for classifying `n_files`: one per core (each decodes its batch, then runs the front
    end and the model on one intra-op thread), no more than there are batches."""
    n_batches = max(1, -(-n_files // batch_size))
    return max(1, min(os.cpu_count() or 1, n_batches))


@dataclass
class Prediction:
    labels: list[str]  # best first
    confidences: list[float]


@dataclass
class FileResult:
    path: Path
    labels: list[str] = field(default_factory=list)
    confidences: list[float] = field(default_factory=list)
    error: str | None = None

    @property
    def label(self) -> str:
        return self.labels[0] if self.labels else ""

    @property
    def confidence(self) -> float | None:
        return self.confidences[0] if self.confidences else None


class CommandClassifier:
    """A loaded model with its own front end; classifies clips, batches and files."""

    def __init__(self, bundle: ModelBundle, device: str | torch.device = "cpu", precision: str = "float32"):
        self.bundle = bundle
        self.device = pick_device(device) if isinstance(device, str) else device
        self.model = bundle.model.to(self.device).eval()  # float32: training and evaluation use it as it is
        self.precision = resolve_precision(precision, self.device)
        self.inference_model = model_for_precision(self.model, self.precision)  # what classification runs
        self.frontend = MfccFrontend(bundle.features).to(self.device)
        self.labels = bundle.labels
        self.window_samples = bundle.features.clip_samples

    @classmethod
    def from_file(cls, path: str | os.PathLike | None = None, device: str = "cpu",
                  precision: str = "float32") -> CommandClassifier:
        return cls(load_model(path), device, precision)

    def probabilities(self, waves: np.ndarray, batch_size: int = DEFAULT_BATCH_SIZE) -> np.ndarray:
        """(N, window_samples) waveforms at 16 kHz -> (N, n_classes) class probabilities."""
        logits = predict_logits(self.inference_model, self.frontend, waves, batch_size)
        return torch.softmax(logits, dim=-1).numpy()

    @staticmethod
    def worker_setup() -> None:
        """For a thread that runs this classifier beside others (streaming's model workers): one intra-op
        thread, so that the workers share the cores instead of each spinning up a thread per core."""
        torch.set_num_threads(1)

    @torch.no_grad()
    def probabilities_from_features(self, features: torch.Tensor) -> np.ndarray:
        """(N, n_mfcc, frames) features of this model's front end -> (N, n_classes) probabilities."""
        logits = run_model(self.inference_model, features.to(self.device))
        return torch.softmax(logits, dim=-1).numpy()

    def top_k(self, probabilities: np.ndarray, k: int = 1) -> Prediction:
        return self.top_k_rows(probabilities[None, :], k)[0]

    def top_k_rows(self, probabilities: np.ndarray, k: int = 1) -> list[Prediction]:
        """(N, n_classes) -> the k best labels of each row, best first, from one sort of the whole batch."""
        best = np.argsort(probabilities, axis=1)[:, ::-1][:, : max(1, k)]  # (N, k)
        labels, confidences = np.asarray(self.labels)[best].tolist(), np.take_along_axis(probabilities, best, 1).tolist()
        return [Prediction(*row) for row in zip(labels, confidences)]

    def classify(self, samples: np.ndarray, k: int = 1) -> Prediction:
        """One clip of any length (16 kHz mono): cropped to its loudest window or padded."""
        window = fit_to_window(samples, self.window_samples)
        return self.top_k(self.probabilities(window[None, :])[0], k)

    def classify_files(self, paths: Iterable[Path], top_k: int = 1, batch_size: int = DEFAULT_BATCH_SIZE,
                       threads: int | None = None) -> Iterator[FileResult]:
        """Results in input order. Worker threads each take a whole batch: decode its files, then the
        front end and the model (libsndfile and torch release the GIL, so the workers run in parallel and
        decoding overlaps inference without a hand-tuned split of the cores). A file that cannot be
        decoded yields a result with its error; the others go on.

        `threads`: workers, each running torch on one intra-op thread (see `batch_threads`). None: one
        worker, with torch's thread setting left alone, because changing it while other threads run torch
        ops stalls them (the GUI froze for 400 ms with live inference and training running), and workers
        beside an application's own busy threads oversubscribe the cores; only a caller that owns the
        process (the CLI) should pass it.

        The workers are daemon threads that nobody waits for once the caller stops (Ctrl-C, or a closed
        generator): a file read that never returns cannot keep the process alive (see daemon_pool)."""
        paths = list(paths)
        batches = [paths[i : i + batch_size] for i in range(0, len(paths), batch_size)]
        workers = threads or 1
        one_thread = (lambda: torch.set_num_threads(1)) if threads else None  # per worker thread
        with DaemonThreadPool(workers, initializer=one_thread, name="classify") as pool:
            pending: deque[tuple[list[Path], Future]] = deque()
            for batch in batches:
                pending.append((batch, pool.submit(self._classify_batch, batch, top_k)))
                if len(pending) > workers + PREFETCH_BATCHES:
                    yield from self._results(*pending.popleft())
            while pending:
                yield from self._results(*pending.popleft())

    @staticmethod
    def _results(batch: list[Path], future: Future) -> Iterator[FileResult]:
        for path, outcome in zip(batch, wait_result(future)):
            if isinstance(outcome, Prediction):
                yield FileResult(path, outcome.labels, outcome.confidences)
            else:
                yield FileResult(path, error=str(outcome))

    def _classify_batch(self, batch: list[Path], top_k: int) -> list[Prediction | AudioDecodeError]:
        """In a worker thread: a Prediction or the file's AudioDecodeError per path. Each clip is fitted
        straight into its row of the batch (no per-clip copy, no stacking), and the top k of the whole
        batch come from one sort."""
        windows = np.empty((len(batch), self.window_samples), dtype=np.float32)  # (N, samples)
        errors: dict[int, AudioDecodeError] = {}
        for i, path in enumerate(batch):
            try:
                fit_to_window(load_audio(path), self.window_samples, out=windows[i - len(errors)])
            except AudioDecodeError as err:
                errors[i] = err
        good = len(batch) - len(errors)
        if not good:
            return list(errors.values())
        rows = iter(self.top_k_rows(self.probabilities(windows[:good], good), top_k))
        return [errors[i] if i in errors else next(rows) for i in range(len(batch))]
