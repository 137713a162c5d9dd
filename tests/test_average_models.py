"""training/average_models.py: the weighted mean of two tiny models' tensors, and refusal of mismatched models."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from speech_app.features import FeatureConfig
from speech_app.model import BiLstmClassifier, ModelConfig
from speech_app.modelfile import ModelBundle, load_model, read_metadata, save_model

SCRIPT = Path(__file__).resolve().parent.parent / "training" / "average_models.py"
LABELS = ["_silence_", "_unknown_", "yes", "no"]
WEIGHT = 0.3  # the other model's share


def _tiny_model(path: Path, seed: int, labels=LABELS, features=FeatureConfig(), hidden_size: int = 8,
                steps_seen: int = 0) -> Path:
    torch.manual_seed(seed)
    model = BiLstmClassifier(ModelConfig(n_features=features.n_mfcc, n_classes=len(labels), hidden_size=hidden_size,
                                         num_layers=1))
    model.set_feature_statistics(torch.randn(features.n_mfcc), torch.rand(features.n_mfcc) + 0.5)
    for name, counter in model.state_dict().items():  # batch-norm step counters: tell the models apart
        if not counter.is_floating_point():
            counter.fill_(steps_seen)
    info = {"training": {"epochs": seed + 1}, "trained_on": {"data": [f"real{seed}"], "synthetic": [f"synth{seed}"]},
            "metrics": {"validation": {"accuracy": 0.5 + seed / 10, "clips": 10}}}
    return save_model(path, ModelBundle(model.eval(), list(labels), features, info))


def _average(main: Path, other: Path, out: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), str(main), str(other), "--weight", str(WEIGHT), "--out", str(out)],
                          capture_output=True, text=True)


def test_average_is_the_weighted_mean_and_says_what_it_is(tmp_path):
    main = _tiny_model(tmp_path / "main.safetensors", seed=0, steps_seen=7)
    other = _tiny_model(tmp_path / "other.safetensors", seed=1, steps_seen=9)
    result = _average(main, other, tmp_path / "soup.safetensors")
    assert result.returncode == 0, result.stderr
    ours, theirs = load_model(main).model.state_dict(), load_model(other).model.state_dict()
    soup = load_model(tmp_path / "soup.safetensors").model.state_dict()
    for name, tensor in soup.items():
        if tensor.is_floating_point():
            torch.testing.assert_close(tensor, (1 - WEIGHT) * ours[name] + WEIGHT * theirs[name])
        else:
            assert torch.equal(tensor, ours[name])  # integer tensors from the main model
    assert not torch.equal(soup["head.1.weight"], ours["head.1.weight"])  # the fixtures differ
    meta = read_metadata(tmp_path / "soup.safetensors")
    assert meta["averaged"]["main"] == {"file": str(main), "weight": pytest.approx(1 - WEIGHT),
                                        "metrics": read_metadata(main)["metrics"]}
    assert (meta["averaged"]["other"]["file"], meta["averaged"]["other"]["weight"]) == (str(other), WEIGHT)
    assert meta["training"] == read_metadata(main)["training"]  # the main model's history
    assert "metrics" not in meta  # neither model's validation figures are the average's
    assert meta["trained_on"]["synthetic"] == ["synth0", "synth1"]


@pytest.mark.parametrize("change, setting", [
    ({"labels": ["_silence_", "_unknown_", "yes", "go"]}, "labels"),
    ({"hidden_size": 16}, "model"),
    ({"features": FeatureConfig(hop_ms=20.0)}, "features"),
])
def test_models_that_differ_are_refused_in_one_line(tmp_path, change, setting):
    main = _tiny_model(tmp_path / "main.safetensors", seed=0)
    other = _tiny_model(tmp_path / "other.safetensors", seed=1, **change)
    out = tmp_path / "soup.safetensors"
    result = _average(main, other, out)
    assert result.returncode != 0
    message = result.stderr.strip()
    assert len(message.splitlines()) == 1 and str(main) in message and str(other) in message
    assert f"{setting} settings differ" in message
    assert not out.exists()
