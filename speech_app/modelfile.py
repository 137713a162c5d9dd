"""Model files: one .safetensors file holding the weights and, as JSON metadata, everything needed to
rebuild and use the model (labels, feature settings, model settings, training data, metrics).

Loading never unpickles: safetensors stores raw tensors and a JSON header only.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as serialize_tensors

from . import __version__
from .atomic_files import write_bytes
from .features import FeatureConfig
from .model import BiLstmClassifier, ModelConfig
from .messages import one_line

METADATA_KEY = "speech_app"
FORMAT_VERSION = 1
SHIPPED_MODEL_NAME = "speech_commands_12.safetensors"
# bounds a model's settings must fall in: anything outside is a damaged or hand-edited file
POSITIVE_INT_SETTINGS = {"model": ("n_features", "n_classes", "hidden_size", "num_layers", "frame_stride"),
                         "features": ("sample_rate", "n_mels", "n_mfcc")}
POSITIVE_FLOAT_SETTINGS = {"features": ("window_ms", "hop_ms", "clip_seconds", "f_max_hz", "top_db")}
MAX_CLIP_SECONDS = 60.0


class ModelFileError(Exception):
    """A model file that cannot be used; the message names the file and the reason."""


@dataclass
class ModelBundle:
    """A loaded model with everything its file says about it."""

    model: BiLstmClassifier
    labels: list[str]
    features: FeatureConfig
    info: dict = field(default_factory=dict)  # training data, metrics, package version, ...
    path: Path | None = None


def save_model(path: str | os.PathLike, bundle: ModelBundle) -> Path:
    """Write the model through a temporary file and a rename, so an existing model is never half-overwritten."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # serialized in memory, then written by the shared helper: a unique temporary name, fsync, rename,
    # the umask's permissions, and an OutputError naming the file on a full disk
    return write_bytes(path, model_file_bytes(path, bundle))


def model_file_bytes(path: Path, bundle: ModelBundle) -> bytes:
    """The contents of a model file: the weights, and the metadata as JSON (`path` names it in errors)."""
    metadata = {
        "format_version": FORMAT_VERSION,
        "package_version": __version__,
        "labels": list(bundle.labels),
        "features": bundle.features.to_dict(),
        "model": bundle.model.config.to_dict(),
        **{k: v for k, v in bundle.info.items() if k not in ("labels", "features", "model")},
    }
    tensors = {name: t.detach().cpu().contiguous() for name, t in bundle.model.state_dict().items()}
    if not all(torch.isfinite(t).all() for t in tensors.values() if t.is_floating_point()):
        raise ModelFileError(f"{path}: not written: the weights hold NaN or infinite values")
    return serialize_tensors(tensors, metadata={METADATA_KEY: json.dumps(metadata)})


def read_metadata(path: str | os.PathLike) -> dict:
    path = Path(path)
    with _open_model_file(path) as handle:
        return _parsed_metadata(path, handle)


@contextlib.contextmanager
def _open_model_file(path: Path):
    """The file's safetensors handle, opened once for its metadata and its tensors; a path that is no
    readable file gets its own message."""
    try:
        handle = safe_open(str(path), framework="pt", device="cpu")
    except (SafetensorError, OSError, ValueError) as err:
        _check_readable(path)
        raise ModelFileError(f"{path}: not a safetensors model file ({one_line(err)})") from None
    with handle:
        yield handle


def _check_readable(path: Path) -> None:
    if path.is_dir():
        raise ModelFileError(f"{path}: is a folder, not a model file")
    if not path.exists():
        raise ModelFileError(f"{path}: no such model file")
    try:
        with open(path, "rb"):
            pass
    except OSError as err:
        raise ModelFileError(f"{path}: cannot read the model file ({(err.strerror or str(err)).lower()})") from None


def _parsed_metadata(path: Path, handle) -> dict:
    raw = (handle.metadata() or {}).get(METADATA_KEY)
    if raw is None:
        raise ModelFileError(f"{path}: safetensors file without speech-app metadata")
    try:
        metadata = json.loads(raw)
    except json.JSONDecodeError as err:
        raise ModelFileError(f"{path}: corrupt metadata ({err})") from None
    if not isinstance(metadata, dict):
        raise ModelFileError(f"{path}: corrupt metadata (a JSON {type(metadata).__name__}, not an object)")
    version = metadata.get("format_version", 0)
    if not isinstance(version, int) or isinstance(version, bool):
        raise ModelFileError(f"{path}: corrupt metadata (format_version {version!r} is not a number)")
    if version > FORMAT_VERSION:
        raise ModelFileError(f"{path}: made by a newer speech-app ({metadata.get('package_version')}); upgrade")
    return metadata


def load_model(path: str | os.PathLike | None = None, device: str | torch.device = "cpu") -> ModelBundle:
    """Rebuild a model from its file alone; with no path, the shipped model."""
    path = Path(path) if path is not None else shipped_model_path()
    with _open_model_file(path) as handle:
        metadata = _parsed_metadata(path, handle)
        labels, features, config = _checked_settings(path, metadata)
        try:
            model = BiLstmClassifier(config)
        except (ValueError, TypeError, RuntimeError) as err:
            raise ModelFileError(f"{path}: unusable model settings ({one_line(err)})") from None
        tensors = _read_tensors(path, handle)
    own = model.state_dict()
    missing, unexpected = sorted(set(own) - set(tensors)), sorted(set(tensors) - set(own))
    if missing or unexpected:
        name, more = (missing or unexpected)[0], len(missing or unexpected) - 1
        what = "lacks the tensor" if missing else "holds an unknown tensor"
        raise ModelFileError(f"{path}: {what} {name}" + (f" (and {more} more)" if more else "")
                             + "; the file is damaged or from another program")
    for name, tensor in tensors.items():
        if tensor.shape != own[name].shape:
            raise ModelFileError(f"{path}: tensor {name} has shape {tuple(tensor.shape)}, the stored model "
                                 f"settings need {tuple(own[name].shape)}")
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise ModelFileError(f"{path}: tensor {name} holds NaN or infinite values; the model is unusable")
    model.load_state_dict(tensors)
    info = {k: v for k, v in metadata.items() if k not in ("labels", "features", "model")}
    model.eval().to(device)
    return ModelBundle(model=model, labels=labels, features=features, info=info, path=path)


def _checked_settings(path: Path, metadata: dict) -> tuple[list[str], FeatureConfig, ModelConfig]:
    """Labels, feature and model settings from the metadata, each checked for type and range."""
    for key in ("labels", "features", "model"):
        if key not in metadata:
            raise ModelFileError(f"{path}: metadata lacks '{key}'")
    labels = metadata["labels"]
    if not isinstance(labels, list) or not labels or not all(isinstance(x, str) and x for x in labels):
        raise ModelFileError(f"{path}: metadata 'labels' must be a list of names, not {_short(labels)}")
    if len(set(labels)) != len(labels):
        raise ModelFileError(f"{path}: metadata 'labels' names a word twice")
    for key in ("features", "model"):
        if not isinstance(metadata[key], dict):
            raise ModelFileError(f"{path}: metadata '{key}' must be an object, not {_short(metadata[key])}")
        for name in POSITIVE_INT_SETTINGS.get(key, ()):
            value = metadata[key].get(name, 1)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ModelFileError(f"{path}: metadata {key}.{name} must be a whole number >= 1, not {_short(value)}")
        for name in POSITIVE_FLOAT_SETTINGS.get(key, ()):
            value = metadata[key].get(name, 1.0)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 < value < float("inf"):
                raise ModelFileError(f"{path}: metadata {key}.{name} must be a number above 0, not {_short(value)}")
    try:
        features = FeatureConfig.from_dict(metadata["features"])
        config = ModelConfig.from_dict(metadata["model"])
    except (TypeError, ValueError) as err:
        raise ModelFileError(f"{path}: unusable settings in the metadata ({one_line(err)})") from None
    if features.clip_seconds > MAX_CLIP_SECONDS or features.n_mfcc > features.n_mels:
        raise ModelFileError(f"{path}: unusable feature settings (clip of {features.clip_seconds} s, "
                             f"{features.n_mfcc} MFCCs from {features.n_mels} mel bands)")
    if len(labels) != config.n_classes:
        raise ModelFileError(f"{path}: {len(labels)} labels for {config.n_classes} outputs")
    return labels, features, config


def _read_tensors(path: Path, handle) -> dict[str, torch.Tensor]:
    try:
        return {name: handle.get_tensor(name) for name in handle.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise ModelFileError(f"{path}: damaged weights ({one_line(err)})") from None


def _short(value) -> str:
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


def shipped_model_path() -> Path:
    """The model in the repository's model/ folder, or the copy a wheel carries inside the package."""
    package_dir = Path(__file__).resolve().parent
    candidates = [package_dir.parent / "model" / SHIPPED_MODEL_NAME, package_dir / "shipped_model" / SHIPPED_MODEL_NAME]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise ModelFileError(f"{candidates[0]}: the shipped model is missing; pass --model FILE")
