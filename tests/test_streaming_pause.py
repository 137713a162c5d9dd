"""The "pause before the word" rule (`RecognizerSettings.pause_ms`, speech_app/levels.py): a word is detected
only after a stretch of relative quiet; the same word inside running sound is not. Checked with the tone
stand-in model on made-up streams: tone words after silence, and the same words with syllable-like bursts of
noise right before them."""

from __future__ import annotations

import numpy as np
import pytest
from stand_ins import ToneClassifier, tone_word

from speech_app.audio import SAMPLE_RATE
from speech_app.levels import Evaluations, FrameLevels, pause_before
from speech_app.streaming import RecognizerSettings, StreamingRecognizer, recognize_samples

BLOCK_SAMPLES = 1_600  # as `speech-app listen --file`
PAUSE_MS = 400.0
ROOM_NOISE = 0.002  # the faint noise of a quiet room under everything: no frame is digital silence
SYLLABLE_S, DIP_S = 0.15, 0.04  # running "speech": bursts of noise with short dips between them, never a pause
SYLLABLE_LEVEL = 0.1  # the bursts' RMS: loud, as a voice, and broadband (the tone model hears no word in them)


def running_sound(seconds: float, rng: np.random.Generator) -> np.ndarray:
    """Syllable-like bursts of noise, each followed by a short dip to a fifth of its level."""
    period = int((SYLLABLE_S + DIP_S) * SAMPLE_RATE)
    envelope = np.tile(np.r_[np.ones(int(SYLLABLE_S * SAMPLE_RATE)), np.full(period - int(SYLLABLE_S * SAMPLE_RATE), 0.2)],
                       int(np.ceil(seconds * SAMPLE_RATE / period)))[: int(seconds * SAMPLE_RATE)]
    return (SYLLABLE_LEVEL * envelope * rng.standard_normal(len(envelope))).astype(np.float32)


def stream(rng: np.random.Generator) -> tuple[np.ndarray, list[str]]:
    """Three words after silence ("low", "mid", "high") and two inside running sound ("mid", "low"): the
    labels of the three that follow a pause."""
    silence = lambda s: np.zeros(int(s * SAMPLE_RATE), np.float32)  # noqa: E731
    parts = [silence(1.5), tone_word("low"), silence(1.5),
             running_sound(3.0, rng), tone_word("mid"), running_sound(1.5, rng), silence(1.5),
             tone_word("mid"), silence(1.5),
             running_sound(3.0, rng), tone_word("low"), running_sound(1.5, rng), silence(1.5),
             tone_word("high"), silence(1.5)]
    signal = np.concatenate(parts)
    return signal + (ROOM_NOISE * rng.standard_normal(len(signal))).astype(np.float32), ["low", "mid", "high"]


class LevelFreeToneClassifier(ToneClassifier):
    """The tone model on each window scaled to a fixed peak: its scores do not depend on the stream's level
    (as a real model's hardly do), so that only the pause rule could make them differ."""

    def probabilities(self, waves: np.ndarray) -> np.ndarray:
        waves = np.asarray(waves, dtype=np.float64)
        peak = np.maximum(np.abs(waves).max(axis=1, keepdims=True), 1e-9)
        return super().probabilities(0.4 * waves / peak)


def run(signal: np.ndarray, pause_ms: float, classifier=None) -> list[str]:
    recognizer = StreamingRecognizer(classifier or ToneClassifier(), RecognizerSettings(pause_ms=pause_ms))
    return [d.label for d in recognize_samples(recognizer, signal, block_samples=BLOCK_SAMPLES)]


def test_a_word_after_silence_is_detected_and_the_same_word_inside_running_sound_is_not():
    signal, after_pauses = stream(np.random.default_rng(1))
    assert run(signal, 0.0) == ["low", "mid", "mid", "low", "high"]  # without the rule: every word
    assert run(signal, PAUSE_MS) == after_pauses


def test_a_noisy_room_is_not_running_speech():
    """Steady noise only 12 dB under the words: the stretch before each word is as quiet as the room gets."""
    rng = np.random.default_rng(2)
    signal, _ = stream(rng)
    words = np.concatenate([np.zeros(SAMPLE_RATE, np.float32), tone_word("low"), np.zeros(SAMPLE_RATE, np.float32),
                            tone_word("high"), np.zeros(SAMPLE_RATE, np.float32)])
    noisy = words + (0.05 * rng.standard_normal(len(words))).astype(np.float32)
    assert run(noisy, PAUSE_MS) == run(noisy, 0.0) == ["low", "high"]


def test_the_decisions_do_not_depend_on_the_level_of_the_stream():
    signal, after_pauses = stream(np.random.default_rng(3))
    found = {scale: run(signal * scale, PAUSE_MS, LevelFreeToneClassifier()) for scale in (0.05, 1.0, 2.0)}
    assert found[0.05] == found[1.0] == found[2.0] == after_pauses
    # the rule itself, hop by hop, on the stream at both levels
    hops = range(SAMPLE_RATE // 8, len(signal), SAMPLE_RATE // 8)
    decided = []
    for scale in (0.05, 2.0):
        levels = FrameLevels(None)
        levels.feed(signal * scale)
        decided.append([pause_before(levels, at, PAUSE_MS) for at in hops])
    assert decided[0] == decided[1] and any(decided[0]) and not all(decided[0])


def test_replay_with_the_recorded_levels_gives_what_a_run_gives():
    signal, _ = stream(np.random.default_rng(4))
    recorder = StreamingRecognizer(ToneClassifier())
    recorder.recorded = Evaluations()
    recognize_samples(recorder, signal, block_samples=BLOCK_SAMPLES)
    assert len(recorder.recorded.levels) == (len(signal) + SAMPLE_RATE) // 160  # the file's tail of silence too
    seen = set()
    for pause_ms in (0.0, 200.0, PAUSE_MS, 800.0):
        settings = RecognizerSettings(pause_ms=pause_ms)
        classifier = ToneClassifier()
        replayed = StreamingRecognizer(classifier, settings).replay(recorder.recorded)
        assert replayed == recognize_samples(StreamingRecognizer(ToneClassifier(), settings), signal,
                                             block_samples=BLOCK_SAMPLES)
        assert classifier.windows_seen == 0
        seen.add(tuple(d.label for d in replayed))
    assert len(seen) >= 2


def test_the_levels_do_not_depend_on_how_the_stream_is_cut_up():
    signal, _ = stream(np.random.default_rng(5))
    whole, pieces = FrameLevels(None), FrameLevels(None)
    whole.feed(signal)
    for start in range(0, len(signal), 777):
        pieces.feed(signal[start : start + 777])
    assert np.array_equal(whole.all(), pieces.all())


def test_a_replay_without_levels_cannot_apply_the_rule():
    recorder = StreamingRecognizer(ToneClassifier())
    recorder.recorded = []
    recognize_samples(recorder, tone_word("low"), block_samples=BLOCK_SAMPLES)
    with pytest.raises(ValueError, match="levels"):
        StreamingRecognizer(ToneClassifier(), RecognizerSettings(pause_ms=PAUSE_MS)).replay(recorder.recorded)


def test_recorded_evaluations_and_levels_survive_a_save_and_load(tmp_path):
    from speech_app.levels import Evaluations

    rows = [(2000 * (i + 1), np.full(3, i / 10, dtype=np.float32)) for i in range(4)]
    recorded = Evaluations(rows, np.arange(40, dtype=np.float32) - 60.0)
    recorded.save(tmp_path / "e.npz")
    loaded = Evaluations.load(tmp_path / "e.npz")
    assert [a for a, _ in loaded] == [a for a, _ in rows]
    assert all(np.array_equal(x, y) for (_, x), (_, y) in zip(loaded, rows))
    assert np.array_equal(loaded.levels, recorded.levels)
    assert Evaluations.load(tmp_path / "missing.npz") is None
    np.savez(tmp_path / "old.npz", at=np.zeros(1, dtype=np.int64), rows=np.zeros((1, 3), np.float32))
    assert Evaluations.load(tmp_path / "old.npz") is None  # from before the levels were kept: recorded again
