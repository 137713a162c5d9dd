"""Streaming recognition without PyTorch: the model's ONNX graph run by ONNX Runtime.

`speech-app listen` is left running all day; with torch and torchaudio imported it held 688 MB. Here
the front end's first half (log-mel frames, shared between overlapping windows) runs in NumPy
(numpy_frontend.py) and the rest (floor, DCT, model) in ONNX Runtime, so the process holds NumPy,
ONNX Runtime and the model only. Nothing in this module imports torch.

An ONNX file needs torch to be made (export.py: `export_streaming_onnx`), so exports are kept:
- beside the model file, `<name>.streaming.onnx`: the shipped model comes with its own;
- in the cache folder, named by the SHA-256 of the model file, for the user's models. `choose_runtime`
  makes one there in a child process when it is missing (once per model file), so that the PyTorch
  it takes never enters this process.
An export is used only when its `source_sha256` is the model file's, so a retrained model never runs
on a stale graph. tests/test_listen_runtime.py checks that both runtimes detect the same words.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .cache import cache_folder
from .numpy_frontend import NumpyLogMel, SharedLogMelFrames

RUNTIMES = ("auto", "onnx", "torch")  # what `listen --runtime` accepts; auto: onnx when it can run
EXPORT_SUFFIX = ".streaming.onnx"
SHIPPED_MODEL_NAME = "speech_commands_12.safetensors"  # modelfile.SHIPPED_MODEL_NAME (which imports torch)
LIVE_THREADS = 1  # ONNX Runtime threads for live recognition: one window per hop gains nothing from more
EXPORT_TIMEOUT_S = 600.0  # the child that exports a model (imports torch, traces the model: 10-30 s)
HASH_BLOCK_BYTES = 1 << 20


class RuntimeUnavailableError(Exception):
    """`--runtime onnx` asked for and impossible; the message says why in one line."""


def model_digest(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(HASH_BLOCK_BYTES), b""):
            digest.update(block)
    return digest.hexdigest()


def shipped_model_file() -> Path:
    """The shipped model (repository or wheel), found without importing modelfile (and torch)."""
    package_dir = Path(__file__).resolve().parent
    candidates = [package_dir.parent / "model" / SHIPPED_MODEL_NAME, package_dir / "shipped_model" / SHIPPED_MODEL_NAME]
    return next((c for c in candidates if c.is_file()), candidates[0])


def export_cache_dir() -> Path:
    return cache_folder("onnx")


def export_candidates(model_path: Path, digest: str) -> list[Path]:
    return [model_path.with_name(model_path.name.removesuffix(".safetensors") + EXPORT_SUFFIX),
            export_cache_dir() / f"{digest}{EXPORT_SUFFIX}"]


def onnxruntime_installed() -> bool:
    return importlib.util.find_spec("onnxruntime") is not None


def exporter_installed() -> bool:
    """Making an export needs torch and the onnx extra (onnxscript, onnx)."""
    return all(importlib.util.find_spec(name) is not None for name in ("torch", "onnxscript", "onnx"))


def find_export(model_path: Path, digest: str) -> OnnxClassifier | None:
    """The export of exactly this model file (beside it or in the cache), loaded; or None."""
    for candidate in export_candidates(model_path, digest):
        if candidate.is_file():
            try:
                return OnnxClassifier(candidate, digest)
            except Exception:  # a damaged, foreign or stale file: not an export of this model
                continue
    return None


EXIT_UNUSABLE_MODEL = 2  # the exporting child's status for a model file that cannot be loaded at all


class UnusableModelError(ValueError):
    """The model file itself cannot be loaded (as modelfile.ModelFileError, which needs torch to import)."""


def make_export(model_path: Path, digest: str) -> Path:
    """Export the model in a child process (torch stays out of this one) into the cache folder."""
    out = export_cache_dir() / f"{digest}{EXPORT_SUFFIX}"
    failed = out.with_name(out.name + ".failed")  # an export that failed is not retried at every start
    if failed.is_file():
        raise RuntimeUnavailableError(f"{model_path}: its ONNX export failed before ({failed.read_text().strip()})")
    command = [sys.executable, "-m", "speech_app.export", str(model_path), str(out)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=EXPORT_TIMEOUT_S)
    if done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        if done.returncode == EXIT_UNUSABLE_MODEL:  # PyTorch would refuse the file too: no fallback, one line
            raise UnusableModelError(reason)
        out.parent.mkdir(parents=True, exist_ok=True)
        failed.write_text(reason + "\n")
        raise RuntimeUnavailableError(f"{model_path}: no ONNX export ({reason})")
    return out


@dataclass(frozen=True)
class RuntimeChoice:
    runtime: str  # "onnx" or "torch"
    classifier: OnnxClassifier | None  # the loaded export, for onnx
    note: str = ""  # why torch was chosen when onnx was possible, or that an export was made


def choose_runtime(model_path: Path | None, requested: str = "auto", precision: str = "float32",
                   make_missing: bool = True) -> RuntimeChoice:
    """onnx when an export of the model exists (or can be made) and onnxruntime is installed and the
    precision is float32 (ONNX Runtime's); torch otherwise. `requested` onnx raises
    RuntimeUnavailableError where auto would fall back to torch."""
    if requested not in RUNTIMES:
        raise ValueError(f"--runtime {requested}: choose one of {', '.join(RUNTIMES)}")
    if requested == "torch":
        return RuntimeChoice("torch", None)
    try:
        return _onnx_choice(model_path, precision, make_missing)
    except RuntimeUnavailableError as err:
        if requested == "onnx":
            raise
        return RuntimeChoice("torch", None, str(err))


def _onnx_choice(model_path: Path | None, precision: str, make_missing: bool) -> RuntimeChoice:
    if precision != "float32":
        raise RuntimeUnavailableError(f"--precision {precision} runs on PyTorch; ONNX Runtime runs float32")
    if not onnxruntime_installed():
        raise RuntimeUnavailableError("onnxruntime is not installed (pip install 'speech-app[mic]')")
    path = Path(model_path) if model_path is not None else shipped_model_file()
    try:
        digest = model_digest(path)
    except OSError as err:  # the torch path names the problem in the model loader's words
        raise RuntimeUnavailableError(f"{path}: {err.strerror or err}") from None
    found = find_export(path, digest)
    if found is not None:
        return RuntimeChoice("onnx", found)
    if not (make_missing and exporter_installed()):
        raise RuntimeUnavailableError(f"{path}: no ONNX export of this model (making one needs "
                                      f"pip install 'speech-app[onnx]')")
    print(f"speech-app: making a PyTorch-free copy of {path.name} for listening (once per model file)...",
          file=sys.stderr, flush=True)
    return RuntimeChoice("onnx", OnnxClassifier(make_export(path, digest), digest), "made an ONNX export of the model")


class StaleExportError(Exception):
    """An ONNX file that is not the export of the model file asked for."""


class OnnxClassifier:
    """A model's streaming export, run by ONNX Runtime: the `streaming.Classifier` protocol, plus the
    frame sharing of overlapping windows (`shared_features`) that the recognizer uses live.

    One intra-op thread: live, one window per hop gains nothing from more. Scanning a file, the recognizer
    runs batches on several threads instead (sessions take concurrent runs; ONNX Runtime releases the GIL)."""

    def __init__(self, path: str | os.PathLike, source_sha256: str | None = None):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = LIVE_THREADS, 1
        self.path = Path(path)
        self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        meta = self.session.get_modelmeta().custom_metadata_map
        if source_sha256 is not None and meta.get("source_sha256") != source_sha256:
            raise StaleExportError(f"{path}: made from another model file")
        self.labels = json.loads(meta["labels"])
        self.window_samples = int(meta["window_samples"])
        self.input_name = self.session.get_inputs()[0].name
        mel_basis = _array(meta, "mel_basis").reshape(json.loads(meta["mel_basis_shape"]))
        self.log_mel = NumpyLogMel(_array(meta, "window"), mel_basis, int(meta["hop_samples"]), int(meta["n_fft"]))

    def probabilities(self, waves: np.ndarray) -> np.ndarray:
        """(N, window_samples) waveforms at 16 kHz -> (N, n_classes) class probabilities."""
        return self.probabilities_from_features(self.log_mel.windows(np.asarray(waves, dtype=np.float32)))

    def probabilities_from_features(self, log_mel: np.ndarray) -> np.ndarray:
        """(N, frames, n_mels) log-mel windows (`shared_features`) -> (N, n_classes)."""
        log_mel = np.ascontiguousarray(log_mel, dtype=np.float32)
        return self.session.run(None, {self.input_name: log_mel})[0]

    def shared_features(self, window_samples: int) -> SharedLogMelFrames:
        return SharedLogMelFrames(self.log_mel, window_samples)


def limit_numpy_threads(threads: int = LIVE_THREADS) -> None:
    """Cap NumPy's BLAS threads for the rest of the process (for a process that recognizes, and owns
    its threads: `listen`). The front end's small mel product took 4 ms instead of 0.06 with OpenBLAS's
    threads contending on a busy two-core machine: most of a hop's CPU."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(threads, user_api="blas")


def _array(meta: dict, name: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(meta[f"{name}_float32"]), dtype="<f4").astype(np.float32)
