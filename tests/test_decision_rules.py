"""The streaming recognizer's decision rules for custom wake words: a threshold per word and how long
a score must stay above it (`RecognizerSettings.word_thresholds`, `hold_ms`). Checked on made-up
evaluations (`replay`), one evaluation averaged, so each rule is seen exactly."""

from __future__ import annotations

import numpy as np

from speech_app.streaming import RecognizerSettings, StreamingRecognizer

LABELS = ["_silence_", "_unknown_", "low", "mid", "high"]
HOP = RecognizerSettings().hop_samples


def no_hold(**fields) -> RecognizerSettings:
    """Settings whose words are detected at the first evaluation at or above their threshold."""
    return RecognizerSettings(hold_ms=0.0, **fields)


class NoModel:
    labels = LABELS
    window_samples = 1

    def probabilities(self, waves):
        raise AssertionError("replay runs no model")


def evaluations(*scores: dict[str, float]) -> list[tuple[int, np.ndarray]]:
    """One evaluation per dict of word scores, the rest of the probability on `_unknown_`."""
    rows = []
    for k, words in enumerate(scores, start=1):
        row = np.zeros(len(LABELS), np.float32)
        for word, p in words.items():
            row[LABELS.index(word)] = p
        row[1] = 1.0 - row.sum()
        rows.append((k * HOP, row))
    return rows


def detect(settings: RecognizerSettings, *scores: dict[str, float]) -> list[tuple[int, str]]:
    """(evaluation number, label) of each detection, with no averaging."""
    settings.averaging_ms, settings.min_evaluations = settings.hop_ms, 1
    settings.pause_ms = 0.0  # made-up evaluations have no audio, so no pause to look for
    found = StreamingRecognizer(NoModel(), settings).replay(evaluations(*scores))
    return [(round(d.time_s * 16_000 / HOP), d.label) for d in found]


QUIET = {"mid": 0.0}


def test_a_word_with_its_own_threshold_is_held_to_it_and_the_others_to_the_common_one():
    stream = [QUIET, {"mid": 0.6}, QUIET, *[QUIET] * 8, {"low": 0.6}, QUIET]
    assert detect(no_hold(), *stream) == []
    assert detect(no_hold(word_thresholds={"mid": 0.5}), *stream) == [(2, "mid")]
    assert detect(no_hold(word_thresholds={"mid": 0.5, "low": 0.65}), *stream) == [(2, "mid")]
    assert detect(no_hold(threshold=0.5, word_thresholds={"mid": 0.9}), *stream) == [(12, "low")]


def test_the_word_furthest_above_its_own_threshold_wins():
    both = {"mid": 0.45, "high": 0.4}
    assert detect(no_hold(threshold=0.3), both) == [(1, "mid")]
    assert detect(no_hold(threshold=0.3, word_thresholds={"high": 0.2}), both) == [(1, "high")]


def test_a_word_is_detected_only_once_its_score_stays_above_the_threshold_for_the_hold_time():
    brief, lasting = [{"mid": 0.9}] * 2, [{"high": 0.9}] * 5
    stream = [QUIET, *brief, *[QUIET] * 10, *lasting, QUIET]
    assert detect(no_hold(), *stream) == [(2, "mid"), (14, "high")]
    assert RecognizerSettings().held_evaluations == 2  # the default: one evaluation more than the first
    assert detect(RecognizerSettings(), *stream) == [(3, "mid"), (15, "high")]
    hold = RecognizerSettings(hold_ms=2 * RecognizerSettings().hop_ms)  # three evaluations in a row
    assert hold.held_evaluations == 3
    assert detect(hold, *stream) == [(16, "high")]


def test_a_dip_below_the_threshold_restarts_the_hold():
    dipping = [{"mid": 0.9}, {"mid": 0.9}, {"mid": 0.6}, {"mid": 0.9}, {"mid": 0.9}, {"mid": 0.9}]
    assert detect(RecognizerSettings(hold_ms=2 * RecognizerSettings().hop_ms), *dipping) == [(6, "mid")]
