"""Mixing real and synthetic speech: synthetic clips train but never validate a word that has real
clips; sampling weights cap the synthetic share; text-only training runs end to end."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from conftest import TINY_MODEL
from speech_app.data.dataset import SILENCE_LABEL, UNKNOWN_LABEL, build_index
from speech_app.synth.text_training import WORD_STORE
from speech_app.training.draws import sampling_weights

RATE = 16_000
MAX_RELATIVE_CHANGE = 0.1  # of the encoder weights in a couple of fine-tuning steps (a fresh one: ~1.2)


def assert_encoder_came_from(start, tuned) -> None:
    """The encoder (all but the label head) of `tuned` continues the one in `start`: the same
    tensors, the same feature statistics (training never updates them), and weights moved only a
    little from where they were."""
    start_state, tuned_state = start.state_dict(), tuned.state_dict()
    buffers = {name for name, _ in start.named_buffers()}
    encoder = [k for k in start_state if not k.startswith("head.")]
    assert encoder and all(start_state[k].shape == tuned_state[k].shape for k in encoder)
    for key in ("feature_mean", "feature_std"):
        assert torch.equal(start_state[key], tuned_state[key])
    weights = [k for k in encoder if k not in buffers]
    before = torch.cat([start_state[k].double().flatten() for k in weights])
    after = torch.cat([tuned_state[k].double().flatten() for k in weights])
    assert float((after - before).norm() / before.norm()) < MAX_RELATIVE_CHANGE


def write_clip(path: Path, freq: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    t = np.arange(RATE) / RATE
    envelope = np.exp(-((t - 0.5) ** 2) / 0.02)
    samples = 0.4 * envelope * np.sin(2 * np.pi * freq * t) + 0.01 * rng.standard_normal(RATE)
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(path, samples.astype(np.float32), RATE)


def make_folder(root: Path, words: dict[str, float], speakers: int, clips: int, prefix: str = "") -> Path:
    for w_index, (word, freq) in enumerate(words.items()):
        for s in range(speakers):
            for n in range(clips):
                speaker = f"{prefix}{s:02d}{w_index:02d}ab"
                write_clip(root / word / f"{speaker}_nohash_{n}.wav", freq * (1 + 0.02 * s), s * 100 + n)
    return root


@pytest.fixture(scope="module")
def real_and_synthetic(tmp_path_factory):
    base = tmp_path_factory.mktemp("mix")
    real = make_folder(base / "real", {"yes": 300.0, "no": 600.0, "bed": 900.0}, speakers=30, clips=1)
    synthetic = make_folder(base / "synth", {"yes": 300.0, "no": 600.0, "music": 1200.0, "wow": 1500.0},
                            speakers=10, clips=2, prefix="flite-")
    return real, synthetic


def test_synthetic_clips_of_words_with_real_speech_only_train(real_and_synthetic):
    real, synthetic = real_and_synthetic
    index = build_index([real], ["yes", "no", "music"], synthetic_dirs=[synthetic])
    for example in index.examples:
        if example.source == "synthetic" and example.label in ("yes", "no"):
            assert example.split == "training", example
    # "music" has no real clip: its synthetic clips are split by voice so it can be validated at all
    music_splits = {e.split for e in index.examples if e.label == "music"}
    assert "validation" in music_splits and "testing" not in music_splits
    assert index.labels == [SILENCE_LABEL, UNKNOWN_LABEL, "yes", "no", "music"]
    # real validation clips exist for the real words and are all real
    for word in ("yes", "no"):
        validation = [e for e in index.split("validation") if e.label == word]
        assert validation and all(e.source == "real" for e in validation)


def test_unknown_uses_real_other_words_for_validation(real_and_synthetic):
    real, synthetic = real_and_synthetic
    index = build_index([real], ["yes", "no"], synthetic_dirs=[synthetic])
    unknown_validation = [e for e in index.split("validation") if e.label == UNKNOWN_LABEL]
    assert unknown_validation and all(e.source == "real" for e in unknown_validation)


def test_sampling_weights_cap_the_synthetic_share():
    # class 0: 10 real + 90 synthetic; class 1: 50 real only; class 2: 20 synthetic only
    labels = np.array([0] * 100 + [1] * 50 + [2] * 20)
    synthetic = np.array([False] * 10 + [True] * 90 + [False] * 50 + [True] * 20)
    weights = sampling_weights(labels, synthetic, power=0.5, synthetic_share=0.3)
    class0 = weights[:100].sum()
    assert weights[10:100].sum() / class0 == pytest.approx(0.3)
    assert weights[:10].sum() / class0 == pytest.approx(0.7)
    # power 0.5: class mass ~ sqrt(count)
    assert class0 / weights[100:150].sum() == pytest.approx(np.sqrt(100 / 50))
    assert weights[150:].sum() / weights[100:150].sum() == pytest.approx(np.sqrt(20 / 50))
    # with a share above the natural one, the natural share stands
    natural = sampling_weights(labels, synthetic, power=0.0, synthetic_share=0.99)
    assert natural[10:100].sum() / natural[:100].sum() == pytest.approx(0.9)


@pytest.mark.slow
def test_text_only_training_fine_tunes_a_model(tmp_path, monkeypatch, tiny_model):
    """`speech-app train --words ... --synth` synthesizes, fine-tunes and writes a model trained on
    the synthetic words and the bundled real negatives. The starting model's
    encoder is where training began: its feature statistics come over unchanged and its weights
    moved only as far as two small steps take them."""
    if not shutil.which("flite"):
        pytest.fail("flite is not installed (CI installs it through .ci/system-deps)")
    from speech_app.cli import main
    from speech_app.modelfile import load_model, read_metadata

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    out = tmp_path / "words.safetensors"
    status = main(["train", "--words", "lights on,music", "--synth", "--synth-per-word", "12",
                   "--synth-engines", "flite", "--steps", "2", "--estimate-runs", "0", "--batch-size", "8",
                   "--init-from", str(tiny_model), "--hidden-size", str(TINY_MODEL["hidden_size"]),
                   "--layers", str(TINY_MODEL["num_layers"]), "--device", "cpu", "--quiet", "--out", str(out)])
    assert status == 0
    assert_encoder_came_from(load_model(tiny_model).model, load_model(out).model)
    meta = read_metadata(out)
    assert meta["labels"] == [SILENCE_LABEL, UNKNOWN_LABEL, "lights on", "music"]
    # the words come from synthesis alone; the real speech is the package's bundled negatives
    assert meta["trained_on"]["sources"] == ["real", "synthetic"]
    training = meta["trained_on"]["clips"]["training"]
    assert training["lights on"] == training["music"] == 12 and training[UNKNOWN_LABEL] > 0
    # one synthetic set (beside the per-word store its words' clips are linked from)
    synth_folders = [folder for folder in (tmp_path / "cache" / "speech-app" / "synth").iterdir()
                     if folder.name != WORD_STORE]
    assert len(synth_folders) == 1 and (synth_folders[0] / "lights on").is_dir()
    assert len(list((synth_folders[0] / "music").glob("*.wav"))) == 12
    # fillers for _unknown_ were synthesized too, and a phrase's first word alone as a near miss
    assert (synth_folders[0] / "computer").is_dir() and (synth_folders[0] / "lights").is_dir()


def test_holdout_real_keeps_real_clips_for_validation_only(real_and_synthetic):
    real, synthetic = real_and_synthetic
    index = build_index([real], ["yes", "no"], synthetic_dirs=[synthetic], holdout_real=("yes",))
    yes_training = [e for e in index.split("training") if e.label == "yes"]
    assert yes_training and all(e.source == "synthetic" for e in yes_training)
    assert any(e.source == "real" for e in index.split("validation") if e.label == "yes")
    assert any(e.source == "real" for e in index.split("training") if e.label == "no")
