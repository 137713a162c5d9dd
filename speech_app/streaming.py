"""Streaming recognition: a stream of 16 kHz samples in, one detection per spoken command out.

The same class serves the microphone (the GUI's live tab, `speech-app listen`) and files, so the
live path can be tested on recordings. No Qt, no terminal, no audio device here.

How a stream becomes detections (the scheme of TensorFlow's `RecognizeCommands`):
1. The model looks at the last `window_samples` of audio every `hop_ms` of audio *fed* (counted
   in samples, never per block), so the result does not depend on how the stream is cut up.
2. The class probabilities of the last `averaging_ms` of evaluations are averaged, which smooths
   out a single wrong evaluation; the newer evaluations weigh more (`recent_weighting`: with the default
   two evaluations, the newer counts twice), so a word that has just ended counts sooner.
3. A word is detected when the best averaged score among the words (not `_silence_` or
   `_unknown_`) has been at or above `threshold` for `hold_ms` (two evaluations in a row), and
   - no detection was made in the last `suppression_ms` (one word spreads over several hops), and
   - the same word is detected again only after its smoothed score has dropped below
     `release_fraction * threshold`: a word stays inside the model's window for a window length
     after it ends, and a long word would otherwise be counted twice.
4. Words that share a start ("lights on", "lights off") wait `prefix_wait_ms` before a detection:
   while the shared part is heard, the model cannot know which one is coming and may rise for the
   wrong one first. The strongest of the rivals over the wait is detected, once.
5. A word is detected only after a pause: `pause_ms` of relative quiet just before it (levels.py). A
   command said inside running speech is not a command to the app.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from .audio import SAMPLE_RATE, seconds_to_samples
from .daemon_pool import wait_result
from .quiet_gate import QuietGate
from .levels import Evaluations, FrameLevels, pause_before
from .screening import anchor_rows, needed_rows, row_cuts, run_span

# Calibrated with benchmarks/bench_streaming.py (174 commands and as many other words from held-out
# speakers, 17 min) on the shipped model: a 500 ms average and a 0.70 threshold give recall 92.5% and
# precision 91.0% (70 false alarms per hour of other speech); 0.65 gave 92.5% and 89.9%, 300 ms and 0.6
# gave 92.5% and 80.1% with the previous model. Chosen on the same streams that measure it.
HOP_MS = 125.0  # audio between two model evaluations, 8 a second. 100 ms took 3.6% of one core on a
# quiet machine (the model's pass over one window is ~3 ms); 125 ms takes 2.6%, and the streaming
# benchmark gave the same recall (92.5%) and precision (90.4% against 91.0%) at the 0.70 threshold.
# Latency (end of word to detection, in audio time, benchmarks/bench_streaming.py): a 500 ms average at 0.70
# with no hold gave median 64 ms, 90th percentile 266 ms, recall 91.4%, precision 93.0%, 49 false alarms per
# hour of other speech. A 250 ms average at 0.72 held for one more evaluation gives median 11 ms, 90th
# percentile 191 ms, the same recall and precision and 35 false alarms an hour: the hold rejects the brief
# peaks of other speech that the longer average smoothed out, and decides two hops sooner
AVERAGING_MS = 250.0  # evaluations averaged into one smoothed score
DETECTION_THRESHOLD = 0.72  # smoothed probability a word needs to be detected
HOLD_MS = 125.0  # how long the smoothed score must stay at or above the threshold: one hop more
SURE_SCORE = None  # a smoothed score at which the hold is waived (None: never)
# the weights of the averaged evaluations: the oldest weighs 1 and each newer one this much more (0: a plain
# mean). Chosen on the learn side (training/studies/LATENCY_STUDY.md: 1 took the 90th percentile of latency on
# training speakers' command streams from 233 to 194 ms, the same detections on quiet ones and 18.6 an hour of
# continuous speech either way), then measured once on held-out speakers: the streaming benchmark's latency
# median / p90 19 / 182 -> -1 / 175 ms, recall 90.8% either way, precision 95.2 -> 94.6% (one false alarm more),
# continuous speech 17.3 -> 14.8 detections an hour; bench_live's six words, replayed at every phase of the hop,
# p90 of 30 trials 283 -> 241 ms (the slowest word, "up", 301 -> 244 ms on average). No CPU: the model runs as often
RECENT_WEIGHTING = 1.0
SUPPRESSION_MS = 750.0  # quiet time after a detection, whatever the word
RELEASE_FRACTION = 0.5  # a word is re-armed once its smoothed score drops below threshold * this
MIN_EVALUATIONS = 2  # evaluations needed in the averaging window before anything is detected
PREFIX_WAIT_MS = 400.0  # a word with a rival sharing its start waits this long for the rival to win
SHARED_PREFIX_LETTERS = 4  # words sharing this many leading letters (or a whole first word) are rivals
MAX_BATCH_WINDOWS = 32  # windows sent to the model in one call when many hops are due (a late read)
FILE_TAIL_SECONDS = 1.0  # silence fed after a file's end, so a word at its very end still completes
ON_DEMAND_ROWS = 8  # screened windows scored together when a decision reads every score (a word not yet re-armed
# is re-armed about a window length, a second, after its detection)
BACKGROUND_LABELS = ("_silence_", "_unknown_")
# quiet a word needs just before it (levels.pause_before; 0: any word, said anywhere). Chosen on data that does not
# measure it (training/studies/pause_rule.py): on the learn side of the conversation split, 600 ms took the shipped
# model from 130 to 18.6 detections an hour of continuous speech (400 ms: 41.7, 800 ms: 13.9) and cost no command on a
# stream of training speakers' commands (recall 0.970 either way) and 2.5 points over loud kitchen noise (0.910 to 0.885)
PAUSE_MS = 600.0
LIVE_TORCH_THREADS = 1  # torch threads of live recognition (CLI and GUI): one window per hop is too
# small to gain from more threads; they only cost CPU
# one window at batch 1 in bfloat16 took 0.82x float32's CPU per hop in one busy run and no less in another
# (benchmarks/RESULTS.md, live and forward), and the live tone-word test through the virtual microphone
# failed 1 of 2 runs in bfloat16 (0 of 3 in float32): float32 until that is understood
LIVE_PRECISION = "float32"


class Classifier(Protocol):
    """What the recognizer needs of a model (`inference.CommandClassifier` and, without PyTorch,
    `onnx_runtime.OnnxClassifier` are two). Either may also take features computed once per frame
    and shared between overlapping windows: `probabilities_from_features`, with a `frontend`
    (features.SharedFrameMfcc makes the features) or a `shared_features(window_samples)` that makes them."""

    labels: list[str]
    window_samples: int

    def probabilities(self, waves: np.ndarray) -> np.ndarray:  # (N, window) -> (N, C)
        ...


@dataclass(frozen=True)
class Detection:
    time_s: float  # seconds of audio fed when the word was detected (end of the deciding hop)
    label: str
    confidence: float  # the smoothed probability that triggered the detection

    def to_dict(self) -> dict:
        return {"time": round(self.time_s, 3), "label": self.label, "confidence": round(self.confidence, 4)}


@dataclass(frozen=True)
class ScoreFrame:
    """One model evaluation: for the GUI's live confidence bars."""

    time_s: float
    probabilities: np.ndarray  # (C,) this hop's window
    smoothed: np.ndarray  # (C,) averaged over the averaging window


@dataclass
class RecognizerSettings:
    hop_ms: float = HOP_MS
    averaging_ms: float = AVERAGING_MS
    threshold: float = field(default=DETECTION_THRESHOLD, metadata={"help": "smoothed probability a word needs"})
    suppression_ms: float = field(default=SUPPRESSION_MS, metadata={"help": "quiet time after each detection"})
    release_fraction: float = RELEASE_FRACTION
    min_evaluations: int = MIN_EVALUATIONS
    prefix_wait_ms: float = PREFIX_WAIT_MS
    # a word's own threshold, in place of `threshold` (a custom model's calibrated ones: see custom_words)
    word_thresholds: dict[str, float] = field(default_factory=dict)
    # how long a word's smoothed score must have stayed at or above its threshold before it is detected
    # (0: the first evaluation above it); a word is longer than the brief peaks of other speech
    hold_ms: float = HOLD_MS
    # a smoothed score at or above this is detected without waiting out the hold (None: always wait): a
    # word the model is sure of needs no second look, and the hold's hop of delay is what a slow word pays
    sure_score: float | None = SURE_SCORE
    # weights of the averaged evaluations: the oldest 1, each newer one `recent_weighting` more (0: a plain mean).
    # A model file that names its own settings is listened with a plain mean unless it names this too
    # (decision.settings_for): its settings were chosen with one
    recent_weighting: float = RECENT_WEIGHTING
    # a word is detected only after this much relative quiet just before it (levels.py): commands follow a
    # pause, words inside running speech do not (0: off)
    pause_ms: float = PAUSE_MS

    @property
    def hop_samples(self) -> int:
        return max(1, seconds_to_samples(self.hop_ms / 1000.0))

    @property
    def averaged_evaluations(self) -> int:
        return max(1, int(round(self.averaging_ms / self.hop_ms)))

    @property
    def averaging_weights(self) -> np.ndarray:
        """The weight of each averaged evaluation, the oldest first (`recent_weighting`; all 1: a plain mean)."""
        return 1.0 + self.recent_weighting * np.arange(self.averaged_evaluations, dtype=np.float64)

    @property
    def held_evaluations(self) -> int:
        """Consecutive evaluations at or above the threshold a detection needs."""
        return 1 + max(0, int(round(self.hold_ms / self.hop_ms)))

    def thresholds(self, words: list[str]) -> np.ndarray:
        """The threshold of each word: its own, else `threshold`."""
        return np.array([self.word_thresholds.get(word, self.threshold) for word in words], dtype=np.float64)


class StreamingRecognizer:
    """Feed blocks of any size; get the detections they complete.

        recognizer = StreamingRecognizer(CommandClassifier.from_file())
        for block in blocks:                      # float32, 16 kHz mono
            for detection in recognizer.feed(block):
                print(detection.time_s, detection.label, detection.confidence)
    """

    def __init__(self, classifier: Classifier, settings: RecognizerSettings | None = None,
                 share_features: bool = True, batch_windows: int = MAX_BATCH_WINDOWS, model_workers: int = 1,
                 quiet_gate: bool = True, screen: bool = False):
        self.classifier = classifier
        self.settings = settings or RecognizerSettings()
        self.labels = list(classifier.labels)
        self.window_samples = int(classifier.window_samples)
        self.batch_windows = max(1, batch_windows)  # windows per model call when many hops are due
        # consecutive windows overlap by all but one hop: a classifier that takes features lets the
        # recognizer compute each feature frame once instead of a whole window's frames every hop
        self._shared_features = shared_feature_maker(classifier, self.window_samples) if share_features else None
        self._word_ids = np.array([i for i, label in enumerate(self.labels) if label not in BACKGROUND_LABELS])
        self._words = [self.labels[i] for i in self._word_ids]
        if len(self._word_ids) == 0:
            raise ValueError("the model has no words to detect (only _silence_ and _unknown_)")
        self.rivals = prefix_rivals(self.labels)
        # a window with no sound above the room's noise floor gets `_silence_` without the model (quiet_gate.py)
        self.quiet_gate = QuietGate.for_labels(self.labels, self.window_samples) if quiet_gate else None
        # scanning a file (many hops fed at once): score only the windows whose scores can change a detection
        # (screening.py); live, every window is scored as its hop ends (the GUI shows every score)
        self.screen = screen
        # scanning a file: `model_workers` threads run the model on one batch of windows while this thread
        # makes the next batch's features and decides on the last one's scores (torch and ONNX Runtime
        # release the GIL); live, one hop's window at a time, the model runs here
        self._pool = None
        if model_workers > 1:
            from .daemon_pool import DaemonThreadPool

            self._pool = DaemonThreadPool(model_workers, getattr(classifier, "worker_setup", None), "score")
        # set to a list to keep every evaluation as (sample count at its hop's end, class probabilities):
        # `replay` then decides again under other settings without running the model (benchmarks)
        self.recorded: list[tuple[int, np.ndarray]] | None = None
        self.reset()

    def reset(self) -> None:
        """Forget all audio and history; times start from zero again."""
        self._history = np.zeros(self.window_samples, dtype=np.float32)  # last window of audio fed
        self._unmerged: list[np.ndarray] = []  # blocks fed after `_history`, in which no hop ended
        self._fed_samples = 0
        self._next_evaluation = self.settings.hop_samples  # absolute sample count of the next hop's end
        # the last `averaged_evaluations` rows of probabilities, oldest overwritten first: an array, not a
        # deque of rows, because a replay of an hour's evaluations averages them tens of thousands of times
        self._recent = np.zeros((self.settings.averaged_evaluations, len(self.labels)), dtype=np.float32)
        self._recent_count = 0
        self._thresholds_for: tuple | None = None  # the settings that `_thresholds` was computed from
        self._last_detection: Detection | None = None
        self._released = True
        self._above = np.zeros(len(self._word_ids), dtype=np.int64)  # evaluations in a row at or above threshold
        self._pending: Detection | None = None  # a word waiting for its prefix rivals
        self._pending_since_s = 0.0
        self.last_frame: ScoreFrame | None = None
        self.evaluations = 0
        self.unscored = 0  # evaluations screening left out (their windows never reached the model or the gate)
        self._screened_tail = np.zeros((0, len(self._word_ids)), dtype=np.float32)  # the words' last scores (NaN:
        # unscored), for the spans that reach back before a screened block
        self._levels = FrameLevels()  # 10 ms levels: the pause before a word
        if self._shared_features is not None:
            self._shared_features.reset()
        if self.quiet_gate is not None:
            self.quiet_gate.reset()

    @property
    def threshold(self) -> float:
        return self.settings.threshold

    @threshold.setter
    def threshold(self, value: float) -> None:
        self.settings.threshold = float(np.clip(value, 0.0, 1.0))

    @property
    def fed_seconds(self) -> float:
        return self._fed_samples / SAMPLE_RATE

    @property
    def samples_until_evaluation(self) -> int:
        """Samples still to feed before the model next runs (a reader can wait for that much audio)."""
        return max(1, self._next_evaluation - self._fed_samples)

    def feed(self, samples: np.ndarray) -> list[Detection]:
        """Take the next samples of the stream (float32 mono at 16 kHz, any length)."""
        samples = np.asarray(samples, dtype=np.float32).reshape(-1)
        if samples.size == 0:
            return []
        levels = self._levels.feed(samples)  # every block, before the early return: the levels have no gaps
        if isinstance(self.recorded, Evaluations):
            self.recorded.add_levels(levels)  # a replay applies the pause rule on them
        if self._fed_samples + samples.size < self._next_evaluation:  # no hop ends in it (6 of 7 mic blocks):
            self._unmerged.append(samples.copy())  # kept as is, joined to the window when a hop is due
            self._fed_samples += samples.size
            return []
        combined = np.concatenate([self._history, *self._unmerged, samples])  # absolute sample i: combined[i - start]
        self._unmerged = []
        start = self._fed_samples + samples.size - len(combined)
        end = self._fed_samples + samples.size
        hop = self.settings.hop_samples
        due = np.arange(self._next_evaluation, end + 1, hop)  # hop ends covered by this block
        cuts = self._screening_cuts()
        if cuts is not None and len(due):
            detections = self._feed_screened(combined, start, due, cuts)
        else:
            detections = self._score_and_decide(combined, start, due)
        if len(due):
            self._next_evaluation = int(due[-1]) + hop
        self._history = combined[-self.window_samples :].copy()
        self._fed_samples = end
        return detections

    def _score_and_decide(self, combined: np.ndarray, start: int, due: np.ndarray) -> list[Detection]:
        """Every due hop's window scored (in batches), then the decisions in order."""
        detections = []
        batches = [due[first : first + self.batch_windows] for first in range(0, len(due), self.batch_windows)]
        # every batch's features first, in order (the frame cache runs forward); with workers, the model
        # scores each batch as soon as its features are made
        scores = [self._score(combined, start, ends - self.window_samples) for ends in batches]
        for ends, probabilities in zip(batches, scores):
            if isinstance(probabilities, Future):  # a worker's
                probabilities = wait_result(probabilities)
            for at_sample, row in zip(ends, np.asarray(probabilities, dtype=np.float32)):  # (N, C)
                detection = self._update(int(at_sample), row)
                if detection is not None:
                    detections.append(detection)
        return detections

    def _screening_cuts(self) -> np.ndarray | None:
        """Each word's cut (screening.row_cuts) when this feed may leave windows unscored, else None: screening
        is on, no evaluation is being recorded (a replay needs every score) and the averages allow a cut."""
        if not self.screen or self.recorded is not None:
            return None
        return row_cuts(self._word_thresholds(), self.settings.averaging_weights)

    def _feed_screened(self, combined: np.ndarray, start: int, due: np.ndarray, cuts: np.ndarray) -> list[Detection]:
        """`feed`'s scoring and deciding, screened (screening.py): the quiet gate on every window, the anchors,
        then the windows whose scores can matter; a window left out is scored when its decision reads every score
        (a word not yet re-armed, or waiting for its rivals). The detections are those of scoring them all."""
        settings = self.settings
        held = 1 if settings.sure_score is not None else settings.held_evaluations  # a sure score needs no run
        span = run_span(settings.averaged_evaluations, held)
        starts = due - self.window_samples
        rows = np.full((len(due), len(self.labels)), np.nan, dtype=np.float32)  # NaN: not scored
        if self.quiet_gate is not None:
            quiet = self.quiet_gate.quiet_windows(combined, start, starts)
            rows[quiet] = self.quiet_gate.silence_row
            self.quiet_gate.skipped += int(quiet.sum())
        index = due // settings.hop_samples - 1  # the evaluations' absolute indexes (the first hop ends at 1 hop)
        self._score_rows(rows, combined, start, starts, anchor_rows(index, span) & np.isnan(rows[:, 0]))
        self._score_rows(rows, combined, start, starts, needed_rows(rows[:, self._word_ids], self._screened_tail,
                                                                    cuts, span))
        detections = []
        for i, at_sample in enumerate(due):
            if np.isnan(rows[i, 0]) and self._reads_every_score():
                on_demand = np.zeros(len(due), dtype=bool)
                on_demand[i : i + ON_DEMAND_ROWS] = True
                self._score_rows(rows, combined, start, starts, on_demand & np.isnan(rows[:, 0]))
            self.unscored += int(np.isnan(rows[i, 0]))
            detection = self._update(int(at_sample), rows[i])
            if detection is not None:
                detections.append(detection)
        self._screened_tail = np.concatenate([self._screened_tail, rows[:, self._word_ids]])[-span:]
        return detections

    def _score_rows(self, rows: np.ndarray, combined: np.ndarray, start: int, starts: np.ndarray,
                    which: np.ndarray) -> None:
        """Fill `rows[which]` with the model's scores of those windows, in batches of nearby windows: windows
        less than a window apart share feature frames; farther apart, the frames between would cost more than
        the windows' own (the frame cache starts over instead)."""
        chosen = np.flatnonzero(which)
        if len(chosen) == 0:
            return
        gap = self.window_samples // self.settings.hop_samples
        breaks = np.flatnonzero(np.diff(chosen) >= gap) + 1
        batches = [part[first : first + self.batch_windows] for part in np.split(chosen, breaks)
                   for first in range(0, len(part), self.batch_windows)]
        scores = [self._score_model(combined, start, starts[batch]) for batch in batches]  # features in order
        for batch, probabilities in zip(batches, scores):
            if isinstance(probabilities, Future):
                probabilities = wait_result(probabilities)
            rows[batch] = probabilities

    def _reads_every_score(self) -> bool:
        """Whether the next decision reads its evaluation's scores whatever they are: a word waiting for its
        prefix rivals, or the last word detected not yet re-armed (its score must fall under the release level)."""
        return self._pending is not None or (self._last_detection is not None and not self._released)

    def replay(self, evaluations: list[tuple[int, np.ndarray]]) -> list[Detection]:
        """Start over and decide on recorded evaluations (see `recorded`) under the current settings:
        the detections `feed` gives on the same audio, with the model's work already done. The pause rule
        needs the stream's levels: `Evaluations` (what `recorded` keeps when set to one) carry them."""
        self.reset()
        if isinstance(evaluations, Evaluations):
            self._levels = FrameLevels.of(evaluations.levels)
        elif self.settings.pause_ms > 0:
            raise ValueError("the pause rule needs the levels of the stream: record into an Evaluations")
        recorded, self.recorded = self.recorded, None  # the replayed evaluations are not new ones
        try:
            detections = [self._update(int(at_sample), row) for at_sample, row in evaluations]
        finally:
            self.recorded = recorded
        return [d for d in detections if d is not None]

    def close(self) -> None:
        """End the model workers, if any (a recognizer that scanned a file)."""
        if self._pool is not None:
            self._pool.shutdown(wait=False)
            self._pool = None

    def _score(self, combined: np.ndarray, start: int, window_starts: np.ndarray):
        """Class probabilities (N, C) of the windows starting at these absolute samples; a Future of them
        when workers run the model."""
        if self.quiet_gate is not None:
            return self.quiet_gate.score(combined, start, window_starts, self._score_model)
        return self._score_model(combined, start, window_starts)

    def _score_model(self, combined: np.ndarray, start: int, window_starts: np.ndarray):
        shared = self._shared_features
        if shared is not None and shared.can_share(window_starts):
            score, given = self.classifier.probabilities_from_features, shared(combined, start, window_starts)
        else:
            score = self.classifier.probabilities
            given = np.stack([combined[o - start : o - start + self.window_samples] for o in window_starts])
        return score(given) if self._pool is None else self._pool.submit(score, given)

    def _update(self, at_sample: int, probabilities: np.ndarray) -> Detection | None:
        """Average, then decide: the smoothing and suppression of one evaluation."""
        settings = self.settings
        time_s = at_sample / SAMPLE_RATE
        if self.recorded is not None:
            self.recorded.append((at_sample, probabilities))
        averaged = len(self._recent)
        self._recent[self._recent_count % averaged] = probabilities
        self._recent_count += 1
        filled = min(self._recent_count, averaged)
        smoothed = self._smoothed(filled)  # (C,)
        self.last_frame = ScoreFrame(time_s, probabilities, smoothed)
        self.evaluations += 1
        if np.isnan(smoothed).any():  # an average screening left a window out of (screening.py): every word is
            self._above[:] = 0  # known to be under its threshold, and no decision reads its exact score here
            return None
        last = self._last_detection
        thresholds = self._word_thresholds()
        margins = smoothed[self._word_ids] - thresholds
        self._above = np.where(margins >= 0, self._above + 1, 0)
        if last is not None:
            last_word = int(np.flatnonzero(self._word_ids == self.labels.index(last.label))[0])
            if smoothed[self._word_ids[last_word]] < thresholds[last_word] * settings.release_fraction:
                self._released = True
        if filled < min(settings.min_evaluations, averaged):
            return None
        word = int(np.argmax(margins))  # the highest score when every word has the same threshold
        best = int(self._word_ids[word])
        score, label = float(smoothed[best]), self.labels[best]
        if self._pending is not None:
            return self._settle(time_s, label, score)
        if margins[word] < 0 or (self._above[word] < settings.held_evaluations and not self._sure(score)):
            return None
        if last is not None:
            since_s = time_s - last.time_s
            if since_s * 1000.0 < settings.suppression_ms:
                return None
            if label == last.label and not self._released:
                return None
        if settings.pause_ms > 0 and not pause_before(self._levels, at_sample, settings.pause_ms):
            return None  # a word inside running speech
        if self.rivals.get(label) and settings.prefix_wait_ms > 0:
            self._pending, self._pending_since_s = Detection(time_s, label, score), time_s
            return None
        return self._detect(time_s, label, score)

    def _smoothed(self, filled: int) -> np.ndarray:
        """The average of the last `filled` evaluations, the newer weighing more (`recent_weighting`)."""
        slope = self.settings.recent_weighting
        if slope == 0 or filled == 1:
            return np.add.reduce(self._recent[:filled], axis=0) / np.float32(filled)
        averaged = len(self._recent)
        ages = (self._recent_count - 1 - np.arange(averaged)) % averaged  # 0: the newest row of the ring
        oldest_first = self.settings.averaging_weights
        weights = np.where(ages < filled, oldest_first[averaged - 1 - np.minimum(ages, averaged - 1)], 0.0)
        weights = weights.astype(np.float32)
        return (weights @ self._recent) / np.float32(weights.sum())

    def _sure(self, score: float) -> bool:
        sure = self.settings.sure_score
        return sure is not None and score >= sure

    def _word_thresholds(self) -> np.ndarray:
        """Each word's threshold under the current settings, computed again only when they change."""
        settings = self.settings
        key = (settings.threshold, tuple(settings.word_thresholds.items()))
        if key != self._thresholds_for:
            self._thresholds, self._thresholds_for = settings.thresholds(self._words), key
        return self._thresholds

    def _settle(self, time_s: float, label: str, score: float) -> Detection | None:
        """While a word waits for its prefix rivals, keep the strongest of them; decide when the wait ends."""
        pending = self._pending
        if score > pending.confidence and (label == pending.label or label in self.rivals[pending.label]):
            pending = self._pending = Detection(pending.time_s, label, score)
        if (time_s - self._pending_since_s) * 1000.0 + 1e-6 < self.settings.prefix_wait_ms:
            return None
        self._pending = None
        return self._detect(time_s, pending.label, pending.confidence)

    def _detect(self, time_s: float, label: str, score: float) -> Detection:
        self._last_detection = Detection(time_s, label, score)
        self._released = False
        return self._last_detection


def shared_feature_maker(classifier: Classifier, window_samples: int):
    """What computes the features of overlapping windows once per frame for this classifier, or None
    (the recognizer then gives it whole windows)."""
    if not hasattr(classifier, "probabilities_from_features"):
        return None
    if hasattr(classifier, "shared_features"):
        return classifier.shared_features(window_samples)
    if hasattr(classifier, "frontend"):
        from .features import SharedFrameMfcc  # PyTorch's front end

        return SharedFrameMfcc(classifier.frontend, window_samples)
    return None


def prefix_rivals(labels: list[str]) -> dict[str, set[str]]:
    """For each word, the other words that start the same way: the same first word of a phrase
    ("lights on", "lights off") or the same first SHARED_PREFIX_LETTERS letters."""
    words = [label for label in labels if label not in BACKGROUND_LABELS]

    def share_start(a: str, b: str) -> bool:
        if " " in a and " " in b and a.split()[0] == b.split()[0]:
            return True
        return len(a) >= SHARED_PREFIX_LETTERS and a[:SHARED_PREFIX_LETTERS] == b[:SHARED_PREFIX_LETTERS]

    return {a: {b for b in words if b != a and share_start(a.lower(), b.lower())} for a in words}


def iter_blocks(samples: np.ndarray, block_samples: int) -> Iterator[np.ndarray]:
    """Cut a signal into consecutive blocks (the last one may be shorter)."""
    for start in range(0, len(samples), max(1, block_samples)):
        yield samples[start : start + block_samples]


def recognize_samples(recognizer: StreamingRecognizer, samples: np.ndarray, block_samples: int | None = None,
                      tail_seconds: float = FILE_TAIL_SECONDS) -> list[Detection]:
    """Run a whole signal through the streaming path, then `tail_seconds` of silence."""
    signal = np.concatenate([np.asarray(samples, dtype=np.float32),
                             np.zeros(seconds_to_samples(tail_seconds), dtype=np.float32)])
    block_samples = block_samples or len(signal)
    detections = []
    for block in iter_blocks(signal, block_samples):
        detections.extend(recognizer.feed(block))
    return detections


def recognize_blocks(recognizer: StreamingRecognizer, blocks: Iterable[np.ndarray],
                     tail_seconds: float = FILE_TAIL_SECONDS) -> Iterator[Detection]:
    """The detections of a stream given as blocks (a file read a block at a time), as they are found;
    then `tail_seconds` of silence, as `recognize_samples` does."""
    for block in blocks:
        yield from recognizer.feed(block)
    yield from recognizer.feed(np.zeros(seconds_to_samples(tail_seconds), dtype=np.float32))


def recognize_file(path: str | os.PathLike, classifier: Classifier, settings: RecognizerSettings | None = None,
                   block_samples: int | None = None, max_seconds: float | None = None) -> list[Detection]:
    """The detections of a recording, found exactly as the microphone would find them. The file is
    read a block at a time (audio_blocks.py), so its length does not matter; `block_samples` cuts the
    stream into blocks of that size (as a microphone delivers it) instead of the decoder's."""
    from .audio_blocks import read_blocks

    blocks = read_blocks(path, max_seconds)
    if block_samples:
        blocks = (piece for block in blocks for piece in iter_blocks(block, block_samples))
    return list(recognize_blocks(StreamingRecognizer(classifier, settings), blocks))
