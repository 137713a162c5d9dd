"""The quiet-audio gate: a model window with no sound that could be a word gets `_silence_` without the model.

`speech-app listen` spends most of an always-on day in a quiet room, where every evaluation is the model
saying `_silence_` (its pass is most of a hop's CPU). The gate decides from the audio alone, before any
features are made: a window is quiet when its loudest stretch is within QUIET_MARGIN_DB of the room's noise
floor. The floor adapts (the quietest stretch of the last FLOOR_SECONDS), so the decision is relative:
scaling the whole stream by any gain gives the same decisions.

Loudness is the energy of the first difference of the signal (a pre-emphasis: the low rumble of pink noise
or a fan, which moves by 10 dB from one 25 ms frame to the next, weighs little; speech's formants weigh
much), averaged over SMOOTHING_FRAMES frames of FRAME_SAMPLES. Errors lean one way: a floor that is late to
rise (the room got louder) or too low makes windows loud, and the model runs as it would without the gate.
"""

from __future__ import annotations

from concurrent.futures import Future
from typing import Callable

import numpy as np

from .audio import SAMPLE_RATE
from .data.dataset import SILENCE_LABEL

FRAME_SAMPLES = 400  # 25 ms energy frames at 16 kHz: the default hop (2000) and window (16000) hold whole ones
SMOOTHING_FRAMES = 4  # loudness is the mean energy over 100 ms: a word's voiced part lasts longer than that
# Chosen on the six _background_noise_ recordings alone (no speech, not the measuring data): the loudest 100 ms
# of a 1 s window rises above the quietest 100 ms of the 10 s before it by at most 1.1 dB (white noise), 1.6
# (pink), 3.5 (running tap) and 6.2 (exercise bike, 90% of windows within 5.2) with this pre-emphasis (without
# it: pink noise 13.2, the tap 31). 8 dB gates those steady noises and lets anything more than their wobble
# through. Checked afterwards, not tuned, on the streaming benchmark's held-out speech over kitchen noise
# (bench_listen.py): the same 167 detections with and without the gate, a fifth of the windows skipped.
QUIET_MARGIN_DB = 8.0
FLOOR_SECONDS = 10.0  # the floor is the quietest loudness over this much recent audio (a room's steady noise)
MIN_FLOOR_SECONDS = 5.0  # no gating before this much audio: a floor from the first words alone would be too high
ENERGY_FLOOR = 1e-12  # mean-square floor before decibels (-120 dB): digital silence stays finite


class QuietGate:
    """Decides, window by window, whether the model can be skipped; keeps the stream's loudness in order.

    `score(stream, stream_start, window_starts, model)` gives each window's class probabilities: the model's
    (via `model`, called with the loud windows only) or, for a quiet window, all probability on `_silence_`.
    Windows must come in stream order, as the recognizer makes them. `skipped` counts the quiet windows."""

    def __init__(self, labels: list[str], window_samples: int, margin_db: float = QUIET_MARGIN_DB,
                 floor_seconds: float = FLOOR_SECONDS, min_floor_seconds: float = MIN_FLOOR_SECONDS):
        self.window_samples, self.margin_db = int(window_samples), float(margin_db)
        self.floor_frames = max(1, int(round(floor_seconds * SAMPLE_RATE / FRAME_SAMPLES)))
        self.min_floor_frames = max(1, int(round(min_floor_seconds * SAMPLE_RATE / FRAME_SAMPLES)))
        self.silence_row = np.zeros(len(labels), dtype=np.float32)
        self.silence_row[labels.index(SILENCE_LABEL)] = 1.0
        self.reset()

    @classmethod
    def for_labels(cls, labels: list[str], window_samples: int) -> QuietGate | None:
        """The gate for a model, or None when it has no `_silence_` class to answer with."""
        return cls(list(labels), window_samples) if SILENCE_LABEL in labels else None

    def reset(self) -> None:
        """A new stream (the recognizer's reset): no floor yet, nothing skipped."""
        self.skipped = 0
        self._restart()

    def _restart(self) -> None:
        self._next_frame = 0  # absolute index of the next energy frame to compute (frame k: samples k*F..(k+1)*F)
        self._first_kept = 0  # absolute index of _loudness[0]
        self._loudness = np.zeros(0, dtype=np.float64)  # dB, smoothed, one per frame from _first_kept on
        self._energies = np.zeros(0, dtype=np.float64)  # the last SMOOTHING_FRAMES - 1 frames' mean squares
        self._last_sample = 0.0  # the sample before frame _next_frame, for the first difference

    def score(self, stream: np.ndarray, stream_start: int, window_starts: np.ndarray,
              model: Callable[[np.ndarray, int, np.ndarray], object]):
        """(N, C) probabilities, or a Future of them when `model` gives a Future (a file's worker threads)."""
        quiet = self.quiet_windows(stream, stream_start, window_starts)
        if not quiet.any():
            return model(stream, stream_start, window_starts)
        self.skipped += int(quiet.sum())
        rows = np.tile(self.silence_row, (len(window_starts), 1))
        if quiet.all():
            return rows
        loud = model(stream, stream_start, window_starts[~quiet])
        if not isinstance(loud, Future):
            rows[~quiet] = loud
            return rows
        merged: Future = Future()

        def fill(done: Future) -> None:
            try:
                rows[~quiet] = done.result()
            except BaseException as err:  # the model's error reaches whoever waits on the scores
                merged.set_exception(err)
            else:
                merged.set_result(rows)

        loud.add_done_callback(fill)
        return merged

    def quiet_windows(self, stream: np.ndarray, stream_start: int, window_starts: np.ndarray) -> np.ndarray:
        """A boolean per window (absolute starts, ascending; `stream` holds samples from `stream_start` up
        to the last window's end): True where its loudest 100 ms is within the margin of the floor."""
        window_starts = np.asarray(window_starts, dtype=np.int64)
        self._extend(stream, stream_start, int(window_starts[-1]) + self.window_samples)
        quiet = np.zeros(len(window_starts), dtype=bool)
        floor_from = self._first_kept
        for i, start in enumerate(window_starts):
            end_frame = (int(start) + self.window_samples) // FRAME_SAMPLES  # frames wholly fed by the window's end
            if end_frame - self._first_kept < self.min_floor_frames:  # too little audio since the start for a floor
                continue
            floor_from = max(end_frame - self.floor_frames, self._first_kept)
            loudness = self._loudness[floor_from - self._first_kept : end_frame - self._first_kept]
            # every frame the window touches (the one it starts inside, and the smoothing's lookback: a margin)
            heard = loudness[max(int(start) // FRAME_SAMPLES - floor_from, 0) :]
            quiet[i] = heard.size > 0 and heard.max() <= loudness.min() + self.margin_db
        # later windows end later: their floors start at or after this one's
        self._loudness = self._loudness[floor_from - self._first_kept :]
        self._first_kept = floor_from
        return quiet

    def _extend(self, stream: np.ndarray, stream_start: int, end_sample: int) -> None:
        """Compute the loudness of every whole frame up to `end_sample`, once, in stream order."""
        end_frame = end_sample // FRAME_SAMPLES
        first_sample = self._next_frame * FRAME_SAMPLES
        if first_sample < stream_start or end_frame < self._next_frame:  # a gap in the stream: start over
            self._restart()
            self._next_frame = self._first_kept = -(-max(stream_start, 0) // FRAME_SAMPLES)
            first_sample = self._next_frame * FRAME_SAMPLES
        if end_frame <= self._next_frame:
            return
        samples = np.asarray(stream[first_sample - stream_start : end_frame * FRAME_SAMPLES - stream_start],
                             dtype=np.float32)
        difference = np.empty_like(samples)  # pre-emphasis: x[n] - x[n-1]
        difference[0] = samples[0] - self._last_sample
        np.subtract(samples[1:], samples[:-1], out=difference[1:])
        self._last_sample = float(samples[-1])
        frames = difference.reshape(-1, FRAME_SAMPLES)
        energies = np.einsum("ij,ij->i", frames, frames, dtype=np.float64) / FRAME_SAMPLES  # mean squares
        if len(self._energies) == 0:  # the stream's first frames: their lookback is the first frame (no gating yet)
            self._energies = np.repeat(energies[:1], SMOOTHING_FRAMES - 1)
        extended = np.concatenate([self._energies, energies])
        smoothed = np.convolve(extended, np.full(SMOOTHING_FRAMES, 1.0 / SMOOTHING_FRAMES), "valid")  # trailing mean
        self._energies = extended[len(extended) - (SMOOTHING_FRAMES - 1) :]
        loudness = 10.0 * np.log10(np.maximum(smoothed, ENERGY_FLOOR))
        self._loudness = np.concatenate([self._loudness, loudness])
        self._next_frame = end_frame
