"""Screening a file's windows: which model evaluations can change a detection, known before running them all.

Scanning a recording (`speech-app listen --file`), the recognizer knows many hops ahead which windows it will
score, and most of a long recording is speech that is no command: every word's probability is near zero. The
decision (streaming.py) detects a word only when its *smoothed* score, the mean of the last A evaluations
(A = `averaged_evaluations`), is at or above its threshold t for H evaluations in a row (H =
`held_evaluations`; 1 where a sure score may waive the hold). The average weighs evaluation i by w_i
(`averaging_weights`, W their sum). Probabilities are at most 1, so it can reach t only if each of its
evaluations gives the word at least

    cut = 1 - W * (1 - t) / min(w)             (a plain mean, every w 1: A * t - (A - 1))

0.3 for t = 0.65 and a plain mean of A = 2 (a custom model's 250 ms average); 0.16 for the streaming default,
t = 0.72 with the newer of two evaluations weighing 2 (an average of fewer evaluations, at a stream's start,
needs more). A detection of a word therefore needs the
word at or above its cut in all of the last H + A - 1 evaluations (the "span" of the run). So:

1. score every span-th window first (the "anchors"): each span of evaluations holds one;
2. score too every window that lies in a span where some word is not yet known to fall under its cut;
3. leave the rest unscored: every span they lie in holds, for every word, an evaluation under its cut, so no
   run of H averages at or above the threshold can include them, and the decision learns only that every word
   stayed under its threshold there, which is all it would have used of them (its `_above` counts restart).

A word that was detected and is not yet re-armed (its smoothed score must fall under `release_fraction * t`)
and a word waiting for its prefix rivals read every evaluation's score: the recognizer scores the windows
left out on demand while it is in either state. The detections are those of scoring every window.
"""

from __future__ import annotations

import numpy as np

# a row must lie this far under the cut to be trusted to keep an average under its threshold: the float32
# mean of A probabilities (each at most 1 plus a rounding) then cannot round up onto the threshold
CUT_MARGIN = 1e-3
ANCHOR_PHASE = 0  # anchors are the evaluations whose absolute index (from the stream's start) is a multiple of the span


def row_cuts(thresholds: np.ndarray, weights: np.ndarray) -> np.ndarray | None:
    """Per word: the probability under which one evaluation keeps every average it is part of (weighted by
    `weights`, one per averaged evaluation) under the word's threshold; None when no word has one (an average
    of one evaluation, or thresholds too low)."""
    weights = np.asarray(weights, dtype=np.float64)
    cuts = 1.0 - weights.sum() * (1.0 - np.asarray(thresholds, dtype=np.float64)) / weights.min() - CUT_MARGIN
    return cuts if len(weights) > 1 and (cuts > 0).any() else None


def run_span(averaged: int, held: int) -> int:
    """Evaluations a detection reads: H averages in a row of A evaluations each."""
    return held + averaged - 1


def anchor_rows(indexes: np.ndarray, span: int) -> np.ndarray:
    """The evaluations scored first (absolute indexes): every span-th, so that each span holds one."""
    return np.asarray(indexes) % span == ANCHOR_PHASE


def needed_rows(word_rows: np.ndarray, before: np.ndarray, cuts: np.ndarray, span: int) -> np.ndarray:
    """Which of these evaluations must be scored for the decisions to be those that every score would give.

    word_rows: (N, words) the words' probabilities of this block's evaluations, NaN where not scored (yet);
    before: the evaluations just before them, oldest first (NaN: not scored; fewer than span - 1 at a stream's
    start, where a run may be shorter: the missing ones count as not scored); span: `run_span`. Evaluations
    after the block are not known yet either: spans reaching past its end stay open."""
    words = word_rows.shape[1]
    before = np.asarray(before, dtype=np.float32).reshape(-1, words)
    before = before[max(0, len(before) - (span - 1)) :]
    before = np.concatenate([np.full((span - 1 - len(before), words), np.nan, np.float32), before])
    lead, count = span - 1, len(word_rows)
    low = np.concatenate([before, word_rows, np.full((span - 1, words), np.nan, np.float32)]) < cuts  # NaN: not low
    lows = np.concatenate([np.zeros((1, words), np.int64), np.cumsum(low, axis=0)])
    # span p covers rows p .. p + span - 1 (of `low`); open while some word has no row under its cut in it
    open_spans = ((lows[span:] - lows[:-span]) == 0).any(axis=1)[: lead + count]
    # row q lies in spans q - span + 1 .. q: count the open ones with a running sum
    opened = np.concatenate([[0], np.cumsum(np.concatenate([np.zeros(span - 1, bool), open_spans]))])
    rows = np.arange(lead, lead + count)
    return np.isnan(word_rows).any(axis=1) & (opened[rows + span] - opened[rows] > 0)
