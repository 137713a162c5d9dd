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

import contextlib
import io
import json
import logging
import os
import warnings
from pathlib import Path

import torch

from . import __version__
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
    """Write the model as ONNX through a temporary file and a rename; returns the path written."""
    out_path = Path(out_path)
    try:  # the `onnx` extra; imported here so the rest of the package never needs it
        import onnx
        import onnxscript  # noqa: F401  (torch's exporter needs it)
    except ImportError as err:
        raise ExportError(f"{out_path}: ONNX export needs the onnx extra: pip install 'speech-app[onnx]' "
                          f"({err.name} is missing)") from None
    graph = ProbabilityGraph(bundle).cpu().eval()
    example = torch.zeros(EXAMPLE_BATCH, bundle.features.clip_samples)
    batch = torch.export.Dim("batch", min=1)
    try:
        with quiet_exporter(verbose), torch.no_grad():
            program = torch.onnx.export(graph, (example,), input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                                        dynamic_shapes=({0: batch},), dynamo=True, opset_version=ONNX_OPSET,
                                        verbose=verbose)
    except Exception as err:  # the exporter raises many kinds; the user needs one line
        raise ExportError(f"{out_path}: ONNX export failed ({type(err).__name__}: {str(err).splitlines()[0]})") from None
    proto = program.model_proto
    for key, value in onnx_metadata(bundle).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(f".{out_path.name}.tmp")
    onnx.save_model(proto, str(tmp))
    os.replace(tmp, out_path)
    return out_path
