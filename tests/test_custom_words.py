"""Custom words: the settings check when fine-tuning, undecodable takes, and the custom-word recipe."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from conftest import SAMPLE_RATE, TINY_MODEL, TINY_TRAIN, word_sound
from speech_app.model import ModelConfig
from speech_app.modelfile import load_model, read_metadata
from speech_app.train import TrainConfig, train


def write_takes(root, words, n_takes, seed=0, seconds=1.0):
    rng = np.random.default_rng(seed)
    for word in words:
        (root / word).mkdir(parents=True, exist_ok=True)
        for take in range(n_takes):
            sf.write(str(root / word / f"take-{take}_nohash_0.wav"), word_sound(word, rng, seconds), SAMPLE_RATE,
                     subtype="PCM_16")
    return root


def test_fine_tuning_takes_the_starting_models_settings(tiny_model, tiny_dataset, tmp_path):
    start = load_model(tiny_model)
    out = tmp_path / "tuned.safetensors"
    train([tiny_dataset.root], out, ["yes", "no"], TrainConfig(**TINY_TRAIN), None, init_from=start, progress=False)
    assert read_metadata(out)["model"]["hidden_size"] == start.model.config.hidden_size
    tuned = load_model(out).model.state_dict()
    # the encoder starts from the starting model: a tiny run moves it only a little
    lstm = "lstm.weight_ih_l0"
    assert torch_close(tuned[lstm], start.model.state_dict()[lstm])


def torch_close(a, b, tolerance=0.2):
    return float((a - b).abs().max()) < tolerance


def test_fine_tuning_with_another_setting_stops_with_one_line(tiny_model, tiny_dataset, tmp_path, capsys):
    from speech_app.cli import main

    hidden = load_model(tiny_model).model.config.hidden_size
    status = main(["train", str(tiny_dataset.root), "--words", "yes,no", "--out", str(tmp_path / "m.safetensors"),
                   "--init-from", str(tiny_model), "--hidden-size", str(hidden * 2), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert status == 2 and len(err.splitlines()) == 1
    assert "--hidden-size" in err and str(hidden) in err and tiny_model.name in err
    assert not (tmp_path / "m.safetensors").exists()
    with pytest.raises(ValueError, match="layers"):
        train([tiny_dataset.root], tmp_path / "m.safetensors", ["yes"], TrainConfig(**TINY_TRAIN),
              ModelConfig(**{**TINY_MODEL, "num_layers": 3}), init_from=load_model(tiny_model), progress=False)


def test_an_undecodable_take_is_left_out_with_its_name(tmp_path, capsys):
    root = write_takes(tmp_path / "takes", ("yes", "no"), 4)
    broken = root / "yes" / "take-broken_nohash_0.wav"
    broken.write_bytes(b"RIFF not really a wave file")
    out = tmp_path / "m.safetensors"
    train([root], out, ["yes", "no"], TrainConfig(**TINY_TRAIN), ModelConfig(**TINY_MODEL), progress=False)
    err = capsys.readouterr().err
    assert any("left out" in line and str(broken) in line for line in err.splitlines())
    clips = read_metadata(out)["trained_on"]["clips"]
    assert sum(clips[split].get("yes", 0) for split in clips) == 4  # the four good takes, not five
