"""Training end to end on tiny synthetic data: model file, report, resume, clip cache, evaluate, DDP, phrases."""

from __future__ import annotations

import json
import os
from dataclasses import replace
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import SAMPLE_RATE, TINY_MODEL, TINY_TRAIN, WANTED_WORDS, word_sound
from speech_app.data.dataset import SILENCE_LABEL, UNKNOWN_LABEL, build_index
from speech_app.features import FeatureConfig
from speech_app.model import ModelConfig
from speech_app.modelfile import load_model, read_metadata
from speech_app.training.schedule import learning_rate_at, warmup_steps_for
from speech_app.training.trainer import TrainConfig, checkpoint_path, read_checkpoint, train

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _assert_png(path: Path) -> None:
    assert path.is_file(), path
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE and len(data) > 1000, path


def test_training_writes_model_and_report(tiny_training, tiny_model):
    report = Path(tiny_training.report_dir)
    assert tiny_model.is_file()
    assert report == tiny_model.with_name("tiny_report")
    for name in ("report.md", "metrics.json"):
        assert (report / name).is_file(), name
    _assert_png(report / "confusion_matrix_validation.png")
    _assert_png(report / "confusion_matrix_testing.png")
    _assert_png(report / "training_curves.png")
    assert not [p for p in report.iterdir() if p.name.startswith(".")]  # no temp files left
    assert not [p for p in tiny_model.parent.iterdir() if p.name.startswith(".")]
    markdown = (report / "report.md").read_text()
    assert "validation" in markdown and "confusion_matrix_validation.png" in markdown
    assert "training_curves.png" in markdown
    metrics = json.loads((report / "metrics.json").read_text())
    assert set(metrics) >= {"validation", "testing", "history"}
    assert 0.0 <= metrics["validation"]["accuracy"] <= 1.0
    assert [row["label"] for row in metrics["validation"]["classes"]] == [SILENCE_LABEL, UNKNOWN_LABEL,
                                                                          *WANTED_WORDS]
    assert len(metrics["history"]) == 1 and tiny_training.history == metrics["history"]
    assert tiny_training.best_epoch == 1
    assert tiny_training.val_accuracy == pytest.approx(metrics["validation"]["accuracy"])


@pytest.mark.parametrize("epochs", [1, 6])
def test_schedule_warms_up_within_the_first_epoch_and_decays_over_the_run(epochs):
    config, steps_per_epoch = TrainConfig(epochs=epochs), 114
    total = config.epochs * steps_per_epoch
    rates = [learning_rate_at(config, step, steps_per_epoch) for step in range(total)]
    peak = int(np.argmax(rates))
    assert rates[peak] == pytest.approx(config.learning_rate)
    assert peak == warmup_steps_for(config, total) - 1 and peak < steps_per_epoch / 2
    assert np.all(np.diff(rates[: peak + 1]) > 0) and np.all(np.diff(rates[peak:]) <= 0)
    assert rates[-1] == pytest.approx(config.learning_rate * config.final_lr_fraction)
    assert rates[-1] < 0.1 * config.learning_rate  # a one-epoch fine-tune ends slow, not at its peak


def test_training_ends_at_the_schedules_final_learning_rate(tiny_training):
    config = TrainConfig(**TINY_TRAIN)
    assert tiny_training.history[-1]["learning_rate"] == pytest.approx(config.learning_rate * config.final_lr_fraction)


def test_model_file_carries_metrics_and_training_data(tiny_training, tiny_model, tiny_dataset):
    metadata = read_metadata(tiny_model)
    assert metadata["labels"] == [SILENCE_LABEL, UNKNOWN_LABEL, *WANTED_WORDS]
    assert metadata["features"]["clip_seconds"] == 1.0  # one-second clips get a one-second window
    assert metadata["model"]["hidden_size"] == TINY_MODEL["hidden_size"]
    assert metadata["metrics"]["validation"]["accuracy"] == pytest.approx(tiny_training.val_accuracy)
    assert set(metadata["metrics"]) == {"validation", "testing"}
    assert set(metadata["metrics"]["validation"]["recall"]) == set(metadata["labels"])
    trained_on = metadata["trained_on"]
    assert trained_on["data"] == [str(tiny_dataset.root)]
    assert trained_on["sources"] == ["real"]
    counts = build_index([tiny_dataset.root], list(WANTED_WORDS)).counts()
    assert trained_on["clips"] == {split: dict(c) for split, c in counts.items()}
    assert metadata["metrics"]["validation"]["clips"] == sum(counts["validation"].values())
    assert metadata["training"]["epochs_run"] == 1 and metadata["training"]["batch_size"] == TINY_TRAIN["batch_size"]
    assert metadata["parameters"] > 0 and metadata["flops_per_clip"] > 0
    assert len(load_model(tiny_model).labels) == 5


def test_resume_keeps_the_model_settings_of_its_checkpoint(tiny_dataset, tmp_path):
    out = tmp_path / "resumed.safetensors"
    config = TrainConfig(**{**TINY_TRAIN, "steps_per_epoch": 2})
    train([tiny_dataset.root], out, list(WANTED_WORDS), config, ModelConfig(**TINY_MODEL), progress=False)
    first_features = load_model(out).features
    assert FeatureConfig.from_dict(read_checkpoint(checkpoint_path(out))["features"]) == first_features
    other = ModelConfig(**{**TINY_MODEL, "hidden_size": TINY_MODEL["hidden_size"] * 2})
    with pytest.raises(ValueError) as refused:  # one line naming the option, the checkpoint and its value
        train([tiny_dataset.root], out, list(WANTED_WORDS), replace(config, epochs=2), other, resume=True,
              progress=False)
    message = str(refused.value)
    assert "\n" not in message and "--hidden-size" in message and checkpoint_path(out).name in message
    assert str(TINY_MODEL["hidden_size"]) in message
    # no model settings given: the checkpoint's, not ModelConfig's defaults
    second = train([tiny_dataset.root], out, list(WANTED_WORDS), replace(config, epochs=2), resume=True,
                   progress=False)
    assert len(second.history) == 2
    resumed = load_model(out)
    assert (resumed.model.config.hidden_size, resumed.model.config.num_layers) == \
        (TINY_MODEL["hidden_size"], TINY_MODEL["num_layers"])
    assert resumed.features == first_features


def test_resume_continues_from_the_checkpoint_and_reuses_the_clip_cache(tiny_dataset, tmp_path, monkeypatch):
    import speech_app.data.clips

    out = tmp_path / "resumed.safetensors"
    config = TrainConfig(**{**TINY_TRAIN, "steps_per_epoch": 2})
    first = train([tiny_dataset.root], out, list(WANTED_WORDS), config, ModelConfig(**TINY_MODEL), progress=False)
    assert checkpoint_path(out).is_file() and len(first.history) == 1

    def no_decoding(*args, **kwargs):
        raise AssertionError("the clips were decoded again instead of coming from the cache")

    monkeypatch.setattr(speech_app.data.clips, "decode_files", no_decoding)
    second = train([tiny_dataset.root], out, list(WANTED_WORDS), TrainConfig(**{**TINY_TRAIN, "steps_per_epoch": 2,
                                                                                 "epochs": 2}),
                   ModelConfig(**TINY_MODEL), resume=True, progress=False)
    assert len(second.history) == 2
    assert second.history[0] == first.history[0]  # carried over, not re-run
    assert [h["epoch"] for h in second.history] == [1, 2]
    metadata = read_metadata(out)
    assert metadata["training"]["epochs_run"] == 2
    assert metadata["training"]["best_epoch"] == second.best_epoch


def test_keep_last_writes_the_last_epochs_weights(tiny_dataset, tmp_path):
    import torch

    out = tmp_path / "last.safetensors"
    config = TrainConfig(**{**TINY_TRAIN, "steps_per_epoch": 2, "epochs": 3, "keep": "last"})
    result = train([tiny_dataset.root], out, list(WANTED_WORDS), config, ModelConfig(**TINY_MODEL), progress=False)
    last = torch.load(checkpoint_path(out), weights_only=True)["model"]
    written = load_model(out).model.state_dict()
    assert all(torch.equal(written[k], last[k].cpu()) for k in last)
    training = read_metadata(out)["training"]
    assert training["kept_epoch"] == training["epochs_run"] == len(result.history) == config.epochs


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_train_precision_reaches_autocast_and_the_model_file_stays_float32(tiny_dataset, tmp_path, precision):
    """`train --precision`: the LSTM computes in that precision while training (CPU autocast); the
    weights, and so the model file, stay float32, and the file loads and classifies."""
    import torch
    from safetensors import safe_open

    from speech_app.cli import main
    from speech_app.inference import CommandClassifier

    seen: set = set()  # dtypes of the LSTM's output in training mode

    def record(module, _inputs, output):
        if isinstance(module, torch.nn.LSTM) and module.training:
            seen.add(output[0].dtype)

    out = tmp_path / "m.safetensors"
    hook = torch.nn.modules.module.register_module_forward_hook(record)
    try:
        status = main(["train", str(tiny_dataset.root), "--out", str(out), "--words", ",".join(WANTED_WORDS),
                       "--recipe", "dataset", "--epochs", "1", "--steps-per-epoch", "2", "--batch-size", "8",
                       "--hidden-size", "16", "--layers", "1", "--device", "cpu", "--precision", precision, "--quiet"])
    finally:
        hook.remove()
    assert status == 0
    assert seen == {getattr(torch, precision)}
    with safe_open(str(out), "pt") as handle:
        dtypes = {handle.get_tensor(k).dtype for k in handle.keys()}
    assert {d for d in dtypes if d.is_floating_point} == {torch.float32}  # (batch norm also counts batches, int64)
    classifier = CommandClassifier.from_file(out)
    probabilities = classifier.probabilities(np.zeros((2, classifier.window_samples), np.float32))
    assert np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)


def test_train_precision_auto_follows_the_hardware_and_refuses_what_a_device_cannot_run():
    import torch

    from speech_app.device import bfloat16_pays, training_precision

    assert training_precision("auto", torch.device("cpu")) == ("bfloat16" if bfloat16_pays() else "float32")
    assert training_precision("auto", torch.device("cuda")) == "float16"  # the CUDA path as it was
    assert training_precision("float32", torch.device("cpu")) == "float32"
    with pytest.raises(ValueError, match="MPS"):
        training_precision("bfloat16", torch.device("mps"))
    with pytest.raises(ValueError, match="--precision float16"):
        training_precision("float16", torch.device("cpu"))


def test_without_resume_training_starts_over(tiny_dataset, tmp_path):
    out = tmp_path / "again.safetensors"
    config = TrainConfig(**{**TINY_TRAIN, "steps_per_epoch": 1, "window_seconds": 1.0})
    first = train([tiny_dataset.root], out, list(WANTED_WORDS), config, ModelConfig(**TINY_MODEL), progress=False)
    second = train([tiny_dataset.root], out, list(WANTED_WORDS), config, ModelConfig(**TINY_MODEL), progress=False)
    assert len(second.history) == 1
    assert second.history[0]["train_loss"] == pytest.approx(first.history[0]["train_loss"])  # same seed


def test_resumed_run_decodes_no_file(tiny_dataset, tmp_path, monkeypatch):
    import speech_app.audio

    out = tmp_path / "resumed.safetensors"
    config = TrainConfig(**{**TINY_TRAIN, "steps_per_epoch": 1})
    train([tiny_dataset.root], out, list(WANTED_WORDS), config, ModelConfig(**TINY_MODEL), progress=False)

    def no_decoding(path, *args, **kwargs):
        raise RuntimeError(f"decoded {path} again")

    monkeypatch.setattr(speech_app.audio, "load_audio", no_decoding)  # what decode_files calls
    train([tiny_dataset.root], out, list(WANTED_WORDS), TrainConfig(**{**TINY_TRAIN, "steps_per_epoch": 1,
                                                                       "epochs": 2}),
          ModelConfig(**TINY_MODEL), resume=True, progress=False)


def test_evaluate_command_prints_accuracy_and_writes_report(tiny_model, tiny_dataset, tmp_path, capsys):
    from speech_app.cli import main

    report = tmp_path / "evaluation"
    status = main(["evaluate", "--model", str(tiny_model), str(tiny_dataset.root), "--report-dir", str(report)])
    assert status == 0
    out = capsys.readouterr().out
    match = re.search(r"accuracy (\d\.\d+) on (\d+) clips", out)
    assert match, out
    examples = build_index([tiny_dataset.root], list(WANTED_WORDS), allow_missing=True).examples
    assert int(match.group(2)) == len(examples)
    for label in (SILENCE_LABEL, UNKNOWN_LABEL, *WANTED_WORDS):
        assert re.search(rf"^{re.escape(label)}\s", out, re.MULTILINE), label
    assert (report / "report.md").is_file()
    metrics = json.loads((report / "metrics.json").read_text())
    assert metrics["all"]["accuracy"] == pytest.approx(float(match.group(1)), abs=1e-4)
    assert metrics["all"]["clips"] == len(examples)
    _assert_png(report / "confusion_matrix_all.png")


def test_evaluate_one_split_and_bad_inputs(tiny_model, tiny_dataset, tmp_path, capsys):
    from speech_app.cli import main

    status = main(["evaluate", "--model", str(tiny_model), str(tiny_dataset.root), "--split", "validation",
                   "--report-dir", str(tmp_path / "r")])
    assert status == 0
    n_validation = sum(build_index([tiny_dataset.root], list(WANTED_WORDS)).counts()["validation"].values())
    assert f"on {n_validation} clips" in capsys.readouterr().out
    assert main(["evaluate", "--model", str(tmp_path / "missing.safetensors"), str(tiny_dataset.root)]) == 2
    assert "missing.safetensors" in capsys.readouterr().err
    assert main(["evaluate", "--model", str(tiny_model), str(tmp_path / "no_data"),
                 "--report-dir", str(tmp_path / "r2")]) == 2


@pytest.mark.parametrize("flags, named", [
    (["--words", "yes,sheila"], "sheila"),  # a word the data folder does not have
    (["--warmup-steps", "0"], "--warmup-steps"),  # a warm-up of no steps
])
def test_train_command_reports_bad_settings_as_one_line_usage_errors(tiny_dataset, tmp_path, capsys, flags, named):
    from speech_app.cli import main

    status = main(["train", str(tiny_dataset.root), "--out", str(tmp_path / "m.safetensors"), *flags, "--quiet"])
    assert status == 2
    err = capsys.readouterr().err
    assert named in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "m.safetensors").exists()


def test_custom_phrases_get_a_window_longer_than_one_second(tmp_path):
    rng = np.random.default_rng(11)
    root = tmp_path / "phrases"
    for phrase, words in (("lights_on", ("yes", "up")), ("lights_off", ("no", "dog"))):
        (root / phrase).mkdir(parents=True)
        for take in range(5):
            # a 1.8 s take: two "words" back to back fill about 1.6 s of it
            first, second = (word_sound(w, rng, seconds=0.8, sound_seconds=0.75) for w in words)
            audio = np.concatenate([np.zeros(1600, np.float32), first, second, np.zeros(1600, np.float32)])
            sf.write(str(root / phrase / f"take_{take}.wav"), audio, SAMPLE_RATE, subtype="PCM_16")
    out = tmp_path / "phrases.safetensors"
    result = train([root], out, None, TrainConfig(**{**TINY_TRAIN, "steps_per_epoch": 2}), ModelConfig(**TINY_MODEL),
                   progress=False)
    features = load_model(out).features
    assert 1.0 < features.clip_seconds <= 2.0
    assert features.clip_seconds * 4 == int(features.clip_seconds * 4)  # whole quarter seconds
    assert read_metadata(out)["labels"] == [SILENCE_LABEL, UNKNOWN_LABEL, "lights_off", "lights_on"]
    assert len(result.history) == 1


def test_two_processes_filling_the_same_clip_cache_do_not_collide(tiny_dataset, tmp_path, monkeypatch):
    """The interleaving two DDP ranks can produce: rank B saves and renames between rank A's save and rename."""
    from speech_app.data import clips
    from speech_app.data.noise import NoiseBank

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    index = build_index([tiny_dataset.root], list(WANTED_WORDS))
    examples = index.split("validation")
    noise = NoiseBank.from_files(index.noise_files)
    real_save, other_rank_done = np.save, []

    def save_then_let_the_other_rank_run(file, array, **kwargs):
        real_save(file, array, **kwargs)
        if not other_rank_done:
            other_rank_done.append(True)
            clips.load_split_clips(examples, 1.0, noise, seed=0, progress=False)

    monkeypatch.setattr(np, "save", save_then_let_the_other_rank_run)
    decoded, errors = clips.load_split_clips(examples, 1.0, noise, seed=0, progress=False)
    assert other_rank_done and not errors
    monkeypatch.undo()
    cached = list((tmp_path / "cache").rglob("*.npy"))
    assert len(cached) == 1 and np.array_equal(np.load(cached[0]), decoded)


def test_clip_cache_round_trip(tiny_dataset, tmp_path, monkeypatch):
    from speech_app.data import clips
    from speech_app.data.noise import NoiseBank

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    index = build_index([tiny_dataset.root], list(WANTED_WORDS))
    examples = index.split("training")
    noise = NoiseBank.from_files(index.noise_files)
    first, errors = clips.load_split_clips(examples, 1.0, noise, seed=3, progress=False)
    assert not errors and first.dtype == np.int16 and first.shape == (len(examples), SAMPLE_RATE)
    assert all(np.abs(first[i]).max() > 1000 for i, e in enumerate(examples) if e.path)  # real audio in each row
    assert [p.name for p in (tmp_path / "cache").rglob("*") if p.is_file() and "tmp" in p.name] == []
    monkeypatch.setattr(clips, "decode_files", lambda *a, **k: pytest.fail("decoded again"))
    again, _ = clips.load_split_clips(examples, 1.0, noise, seed=3, progress=False)
    assert np.array_equal(again, first)
    # another window or another silence seed is another cache entry
    monkeypatch.undo()
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    longer, _ = clips.load_split_clips(examples, 1.5, noise, seed=3, progress=False)
    assert longer.shape == (len(examples), 24_000)
    assert len(list((tmp_path / "cache").rglob("*.npy"))) == 2


@pytest.mark.slow
def test_distributed_training_on_two_cpu_processes(tiny_dataset, tmp_path):
    out = tmp_path / "ddp.safetensors"
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1",
           "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--standalone",
               "-m", "speech_app", "train", str(tiny_dataset.root), "--words", ",".join(WANTED_WORDS),
               "--out", str(out), "--epochs", "1", "--steps-per-epoch", "2", "--batch-size", "4",
               "--hidden-size", str(TINY_MODEL["hidden_size"]), "--layers", str(TINY_MODEL["num_layers"]),
               "--device", "cpu", "--quiet"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "x2" in done.stderr  # both processes took part
    bundle = load_model(out)
    assert bundle.labels == [SILENCE_LABEL, UNKNOWN_LABEL, *WANTED_WORDS]
    assert read_metadata(out)["training"]["epochs_run"] == 1
    assert (tmp_path / "ddp_report" / "report.md").is_file()


def test_train_command_reports_a_missing_testing_list_as_usage_error(tiny_dataset, tmp_path, capsys):
    from speech_app.cli import main

    status = main(["train", str(tiny_dataset.root), "--out", str(tmp_path / "m.safetensors"),
                   "--testing-list", str(tmp_path / "devtest.txt"), "--quiet"])
    assert status == 2
    err = capsys.readouterr().err
    assert "devtest.txt" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "m.safetensors").exists()


def test_split_options_from_the_command_line(tmp_path):
    from speech_app.cli import build_parser
    from speech_app.cli.train import split_options

    listed = tmp_path / "devtest.txt"
    listed.write_text("yes/0a1b2c3d_nohash_0.wav\nno/ffee0011_nohash_2.wav\n")
    args = build_parser().parse_args(["train", "data", "--out", "m.safetensors", "--testing-list", str(listed),
                                      "--validation-percent", "25", "--unknown-percent", "30", "--even-unknown"])
    assert split_options(args) == {"validation_percent": 25.0, "unknown_percent": 30.0, "even_unknown": True,
                                   "testing_speakers": frozenset({"0a1b2c3d", "ffee0011"}), "testing_percent": 0.0}
    plain = build_parser().parse_args(["train", "data", "--out", "m.safetensors"])
    assert split_options(plain) == {"validation_percent": 10.0, "unknown_percent": 10.0, "even_unknown": False}
