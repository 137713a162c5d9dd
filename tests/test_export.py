"""ONNX export: ONNX Runtime, without PyTorch in the loop, gives what the PyTorch model gives."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from speech_app.audio import fit_to_window, load_audio
from speech_app.cli import main
from speech_app.features import FeatureConfig
from speech_app.inference import CommandClassifier
from speech_app.model import BiLstmClassifier, ModelConfig
from speech_app.modelfile import ModelBundle, load_model

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

SAMPLES_DIR = Path(__file__).resolve().parent.parent / "datasets" / "samples"
PROBABILITY_TOLERANCE = 1e-4


def sample_windows(window_samples: int) -> tuple[list[Path], np.ndarray]:
    paths = sorted(p for p in SAMPLES_DIR.iterdir() if p.suffix in (".wav", ".flac", ".ogg"))
    return paths, np.stack([fit_to_window(load_audio(p), window_samples) for p in paths])


def session_for(path: Path):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module")
def exported_shipped(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("onnx") / "shipped.onnx"
    assert main(["export", "--format", "onnx", str(out)]) == 0
    return out


def test_onnx_runtime_agrees_with_pytorch_on_the_sample_clips(exported_shipped):
    classifier = CommandClassifier.from_file()
    paths, windows = sample_windows(classifier.window_samples)
    expected = classifier.probabilities(windows)  # (N, C)
    got = session_for(exported_shipped).run(None, {"audio": windows})[0]
    assert got.shape == expected.shape == (len(paths), len(classifier.labels))
    assert np.array_equal(got.argmax(axis=1), expected.argmax(axis=1))
    assert np.max(np.abs(got - expected)) < PROBABILITY_TOLERANCE


def test_each_clip_is_scored_alone_whatever_the_batch(exported_shipped):
    """The dB floor is per clip, so a quiet clip scores the same beside a loud one as alone."""
    session = session_for(exported_shipped)
    _, windows = sample_windows(int(load_model().features.clip_samples))
    together = session.run(None, {"audio": windows})[0]
    one_by_one = np.concatenate([session.run(None, {"audio": w[None]})[0] for w in windows])
    assert np.max(np.abs(together - one_by_one)) < PROBABILITY_TOLERANCE


def test_metadata_carries_labels_and_settings(exported_shipped):
    bundle = load_model()
    meta = session_for(exported_shipped).get_modelmeta().custom_metadata_map
    assert json.loads(meta["labels"]) == bundle.labels
    assert int(meta["window_samples"]) == bundle.features.clip_samples
    assert int(meta["sample_rate"]) == bundle.features.sample_rate
    assert FeatureConfig.from_dict(json.loads(meta["features"])) == bundle.features
    inputs, outputs = session_for(exported_shipped).get_inputs(), session_for(exported_shipped).get_outputs()
    assert [i.name for i in inputs] == ["audio"] and inputs[0].type == "tensor(float)"
    assert outputs[0].shape[1] == len(bundle.labels)


def test_a_model_with_other_settings_exports_its_own_window(tmp_path):
    """A longer window and fewer coefficients: the graph and the metadata follow the model file."""
    torch.manual_seed(0)
    features = FeatureConfig(clip_seconds=1.5, n_mfcc=20)
    model = BiLstmClassifier(ModelConfig(n_features=20, n_classes=3, hidden_size=16, num_layers=1,
                                         conv_channels=8)).eval()
    bundle = ModelBundle(model=model, labels=["_silence_", "_unknown_", "hello"], features=features)
    from speech_app.export import export_onnx

    out = export_onnx(bundle, tmp_path / "other.onnx")
    session = session_for(out)
    assert int(session.get_modelmeta().custom_metadata_map["window_samples"]) == 24_000
    _, windows = sample_windows(24_000)
    expected = CommandClassifier(bundle).probabilities(windows)
    got = session.run(None, {"audio": windows})[0]
    assert np.max(np.abs(got - expected)) < PROBABILITY_TOLERANCE


def test_export_of_a_missing_model_is_one_clear_line(tmp_path, capsys):
    missing = tmp_path / "nothing.safetensors"
    assert main(["export", "--model", str(missing), str(tmp_path / "x.onnx")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(missing) in err
    assert not (tmp_path / "x.onnx").exists()


def test_export_without_the_onnx_extra_names_it(tmp_path):
    import subprocess
    import sys

    code = ("import sys\nsys.modules['onnx'] = None\nfrom speech_app.cli import main\n"
            f"sys.exit(main(['export', {str(tmp_path / 'x.onnx')!r}]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         cwd=Path(__file__).resolve().parent.parent)
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0 and "pip install 'speech-app[onnx]'" in out.stderr
    assert not (tmp_path / "x.onnx").exists()
