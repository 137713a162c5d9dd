"""A model's own decision settings (speech_app/decision.py): the model file's `streaming` field, written by the
custom-word recipe, read by `speech-app listen` and the Live tab; explicit options win; a model without the
field gets RecognizerSettings' defaults."""

from __future__ import annotations

from dataclasses import replace

import pytest
from stand_ins import WAIT_MS
from test_custom_words import write_takes

from speech_app.cli import listen
from speech_app.cli import build_parser
from speech_app.decision import (STREAMING_KEY, describe, file_metadata, recorded_settings, settings_for,
                                 settings_of_file, settings_record)
from speech_app.modelfile import load_model, read_metadata, save_model
from speech_app.streaming import RecognizerSettings

OWN = {"threshold": 0.81, "averaging_ms": 1000.0, "hold_ms": 500.0, "pause_ms": 0.0,
       "recent_weighting": 0.0}  # none of them a default


def with_settings(source, path, own=OWN):
    """A copy of the model file `source` whose metadata names `own` as its decision settings."""
    bundle = load_model(source)
    bundle.info[STREAMING_KEY] = settings_record(replace(RecognizerSettings(), **own), "a test")
    return save_model(path, bundle)


def test_a_model_without_the_field_gets_the_defaults_and_one_with_it_its_own():
    assert settings_for(None) == settings_for({}) == RecognizerSettings()
    assert RecognizerSettings().recent_weighting > 0  # the shipped model: the newer evaluations weigh more
    assert settings_for({STREAMING_KEY: OWN}) == replace(RecognizerSettings(), **OWN)
    # explicit choices win, one field at a time; None is "not given"
    chosen = settings_for({STREAMING_KEY: OWN}, {"hold_ms": 0.0, "threshold": None})
    assert (chosen.threshold, chosen.averaging_ms, chosen.hold_ms) == (0.81, 1000.0, 0.0)
    with pytest.raises(ValueError):
        settings_for({}, {"no_such_setting": 1})


def test_damaged_settings_fall_back_to_the_defaults_field_by_field():
    damaged = {"threshold": 7, "averaging_ms": "long", "hold_ms": 375.0, "prefix_wait_ms": 0.0}
    assert recorded_settings({STREAMING_KEY: damaged}) == {"hold_ms": 375.0}  # only the fields a model may choose
    # a file that names its own settings was calibrated on a plain mean unless it says otherwise
    assert settings_for({STREAMING_KEY: damaged}) == replace(RecognizerSettings(), hold_ms=375.0, recent_weighting=0.0)
    assert settings_for({STREAMING_KEY: [1, 2]}) == RecognizerSettings()


def test_the_field_round_trips_through_the_model_file(random_model, tmp_path):
    path = with_settings(random_model, tmp_path / "own.safetensors")
    assert read_metadata(path)[STREAMING_KEY] == {**OWN, "why": "a test"}
    assert load_model(path).info[STREAMING_KEY]["hold_ms"] == 500.0
    assert file_metadata(path) == read_metadata(path)  # the torch-free reader `listen` uses says the same
    assert settings_of_file(path) == replace(RecognizerSettings(), **OWN)
    assert settings_of_file(random_model) == settings_of_file(None) == RecognizerSettings()  # shipped: the defaults
    assert file_metadata(tmp_path / "missing.safetensors") == {}  # the loader says why, not this


def parse_listen(*argv):
    return build_parser().parse_args(["listen", *argv])


def test_listen_uses_the_model_files_settings_unless_options_are_given(random_model, tmp_path):
    path = with_settings(random_model, tmp_path / "own.safetensors")
    assert listen.recognizer_settings(parse_listen("--model", str(path))) == replace(RecognizerSettings(), **OWN)
    given = listen.recognizer_settings(parse_listen("--model", str(path), "--threshold", "0.5", "--hold-ms", "0"))
    assert (given.threshold, given.averaging_ms, given.hold_ms) == (0.5, 1000.0, 0.0)
    assert listen.recognizer_settings(parse_listen("--model", str(random_model))) == RecognizerSettings()
    assert listen.recognizer_settings(parse_listen()) == RecognizerSettings()
    # the recognizer `listen --file` runs is built with them, on either runtime
    recognizer = listen._make_recognizer(parse_listen("--model", str(path), "--file", "x.wav", "--runtime", "torch"))
    try:
        assert recognizer.settings == replace(RecognizerSettings(), **OWN)
    finally:
        recognizer.close()
    assert "model file's own settings" in listen.settings_text(parse_listen("--model", str(path)), recognizer.settings)
    help_text = build_parser()._subparsers._group_actions[0].choices["listen"].format_help()
    assert "--averaging-ms" in help_text and "--hold-ms" in help_text and "own setting" in help_text


def test_the_live_worker_listens_with_the_models_settings_and_the_sensitivity_wins(make_window, qtbot, random_model,
                                                                                  tmp_path):
    from speech_app.gui.live_tab import threshold_to_sensitivity
    from speech_app.inference import CommandClassifier
    from stand_ins import FakeAudio

    path = with_settings(random_model, tmp_path / "own.safetensors")
    window = make_window(FakeAudio().services(lambda p: CommandClassifier.from_file(p or random_model, "cpu")))
    live = window.live
    qtbot.waitUntil(lambda: live.model is not None, timeout=WAIT_MS)
    assert live.worker.settings.averaging_ms == RecognizerSettings().averaging_ms  # the shipped model: defaults
    live.set_model(path)
    qtbot.waitUntil(lambda: live.model is not None and live.model.path == path, timeout=WAIT_MS)
    settings = live.worker.settings
    assert (settings.averaging_ms, settings.hold_ms, settings.pause_ms) == (OWN["averaging_ms"], OWN["hold_ms"], OWN["pause_ms"])
    assert live.model.own_settings == OWN and live.worker.recognizer.settings is settings
    # the slider moves to the model's own threshold, and the worker listens at it
    assert live.sensitivity_slider.value() == threshold_to_sensitivity(OWN["threshold"])
    qtbot.waitUntil(lambda: live.worker.settings.threshold == pytest.approx(OWN["threshold"]), timeout=WAIT_MS)
    # a move of the slider wins over the model's threshold; the average and hold stay the model's
    live.sensitivity_slider.setValue(40)
    qtbot.waitUntil(lambda: live.worker.settings.threshold == pytest.approx(0.6), timeout=WAIT_MS)
    assert (live.worker.recognizer.settings.hold_ms, live.worker.recognizer.settings.pause_ms) == (OWN["hold_ms"], OWN["pause_ms"])
    assert f"averaged over the last {OWN['averaging_ms'] / 1000:.1f} s" in live.bars_box.toolTip()  # the bars say it


def test_the_recipe_writes_its_settings_and_the_conversation_check_measures_with_them(tiny_model, tmp_path,
                                                                                      monkeypatch):
    from speech_app.training import conversation, custom_words
    from speech_app.training.custom_words import CustomWordsRecipe, train_custom_words

    used = []  # the settings of every replay the conversation check decides with
    decider = conversation.decider
    monkeypatch.setattr(conversation, "decider", lambda labels, settings=None: used.append(settings) or
                        decider(labels, settings))
    takes = write_takes(tmp_path / "takes", ("yes", "no"), 3)
    recipe = CustomWordsRecipe(steps=1, batch_size=8, warmup_steps=1, estimate_folds=0, negatives_per_word=1,
                               hard_negative_steps=0, device="cpu", conversation_budget=2.0,
                               listen_threshold=OWN["threshold"], listen_averaging_ms=OWN["averaging_ms"],
                               listen_hold_ms=OWN["hold_ms"], listen_pause_ms=OWN["pause_ms"])
    out = tmp_path / "m.safetensors"
    train_custom_words([takes], ["yes", "no"], out, recipe, init_from=load_model(tiny_model), progress=False)
    meta = read_metadata(out)
    assert recorded_settings(meta) == OWN and settings_of_file(out) == replace(RecognizerSettings(), **OWN)
    assert meta["conversation"]["settings"] == OWN  # the recorded figures say what they were measured with
    assert used and all((s.averaging_ms, s.hold_ms, s.pause_ms) == (OWN["averaging_ms"], OWN["hold_ms"], OWN["pause_ms"])
                        for s in used)
    lines = "\n".join(custom_words.conversation_lines(meta["conversation"]) + custom_words.card_lines(meta))
    assert describe(replace(RecognizerSettings(), **OWN)) in lines
    # a recipe that leaves them at None names the streaming defaults
    none = CustomWordsRecipe(listen_threshold=None, listen_averaging_ms=None, listen_hold_ms=None, listen_pause_ms=None)
    # (on a plain mean: the recipe's settings were chosen with one)
    assert custom_words.listening_settings(none) == replace(RecognizerSettings(), recent_weighting=0.0)


def test_the_sensitivity_tip_says_whether_the_curve_was_measured_as_the_model_is_listened_to():
    from speech_app.gui.expectations import ConversationCurve, sensitivity_tip

    meta = {"conversation": {"minutes": 4.0, "curve": [[0.5, 10.0], [0.9, 1.0]], "settings": OWN}}
    curve = ConversationCurve.from_metadata(meta)
    assert "Measured as the model is listened to" in sensitivity_tip(curve, settings_for({STREAMING_KEY: OWN}))
    assert "only a guide" in sensitivity_tip(curve, RecognizerSettings())
    old = ConversationCurve.from_metadata({"conversation": {"minutes": 4.0, "curve": [[0.5, 10.0], [0.9, 1.0]]}})
    assert "does not say" in sensitivity_tip(old, RecognizerSettings())


def test_few_takes_and_text_alone_listen_with_their_own_threshold_and_hold():
    from speech_app.training.custom_words import (TAKES_ENOUGH, TAKES_MINIMUM, CustomWordsRecipe,
                                                  listening_for_takes)

    recipe = CustomWordsRecipe()
    enough = (recipe.listen_threshold, recipe.listen_hold_ms)
    few = (recipe.few_takes_listen_threshold, recipe.few_takes_listen_hold_ms)
    text = (recipe.text_only_listen_threshold, recipe.text_only_listen_hold_ms)
    assert few != enough and text != enough  # the rule changes something for both

    def own(counts, r=recipe):
        chosen = listening_for_takes(counts, r)
        return chosen.listen_threshold, chosen.listen_hold_ms

    assert listening_for_takes({"a": TAKES_ENOUGH, "b": 40}, recipe) == recipe  # enough takes: the recipe's own
    assert own({"a": TAKES_MINIMUM, "b": 40}) == own({"a": 2}) == few  # the word with the fewest takes decides
    assert own({"a": 0, "b": 0}) == text
    # in between, in a straight line from the few-take settings to the others (None: the streaming default)
    full = [enough[0] if enough[0] is not None else RecognizerSettings().threshold, enough[1]]
    middle = own({"a": (TAKES_MINIMUM + TAKES_ENOUGH) / 2})
    assert middle == pytest.approx([(few[0] + full[0]) / 2, (few[1] + full[1]) / 2])
    # settings the user gave win; a condition's None leaves the recipe's own
    assert own({"a": 0}, replace(recipe, listen_hold_ms=500.0))[1] == 500.0
    assert own({"a": 0}, replace(recipe, listen_threshold=0.9))[0] == 0.9
    assert own({"a": 3}, replace(recipe, few_takes_listen_threshold=None, few_takes_listen_hold_ms=None)) == enough


def test_a_model_from_few_takes_names_the_few_take_settings_in_its_file(tiny_model, tmp_path):
    from speech_app.training.custom_words import CustomWordsRecipe, train_custom_words

    takes = write_takes(tmp_path / "takes", ("yes", "no"), 3)
    recipe = CustomWordsRecipe(steps=1, batch_size=8, warmup_steps=1, estimate_folds=0, negatives_per_word=1,
                               hard_negative_steps=0, device="cpu", conversation_budget=0)
    out = tmp_path / "m.safetensors"
    train_custom_words([takes], ["yes", "no"], out, recipe, init_from=load_model(tiny_model), progress=False)
    meta = read_metadata(out)
    chosen = settings_of_file(out)
    assert (chosen.threshold, chosen.hold_ms) == (recipe.few_takes_listen_threshold, recipe.few_takes_listen_hold_ms)
    assert chosen.pause_ms == recipe.listen_pause_ms and chosen.averaging_ms == RecognizerSettings().averaging_ms
    assert meta["recipe"]["listen_threshold"] == recipe.few_takes_listen_threshold  # the recipe as it trained
    assert meta["recipe"]["synthetic_share"] == recipe.few_takes_synthetic_share != recipe.synthetic_share
    assert "few takes" in meta[STREAMING_KEY]["why"]
