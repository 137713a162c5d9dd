"""The Custom words tab: words, takes recorded with a countdown and a level meter (each written the
moment it ends), play and delete, training with progress and a live chart, the evaluation, the list of
models with their cards, and switching the Live tab to the new model in one click."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
from stand_ins import TAKES_PER_WORD, WAIT_MS, FakeAudio, tone_word, write_takes

from speech_app.audio import SAMPLE_RATE
from speech_app.gui import custom_tab
from speech_app.gui.services import load_command_classifier
from speech_app.modelfile import read_metadata
from speech_app.training.custom_words import CustomWordsRecipe, Estimate
from speech_app.training.side_process import side_process_possible

# two rotation runs of one batch, then two batches: the recipe's shape at a test's size
TINY_RECIPE = CustomWordsRecipe(steps=2, batch_size=8, warmup_steps=1, estimate_folds=2, estimate_steps=1,
                                near_miss_clips=1, device="cpu")
TRAIN_WAIT_MS = 600_000  # data preparation, two steps, validation, the report: slow on a busy machine


@pytest.fixture
def custom_window(make_window, tmp_path):
    audio = FakeAudio(signal=np.concatenate([np.zeros(SAMPLE_RATE // 4, np.float32), tone_word("mid", 1.0)]),
                      speed=1.0, loop=True)
    window = make_window(audio.services(load_classifier=load_command_classifier))
    window.show_tab("custom")
    return window, audio


def test_words_are_cleaned_and_listed_with_their_takes(custom_window):
    window, _ = custom_window
    window.custom.set_words("Lights On,  music ,lights on")
    assert window.custom.words() == ["lights on", "music"]
    write_takes(window, ["music"])
    window.custom.refresh_takes()
    tree = window.custom.takes_tree
    assert [tree.topLevelItem(i).text(0) for i in range(2)] == [
        f"lights on  (0 takes, {custom_tab.TAKES_MINIMUM} more needed)",
        f"music  ({TAKES_PER_WORD} takes, {custom_tab.TAKES_ENOUGH - TAKES_PER_WORD} more would help)"]


def test_typed_words_wait_for_a_clear_confirm_step(custom_window, qtbot):
    window, _ = custom_window
    tab = window.custom
    tab.set_words("alpha")
    qtbot.keyClicks(tab.words_edit, ", beta")
    assert tab.words() == ["alpha", "beta"] and tab.takes_tree.topLevelItemCount() == 1  # not listed yet
    assert tab.set_words_button.isEnabled() and "Use these words" in tab.countdown_label.text()
    tab.set_words_button.click()
    assert tab.takes_tree.topLevelItemCount() == 2 and not tab.set_words_button.isEnabled()
    assert "2 words ready" in tab.countdown_label.text()


def test_typed_words_are_used_when_the_field_is_left(custom_window, qtbot):
    window, _ = custom_window
    tab = window.custom
    tab.words_edit.setFocus()
    qtbot.keyClicks(tab.words_edit, "alpha, beta")
    assert tab.takes_tree.topLevelItemCount() == 0
    tab.take_seconds.setFocus()  # the user moves on without Enter or the button
    qtbot.waitUntil(lambda: tab.takes_tree.topLevelItemCount() == 2, timeout=WAIT_MS)
    assert window.settings.value("custom/words") == "alpha, beta"
    assert not tab.set_words_button.isEnabled()


def test_training_uses_and_saves_words_typed_but_not_confirmed(custom_window, qtbot):
    window, _ = custom_window
    tab, panel = window.custom, window.custom.training
    qtbot.keyClicks(tab.words_edit, "alpha")
    panel.synth_check.setChecked(False)
    panel.on_train_button_clicked()  # e.g. from the keyboard: the field never lost its focus
    assert "none yet for alpha" in panel.stage_label.text()
    assert window.settings.value("custom/words") == "alpha" and tab.takes_tree.topLevelItemCount() == 1


def test_typed_words_survive_closing_the_window(make_window, tmp_path, qtbot):
    first = make_window(FakeAudio().services(load_classifier=load_command_classifier))
    qtbot.keyClicks(first.custom.words_edit, "lights on, _bad")  # not confirmed, and not even valid
    first.close()
    again = make_window(FakeAudio().services(load_classifier=load_command_classifier))
    assert again.custom.words_edit.text() == "lights on, _bad"
    assert "_bad" in again.custom.countdown_label.text()  # still explained, not dropped


def test_a_bad_word_is_explained(custom_window):
    window, _ = custom_window
    window.custom.set_words("_silence_")
    assert "use letters" in window.custom.countdown_label.text()


def test_record_a_take_with_countdown_and_level_meter(custom_window, qtbot, monkeypatch):
    monkeypatch.setattr(custom_tab, "COUNTDOWN_S", 2)
    window, audio = custom_window
    window.custom.set_words("hello")
    qtbot.waitUntil(window.custom.record_button.isEnabled, timeout=WAIT_MS)
    levels = []
    window.custom.recorder.level_changed.connect(levels.append)
    window.custom.record_take()
    assert "in 2" in window.custom.countdown_label.text() and not window.custom.record_button.isEnabled()
    qtbot.waitUntil(lambda: len(window.data.takes("hello")) == 1, timeout=WAIT_MS)
    take = window.data.takes("hello")[0]
    info = soundfile.info(str(take))
    assert info.samplerate == SAMPLE_RATE and info.frames == int(window.custom.take_seconds.value() * SAMPLE_RATE)
    qtbot.waitUntil(lambda: "Saved take 1" in window.custom.countdown_label.text(), timeout=WAIT_MS)
    assert max(levels) > -20.0  # the tone was heard
    assert audio.opened == [7]  # the Live tab's microphone


def test_play_and_delete_a_take(custom_window):
    window, audio = custom_window
    window.custom.set_words("music")
    write_takes(window, ["music"])
    window.custom.refresh_takes(select=window.data.takes("music")[0])
    window.custom.play_selected()
    assert len(audio.played) == 1
    window.custom.delete_selected()
    assert len(window.data.takes("music")) == TAKES_PER_WORD - 1


def test_models_are_listed_with_their_cards(custom_window):
    window, _ = custom_window
    models = window.custom.models
    assert models.paths() and models.paths()[0].name == "speech_commands_12.safetensors"
    assert "yes, no, up, down" in models.card.toMarkdown()


@pytest.mark.slow
def test_train_see_the_evaluation_and_use_the_model_live(custom_window, qtbot, capfd):
    window, _ = custom_window
    panel = window.custom.training
    window.custom.set_words("alpha, beta")
    write_takes(window, ["alpha", "beta"])
    window.custom.refresh_takes()
    panel.recipe = TINY_RECIPE
    panel.synth_check.setChecked(False)
    batches = []
    panel.worker.batch_finished.connect(batches.append)
    panel.on_train_button_clicked()
    assert not panel.train_button.isEnabled() and panel.cancel_button.isEnabled()
    qtbot.waitUntil(lambda: not panel.training, timeout=TRAIN_WAIT_MS)
    assert panel.trained_model is not None, panel.stage_label.text()
    assert panel.trained_model.is_file() and panel.trained_model.parent == window.data.models_dir
    # the estimate's run (1 batch) is reported too, unless it trained in a side process beside the final run
    estimate_batches = 0 if side_process_possible(torch.device("cpu")) else 2 * 1
    assert len(batches) == estimate_batches + 2 and len(panel.chart.batches) == 2  # the chart follows the final run
    assert panel.progress.value() == panel.progress.maximum()
    assert not capfd.readouterr().err  # progress and the training log stay in the window, not on stderr
    assert any(line.startswith("wrote ") for line in panel.log_lines) and "wrote " in panel.stage_label.toolTip()
    # what to expect, from takes held out by rotation: never a validation figure on a few clips
    assert [row[0] for row in panel.evaluation_rows()] == ["alpha", "beta", "other speech ignored"]
    assert [row[3].split("/")[1] for row in panel.evaluation_rows()[:2]] == [str(TAKES_PER_WORD)] * 2  # every take once
    assert "What to expect" in panel.accuracy_label.text() and "Estimate:" in panel.stage_label.text()
    assert "validation" not in panel.stage_label.text()
    assert "While people talk: about" in panel.accuracy_label.text()  # the conversation check, after the estimate
    heard = read_metadata(panel.trained_model)["conversation"]["heard"]  # held-out takes the stream heard
    assert f"{heard[0]} of {heard[1]} of your held-out takes heard" in panel.accuracy_label.text()
    # the held-out clips' confusion matrix: each take row sums to the word's held-out takes, the
    # diagonal to those recognized, the `_unknown_` row to the held-out real clips of other words
    confusion = panel.confusion.matrix
    assert panel.confusion.labels == ["_silence_", "_unknown_", "alpha", "beta"]
    for row, (word, _, right, count) in zip((2, 3), panel.evaluation_rows()):
        assert int(confusion[row].sum()) == int(count.split("/")[1]) and int(confusion[row, row]) == int(count.split("/")[0])
    kept, clips = map(int, panel.evaluation_rows()[2][3].split("/"))
    assert int(confusion[1].sum()) == clips and int(confusion[1, :2].sum()) == kept
    assert panel.trained_model in window.custom.models.paths()
    panel.use_button.click()
    qtbot.waitUntil(lambda: window.live.model_path == panel.trained_model, timeout=WAIT_MS)
    assert window.tabs.currentWidget() is window.live
    assert window.live.confidence_bars.labels == ["_silence_", "_unknown_", "alpha", "beta"]
    assert window.batch.model_path == panel.trained_model


def test_the_estimate_fills_the_confusion_matrix(custom_window):
    panel = custom_window[0].custom.training
    labels = ["_silence_", "_unknown_", "alpha"]
    matrix = [[0, 0, 0], [1, 8, 1], [0, 1, 3]]
    panel.show_estimate(Estimate({"alpha": [3, 4]}, [1, 10], 3, 5, 1, labels, matrix), [])
    assert panel.confusion.labels == labels and panel.confusion.matrix.tolist() == matrix
    panel.show_estimate(Estimate({"alpha": [3, 4]}, [1, 10], 3, 5, 1), [])  # a model from before
    assert panel.confusion.labels == [] and panel.evaluation.rowCount() == 2


def test_the_conversation_check_shows_under_the_estimate(custom_window):
    from speech_app.gui.expectations import rate_text
    from speech_app.training.conversation import ConversationCheck

    panel = custom_window[0].custom.training
    check = ConversationCheck(4.0, 0.5, {"alpha": 0.9}, 3, [[0.7, 45.0], [0.9, 15.0]])
    panel.show_estimate(Estimate({"alpha": [3, 4]}, [1, 10], 3, 5, 1), [])
    panel.show_conversation(check)
    assert "What to expect" in panel.accuracy_label.text()
    assert f"about {rate_text(check.per_hour)} false alarms an hour" in panel.accuracy_label.text()
    assert check.lines()[0] in panel.accuracy_label.toolTip()


def test_training_on_too_few_takes_asks_first(custom_window, monkeypatch):
    window, _ = custom_window
    panel = window.custom.training
    window.custom.set_words("alpha")
    write_takes(window, ["alpha"])
    for extra in sorted(window.data.takes("alpha"))[custom_tab.TAKES_MINIMUM - 2 :]:
        extra.unlink()  # three takes left
    panel.synth_check.setChecked(False)
    asked = []
    monkeypatch.setattr(panel, "confirm_few_takes", lambda warnings: asked.append(warnings) or False)
    assert panel.start_training(window.custom.words()) is False
    assert "3 takes" in asked[0][0] and "Record more takes" in panel.stage_label.text()
    assert not panel.training


def test_training_without_takes_asks_for_them(custom_window):
    window, _ = custom_window
    window.custom.set_words("alpha")
    window.custom.training.synth_check.setChecked(False)
    assert window.custom.training.start_training(window.custom.words()) is False
    assert "Record takes first" in window.custom.training.stage_label.text()


@pytest.mark.slow
def test_training_can_be_cancelled(custom_window, qtbot):
    window, _ = custom_window
    panel = window.custom.training
    window.custom.set_words("alpha, beta")
    write_takes(window, ["alpha", "beta"])
    panel.recipe = CustomWordsRecipe(steps=500, batch_size=8, estimate_folds=0, device="cpu")
    panel.synth_check.setChecked(False)
    panel.start_training(window.custom.words())
    qtbot.waitUntil(lambda: len(panel.chart.batches) > 0, timeout=TRAIN_WAIT_MS)
    panel.cancel()
    qtbot.waitUntil(lambda: not panel.training, timeout=WAIT_MS)
    assert "cancelled" in panel.stage_label.text()
    assert not list(window.data.models_dir.glob("*.safetensors"))


def test_train_words_from_text_alone(custom_window, qtbot, monkeypatch):
    """No takes at all: the tab synthesizes the word plus filler words for `_unknown_` (as `train
    --synth` does), trains on them as synthetic speech, and a second run reuses the clips."""
    from speech_app.synth import text_training
    from speech_app.modelfile import read_metadata
    from speech_app.synth import available_engines

    engines = [e.name for e in available_engines()]
    if "espeak-ng" not in engines:
        pytest.skip("espeak-ng is not installed")
    monkeypatch.setattr(text_training, "FILLER_WORDS", ("hello", "water", "paper"))
    monkeypatch.setattr(text_training, "FILLER_CLIPS_PER_WORD", 2)
    window, _ = custom_window
    panel = window.custom.training
    window.custom.set_words("marvin")
    panel.recipe = TINY_RECIPE
    panel.synth_check.setChecked(True)
    panel.synth_spin.setValue(3)
    stages = []
    panel.worker.stage_changed.connect(stages.append)
    assert panel.start_training(window.custom.words())
    qtbot.waitUntil(lambda: not panel.training, timeout=TRAIN_WAIT_MS)
    assert panel.trained_model is not None, panel.stage_label.text()
    assert any("synthesizing 3 clips per word" in s for s in stages)
    # from text alone the final model averages runs, each announced so the progress bar may start over
    # (where side processes can run, the other runs train at once beside the first, which says so)
    runs = TINY_RECIPE.text_only_runs
    announced = ([f"training: run 1 of {runs}, with {runs - 1} more at once"]
                 if side_process_possible(torch.device("cpu")) else [f"training: run {k} of {runs}" for k in range(1, runs + 1)])
    assert runs > 1 and [s for s in stages if s.startswith("training")] == announced
    meta = read_metadata(panel.trained_model)
    assert meta["final_runs"] == runs
    assert meta["labels"] == ["_silence_", "_unknown_", "marvin"]
    # no takes: the word is synthetic speech only; the real clips are the bundled negatives
    assert meta["takes"] == {"marvin": 0} and meta["negatives"]["clips"] > 0
    assert meta["trained_on"]["sources"] == ["real", "synthetic"]
    [synthetic] = map(Path, meta["trained_on"]["synthetic"])
    assert synthetic.parent == window.data.synthetic_dir
    assert len(list((synthetic / "marvin").glob("*.wav"))) == 3
    near = set(text_training.near_miss_words(["marvin"]))
    assert near and {p.name for p in synthetic.iterdir() if p.is_dir()} == {"marvin", "hello", "water", "paper"} | near
    assert meta["trained_on"]["clips"]["training"]["_unknown_"] > 0
    clip_times = {p: p.stat().st_mtime_ns for p in synthetic.rglob("*.wav")}
    stages.clear()
    assert panel.start_training(window.custom.words())
    qtbot.waitUntil(lambda: not panel.training, timeout=TRAIN_WAIT_MS)
    assert {p: p.stat().st_mtime_ns for p in synthetic.rglob("*.wav")} == clip_times  # reused, not redone
