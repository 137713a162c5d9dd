"""Model files: one .safetensors file holding the weights and, as JSON metadata, everything needed to
rebuild and use the model (labels, feature settings, model settings, training data, metrics).

Loading never unpickles: safetensors stores raw tensors and a JSON header only.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from dataclasses import dataclass, field, fields
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as serialize_tensors

from . import __version__
from .atomic_files import write_bytes
from .audio import special_file_kind
from .features import FeatureConfig
from .model import BiLstmClassifier, ModelConfig
from .messages import one_line

METADATA_KEY = "speech_app"
FORMAT_VERSION = 1
SHIPPED_MODEL_NAME = "speech_commands_12.safetensors"
# the ranges of the stored settings are FeatureConfig.check's and ModelConfig.check's
MAX_STORED_INT = 2**63 - 1  # a whole number beyond 64 bits is no size or count torch could use
SAFETENSORS_DTYPES = {torch.float32: "F32", torch.int64: "I64"}  # the header's names of the types a model holds


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
    if (kind := special_file_kind(path)) is not None:  # opening a named pipe would wait for a writer forever
        raise ModelFileError(f"{path}: is {kind}, not a model file")
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
    if not isinstance(version, int) or isinstance(version, bool) or version < 0:
        raise ModelFileError(f"{path}: corrupt metadata (format_version {_short(version)} is not a version number)")
    if version > FORMAT_VERSION:
        raise ModelFileError(f"{path}: made by a newer speech-app ({metadata.get('package_version')}); upgrade")
    return metadata


def load_model(path: str | os.PathLike | None = None, device: str | torch.device = "cpu") -> ModelBundle:
    """Rebuild a model from its file alone; with no path, the shipped model.

    Every stored setting is range-checked, and every tensor's shape and type (from the file's header)
    checked against those settings, before anything the settings size is allocated: the weights then
    take the memory the file's own tensors take, once (they become the model's parameters)."""
    path = Path(path) if path is not None else shipped_model_path()
    with _open_model_file(path) as handle:
        metadata = _parsed_metadata(path, handle)
        labels, features, config = _checked_settings(path, metadata)
        model = _checked_skeleton(path, config, _stored_layout(path, handle))
        tensors = _read_tensors(path, handle)
    for name, tensor in tensors.items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise ModelFileError(f"{path}: tensor {name} holds NaN or infinite values; the model is unusable")
    model.load_state_dict(tensors, assign=True)  # the file's tensors replace the skeleton's shapeless ones
    info = {k: v for k, v in metadata.items() if k not in ("labels", "features", "model")}
    model.eval().to(device)
    return ModelBundle(model=model, labels=labels, features=features, info=info, path=path)


def _checked_settings(path: Path, metadata: dict) -> tuple[list[str], FeatureConfig, ModelConfig]:
    """Labels, feature and model settings from the metadata, each checked for type and range."""
    for key in ("labels", "features", "model"):
        if key not in metadata:
            raise ModelFileError(f"{path}: metadata lacks '{key}'")
    labels = _checked_labels(path, metadata["labels"])
    features = _checked_config(path, "features", metadata["features"], FeatureConfig)
    config = _checked_config(path, "model", metadata["model"], ModelConfig)
    if config.n_features != features.n_mfcc:
        raise ModelFileError(f"{path}: metadata model.n_features {config.n_features} does not match "
                             f"features.n_mfcc {features.n_mfcc}")
    if len(labels) != config.n_classes:
        raise ModelFileError(f"{path}: {len(labels)} labels for {config.n_classes} outputs")
    return labels, features, config


def _checked_labels(path: Path, labels) -> list[str]:
    if not isinstance(labels, list) or not labels or not all(isinstance(x, str) and x for x in labels):
        raise ModelFileError(f"{path}: metadata 'labels' must be a list of names, not {_short(labels)}")
    if len(set(labels)) != len(labels):
        raise ModelFileError(f"{path}: metadata 'labels' names a word twice")
    odd = next((x for x in labels if not x.isprintable()), None)
    if odd is not None:  # it would break the one-line outputs and CSV rows that name it
        raise ModelFileError(f"{path}: metadata 'labels' holds a name with a line break or control character: "
                             f"{_short(odd)}")
    return labels


def _checked_config(path: Path, key: str, values, config_cls):
    """A FeatureConfig or ModelConfig from the metadata's `key` object: each stored field of the type its
    dataclass declares, then the ranges of the config's own `check`."""
    if not isinstance(values, dict):
        raise ModelFileError(f"{path}: metadata '{key}' must be an object, not {_short(values)}")
    for setting in fields(config_cls):
        if setting.name in values and not _is_number(values[setting.name], whole=setting.type == "int"):
            kind = "a whole number" if setting.type == "int" else "a finite number"
            raise ModelFileError(f"{path}: metadata {key}.{setting.name} must be {kind}, "
                                 f"not {_short(values[setting.name])}")
    config = config_cls.from_dict(values)
    try:
        config.check()
    except ValueError as err:
        raise ModelFileError(f"{path}: metadata {key}.{err}") from None
    return config


def _is_number(value, whole: bool) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    if isinstance(value, int):
        return abs(value) <= MAX_STORED_INT
    return not whole and math.isfinite(value)


def _stored_layout(path: Path, handle) -> dict[str, tuple[tuple[int, ...], str]]:
    """Each stored tensor's shape and type, from the file's header alone: nothing is read or allocated."""
    try:
        slices = {name: handle.get_slice(name) for name in handle.keys()}
        return {name: (tuple(part.get_shape()), part.get_dtype()) for name, part in slices.items()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise ModelFileError(f"{path}: damaged weights ({one_line(err)})") from None


def _checked_skeleton(path: Path, config: ModelConfig, stored: dict) -> BiLstmClassifier:
    """The model the settings describe, built on the meta device (shapes, no memory), once its tensors'
    names, shapes and types match those the file stores. Before it is built, each size is bounded by
    what the file holds, so that absurd settings cannot make even the skeleton large."""
    stored_values = sum(math.prod(shape) for shape, _ in stored.values())
    if config.num_layers > len(stored):  # each layer stores tensors of its own
        raise ModelFileError(f"{path}: metadata model.num_layers {config.num_layers} is more than the "
                             f"{len(stored)} tensors the file stores")
    for setting in fields(ModelConfig):
        value = getattr(config, setting.name)
        if setting.type == "int" and value > stored_values:  # no layer is wider than all weights together
            raise ModelFileError(f"{path}: metadata model.{setting.name} {value} is more than the "
                                 f"{stored_values} weights the file stores")
    try:
        with torch.device("meta"):
            skeleton = BiLstmClassifier(config)
    except (ValueError, TypeError, RuntimeError) as err:
        raise ModelFileError(f"{path}: unusable model settings ({one_line(err)})") from None
    wanted = skeleton.state_dict()
    missing, unexpected = sorted(set(wanted) - set(stored)), sorted(set(stored) - set(wanted))
    if missing or unexpected:
        name, more = (missing or unexpected)[0], len(missing or unexpected) - 1
        what = "lacks the tensor" if missing else "holds an unknown tensor"
        raise ModelFileError(f"{path}: {what} {name}" + (f" (and {more} more)" if more else "")
                             + "; the file is damaged or from another program")
    for name, tensor in wanted.items():
        shape, dtype = stored[name]
        if shape != tuple(tensor.shape):
            raise ModelFileError(f"{path}: tensor {name} has shape {shape}, the stored model "
                                 f"settings need {tuple(tensor.shape)}")
        if dtype != SAFETENSORS_DTYPES.get(tensor.dtype):
            raise ModelFileError(f"{path}: tensor {name} holds {dtype} values, not "
                                 f"{SAFETENSORS_DTYPES.get(tensor.dtype)}; the file is damaged or from another program")
    return skeleton


def _read_tensors(path: Path, handle) -> dict[str, torch.Tensor]:
    """The stored tensors, copied: get_tensor's map the file, and a file overwritten in place or cut short
    while the model runs (`cp` onto it) would change the weights or end the program with a bus error."""
    try:
        return {name: handle.get_tensor(name).clone() for name in handle.keys()}
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
