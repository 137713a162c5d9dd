"""Continuous speech as negatives of the custom-word recipe (speech_app/training/conversation.py and
the recipe's `conversation_share`): windows cut from recordings of people talking, drawn as `_unknown_`."""

from __future__ import annotations

import numpy as np
import pytest
from test_custom_words import write_takes

from conftest import SAMPLE_RATE, TINY_MODEL, TINY_TRAIN, WANTED_WORDS
from speech_app.model import ModelConfig
from speech_app.training.draws import sampling_weights
from speech_app.training.trainer import TrainConfig, train
from speech_app.audio import load_audio, write_wav
from speech_app.modelfile import load_model, read_metadata
from speech_app.training.conversation import WINDOW_HOP_FRACTION, conversation_windows
from speech_app.training.custom_words import (CONVERSATION, FILLER, NEAR_MISS, REAL_NEGATIVE, CustomWordsRecipe,
                                              draw_weights, train_custom_words)


def talk(folder, seconds=(4.0, 3.0), pause_s=1.0):
    """Recordings of 'speech' (noise with a syllable-rate envelope), each with a pause in the middle."""
    rng = np.random.default_rng(1)
    for n, length in enumerate(seconds):
        t = np.arange(int(length * SAMPLE_RATE)) / SAMPLE_RATE
        audio = 0.2 * rng.standard_normal(len(t)) * (0.6 + 0.4 * np.sin(2 * np.pi * 4 * t))
        middle = len(t) // 2
        audio[middle - int(pause_s * SAMPLE_RATE / 2) : middle + int(pause_s * SAMPLE_RATE / 2)] = 0
        write_wav(folder / f"talk{n}.wav", audio.astype(np.float32))
    return folder


def test_recordings_are_cut_into_windows_at_every_half_window_and_pauses_left_out(tmp_path):
    folder = talk(tmp_path / "speech", seconds=(4.0,), pause_s=1.0)
    windows = conversation_windows(sorted(folder.iterdir()), 0.5, cache_root=tmp_path / "cache")
    hop = 0.5 * WINDOW_HOP_FRACTION
    starts = np.arange(0, 4.0 - 0.5 + 1e-9, hop)
    quiet = [s for s in starts if 1.5 <= s and s + 0.5 <= 2.5]  # wholly inside the pause
    assert len(windows) == len(starts) - len(quiet) and quiet
    assert all(len(load_audio(w)) == SAMPLE_RATE // 2 for w in windows)
    written = [w.stat().st_mtime_ns for w in windows]
    again = conversation_windows(sorted(folder.iterdir()), 0.5, cache_root=tmp_path / "cache")
    assert again == windows and [w.stat().st_mtime_ns for w in again] == written  # cut once, then cached
    longer = conversation_windows(sorted(folder.iterdir()), 1.0, cache_root=tmp_path / "cache")
    assert len(load_audio(longer[0])) == SAMPLE_RATE and longer[0].parent != windows[0].parent


def test_conversation_windows_get_their_share_of_the_unknown_draws():
    recipe = CustomWordsRecipe(conversation_share=0.3)
    labels = np.array([1] * 10 + [2] * 3)
    groups = np.array([REAL_NEGATIVE] * 4 + [NEAR_MISS] * 2 + [FILLER] * 2 + [CONVERSATION] * 2 + [0] * 3)
    weights = draw_weights(labels, groups, 1, recipe)
    unknown = weights[labels == 1].sum()
    assert weights[groups == CONVERSATION].sum() / unknown == pytest.approx(0.3)
    assert weights[groups == REAL_NEGATIVE].sum() / unknown == pytest.approx(
        1 - 0.3 - recipe.near_miss_share - recipe.filler_share)


def test_the_recipe_trains_on_conversation_windows_when_given_speech(tiny_model, tmp_path):
    takes = write_takes(tmp_path / "takes", ("yes", "no"), 3)
    speech = talk(tmp_path / "speech")
    recipe = CustomWordsRecipe(steps=1, batch_size=8, warmup_steps=1, estimate_folds=0, negatives_per_word=1,
                               device="cpu")
    counts = {}
    for share in (0.0, 0.3):
        out = tmp_path / f"share{share}.safetensors"
        chosen = CustomWordsRecipe(**{**recipe.__dict__, "conversation_share": share, "conversation_speech": str(speech)})
        train_custom_words([takes], ["yes", "no"], out, chosen, init_from=load_model(tiny_model), progress=False)
        counts[share] = read_metadata(out)["trained_on"]["clips"]["training"]["_unknown_"]
    window = load_model(tmp_path / "share0.3.safetensors").features.clip_seconds
    expected = sum(len(range(0, int((s - window) * SAMPLE_RATE) + 1, int(window * SAMPLE_RATE * WINDOW_HOP_FRACTION)))
                   for s in (4.0, 3.0))
    assert 0 < counts[0.3] - counts[0.0] <= expected  # the windows, less those inside the pauses


def test_calibrated_thresholds_are_the_lowest_within_the_budget(tiny_model, tmp_path):
    from speech_app.inference import CommandClassifier
    from speech_app.streaming import RecognizerSettings
    from speech_app.training.conversation import calibrate_thresholds, decider, record_evaluations

    bundle = load_model(tiny_model)
    from conftest import ALL_WORDS, word_sound

    rng = np.random.default_rng(3)  # "conversation": the tiny model's word sounds back to back
    audio = np.concatenate([word_sound(ALL_WORDS[k % len(ALL_WORDS)], rng) for k in range(60)])
    evaluations = record_evaluations(CommandClassifier(bundle), audio)
    hours = len(audio) / SAMPLE_RATE / 3600
    floor = 0.1  # the tiny model is rarely sure: a low floor leaves room to calibrate
    for budget in (0.0, 3 / hours):  # none, or one false alarm a word in the whole stream
        thresholds = calibrate_thresholds(bundle.labels, evaluations, hours, budget_per_hour=budget, floor=floor)
        words = [w for w in bundle.labels if not w.startswith("_")]
        assert set(thresholds) == set(words)
        allowed = budget * hours / len(words)
        for word, threshold in thresholds.items():
            alone = {w: 1.01 for w in words if w != word}

            def fires(t):
                return len(decider(bundle.labels, RecognizerSettings(word_thresholds={**alone, word: t})).replay(evaluations))

            assert fires(threshold) <= allowed
            assert threshold == floor or fires(threshold - 0.01) > allowed
        assert budget > 0 or any(t > floor for t in thresholds.values())  # the stream made some word fire


def test_the_model_file_records_the_false_alarms_of_conversation_and_train_prints_them(tiny_model, tmp_path):
    from speech_app.training import custom_words

    takes = write_takes(tmp_path / "takes", ("yes", "no"), 3)
    recipe = CustomWordsRecipe(steps=1, batch_size=8, warmup_steps=1, estimate_folds=0, negatives_per_word=1,
                               device="cpu", conversation_budget=2.0)
    out = tmp_path / "m.safetensors"
    result = train_custom_words([takes], ["yes", "no"], out, recipe, init_from=load_model(tiny_model), progress=False)
    recorded = read_metadata(out)["conversation"]
    assert set(recorded["thresholds"]) == {"yes", "no"} and recorded["budget_per_hour"] == 2.0
    assert recorded["minutes"] > 1 and recorded["per_hour"] == recorded["false_alarms"] / (recorded["minutes"] / 60)
    from speech_app.training.conversation import CURVE_THRESHOLDS
    assert [t for t, _ in recorded["curve"]] == list(CURVE_THRESHOLDS) and all(r >= 0 for _, r in recorded["curve"])
    # no estimate, so no held-out takes: no share of the words heard, and the file says why
    assert recorded["heard"] is None and "no share of the words heard" in recorded["method"]
    printed = "\n".join(custom_words.summary_lines(result))
    assert f"{recorded['false_alarms']} in {recorded['minutes']:.1f} min of conversation" in printed
    assert "False alarms while people talk" in "\n".join(custom_words.card_lines(read_metadata(out)))


def test_text_alone_draws_fewer_conversation_windows_and_shares_over_one_are_refused():
    from speech_app.training.custom_words import text_only_settings

    recipe = CustomWordsRecipe()
    text_only = text_only_settings({"a": 0}, recipe)
    assert text_only.conversation_share == recipe.text_only_conversation_share < recipe.conversation_share
    assert text_only.near_miss_share + text_only.filler_share + text_only.conversation_share <= 1.0
    assert text_only_settings({"a": 0}, CustomWordsRecipe(conversation_share=0.2)).conversation_share == 0.2
    assert text_only_settings({"a": 5}, recipe).conversation_share == recipe.conversation_share
    labels, groups = np.array([1, 1, 2]), np.array([REAL_NEGATIVE, CONVERSATION, 0])
    with pytest.raises(ValueError, match="add up to 1.10"):
        draw_weights(labels, groups, 1, CustomWordsRecipe(conversation_share=0.5, filler_share=0.5))


def test_the_dataset_recipe_draws_conversation_windows_by_their_own_share_of_unknown():
    """Windows set apart in `_unknown_` get `apart_share` of its draws and do not grow the class: every
    class keeps the share of the draws it had without them."""
    labels = np.array([0] * 40 + [1] * 10 + [1] * 500 + [2] * 20)
    synthetic = np.zeros(len(labels), dtype=bool)
    apart = np.zeros(len(labels), dtype=bool)
    apart[50:550] = True
    without = sampling_weights(labels[~apart], synthetic[~apart], power=0.5, synthetic_share=0.5)
    weights = sampling_weights(labels, synthetic, power=0.5, synthetic_share=0.5, apart=apart, apart_share=0.3)
    for c in (0, 1, 2):
        assert weights[labels == c].sum() == pytest.approx(without[labels[~apart] == c].sum())
    assert weights[apart].sum() / weights[labels == 1].sum() == pytest.approx(0.3)


def test_dataset_training_with_conversation_records_its_windows(tiny_dataset, tmp_path):
    """`train --conversation DIR` (the dataset recipe): the windows join `_unknown_`'s training clips and
    the model file names the speech, how many windows and their share."""
    speech = talk(tmp_path / "speech")
    out = tmp_path / "m.safetensors"
    config = TrainConfig(**{**TINY_TRAIN, "window_seconds": 1.0, "conversation_share": 0.4})
    train([tiny_dataset.root], out, list(WANTED_WORDS), config, ModelConfig(**TINY_MODEL), progress=False,
          conversation_dirs=[speech])
    meta = read_metadata(out)
    windows = len(conversation_windows(sorted(speech.iterdir()), 1.0))
    assert meta["conversation_speech"] == {"folders": [str(speech)], "windows": windows, "unknown_share": 0.4}
    assert "conversation" in meta["trained_on"]["sources"] and windows > 0


def test_the_curve_records_the_share_of_held_out_takes_the_stream_hears(tiny_model, tmp_path, monkeypatch):
    """The third value of each curve row: the share of the estimate's held-out takes whose own word the
    streaming recognizer detects at that threshold (each take alone between silences), as a run of
    `StreamingRecognizer.feed` over the takes with the estimate run's model gives it; and the Live tab says it."""
    from speech_app.gui.expectations import ConversationCurve, sensitivity_text
    from speech_app.streaming import RecognizerSettings, StreamingRecognizer, recognize_samples
    from speech_app.training import conversation, custom_words, side_process
    from speech_app.training.conversation import CURVE_THRESHOLDS, TAKE_LEAD_SECONDS

    streamed = []  # per held-out take: its word, and whether it is heard at each threshold, by feeding the audio
    record_takes = conversation.record_takes

    def feed_too(classifier, takes, settings=None):
        lead = np.zeros(int(TAKE_LEAD_SECONDS * SAMPLE_RATE), dtype=np.float32)
        for word, audio in takes:
            heard = [word in {d.label for d in recognize_samples(
                StreamingRecognizer(classifier, RecognizerSettings(threshold=t)), np.concatenate([lead, audio]))}
                for t in CURVE_THRESHOLDS]
            streamed.append((word, heard))
        return record_takes(classifier, takes, settings)

    monkeypatch.setattr(conversation, "record_takes", feed_too)
    monkeypatch.setenv(side_process.DISABLE_ENV, "1")  # the estimate in this process: `streamed` must fill here
    takes = write_takes(tmp_path / "takes", ("yes", "no"), 6)
    # a fast rate, so that the tiny model's estimate run hears some takes over the curve's thresholds
    recipe = CustomWordsRecipe(steps=2, estimate_steps=40, batch_size=8, warmup_steps=1, learning_rate=0.01,
                               negatives_per_word=1, hard_negative_steps=0, device="cpu", conversation_budget=2.0)
    out = tmp_path / "m.safetensors"
    result = train_custom_words([takes], ["yes", "no"], out, recipe, init_from=load_model(tiny_model), progress=False)
    meta = read_metadata(out)
    recorded = meta["conversation"]
    held_out = sum(total for _, total in meta["estimate"]["per_word"].values())
    assert len(streamed) == held_out > 0  # every held-out take of the estimate, none of the others
    heard = np.logical_and.accumulate(np.array([h for _, h in streamed]), axis=1)  # and at every lower threshold
    column = [row[2] for row in recorded["curve"]]
    assert column == pytest.approx(heard.mean(axis=0).tolist(), abs=1e-4)
    assert all(0 <= s <= 1 for s in column) and all(a >= b for a, b in zip(column, column[1:]))
    assert recorded["heard"][1] == held_out and "held-out takes" in recorded["method"]
    assert f"{recorded['heard'][0]} of {held_out} held-out takes heard" in "\n".join(custom_words.summary_lines(result))
    # the Live tab's sensitivity at a stored threshold says the stored share
    curve = ConversationCurve.from_metadata(meta)
    k = len(CURVE_THRESHOLDS) // 2
    assert f"{column[k]:.0%} of your words heard" in sensitivity_text(curve, CURVE_THRESHOLDS[k])


def test_the_share_heard_is_what_the_stream_detects_at_each_threshold_and_never_rises():
    """heard_curve on recorded evaluations: per threshold, the share of takes whose own word a fresh
    streaming run (`feed`) detects at that threshold and at every lower one. Tone takes of falling
    loudness score lower and lower (the stand-in's logit grows with the tone), so the share falls."""
    from stand_ins import ToneClassifier, tone_word

    from speech_app.streaming import RecognizerSettings, StreamingRecognizer, recognize_samples
    from speech_app.training.conversation import CURVE_THRESHOLDS, TAKE_LEAD_SECONDS, heard_curve, record_takes

    classifier = ToneClassifier()
    takes = [(word, tone_word(word, amplitude=a)) for word in ("low", "high") for a in np.linspace(0.04, 0.3, 6)]
    takes.append(("mid", tone_word("low")))  # another word said: never heard as "mid"
    curve = heard_curve(classifier.labels, record_takes(classifier, takes))
    lead = np.zeros(int(TAKE_LEAD_SECONDS * SAMPLE_RATE), dtype=np.float32)
    fed = np.array([[word in {d.label for d in recognize_samples(
        StreamingRecognizer(classifier, RecognizerSettings(threshold=t)), np.concatenate([lead, audio]))}
        for word, audio in takes] for t in CURVE_THRESHOLDS])
    expected = np.logical_and.accumulate(fed, axis=0).mean(axis=1)
    assert [t for t, _ in curve] == list(CURVE_THRESHOLDS)
    assert [s for _, s in curve] == pytest.approx(expected.tolist())
    shares = [s for _, s in curve]
    assert all(a >= b for a, b in zip(shares, shares[1:])) and shares[0] < 1 and shares[0] > shares[-1]
    assert heard_curve(classifier.labels, []) == []
