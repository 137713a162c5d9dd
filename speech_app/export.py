"""ONNX export: the MFCC front end and the classifier in one graph, so ONNX Runtime can run the
model on a device without PyTorch.

The graph takes `audio`, float32 (batch, samples) of 16 kHz mono, and gives `probabilities`,
float32 (batch, classes). The labels (JSON list) and the feature settings travel in the file's
metadata, as they do in the safetensors model file:

    import json, onnxruntime
    session = onnxruntime.InferenceSession("model.onnx")
    meta = session.get_modelmeta().custom_metadata_map
    labels = json.loads(meta["labels"])
    window = int(meta["window_samples"])          # pad or crop each clip to this many samples
    probabilities = session.run(None, {"audio": clips})[0]
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import json
import logging
import os
import warnings
from pathlib import Path

import torch

from . import __version__
from .atomic_files import atomic_write, check_writable, output_lock
from .features import MfccFrontend
from .modelfile import ModelBundle

ONNX_OPSET = 18  # the exporter's own opset; ONNX Runtime 1.16 and later run it
INPUT_NAME, OUTPUT_NAME = "audio", "probabilities"
EXAMPLE_BATCH = 2  # any size: the batch dimension is exported as dynamic


class ExportError(Exception):
    """The model could not be written as ONNX; the message names the file and the reason."""


class ProbabilityGraph(torch.nn.Module):
    """Waveforms (batch, samples) -> class probabilities (batch, classes): what the ONNX file holds."""

    def __init__(self, bundle: ModelBundle):
        super().__init__()
        self.frontend = MfccFrontend(bundle.features, cpu_chunk_clips=0)  # the batch size stays symbolic
        self.model = bundle.model

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.model(self.frontend(audio)), dim=-1)


def onnx_metadata(bundle: ModelBundle) -> dict[str, str]:
    """String metadata (ONNX allows only strings): labels as JSON, settings beside them."""
    features = bundle.features
    return {
        "labels": json.dumps(list(bundle.labels)),
        "sample_rate": str(features.sample_rate),
        "window_samples": str(features.clip_samples),
        "window_seconds": str(features.clip_seconds),
        "features": json.dumps(features.to_dict()),
        "model": json.dumps(bundle.model.config.to_dict()),
        "input": f"{INPUT_NAME}: float32 [batch, {features.clip_samples}] mono at {features.sample_rate} Hz",
        "output": f"{OUTPUT_NAME}: float32 [batch, {len(bundle.labels)}] softmax over labels",
        "package_version": __version__,
    }


@contextlib.contextmanager
def quiet_exporter(verbose: bool):
    """The exporter narrates its steps and warns about internals of torch; the user needs none of it."""
    if verbose:
        yield
        return
    onnx_logger = logging.getLogger("torch.onnx")
    level = onnx_logger.level
    onnx_logger.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        onnx_logger.setLevel(level)


def export_onnx(bundle: ModelBundle, out_path: str | os.PathLike, verbose: bool = False) -> Path:
    """Write the model as ONNX as every output is written (atomic_files: checked before the export, locked
    against a second run, a unique temporary file fsynced and renamed); returns the path written.
    Raises OutputError when `out_path` cannot be written."""
    out_path = Path(out_path)
    check_writable(out_path)  # a missing folder, a folder in the way, a read-only disk: before the export
    with output_lock(out_path):
        proto = onnx_model(bundle, out_path, verbose)
        with atomic_write(out_path, "wb") as handle:
            handle.write(proto.SerializeToString())  # what onnx.save_model writes for a .onnx file
    return out_path


def onnx_model(bundle: ModelBundle, out_path: Path, verbose: bool = False):
    """The ONNX ModelProto of the model, its metadata included; `out_path` only names the file in errors."""
    graph = ProbabilityGraph(bundle).cpu().eval()
    example = torch.zeros(EXAMPLE_BATCH, bundle.features.clip_samples)
    proto = _exported_proto(graph, example, INPUT_NAME, out_path, verbose)
    for key, value in onnx_metadata(bundle).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    return proto


# -- the graph of `speech-app listen` without PyTorch (onnx_runtime.py) -----------------------------

STREAMING_INPUT = "log_mel"  # float32 (batch, frames, n_mels): features.MfccFrontend.log_mel_frames of each window


class StreamingGraph(torch.nn.Module):
    """Log-mel frames of whole windows (batch, frames, n_mels) -> class probabilities (batch, classes):
    the front end's second half (each window's floor, the DCT) and the model. The first half, which
    overlapping live windows share, runs in NumPy (numpy_frontend.py): ONNX Runtime's DFT took as long
    as the whole model per window."""

    def __init__(self, bundle: ModelBundle):
        super().__init__()
        self.frontend = MfccFrontend(bundle.features, cpu_chunk_clips=0)
        self.model = bundle.model

    def forward(self, log_mel: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.model(self.frontend.cepstra(log_mel)), dim=-1)


def streaming_metadata(bundle: ModelBundle, source_sha256: str) -> dict[str, str]:
    """What the NumPy half needs besides the graph: the front end's own window and mel filterbank
    (float32, base64), so it computes what MfccFrontend computes; and the model file it came from."""
    frontend = MfccFrontend(bundle.features)
    arrays = {"window": frontend.window, "mel_basis": frontend.mel_basis}
    return {
        "labels": json.dumps(list(bundle.labels)),
        "window_samples": str(bundle.features.clip_samples),
        "hop_samples": str(bundle.features.hop_samples),
        "n_fft": str(bundle.features.n_fft),
        "features": json.dumps(bundle.features.to_dict()),
        "source_sha256": source_sha256,
        "input": f"{STREAMING_INPUT}: float32 [batch, {bundle.features.n_frames}, {bundle.features.n_mels}] dB",
        **{f"{name}_float32": base64.b64encode(a.numpy().astype("<f4").tobytes()).decode() for name, a in arrays.items()},
        "mel_basis_shape": json.dumps(list(frontend.mel_basis.shape)),
        "package_version": __version__,
    }


def export_streaming_onnx(model_path: str | os.PathLike, out_path: str | os.PathLike) -> Path:
    """Write the streaming graph of the model file at `model_path` (atomically); returns the path."""
    from .atomic_files import write_bytes
    from .modelfile import load_model

    source = Path(model_path)
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    bundle = load_model(source)
    features = bundle.features
    example = torch.zeros(EXAMPLE_BATCH, features.n_frames, features.n_mels)
    proto = _exported_proto(StreamingGraph(bundle).cpu().eval(), example, STREAMING_INPUT, out_path)
    for key, value in streaming_metadata(bundle, digest).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    Path(out_path).parent.mkdir(parents=True, exist_ok=True)
    return write_bytes(out_path, proto.SerializeToString())


def _exported_proto(graph: torch.nn.Module, example: torch.Tensor, input_name: str, out_path, verbose: bool = False):
    """The graph exported with a dynamic batch; `out_path` only names the file in errors."""
    try:  # the `onnx` extra; imported here so the rest of the package never needs it
        import onnx  # noqa: F401
        import onnxscript  # noqa: F401  (torch's exporter needs it)
    except ImportError as err:
        raise ExportError(f"{out_path}: ONNX export needs the onnx extra: pip install 'speech-app[onnx]' "
                          f"({err.name} is missing)") from None
    batch = torch.export.Dim("batch", min=1)
    try:
        with quiet_exporter(verbose), torch.no_grad():
            program = torch.onnx.export(graph, (example,), input_names=[input_name], output_names=[OUTPUT_NAME],
                                        dynamic_shapes=({0: batch},), dynamo=True, opset_version=ONNX_OPSET,
                                        verbose=verbose)
    except Exception as err:  # the exporter raises many kinds; the user needs one line
        raise ExportError(f"{out_path}: ONNX export failed ({type(err).__name__}: {str(err).splitlines()[0]})") from None
    return program.model_proto


def main(argv: list[str] | None = None) -> int:
    """`python -m speech_app.export MODEL OUT`: the streaming graph of MODEL. onnx_runtime.py runs it in
    a child process, so that `listen` never has PyTorch in its own memory."""
    import sys

    from .atomic_files import OutputError
    from .modelfile import ModelFileError

    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print("usage: python -m speech_app.export MODEL.safetensors OUT.onnx", file=sys.stderr)
        return 2
    try:
        print(export_streaming_onnx(argv[0], argv[1]))
    except (ModelFileError, ExportError, OutputError, OSError) as err:
        print(f"speech-app export: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
