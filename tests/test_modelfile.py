"""Model files: self-describing safetensors, exact round trip, clear errors, no unpickling."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from speech_app import __version__
from speech_app.features import FeatureConfig
from speech_app.inference import CommandClassifier
from speech_app.model import BiLstmClassifier, ModelConfig
from speech_app.modelfile import METADATA_KEY, ModelBundle, ModelFileError, load_model, read_metadata, save_model

LABELS = ["_silence_", "_unknown_", "yes", "no"]


def _bundle(features: FeatureConfig = FeatureConfig(), seed: int = 0, info: dict | None = None) -> ModelBundle:
    torch.manual_seed(seed)
    config = ModelConfig(n_features=features.n_mfcc, n_classes=len(LABELS), hidden_size=8, num_layers=1)
    model = BiLstmClassifier(config)
    model.set_feature_statistics(torch.randn(features.n_mfcc), torch.rand(features.n_mfcc) + 0.5)
    return ModelBundle(model.eval(), list(LABELS), features, dict(info or {}))


def _waves(n: int, samples: int, seed: int = 0) -> np.ndarray:
    return (0.3 * np.random.default_rng(seed).standard_normal((n, samples))).astype(np.float32)


def test_round_trip_gives_identical_logits(tmp_path):
    bundle = _bundle(info={"metrics": {"validation": {"accuracy": 0.5}}})
    path = save_model(tmp_path / "m.safetensors", bundle)
    loaded = load_model(path)
    features = torch.randn(3, 40, 101)
    with torch.no_grad():
        torch.testing.assert_close(loaded.model(features), bundle.model(features), rtol=0, atol=0)
    assert loaded.labels == LABELS
    assert loaded.features == bundle.features
    assert loaded.model.config == bundle.model.config
    assert loaded.path == path
    assert not loaded.model.training  # ready for inference
    for name, tensor in bundle.model.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[name], tensor), name
    assert loaded.info["metrics"] == {"validation": {"accuracy": 0.5}}


def test_metadata_describes_the_model(tmp_path):
    features = FeatureConfig(clip_seconds=1.5)
    path = save_model(tmp_path / "m.safetensors", _bundle(features, info={"trained_on": {"data": ["x"]}}))
    metadata = read_metadata(path)
    assert metadata["labels"] == LABELS
    assert metadata["features"] == features.to_dict()
    assert ModelConfig.from_dict(metadata["model"]).n_classes == len(LABELS)
    assert metadata["model"]["hidden_size"] == 8
    assert metadata["package_version"] == __version__
    assert isinstance(metadata["format_version"], int)
    assert metadata["trained_on"] == {"data": ["x"]}


def test_info_cannot_overwrite_the_describing_fields(tmp_path):
    path = save_model(tmp_path / "m.safetensors", _bundle(info={"labels": ["bogus"], "features": {}, "model": {}}))
    loaded = load_model(path)
    assert loaded.labels == LABELS and loaded.features == FeatureConfig()


def test_non_default_features_load_and_run_through_the_classifier(tmp_path):
    features = FeatureConfig(n_mfcc=20, n_mels=32, hop_ms=20.0, clip_seconds=1.5)
    bundle = _bundle(features)
    path = save_model(tmp_path / "custom.safetensors", bundle)
    classifier = CommandClassifier.from_file(path)
    assert classifier.bundle.features == features
    assert classifier.window_samples == 24_000
    assert classifier.frontend(torch.zeros(1, 24_000)).shape == (1, 20, features.n_frames)
    probabilities = classifier.probabilities(_waves(3, 24_000))
    assert probabilities.shape == (3, len(LABELS))
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    # same answer as the saved model fed the features of its own settings
    from speech_app.features import MfccFrontend

    with torch.no_grad():
        expected = torch.softmax(bundle.model(MfccFrontend(features)(torch.from_numpy(_waves(3, 24_000)))), -1)
    np.testing.assert_allclose(probabilities, expected.numpy(), atol=1e-5)
    prediction = classifier.classify(_waves(1, 40_000)[0], k=2)  # any length: fitted to the window
    assert len(prediction.labels) == 2 and set(prediction.labels) <= set(LABELS)
    assert prediction.confidences[0] >= prediction.confidences[1]


def _assert_model_file_error(path, *fragments):
    with pytest.raises(ModelFileError) as info:
        load_model(path)
    message = str(info.value)
    assert str(path) in message
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message
    return message


@pytest.mark.parametrize("keep", [0.5, 0.99, 20])
def test_truncated_file_raises_model_file_error(tmp_path, keep):
    path = save_model(tmp_path / "m.safetensors", _bundle())
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep) if keep < 1 else keep])
    _assert_model_file_error(path)


def test_torch_pickle_file_raises_model_file_error(tmp_path):
    path = tmp_path / "pickled.safetensors"
    torch.save(_bundle().model.state_dict(), path)
    _assert_model_file_error(path)


def test_plain_pickle_raises_model_file_error(tmp_path):
    path = tmp_path / "model.pt"
    path.write_bytes(pickle.dumps({"weights": [1, 2, 3]}))
    _assert_model_file_error(path)


def test_safetensors_without_our_metadata_raises_model_file_error(tmp_path):
    path = tmp_path / "foreign.safetensors"
    save_file(_bundle().model.state_dict(), str(path))
    _assert_model_file_error(path, "metadata")
    other = tmp_path / "other_metadata.safetensors"
    save_file({"x": torch.zeros(2)}, str(other), metadata={"something": "else"})
    _assert_model_file_error(other, "metadata")


def test_corrupt_or_incomplete_metadata_raises_model_file_error(tmp_path):
    weights = _bundle().model.state_dict()
    broken = tmp_path / "broken_json.safetensors"
    save_file(weights, str(broken), metadata={METADATA_KEY: "{not json"})
    _assert_model_file_error(broken)
    incomplete = tmp_path / "incomplete.safetensors"
    save_file(weights, str(incomplete), metadata={METADATA_KEY: json.dumps({"format_version": 1, "labels": LABELS})})
    _assert_model_file_error(incomplete)


def test_newer_format_version_raises_model_file_error(tmp_path):
    path = save_model(tmp_path / "m.safetensors", _bundle())
    metadata = read_metadata(path)
    metadata["format_version"] = 999
    newer = tmp_path / "newer.safetensors"
    save_file(_bundle().model.state_dict(), str(newer), metadata={METADATA_KEY: json.dumps(metadata)})
    _assert_model_file_error(newer, "newer")


def test_weights_that_do_not_match_the_settings_raise_model_file_error(tmp_path):
    path = save_model(tmp_path / "m.safetensors", _bundle())
    metadata = read_metadata(path)
    metadata["model"]["hidden_size"] = 12
    wrong = tmp_path / "wrong.safetensors"
    save_file(_bundle().model.state_dict(), str(wrong), metadata={METADATA_KEY: json.dumps(metadata)})
    _assert_model_file_error(wrong)


def test_label_count_must_match_the_outputs(tmp_path):
    path = save_model(tmp_path / "m.safetensors", _bundle())
    metadata = read_metadata(path)
    metadata["labels"] = LABELS + ["extra"]
    wrong = tmp_path / "labels.safetensors"
    save_file(_bundle().model.state_dict(), str(wrong), metadata={METADATA_KEY: json.dumps(metadata)})
    _assert_model_file_error(wrong)


def test_missing_file_and_folder_raise_model_file_error(tmp_path):
    _assert_model_file_error(tmp_path / "nope.safetensors")
    _assert_model_file_error(tmp_path)


def test_save_model_leaves_no_temp_file_and_replaces(tmp_path):
    path = tmp_path / "sub" / "m.safetensors"
    save_model(path, _bundle(seed=1))
    save_model(path, _bundle(seed=2))
    assert [p.name for p in path.parent.iterdir()] == ["m.safetensors"]
    loaded = load_model(path)
    assert torch.equal(loaded.model.lstm.weight_hh_l0, _bundle(seed=2).model.lstm.weight_hh_l0)


def test_loading_never_unpickles(tmp_path, monkeypatch):
    path = save_model(tmp_path / "m.safetensors", _bundle())

    def forbidden(*args, **kwargs):
        raise AssertionError("a model file was unpickled")

    monkeypatch.setattr(pickle, "load", forbidden)
    monkeypatch.setattr(pickle, "loads", forbidden)
    monkeypatch.setattr(pickle, "Unpickler", forbidden)
    monkeypatch.setattr(torch, "load", forbidden)
    loaded = load_model(path)
    assert loaded.labels == LABELS
    CommandClassifier.from_file(path).probabilities(_waves(1, 16_000))
    # and a pickle bomb named like a model is refused without being run
    bomb = tmp_path / "bomb.safetensors"
    bomb.write_bytes(pickle.dumps({"x": 1}))
    _assert_model_file_error(bomb)


def test_shipped_model_is_used_without_a_path_when_present():
    from speech_app.modelfile import shipped_model_path

    try:
        path = shipped_model_path()
    except ModelFileError as err:
        assert "--model" in str(err)
        return
    metadata = read_metadata(path)
    assert metadata["labels"][:2] == ["_silence_", "_unknown_"]
