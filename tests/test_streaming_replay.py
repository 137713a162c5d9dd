"""Deciding again on recorded evaluations (`StreamingRecognizer.recorded` and `replay`): what the
conversation benchmark uses to draw the curve of false alarms and takes heard against the threshold
without running the model once per threshold. It must give exactly what a run at that setting gives."""

from __future__ import annotations

import numpy as np
from stand_ins import ToneClassifier, tone_word

from speech_app.audio import SAMPLE_RATE
from speech_app.levels import Evaluations
from speech_app.streaming import RecognizerSettings, StreamingRecognizer, recognize_samples

BLOCK_SAMPLES = 1_600  # as `speech-app listen --file`


def uneven_words() -> np.ndarray:
    """Words from faint to loud, so that each threshold keeps a different set of them."""
    parts = [np.zeros(SAMPLE_RATE // 2, np.float32)]
    for word, amplitude in (("low", 0.17), ("mid", 0.2), ("high", 0.23), ("low", 0.3), ("mid", 0.15)):
        parts += [tone_word(word, amplitude=amplitude), np.zeros(int(1.3 * SAMPLE_RATE), np.float32)]
    return np.concatenate(parts)


def run(settings: RecognizerSettings, signal: np.ndarray) -> list:
    return recognize_samples(StreamingRecognizer(ToneClassifier(), settings), signal, block_samples=BLOCK_SAMPLES)


def test_replayed_evaluations_give_what_a_run_at_each_setting_gives():
    signal = uneven_words()
    recorder = StreamingRecognizer(ToneClassifier())
    recorder.recorded = Evaluations()  # with the levels: the pause rule replays too
    recognize_samples(recorder, signal, block_samples=BLOCK_SAMPLES)
    assert len(recorder.recorded) == recorder.evaluations
    seen = set()
    for threshold in (0.3, 0.5, 0.6, 0.7, 0.8, 0.9):
        for averaging_ms in (250.0, 500.0):
            settings = RecognizerSettings(threshold=threshold, averaging_ms=averaging_ms)
            classifier = ToneClassifier()
            replayed = StreamingRecognizer(classifier, settings).replay(recorder.recorded)
            assert replayed == run(settings, signal)
            assert classifier.windows_seen == 0  # decisions only: the model never ran
            seen.add(tuple(d.label for d in replayed))
    assert len(seen) >= 3  # the settings really gave different detections


def test_replay_starts_over_and_records_nothing_new():
    signal = uneven_words()
    recognizer = StreamingRecognizer(ToneClassifier(), RecognizerSettings(threshold=0.5))
    recognizer.recorded = Evaluations()
    first = recognize_samples(recognizer, signal, block_samples=BLOCK_SAMPLES)
    recorded = Evaluations(recognizer.recorded, recognizer.recorded.levels)
    assert recognizer.replay(recorded) == first == recognizer.replay(recorded)
    assert len(recognizer.recorded) == len(recorded)


SCRIPTED_LABELS = ["_silence_", "_unknown_", "yes"]


def word_after_silence(word_scores: list[float]) -> list[tuple[int, np.ndarray]]:
    """Recorded evaluations, one a hop: four of silence, then "yes" at these scores (the rest `_unknown_`)."""
    hop = RecognizerSettings().hop_samples
    rows = [np.array([1.0, 0.0, 0.0])] * 4 + [np.array([0.0, 1.0 - p, p]) for p in word_scores]
    return [((i + 1) * hop, row) for i, row in enumerate(rows)]


def test_a_sure_score_is_detected_without_waiting_out_the_hold():
    from speech_app.training.conversation import decider

    labels, hop = SCRIPTED_LABELS, RecognizerSettings().hop_samples

    def detected_at(word_scores, sure):
        settings = RecognizerSettings(averaging_ms=RecognizerSettings().hop_ms, hold_ms=RecognizerSettings().hop_ms,
                                      pause_ms=0.0, sure_score=sure)
        return [round(d.time_s * SAMPLE_RATE / hop) for d in decider(labels, settings).replay(word_after_silence(word_scores))]

    # the word's first evaluation is the 5th: held, it is detected at the 6th; sure of it, at once
    assert detected_at([0.99, 0.99, 0.0], sure=None) == [6]
    assert detected_at([0.99, 0.99, 0.0], sure=0.95) == [5]
    assert detected_at([0.90, 0.90, 0.0], sure=0.95) == [6]  # under the sure score: the hold as before
    assert detected_at([0.99, 0.0, 0.0], sure=None) == []  # one peak alone is what the hold keeps out
    assert detected_at([0.99, 0.0, 0.0], sure=0.95) == [5]


def test_the_newer_evaluation_weighs_more_so_a_rising_word_counts_one_hop_sooner():
    from speech_app.training.conversation import decider

    labels, hop = SCRIPTED_LABELS, RecognizerSettings().hop_samples

    def detected(word_scores, weighting):
        settings = RecognizerSettings(pause_ms=0.0, recent_weighting=weighting)  # 250 ms: two evaluations, held two
        return [(round(d.time_s * SAMPLE_RATE / hop), round(d.confidence, 3))
                for d in decider(labels, settings).replay(word_after_silence(word_scores))]

    rising = [0.3, 0.95, 0.95, 0.95, 0.0]
    # a plain mean: (0.3 + 0.95) / 2 = 0.625 at the 6th evaluation is under 0.72, so the score crosses at the 7th and
    # is held at the 8th; the newer counting twice: (0.3 + 2 * 0.95) / 3 = 0.733 crosses at the 6th, held at the 7th
    assert detected(rising, weighting=0.0) == [(8, 0.95)]
    assert detected(rising, weighting=1.0) == [(7, 0.95)]
    assert RecognizerSettings().recent_weighting == 1.0
    # one peak alone still does not pass the hold: (0 + 2 * 0.99) / 3 = 0.66, then the peak is the older one
    assert detected([0.99, 0.0, 0.0], weighting=1.0) == detected([0.99, 0.0, 0.0], weighting=0.0) == []
