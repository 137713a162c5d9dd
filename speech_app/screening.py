"""Screening a file's windows: which model evaluations can change a detection, known before running them all.

Scanning a recording (`speech-app listen --file`), the recognizer knows many hops ahead which windows it will
score, and most of a long recording is speech that is no command: every word's probability is near zero. The
decision (streaming.py) detects a word only when its *smoothed* score, the mean of the last A evaluations
(A = `averaged_evaluations`), is at or above its threshold t for H evaluations in a row (H =
`held_evaluations`). Probabilities are at most 1, so one evaluation with a word's probability under

    cut = A * t - (A - 1)                      (0.3 for t = 0.65 and A = 2, a custom model's 250 ms average)

keeps that word's smoothed score under t for every average it is part of, whatever the others are. So:

1. score every A-th window first (the "anchors": each average holds one);
2. an average is "alive" while some word is not kept under its threshold by a row known so far, and only a
   run of H alive averages in a row can detect anything: a window is scored too when one of the averages it
   is part of lies in such a run;
3. the rest are never scored: the decision learns only that every word stayed under its threshold there,
   which is all it would have used of them (`_above` counts restart; no detection).

A word that was detected and is not yet re-armed (its smoothed score must fall under `release_fraction * t`)
and a word waiting for its prefix rivals read every evaluation's score: the recognizer scores the windows
left out on demand while it is in either state. The detections are those of scoring every window.
"""

from __future__ import annotations

import numpy as np

# a row must lie this far under the cut to be trusted to keep an average under its threshold: the float32
# mean of A probabilities (each at most 1 plus a rounding) then cannot round up onto the threshold
CUT_MARGIN = 1e-3
ANCHOR_PHASE = 0  # anchors are the hops whose absolute index (from the stream's start) is a multiple of A


def row_cuts(thresholds: np.ndarray, averaged: int) -> np.ndarray | None:
    """Per word: the probability under which one evaluation keeps every average it is part of under the
    word's threshold; None when no word has one (an average of one evaluation, or thresholds too low)."""
    cuts = averaged * np.asarray(thresholds, dtype=np.float64) - (averaged - 1) - CUT_MARGIN
    return cuts if averaged > 1 and (cuts > 0).any() else None


def anchor_rows(hop_indexes: np.ndarray, averaged: int) -> np.ndarray:
    """The evaluations scored first: every `averaged`-th hop of the stream, so that each average holds one."""
    return np.asarray(hop_indexes) % averaged == ANCHOR_PHASE


def needed_rows(word_rows: np.ndarray, before: np.ndarray, cuts: np.ndarray, first_index: int,
                averaged: int, held: int) -> np.ndarray:
    """Which of these evaluations must be scored for the decision to be the one every score would give.

    word_rows: (N, words) the words' probabilities of this block's evaluations, NaN where not scored (yet);
    before: (A - 1, words) the evaluations just before them (NaN: not scored; fewer rows at a stream's start);
    first_index: the absolute index of the first evaluation (the first A - 1 of a stream average fewer rows,
    so the cut does not hold there); averaged, held: A and H (1 where a sure score waives the hold). Evaluations after the block are unknown: the
    last ones' averages are treated as alive."""
    count = len(word_rows)
    known = np.concatenate([np.asarray(before, dtype=np.float32).reshape(-1, word_rows.shape[1]), word_rows])
    low = known < cuts  # (A - 1 + N, words); NaN compares False: an unknown row keeps nothing low
    lead = len(known) - count  # rows of `before`
    # average i (ending at evaluation i) spans rows i - A + 1 .. i: killed for a word when one of them is low
    killed = np.zeros((count, word_rows.shape[1]), dtype=bool)
    for back in range(averaged):
        rows_from = lead - back
        if rows_from < 0:  # the stream's first rows: nothing before them
            killed[-rows_from:] |= low[: count + rows_from]
        else:
            killed |= low[rows_from : rows_from + count]
    alive = ~killed.all(axis=1) | (first_index + np.arange(count) < averaged - 1)
    # alive averages that could be part of H in a row (runs may continue from before the block and after it)
    padded = np.concatenate([np.ones(held - 1, bool), alive, np.ones(held - 1, bool)])
    window_all = _sliding_all(padded, held)  # run starting at each padded position
    in_run = _sliding_any(window_all, held)  # average i lies in a run starting at i .. i + H - 1 (padded)
    # evaluation m is part of averages m .. m + A - 1 (those past the block's end: alive)
    deciding = np.concatenate([in_run, np.ones(averaged - 1, bool)])
    return np.isnan(word_rows).any(axis=1) & _sliding_any(deciding, averaged)[:count]


def _sliding_all(mask: np.ndarray, width: int) -> np.ndarray:
    """all(mask[i : i + width]) for every i with a whole window."""
    sums = np.convolve(mask.astype(np.int32), np.ones(width, np.int32), "valid")
    return sums == width


def _sliding_any(mask: np.ndarray, width: int) -> np.ndarray:
    """any(mask[i : i + width]) for every i with a whole window."""
    return np.convolve(mask.astype(np.int32), np.ones(width, np.int32), "valid") > 0
