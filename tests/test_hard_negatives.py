"""The custom recipe's second pass on hard negatives (speech_app/training/hard_negatives.py): the windows of
learn-side conversation a trained model fires on become `_unknown_` draws of a short fine-tuning plan."""

from __future__ import annotations

import numpy as np
import pytest
from test_conversation_negatives import talk
from test_custom_words import write_takes

from conftest import SAMPLE_RATE
from speech_app.audio import load_audio, write_wav
from speech_app.modelfile import load_model, read_metadata
from speech_app.streaming import DETECTION_THRESHOLD
from speech_app.training import hard_negatives
from speech_app.training.custom_words import CONVERSATION, HARD_NEGATIVE, CustomWordsRecipe, train_custom_words

WINDOW = SAMPLE_RATE // 2


class LoudnessClassifier:
    """Says "yes" with the window's peak amplitude as its probability: a model that fires on loud windows."""

    labels = ["_silence_", "_unknown_", "yes"]
    window_samples = WINDOW

    def probabilities(self, waves):
        peak = np.abs(np.asarray(waves)).max(axis=1)
        return np.stack([np.zeros_like(peak), 1.0 - peak, peak], axis=1)


def test_the_windows_kept_are_the_whole_windows_of_the_file_that_reach_the_fraction(tmp_path):
    audio = np.zeros(4 * SAMPLE_RATE, dtype=np.float32)
    audio[2 * SAMPLE_RATE : 2 * SAMPLE_RATE + 800] = 0.6  # only windows holding the burst score 0.6
    write_wav(tmp_path / "talk.wav", audio)
    decoded = load_audio(tmp_path / "talk.wav")
    for fraction, expect_any in ((0.5, True), (0.9, False)):  # 0.6 >= 0.35, 0.6 < 0.63
        found = hard_negatives.firing_windows(LoudnessClassifier(), [tmp_path / "talk.wav"], fraction)
        assert bool(len(found.clips)) == expect_any
        assert np.all(found.scores >= fraction * DETECTION_THRESHOLD)
        for clip, (path, start) in zip(found.clips, found.origins):
            assert path == str(tmp_path / "talk.wav") and 0 <= start <= len(decoded) - WINDOW
            assert start <= 2 * SAMPLE_RATE < start + WINDOW  # the burst is inside
            assert np.allclose(clip / 32767.0, decoded[start : start + WINDOW], atol=1e-4)
    found = hard_negatives.firing_windows(LoudnessClassifier(), [tmp_path / "talk.wav"], 0.5, limit=2)
    assert len(found.clips) == 2 and np.all(np.diff(found.scores) <= 0)  # the highest first


def test_the_second_pass_listens_only_to_the_speech_it_trains_on_and_draws_what_fired(tiny_model, tmp_path,
                                                                                        monkeypatch):
    from speech_app.training import conversation

    takes = write_takes(tmp_path / "takes", ("yes", "no"), 3)
    speech = talk(tmp_path / "speech")
    heard, plans = [], []
    real = hard_negatives.firing_windows

    def firing(classifier, files, fraction=hard_negatives.SCORE_FRACTION, limit=hard_negatives.MAX_WINDOWS):
        heard.extend(files)
        return real(classifier, files, fraction=0.0, limit=limit)  # every window "fires" on the tiny model

    monkeypatch.setattr(hard_negatives, "firing_windows", firing)
    recipe = CustomWordsRecipe(steps=1, batch_size=8, warmup_steps=1, estimate_folds=0, negatives_per_word=1,
                               device="cpu", conversation_speech=str(speech), hard_negative_steps=2,
                               conversation_budget=0)
    from speech_app.training.trainer import Trainer

    execute = Trainer.execute

    def record_plan(self, plan, on_stage=None, **options):
        plans.append((plan, self.splits["training"][0].copy(), self.index.counts()["training"]["_unknown_"]))
        return execute(self, plan, on_stage, **options)

    monkeypatch.setattr(Trainer, "execute", record_plan)
    out = tmp_path / "m.safetensors"
    train_custom_words([takes], ["yes", "no"], out, recipe, init_from=load_model(tiny_model), progress=False)
    assert sorted(heard) == sorted(speech.iterdir())  # the learn-side speech, never the calibration speech
    assert not set(heard) & set(conversation.speech_files(conversation.CALIBRATION_SPEECH))
    (first, clips_before, _), (second, clips_after, unknown_after) = plans
    assert second.runs[0].weights.shape == (len(clips_after),) and len(clips_after) > len(clips_before)
    added = second.runs[0].weights[len(clips_before):]
    assert np.all(added > 0)  # every window that fired is drawn
    assert second.schedule.steps == 1  # never more batches than the first pass (1 here)
    windows = read_metadata(out)["hard_negatives"]["windows"]
    assert read_metadata(out)["hard_negatives"]["steps"] == 1
    assert windows == len(clips_after) - len(clips_before)
    assert read_metadata(out)["trained_on"]["clips"]["training"]["_unknown_"] == unknown_after  # counted in the file


def test_the_hard_windows_take_their_share_of_the_conversation_draws():
    recipe = CustomWordsRecipe(hard_negative_share=0.4)
    draws = hard_negatives.second_pass_draws(recipe, 1, HARD_NEGATIVE, CONVERSATION)
    unknown = draws[1].groups
    assert unknown[HARD_NEGATIVE] == pytest.approx(0.4 * recipe.conversation_share)
    assert unknown[CONVERSATION] + unknown[HARD_NEGATIVE] == pytest.approx(recipe.conversation_share)
    assert sum(unknown.values()) == pytest.approx(1.0)
