"""Your voice (`speech-app adapt`): takes only for the model's own commands, the adapted model keeps the
base model's labels, settings and streaming defaults and says what it was adapted to, and the recipe's
draws keep the commands without takes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import word_sound
from test_custom_words import write_takes
from speech_app.card import model_card
from speech_app.cli import main
from speech_app.modelfile import ModelBundle, load_model, read_metadata, save_model
from speech_app.training.adapt import (REPLAY, TAKE, AdaptError, AdaptRecipe, adapt, build_adapt_index,
                                       class_draws, collect_takes)
from speech_app.training.draws import share_weights

# a few batches of a few clips: these tests check what is kept and written, not how well it adapts
TINY_ADAPT = dict(steps=2, batch_size=8, replay_per_word=2, device="cpu")
STREAMING = {"threshold": 0.8}  # a usage setting a base model may carry


@pytest.fixture
def base_path(tiny_model, tmp_path):
    """The session's tiny model, with a streaming default in its file."""
    bundle = load_model(tiny_model)
    bundle.info = {**bundle.info, "streaming": STREAMING}
    return save_model(tmp_path / "base.safetensors", bundle)


def test_an_adapted_model_keeps_the_base_models_labels_settings_and_streaming_defaults(base_path, tmp_path):
    base = load_model(base_path)
    takes = write_takes(tmp_path / "takes", ("yes", "no"), 2)
    out = tmp_path / "mine.safetensors"
    result = adapt(takes, out, AdaptRecipe(**TINY_ADAPT), base=base)
    adapted = load_model(out)
    assert adapted.labels == base.labels
    assert adapted.features == base.features
    assert adapted.model.config == base.model.config
    meta = read_metadata(out)
    assert meta["streaming"] == STREAMING
    assert meta["adapted"]["base"] == base_path.name
    assert meta["adapted"]["takes"] == {"yes": 2, "no": 2} == result.takes
    assert meta["adapted"]["steps"] == TINY_ADAPT["steps"]
    assert meta["adapted"]["base_on_takes"][1] == 4
    changed = [k for k, v in adapted.model.state_dict().items()
               if v.is_floating_point() and not torch.equal(v, base.model.state_dict()[k])]
    assert changed  # it trained


def test_the_card_says_the_model_was_adapted_from_how_many_takes_of_what(base_path, tmp_path):
    takes = write_takes(tmp_path / "takes", ("up",), 3)
    out = tmp_path / "mine.safetensors"
    adapt(takes, out, AdaptRecipe(**TINY_ADAPT), base=load_model(base_path))
    card = model_card(out)
    assert "Adapted to one voice" in card and base_path.name in card and "3 takes (up 3)" in card
    assert "Adapted" not in model_card(base_path)


def test_a_folder_that_is_no_command_of_the_model_stops_with_one_line_naming_it(base_path, tmp_path, capsys):
    takes = write_takes(tmp_path / "takes", ("yes", "computer"), 2)
    out = tmp_path / "mine.safetensors"
    status = main(["adapt", str(takes), "--out", str(out), "--model", str(base_path), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert status == 2 and len(err.splitlines()) == 1
    assert str(takes / "computer") in err and "speech-app train" in err
    assert not out.exists()
    with pytest.raises(AdaptError, match="'_unknown_' is not a command"):
        collect_takes(write_takes(tmp_path / "other", ("_unknown_",), 1), load_model(base_path).labels)


def test_no_takes_and_an_unwritable_output_stop_before_any_work(base_path, tmp_path, capsys):
    (tmp_path / "empty" / "yes").mkdir(parents=True)
    status = main(["adapt", str(tmp_path / "empty"), "--out", str(tmp_path / "m.safetensors"),
                   "--model", str(base_path)])
    assert status == 2 and "no takes" in capsys.readouterr().err
    takes = write_takes(tmp_path / "takes", ("yes",), 1)
    status = main(["adapt", str(takes), "--out", str(tmp_path / "missing" / "m.safetensors"), "--model", str(base_path)])
    err = capsys.readouterr().err
    assert status == 2 and "missing" in err and len(err.strip().splitlines()) == 1


def test_the_cli_writes_a_model_that_loads_with_the_base_labels(base_path, tmp_path, capsys):
    takes = write_takes(tmp_path / "takes", ("no",), 1)
    out = tmp_path / "mine.safetensors"
    status = main(["adapt", str(takes), "--out", str(out), "--model", str(base_path), "--steps", "1", "--quiet"])
    assert status == 0 and f"wrote {out}" in capsys.readouterr().out
    assert load_model(out).labels == load_model(base_path).labels


def test_commands_without_takes_and_other_words_are_still_drawn(tiny_model, tmp_path):
    """Every command keeps its share of the draws: takes where there are some, replayed bundled clips
    of it otherwise; other words replay as `_unknown_`."""
    labels = load_model(tiny_model).labels  # _silence_, _unknown_, yes, no, up
    takes = collect_takes(write_takes(tmp_path / "takes", ("yes",), 2), labels)
    index, groups = build_adapt_index(takes, labels, replay_per_word=3)
    ids = np.array([labels.index(e.label) for e in index.examples])
    recipe = AdaptRecipe()
    weights = share_weights(ids, groups, class_draws(recipe, labels))
    for word in ("yes", "no", "up"):
        assert weights[ids == labels.index(word)].sum() == pytest.approx(weights[ids == labels.index("yes")].sum())
    yes = ids == labels.index("yes")
    assert weights[yes & (groups == TAKE)].sum() == pytest.approx(recipe.take_share * weights[yes].sum())
    assert (groups[ids == labels.index("no")] == REPLAY).all()
    unknown_words = {e.word for e in index.examples if e.label == "_unknown_"}
    assert unknown_words and not unknown_words & set(labels)
    assert weights[ids == labels.index("_unknown_")].sum() == pytest.approx(recipe.unknown_share)


def test_trainable_head_moves_only_the_attention_and_output_layers(base_path, tmp_path):
    base = load_model(base_path)
    takes = write_takes(tmp_path / "takes", ("yes",), 2)
    out = tmp_path / "mine.safetensors"
    adapt(takes, out, AdaptRecipe(**TINY_ADAPT, trainable="head"), base=base)
    theirs, ours = base.model.state_dict(), load_model(out).model.state_dict()
    moved = {k for k in ours if not torch.equal(ours[k], theirs[k])}
    assert moved and all(k.startswith(("attention.", "head.")) for k in moved)


def test_a_take_longer_than_the_window_is_read_like_trains_takes(base_path, tmp_path):
    import soundfile as sf

    folder = tmp_path / "takes" / "up"
    folder.mkdir(parents=True)
    long_take = word_sound("up", np.random.default_rng(0), seconds=3.0)
    sf.write(str(folder / "long.flac"), long_take, 16_000)
    result = adapt(tmp_path / "takes", tmp_path / "m.safetensors", AdaptRecipe(**TINY_ADAPT), base=load_model(base_path))
    assert result.takes == {"up": 1}


@pytest.fixture
def two_layer_base(tmp_path):
    """A small untrained model of two LSTM layers: `top` must find the last one."""
    from speech_app.features import FeatureConfig
    from speech_app.model import BiLstmClassifier, ModelConfig

    labels = ["_silence_", "_unknown_", "yes", "no"]
    model = BiLstmClassifier(ModelConfig(n_classes=len(labels), hidden_size=8, num_layers=2, conv_channels=8))
    return load_model(save_model(tmp_path / "two.safetensors", ModelBundle(model, labels, FeatureConfig())))


def test_trainable_top_moves_the_last_lstm_layer_and_the_head_and_keeps_the_rest_equal(two_layer_base, tmp_path):
    takes = write_takes(tmp_path / "takes", ("yes",), 2)
    out = tmp_path / "mine.safetensors"
    adapt(takes, out, AdaptRecipe(**TINY_ADAPT, trainable="top"), base=two_layer_base)
    theirs, ours = two_layer_base.model.state_dict(), load_model(out).model.state_dict()
    moved = {k for k in ours if not torch.equal(ours[k], theirs[k])}
    assert any("_l1" in k for k in moved) and any(k.startswith("head.") for k in moved)
    frozen = [k for k in ours if k.startswith("conv.") or "_l0" in k]  # batch norm statistics included
    assert frozen and all(torch.equal(ours[k], theirs[k]) for k in frozen)


def test_the_anchor_penalty_is_the_squared_distance_of_the_trainable_weights_from_the_start(two_layer_base, tmp_path):
    from speech_app.training.adapt import adapted_trainer, collect_takes

    takes = collect_takes(write_takes(tmp_path / "takes", ("no",), 1), two_layer_base.labels)
    weight = 0.5
    trainer, _ = adapted_trainer(two_layer_base, takes, AdaptRecipe(**TINY_ADAPT, trainable="head",
                                                                    anchor_weight=weight))
    assert trainer.config.anchor_weight == weight
    with torch.no_grad():
        assert float(trainer.anchor_penalty()) == 0.0  # at the base's weights
        head = trainer.model.head[1].bias
        head += 2.0  # a trainable weight moves: counted
        trainer.model.conv[0].weight += 1.0  # a frozen one: not counted
        assert float(trainer.anchor_penalty()) == pytest.approx(weight * 4.0 * head.numel())


def test_the_recipe_sets_the_augmentation_of_the_draws():
    from speech_app.training.adapt import train_config

    augment = train_config(AdaptRecipe(speed=0.2, time_shift_ms=0.0, noise_probability=0.0), 1.0).augment
    assert (augment.speed, augment.time_shift_ms, augment.noise_probability) == (0.2, 0.0, 0.0)


def test_the_card_names_distillation_and_the_weight_pull_only_when_the_recipe_used_them():
    from speech_app.training.adapt import card_lines

    def card(**recipe):
        return "\n".join(card_lines({"adapted": {"takes": {"yes": 2}, "recipe": {**recipe}}}))

    assert "probabilities" not in card(distill_weight=0.0) and "pull" not in card(anchor_weight=0.0)
    assert "following the base model's probabilities" in card(distill_weight=0.25)
    assert "a pull toward the base model's weights" in card(anchor_weight=0.1)
