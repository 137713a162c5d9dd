"""Model files: one .safetensors file holding the weights and, as JSON metadata, everything needed to
rebuild and use the model (labels, feature settings, model settings, training data, metrics).

Loading never unpickles: safetensors stores raw tensors and a JSON header only.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from . import __version__
from .features import FeatureConfig
from .model import BiLstmClassifier, ModelConfig

METADATA_KEY = "speech_app"
FORMAT_VERSION = 1
SHIPPED_MODEL_NAME = "speech_commands_12.safetensors"


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
    metadata = {
        "format_version": FORMAT_VERSION,
        "package_version": __version__,
        "labels": list(bundle.labels),
        "features": bundle.features.to_dict(),
        "model": bundle.model.config.to_dict(),
        **{k: v for k, v in bundle.info.items() if k not in ("labels", "features", "model")},
    }
    tensors = {name: t.detach().cpu().contiguous() for name, t in bundle.model.state_dict().items()}
    tmp = path.with_name(f".{path.name}.tmp")
    save_file(tensors, str(tmp), metadata={METADATA_KEY: json.dumps(metadata)})
    os.replace(tmp, path)
    return path


def read_metadata(path: str | os.PathLike) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: no such model file")
    try:
        with safe_open(str(path), framework="pt") as handle:
            raw = (handle.metadata() or {}).get(METADATA_KEY)
    except (SafetensorError, OSError, ValueError) as err:
        raise ModelFileError(f"{path}: not a safetensors model file ({' '.join(str(err).split())})") from None
    if raw is None:
        raise ModelFileError(f"{path}: safetensors file without speech-app metadata")
    try:
        metadata = json.loads(raw)
    except json.JSONDecodeError as err:
        raise ModelFileError(f"{path}: corrupt metadata ({err})") from None
    if metadata.get("format_version", 0) > FORMAT_VERSION:
        raise ModelFileError(f"{path}: made by a newer speech-app ({metadata.get('package_version')}); upgrade")
    return metadata


def load_model(path: str | os.PathLike | None = None, device: str | torch.device = "cpu") -> ModelBundle:
    """Rebuild a model from its file alone; with no path, the shipped model."""
    path = Path(path) if path is not None else shipped_model_path()
    metadata = read_metadata(path)
    try:
        labels = list(metadata["labels"])
        features = FeatureConfig.from_dict(metadata["features"])
        config = ModelConfig.from_dict(metadata["model"])
    except (KeyError, TypeError) as err:
        raise ModelFileError(f"{path}: metadata lacks {err}") from None
    model = BiLstmClassifier(config)
    tensors = {}
    with safe_open(str(path), framework="pt", device="cpu") as handle:
        for name in handle.keys():
            tensors[name] = handle.get_tensor(name)
    try:
        model.load_state_dict(tensors)
    except RuntimeError as err:
        raise ModelFileError(f"{path}: weights do not match the stored model settings ({str(err).splitlines()[0]})") from None
    if len(labels) != config.n_classes:
        raise ModelFileError(f"{path}: {len(labels)} labels for {config.n_classes} outputs")
    info = {k: v for k, v in metadata.items() if k not in ("labels", "features", "model")}
    model.eval().to(device)
    return ModelBundle(model=model, labels=labels, features=features, info=info, path=path)


def shipped_model_path() -> Path:
    """The model in the repository's model/ folder, or the copy a wheel carries inside the package."""
    package_dir = Path(__file__).resolve().parent
    candidates = [package_dir.parent / "model" / SHIPPED_MODEL_NAME, package_dir / "shipped_model" / SHIPPED_MODEL_NAME]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise ModelFileError(f"{candidates[0]}: the shipped model is missing; pass --model FILE")
