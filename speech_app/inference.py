"""Batch inference: waveforms or files in, labels and confidences out. No Qt, no terminal."""

from __future__ import annotations

import contextlib
import os
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .audio import DECODE_THREADS, AudioDecodeError, fit_to_window, load_audio
from .device import autocast_for, pick_device
from .features import MfccFrontend
from .modelfile import ModelBundle, load_model

DEFAULT_BATCH_SIZE = 64
FEATURE_CHUNK_CLIPS = 32  # clips per front-end call: their frames (32 x 101 x 480 floats, 6 MB) stay in
# cache; measured 2.1x less CPU per clip than 256 at once (benchmarks/bench.py, forward section)
PREFETCH_BATCHES = 2  # batches being decoded while the model runs on the current one


@torch.no_grad()
def predict_logits(model: torch.nn.Module, frontend: MfccFrontend, waves: np.ndarray | torch.Tensor,
                   batch_size: int = DEFAULT_BATCH_SIZE) -> torch.Tensor:
    """(N, window_samples) float waveforms -> (N, n_classes) logits on the CPU."""
    device = next(model.parameters()).device
    waves = torch.as_tensor(waves, dtype=torch.float32)
    outputs = []
    for start in range(0, len(waves), batch_size):
        batch = waves[start : start + batch_size].to(device)
        chunk = FEATURE_CHUNK_CLIPS if device.type == "cpu" else len(batch)  # a GPU wants it all at once
        # features in float32 always: a loud frame's power spectrum overflows float16
        features = torch.cat([frontend(batch[i : i + chunk]) for i in range(0, len(batch), chunk)])
        with autocast_for(device):
            outputs.append(model(features).float().cpu())
    return torch.cat(outputs) if outputs else torch.zeros(0, model.config.n_classes)


def batch_threads(n_files: int, batch_size: int) -> int:
    """Intra-op threads for classifying `n_files`: one for a single batch, which is too small to
    gain from more; otherwise what `model_threads_beside_decoding` leaves beside decoding."""
    return 1 if n_files <= batch_size else model_threads_beside_decoding()


def model_threads_beside_decoding() -> int:
    """Intra-op threads for the model while threads decode the next batches: one core is left to
    decoding. More threads than free cores make torch's threads wait for each other: on 2 cores,
    1 thread classified 16x faster than 2 on a busy machine (benchmarks/RESULTS.md); a single batch
    is too small to gain from more threads at all."""
    return max(1, min(torch.get_num_threads(), (os.cpu_count() or 2) - 1))


@contextlib.contextmanager
def intra_op_threads(threads: int):
    """torch's intra-op thread count for the duration of the block."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


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

    def __init__(self, bundle: ModelBundle, device: str | torch.device = "cpu"):
        self.bundle = bundle
        self.device = pick_device(device) if isinstance(device, str) else device
        self.model = bundle.model.to(self.device).eval()
        self.frontend = MfccFrontend(bundle.features).to(self.device)
        self.labels = bundle.labels
        self.window_samples = bundle.features.clip_samples

    @classmethod
    def from_file(cls, path: str | os.PathLike | None = None, device: str = "cpu") -> CommandClassifier:
        return cls(load_model(path), device)

    def probabilities(self, waves: np.ndarray, batch_size: int = DEFAULT_BATCH_SIZE) -> np.ndarray:
        """(N, window_samples) waveforms at 16 kHz -> (N, n_classes) class probabilities."""
        logits = predict_logits(self.model, self.frontend, waves, batch_size)
        return torch.softmax(logits, dim=-1).numpy()

    @torch.no_grad()
    def probabilities_from_features(self, features: torch.Tensor) -> np.ndarray:
        """(N, n_mfcc, frames) features of this model's front end -> (N, n_classes) probabilities."""
        with autocast_for(self.device):
            logits = self.model(features.to(self.device)).float()
        return torch.softmax(logits, dim=-1).cpu().numpy()

    def top_k(self, probabilities: np.ndarray, k: int = 1) -> Prediction:
        order = np.argsort(probabilities)[::-1][: max(1, k)]
        return Prediction([self.labels[i] for i in order], [float(probabilities[i]) for i in order])

    def classify(self, samples: np.ndarray, k: int = 1) -> Prediction:
        """One clip of any length (16 kHz mono): cropped to its loudest window or padded."""
        window = fit_to_window(samples, self.window_samples)
        return self.top_k(self.probabilities(window[None, :])[0], k)

    def classify_files(self, paths: Iterable[Path], top_k: int = 1, batch_size: int = DEFAULT_BATCH_SIZE,
                       threads: int | None = None) -> Iterator[FileResult]:
        """Results in input order; files are decoded in parallel threads while the model runs in batches.
        A file that cannot be decoded yields a result with its error; the others go on.

        `threads`: torch's intra-op threads for the run (see `batch_threads`); None leaves the process's
        setting alone. torch's thread count is process-wide and changing it while other threads run
        torch ops stalls them (the GUI froze for 400 ms with live inference and training running), so
        only a caller that owns the process (the CLI) should pass it."""
        paths = list(paths)
        if threads is None:
            yield from self._classify_batches(paths, top_k, batch_size)
            return
        with intra_op_threads(threads):
            yield from self._classify_batches(paths, top_k, batch_size)

    def _classify_batches(self, paths: list[Path], top_k: int, batch_size: int) -> Iterator[FileResult]:
        for chunk, decoded in self._decoded_batches(paths, batch_size):
            good = [i for i, d in enumerate(decoded) if not isinstance(d, AudioDecodeError)]
            by_row = dict(zip(good, self.probabilities(np.stack([decoded[i] for i in good]), batch_size))) if good else {}
            for i, path in enumerate(chunk):
                if i in by_row:
                    prediction = self.top_k(by_row[i], top_k)
                    yield FileResult(path, prediction.labels, prediction.confidences)
                else:
                    yield FileResult(path, error=str(decoded[i]))

    def _decoded_batches(self, paths: list[Path], batch_size: int) -> Iterator[tuple[list[Path], list]]:
        """(paths, windows or AudioDecodeError) per batch, in order. Threads decode the next batches
        while the caller runs the model on this one: libsndfile and torch both release the GIL."""

        def decode(path: Path) -> np.ndarray | AudioDecodeError:
            try:
                return fit_to_window(load_audio(path), self.window_samples)
            except AudioDecodeError as err:
                return err

        batches = [paths[i : i + batch_size] for i in range(0, len(paths), batch_size)]
        with ThreadPoolExecutor(DECODE_THREADS) as pool:
            pending: deque[tuple[list[Path], list[Future]]] = deque()
            for batch in batches:
                pending.append((batch, [pool.submit(decode, p) for p in batch]))
                if len(pending) > PREFETCH_BATCHES:
                    done, futures = pending.popleft()
                    yield done, [f.result() for f in futures]
            while pending:
                done, futures = pending.popleft()
                yield done, [f.result() for f in futures]
