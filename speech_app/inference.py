"""Batch inference: waveforms or files in, labels and confidences out. No Qt, no terminal."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .audio import AudioDecodeError, decode_files, fit_to_window, is_audio_file
from .features import MfccFrontend
from .modelfile import ModelBundle, load_model

DEFAULT_BATCH_SIZE = 64


def pick_device(name: str = "auto") -> torch.device:
    """auto: CUDA, then Apple MPS, then the CPU."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: no CUDA GPU is available")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ValueError("--device mps: Apple MPS is not available")
    return torch.device(name)


@torch.no_grad()
def predict_logits(model: torch.nn.Module, frontend: MfccFrontend, waves: np.ndarray | torch.Tensor,
                   batch_size: int = DEFAULT_BATCH_SIZE) -> torch.Tensor:
    """(N, window_samples) float waveforms -> (N, n_classes) logits on the CPU."""
    device = next(model.parameters()).device
    waves = torch.as_tensor(waves, dtype=torch.float32)
    outputs = []
    for start in range(0, len(waves), batch_size):
        batch = waves[start : start + batch_size].to(device)
        outputs.append(model(frontend(batch)).float().cpu())
    return torch.cat(outputs) if outputs else torch.zeros(0, model.config.n_classes)


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

    def top_k(self, probabilities: np.ndarray, k: int = 1) -> Prediction:
        order = np.argsort(probabilities)[::-1][: max(1, k)]
        return Prediction([self.labels[i] for i in order], [float(probabilities[i]) for i in order])

    def classify(self, samples: np.ndarray, k: int = 1) -> Prediction:
        """One clip of any length (16 kHz mono): cropped to its loudest window or padded."""
        window = fit_to_window(samples, self.window_samples)
        return self.top_k(self.probabilities(window[None, :])[0], k)

    def classify_files(self, paths: Iterable[Path], top_k: int = 1,
                       batch_size: int = DEFAULT_BATCH_SIZE) -> Iterator[FileResult]:
        """Results in input order; files are decoded in parallel threads while the model runs in batches.
        A file that cannot be decoded yields a result with its error; the others go on."""
        paths = list(paths)
        for start in range(0, len(paths), batch_size):
            chunk = paths[start : start + batch_size]
            decoded = decode_files(chunk)
            good = [i for i, d in enumerate(decoded) if not isinstance(d, AudioDecodeError)]
            windows = [fit_to_window(decoded[i], self.window_samples) for i in good]
            by_row = dict(zip(good, self.probabilities(np.stack(windows)))) if good else {}
            for i, path in enumerate(chunk):
                if i in by_row:
                    prediction = self.top_k(by_row[i], top_k)
                    yield FileResult(path, prediction.labels, prediction.confidences)
                else:
                    yield FileResult(path, error=str(decoded[i]))


def expand_paths(inputs: Iterable[str | os.PathLike], recursive: bool = False) -> list[Path]:
    """Folders become the audio files inside them (by extension, hidden files skipped); files named
    explicitly are always kept, whatever their extension, so the user hears why they failed."""
    files: list[Path] = []
    for item in map(Path, inputs):
        if item.is_dir():
            pattern = item.rglob("*") if recursive else item.iterdir()
            found = sorted(p for p in pattern if p.is_file() and is_audio_file(p)
                           and not any(part.startswith(".") for part in p.relative_to(item).parts))
            files.extend(found)
        else:
            files.append(item)
    return files
