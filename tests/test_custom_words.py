"""Custom words: the settings check when fine-tuning, undecodable takes, and the custom-word recipe."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import soundfile as sf
import torch

from conftest import SAMPLE_RATE, TINY_MODEL, TINY_TRAIN, word_sound
from speech_app.model import ModelConfig
from speech_app.modelfile import load_model, read_metadata
from speech_app.training.trainer import TrainConfig, train


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


def test_a_new_output_layer_starts_at_zero_and_a_known_one_as_it_was(tiny_model, tiny_dataset):
    """Other labels than the starting model's: its encoder, and an output layer at zero (not a random
    start that the seed moves); the same labels: the whole model as it was."""
    from speech_app.data.dataset import build_index
    from speech_app.training.trainer import Trainer

    start = load_model(tiny_model)
    theirs = start.model.state_dict()
    for same, words in ((False, ["yes"]), (True, [w for w in start.labels if not w.startswith("_")])):
        index = build_index([tiny_dataset.root], words, seed=0, allow_missing=True)
        assert (index.labels == start.labels) == same  # both cases are tested
        ours = Trainer(index, TrainConfig(**TINY_TRAIN), None, start, False, None).model.state_dict()
        assert torch.equal(ours["lstm.weight_ih_l0"], theirs["lstm.weight_ih_l0"])
        head = [k for k in ours if k.startswith("head.")]
        if index.labels == start.labels:
            assert all(torch.equal(ours[k], theirs[k]) for k in head)
        else:
            assert all(float(ours[k].abs().max()) == 0.0 for k in head)


def test_head_from_start_copies_the_rows_of_the_labels_both_models_have(tiny_model, tiny_dataset):
    """head_from_start: the new output layer's `_silence_` and `_unknown_` rows (weights and bias) are the
    starting model's rows of those labels, wherever they sit there; a new word's row stays at zero."""
    from speech_app.data.dataset import build_index
    from speech_app.training.custom_words import CustomWordsRecipe, train_config
    from speech_app.training.trainer import Trainer

    start = load_model(tiny_model)
    theirs = start.model.state_dict()
    index = build_index([tiny_dataset.root], ["yes"], seed=0, allow_missing=True)
    assert index.labels != start.labels and {"_silence_", "_unknown_"} <= set(start.labels)
    ours = Trainer(index, TrainConfig(**TINY_TRAIN, head_from_start=True), None, start, False, None).model.state_dict()
    for name in ("head.1.weight", "head.1.bias"):
        for row, label in enumerate(index.labels):
            if label.startswith("_"):
                assert torch.equal(ours[name][row], theirs[name][start.labels.index(label)])
                assert float(ours[name][row].abs().max()) > 0.0  # a trained row, not a zero one
            else:
                assert float(ours[name][row].abs().max()) == 0.0
    assert torch.equal(ours["lstm.weight_ih_l0"], theirs["lstm.weight_ih_l0"])
    assert train_config(CustomWordsRecipe(head_from_start=True), 1.0).head_from_start
    assert not train_config(CustomWordsRecipe(head_from_start=False), 1.0).head_from_start


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
    root = write_takes(tmp_path / "takes", ("yes", "no"), 8)
    broken = root / "yes" / "take-broken_nohash_0.wav"
    broken.write_bytes(b"RIFF not really a wave file")
    out = tmp_path / "m.safetensors"
    train([root], out, ["yes", "no"], TrainConfig(**TINY_TRAIN), ModelConfig(**TINY_MODEL), progress=False)
    err = capsys.readouterr().err
    assert any("left out" in line and str(broken) in line for line in err.splitlines())
    clips = read_metadata(out)["trained_on"]["clips"]
    assert sum(clips[split].get("yes", 0) for split in clips) == 8  # the eight good takes, not nine


# -- the custom-word recipe ------------------------------------------------------------------------
from speech_app.training import custom_words  # noqa: E402
from speech_app.training.custom_words import (NEAR_MISS, REAL_NEGATIVE, SILENCE, SYNTH_WORD, TAKE,  # noqa: E402
                                     CustomWordsRecipe, draw_weights, fold_of, train_custom_words)
from speech_app.data.dataset import Example  # noqa: E402
from speech_app.data.negatives import bundled_noise, bundled_speech, near_misses  # noqa: E402

TINY_FLAGS = ["--steps", "2", "--batch-size", "8", "--estimate-runs", "2", "--estimate-steps", "1", "--no-synth",
              "--device", "cpu", "--quiet"]


def test_the_package_carries_real_negatives_and_noise():
    speech = bundled_speech()
    assert len(speech) >= 30 and sum(map(len, speech.values())) >= 500
    assert bundled_noise()
    # the user's own words (and the words of their phrases) are never negatives
    assert "yes" not in bundled_speech(["yes"]) and "on" not in bundled_speech(["lights on"])


def test_near_misses_share_the_start_but_are_never_another_custom_word():
    misses = near_misses("lights on", others=["lights off", "lights"])
    assert "on" in misses and "lights off" not in misses and "lights" not in misses
    jarvis = near_misses("jarvis")
    assert jarvis and all(m != "jarvis" and m.startswith("jar") for m in jarvis)  # no "harvis": too close to the word


def test_fewer_takes_train_longer_but_text_alone_does_not():
    budget = custom_words.step_budget
    few, enough = budget({"a": custom_words.TAKES_MINIMUM}), budget({"a": custom_words.TAKES_ENOUGH})
    assert few > enough and budget({"a": 2, "b": 40}) == few  # the word with the fewest takes decides
    assert few >= budget({"a": 10}) >= budget({"a": 15}) >= enough == budget({"a": 100})
    # no takes: the lower layers stay (text_only_trainable), and the top needs as long as with few takes
    assert budget({"a": 0, "b": 0}) == custom_words.STEPS_TEXT_ONLY > enough


def test_text_alone_gets_the_wider_speed_perturbation_unless_one_is_set():
    recipe = CustomWordsRecipe()
    assert custom_words.augment_speed({"a": 0, "b": 0}, recipe) == recipe.text_only_speed != recipe.speed
    assert custom_words.augment_speed({"a": 5, "b": 0}, recipe) == recipe.speed  # some takes: the default
    assert custom_words.augment_speed({"a": 0}, replace(recipe, speed=0.05)) == 0.05  # set by the user


def test_text_alone_draws_more_synthetic_filler_words_unless_a_share_is_set():
    recipe = CustomWordsRecipe()
    text_only = custom_words.text_only_settings({"a": 0, "b": 0}, recipe)
    assert text_only.filler_share == recipe.text_only_filler_share != recipe.filler_share
    assert text_only.speed == recipe.text_only_speed
    assert custom_words.text_only_settings({"a": 5, "b": 0}, recipe) == recipe  # some takes: the defaults
    assert custom_words.text_only_settings({"a": 0}, replace(recipe, filler_share=0.2)).filler_share == 0.2


def test_text_alone_keeps_the_lower_layers_unless_the_weights_that_train_are_set():
    recipe = CustomWordsRecipe()
    text_only = custom_words.text_only_settings({"a": 0, "b": 0}, recipe)
    assert (text_only.trainable, text_only.others_rate) == (recipe.text_only_trainable, recipe.text_only_others_rate)
    assert text_only.trainable != recipe.trainable == "all"
    assert custom_words.text_only_settings({"a": 5, "b": 0}, recipe).trainable == "all"  # some takes: every weight
    chosen = custom_words.text_only_settings({"a": 0}, replace(recipe, trainable="head"))
    assert (chosen.trainable, chosen.others_rate) == ("head", 0.0)
    chosen = custom_words.text_only_settings({"a": 0}, replace(recipe, others_rate=0.1))
    assert (chosen.trainable, chosen.others_rate) == ("all", 0.1)


def test_few_takes_draw_more_of_a_word_from_synthetic_speech_unless_a_share_is_set():
    recipe = CustomWordsRecipe()
    few, enough = recipe.few_takes_synthetic_share, recipe.synthetic_share
    share = lambda counts, r=recipe: custom_words.synthetic_share_for_takes(counts, r).synthetic_share  # noqa: E731
    assert few > enough
    assert share({"a": custom_words.TAKES_MINIMUM, "b": 40}) == share({"a": 2}) == few  # the fewest takes decide
    assert share({"a": custom_words.TAKES_ENOUGH, "b": 40}) == enough
    middle = (custom_words.TAKES_MINIMUM + custom_words.TAKES_ENOUGH) / 2
    assert share({"a": middle}) == pytest.approx((few + enough) / 2)
    assert custom_words.synthetic_share_for_takes({"a": 0, "b": 0}, recipe) == recipe  # text alone: all synthetic
    assert share({"a": 3}, replace(recipe, synthetic_share=0.2)) == 0.2  # set by the user
    assert share({"a": 3}, replace(recipe, few_takes_synthetic_share=None)) == enough


def test_the_estimate_says_how_low_a_few_takes_leave_it():
    perfect_few = custom_words.Estimate({"a": [5, 5], "b": [5, 5]}, [0, 600], 3, 40)
    assert perfect_few.word_accuracy == 1.0
    low = custom_words.lower_bound(10, 10)
    assert 0.5 < low < 0.95 and f"likely at least {low:.0%}" in perfect_few.lines()[0]
    assert custom_words.lower_bound(100, 100) > low  # more held-out takes, a tighter bound
    assert custom_words.lower_bound(90, 100) < 0.9 < custom_words.lower_bound(900, 1000) + 0.02


def test_draws_follow_the_class_shares_and_skip_held_out_clips():
    recipe = CustomWordsRecipe()
    labels = np.array([0] * 4 + [1] * 10 + [2] * 6 + [3] * 3)
    groups = np.array([SILENCE] * 4 + [REAL_NEGATIVE] * 7 + [NEAR_MISS] * 3 + [TAKE] * 3 + [SYNTH_WORD] * 3 + [TAKE] * 3)
    held_out = np.zeros(len(labels), bool)
    held_out[[4, 14]] = True
    weights = draw_weights(labels, groups, 2, recipe, held_out)
    share = {c: weights[labels == c].sum() / weights.sum() for c in range(4)}
    assert share[0] == pytest.approx(recipe.silence_share) and share[1] == pytest.approx(recipe.unknown_share)
    assert share[2] == pytest.approx(share[3])  # a word without synthetic speech gets its whole share from takes
    assert weights[held_out].sum() == 0 and (weights[~held_out] > 0).all()


def test_rotation_holds_out_every_take_once_and_each_speaker_whole():
    examples = [Example(f"w/t{i}_nohash_0.wav", "w", "training", "w") for i in range(7)]
    examples += [Example(f"{word}/spk{i}_nohash_0.ogg", "_unknown_", "training", word)
                 for i in range(5) for word in ("cat", "dog")]
    groups = np.array([TAKE] * 7 + [REAL_NEGATIVE] * 10)
    fold = fold_of(examples, groups, 3, seed=0)
    assert sorted(np.bincount(fold[:7])) == [2, 2, 3]
    for i in range(5):
        assert len({fold[row] for row, e in enumerate(examples) if f"spk{i}_" in e.path}) == 1


def test_recipe_trains_rejection_classes_and_writes_the_estimate(tiny_model, tmp_path):
    root = write_takes(tmp_path / "takes", ("yes", "no"), 3)
    out = tmp_path / "custom.safetensors"
    recipe = CustomWordsRecipe(steps=2, batch_size=8, warmup_steps=1, estimate_folds=2, estimate_steps=1,
                               negatives_per_word=2, device="cpu",
                               conversation_share=0.0)  # the bundled clips alone: conversation windows are tested apart
    result = train_custom_words([root], ["yes", "no"], out, recipe, init_from=load_model(tiny_model), progress=False)
    meta = read_metadata(out)
    assert meta["labels"] == ["_silence_", "_unknown_", "yes", "no"]
    trained = meta["trained_on"]["clips"]["training"]
    negatives = sum(len(files[:2]) for files in bundled_speech(["yes", "no"]).values())
    assert trained["_unknown_"] == negatives and trained["_silence_"] > 0
    estimate = meta["estimate"]
    assert {w: total for w, (_, total) in estimate["per_word"].items()} == {"yes": 3, "no": 3}
    assert estimate["false_accepts"][1] == negatives  # every bundled negative held out once
    # the held-out clips' confusion matrix (the GUI draws it) agrees with the figures
    confusion = np.array(estimate["confusion"])
    assert estimate["labels"] == meta["labels"] and confusion.shape == (4, 4)
    assert [int(confusion[i].sum()) for i in (1, 2, 3)] == [negatives, 3, 3] and confusion[0].sum() == 0
    assert [int(confusion[i, i]) for i in (2, 3)] == [right for right, _ in estimate["per_word"].values()]
    assert int(confusion[1, 2:].sum()) == estimate["false_accepts"][0]
    assert meta["model"]["hidden_size"] == load_model(tiny_model).model.config.hidden_size
    printed = "\n".join(custom_words.summary_lines(result))
    assert "What to expect" in printed and "held-out takes" in printed
    assert "'yes' has 3 takes" in printed  # the warning about too few takes
    card = "\n".join(custom_words.card_lines(meta))  # the model card: the estimate and the negatives' credit
    assert "held-out takes" in card and "Speech Commands" in card and "CC BY 4.0" in card


def test_default_estimate_is_one_run_holding_out_a_third_for_half_the_batches(tiny_model, tmp_path):
    folds, runs, steps = custom_words.estimate_budget(CustomWordsRecipe(steps=160))
    assert (folds, runs, steps) == (custom_words.ONE_RUN_FOLDS, 1, 80)
    assert custom_words.estimate_budget(CustomWordsRecipe(steps=160, estimate_folds=3, estimate_steps=40)) == (3, 3, 40)
    root = write_takes(tmp_path / "takes", ("yes", "no"), 3)
    recipe = CustomWordsRecipe(steps=2, batch_size=8, warmup_steps=1, negatives_per_word=2, device="cpu")
    train_custom_words([root], ["yes", "no"], tmp_path / "m.safetensors", recipe, init_from=load_model(tiny_model),
                       progress=False)
    estimate = read_metadata(tmp_path / "m.safetensors")["estimate"]
    assert (estimate["runs"], estimate["folds"], estimate["steps"]) == (1, 3, 1)
    assert {w: total for w, (_, total) in estimate["per_word"].items()} == {"yes": 1, "no": 1}  # one take in 3
    negatives = sum(len(files[:2]) for files in bundled_speech(["yes", "no"]).values())
    assert 0 < estimate["false_accepts"][1] < negatives  # some speakers held out, not all


def test_recipe_refuses_dataset_flags_and_words_without_takes(tiny_model, tmp_path, capsys):
    from speech_app.cli import main

    root = write_takes(tmp_path / "takes", ("yes",), 2)
    out = str(tmp_path / "m.safetensors")
    assert main(["train", str(root), "--out", out, "--epochs", "3"] + TINY_FLAGS) == 2
    assert "--epochs" in capsys.readouterr().err
    assert main(["train", str(root), "--words", "yes,no", "--out", out, "--init-from", str(tiny_model)] + TINY_FLAGS) == 2
    assert "no takes for: no" in capsys.readouterr().err


def test_the_window_holds_the_takes_spoken_part(tmp_path):
    rng = np.random.default_rng(3)
    folder = tmp_path / "takes" / "lights on"
    folder.mkdir(parents=True)
    for take in range(4):  # 1.4 s of sound inside a 2.5 s take
        clip = word_sound("yes", rng, seconds=2.5, sound_seconds=1.4)
        sf.write(str(folder / f"t{take}.wav"), clip, SAMPLE_RATE, subtype="PCM_16")
    takes = custom_words.collect_takes([tmp_path / "takes"], ["lights on"])
    assert 1.4 < custom_words.custom_window_seconds(takes, 1.0) <= 2.0
    assert custom_words.custom_window_seconds({"x": []}, 1.0) == custom_words.TEXT_ONLY_WINDOW_SECONDS


def test_the_recipes_synthetic_voices_are_those_a_shipped_model_may_use(tmp_path, monkeypatch):
    """By default the custom recipe synthesizes only with commercial-use voices (RHVoice's evgeniy-eng
    and lyubov are CC-BY-NC-ND); `--all-voices` lets the others in; the set records its engines."""
    import json

    from speech_app.cli import build_parser
    from speech_app.cli.train import custom_recipe
    from speech_app.synth import available_engines, text_training
    from speech_app.synth.generator import engine_and_voice

    rhvoice = next((e for e in available_engines() if e.name == "rhvoice"), None)
    if rhvoice is None or all(rhvoice.commercial_use(v) for v in rhvoice.voices()):
        pytest.skip("RHVoice with its non-commercial voices is not installed")
    monkeypatch.setattr(text_training, "FILLER_WORDS", ("hello",))
    monkeypatch.setattr(text_training, "FILLER_CLIPS_PER_WORD", 1)
    base = ["train", "--words", "marvin", "--synth", "--out", "m.safetensors"]
    shippable, everything = (custom_recipe(build_parser().parse_args(base + extra)) for extra in ([], ["--all-voices"]))
    voices = {}
    for name, recipe in (("shippable", shippable), ("everything", everything)):
        recipe = replace(recipe, synth_per_word=12, near_miss_clips=0)
        folder = custom_words.synthesize_for_words(["marvin"], recipe, engines="rhvoice", progress=False,
                                                   cache_root=tmp_path, jobs=1)
        voices[name] = {engine_and_voice(p)[1] for p in (folder / "marvin").glob("*.wav")}
        assert json.loads((folder / ".complete.json").read_text())["clips_per_engine"] == {"rhvoice": 12 + 1}
    assert voices["shippable"] and all(rhvoice.commercial_use(v) for v in voices["shippable"])
    assert not all(rhvoice.commercial_use(v) for v in voices["everything"])


def test_text_alone_keeps_the_average_of_runs_with_consecutive_seeds(tiny_model, tmp_path):
    from speech_app.training.trainer import Trainer

    synthetic = write_takes(tmp_path / "synth", ("yes", "no"), 3)  # stands for synthetic speech of the words
    recipe = CustomWordsRecipe(steps=2, batch_size=8, warmup_steps=1, negatives_per_word=2, estimate_folds=0,
                               device="cpu", precision="float32")
    index, groups = custom_words.build_custom_index({"yes": [], "no": []}, synthetic, recipe.negatives_per_word)
    trainer = Trainer(index, custom_words.train_config(recipe, 1.0), None, load_model(tiny_model), False)
    weights = custom_words.draw_weights(trainer.training_labels, groups, 2, recipe)

    def final(runs, seed=0):
        trainer.execute(custom_words.final_plan(replace(recipe, seed=seed), weights, runs))
        return {k: v.clone() for k, v in trainer.model.state_dict().items()}

    first, second, averaged = final(1), final(1, seed=1), final(2)
    floats = [k for k, v in first.items() if v.is_floating_point()]
    assert any(not torch.equal(first[k], second[k]) for k in floats)  # the seeds draw other batches
    for k in floats:
        torch.testing.assert_close(averaged[k], (first[k] + second[k]) / 2)
    assert all(torch.equal(first[k], final(1)[k]) for k in first)  # each plan starts over: nothing carried


def test_with_takes_text_only_runs_changes_nothing(tiny_model, tmp_path):
    from safetensors.torch import load_file

    takes = write_takes(tmp_path / "takes", ("yes", "no"), 3)
    recipe = CustomWordsRecipe(steps=2, batch_size=8, warmup_steps=1, negatives_per_word=2, estimate_folds=0,
                               device="cpu", precision="float32")

    def weights(runs):
        out = tmp_path / f"runs_{runs}.safetensors"
        train_custom_words([takes], ["yes", "no"], out, replace(recipe, text_only_runs=runs),
                           init_from=load_model(tiny_model), progress=False)
        return load_file(out)

    one, two = weights(1), weights(2)
    assert all(torch.equal(one[k], two[k]) for k in one)


def test_runs_averaged_by_takes_two_with_enough_takes_one_with_few():
    recipe = CustomWordsRecipe()
    assert custom_words.final_runs({"a": 0, "b": 0}, recipe) == recipe.text_only_runs == 2
    assert custom_words.final_runs({"a": 20, "b": 150}, recipe) == recipe.takes_runs == 2
    assert custom_words.final_runs({"a": 19, "b": 150}, recipe) == recipe.few_takes_runs == 1
    assert custom_words.final_runs({"a": 5, "b": 5}, replace(recipe, few_takes_runs=3)) == 3


def test_with_takes_the_model_averages_the_runs_the_recipe_asks_for(tiny_model, tmp_path):
    from safetensors.torch import load_file

    takes = write_takes(tmp_path / "takes", ("yes", "no"), 3)  # fewer than TAKES_ENOUGH: few_takes_runs
    recipe = CustomWordsRecipe(steps=2, batch_size=8, warmup_steps=1, negatives_per_word=2, estimate_folds=0,
                               device="cpu", precision="float32", hard_negative_steps=0, conversation_budget=0)

    def trained(runs, seed=0):
        out = tmp_path / f"runs_{runs}_{seed}.safetensors"
        train_custom_words([takes], ["yes", "no"], out, replace(recipe, few_takes_runs=runs, seed=seed),
                           init_from=load_model(tiny_model), progress=False)
        return load_file(out), read_metadata(out)

    (first, one), (second, _), (averaged, two) = trained(1), trained(1, seed=1), trained(2)
    assert one["final_runs"] == 1 and two["final_runs"] == 2
    floats = [k for k, v in first.items() if v.is_floating_point() and not torch.equal(first[k], second[k])]
    assert floats  # the seeds draw other batches
    for k in floats:
        torch.testing.assert_close(averaged[k], (first[k] + second[k]) / 2)


@pytest.mark.parametrize("trainable, moved", [("head", ("attention.", "head.")),
                                              ("top", ("attention.", "head.", "lstm."))])  # one LSTM layer
def test_trainable_leaves_the_rest_of_the_starting_model_as_it_was(tiny_model, tmp_path, trainable, moved):
    """trainable: only the weights it names move, in every run averaged; the others, batch-norm statistics
    included, are the starting model's."""
    from safetensors.torch import load_file

    synthetic = write_takes(tmp_path / "synth", ("yes", "no"), 3)  # stands for synthetic speech of the words
    recipe = CustomWordsRecipe(steps=3, batch_size=8, warmup_steps=1, negatives_per_word=2, estimate_folds=0,
                               device="cpu", precision="float32", hard_negative_steps=0, conversation_budget=0,
                               trainable=trainable)
    out = tmp_path / "m.safetensors"
    train_custom_words([], ["yes", "no"], out, recipe, init_from=load_model(tiny_model), synthetic_dir=synthetic,
                       progress=False)
    ours, start = load_file(out), load_model(tiny_model).model.state_dict()
    assert read_metadata(out)["recipe"]["trainable"] == trainable
    for name, tensor in ours.items():
        if name.startswith("head."):
            continue  # a new output layer (other labels): nothing to compare with
        if name.startswith(moved):
            assert not torch.equal(tensor, start[name]), name
        elif tensor.is_floating_point():
            assert torch.equal(tensor, start[name]), name


def test_an_unknown_trainable_stops_with_the_choices(tiny_model, tmp_path):
    from speech_app.training.adapt import AdaptError

    synthetic = write_takes(tmp_path / "synth", ("yes",), 2)
    with pytest.raises(AdaptError, match="all, top, head"):
        train_custom_words([], ["yes"], tmp_path / "m.safetensors", CustomWordsRecipe(trainable="lstm", steps=1),
                           init_from=load_model(tiny_model), synthetic_dir=synthetic, progress=False)


def test_a_rate_share_scales_the_first_step_of_the_weights_it_names(tiny_model, tiny_dataset):
    """Trainer.rate_shares: Adam's first step moves every weight by about its learning rate, so the weights a
    share of 0.5 names move half as far as the others (others_rate: what `trainable` leaves out moves slowly)."""
    from speech_app.data.dataset import build_index
    from speech_app.training.adapt import rate_shares
    from speech_app.training.trainer import Trainer

    start = load_model(tiny_model)  # its own labels: a new output layer at zero would pass no gradient down
    index = build_index([tiny_dataset.root], [w for w in start.labels if not w.startswith("_")], seed=0)
    assert index.labels == start.labels
    trainer = Trainer(index, TrainConfig(**{**TINY_TRAIN, "weight_decay": 0.0}), None, start, False, None)
    trainer.rate_shares = rate_shares(trainer.model, "head", 0.5)
    assert trainer.rate_shares and not any(k.startswith(("attention.", "head.")) for k in trainer.rate_shares)
    trainer.optimizer = trainer._new_optimizer()
    before = {k: v.detach().clone() for k, v in trainer.model.named_parameters()}
    trainer.train_step(np.arange(8), 1e-2, "float32")
    moved = {k: float((v.detach() - before[k]).abs().max()) for k, v in trainer.model.named_parameters()}
    for name, distance in moved.items():
        if name in ("conv.0.bias", "attention.2.bias"):
            continue  # batch norm, or the softmax over time, undoes them: next to no gradient, a smaller step
        expected = 1e-2 * trainer.rate_shares.get(name, 1.0)
        assert expected * 0.9 < distance < expected * 1.1, (name, distance)
