"""Feature frames shared between overlapping live windows give what each window alone gives."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from speech_app.audio import load_audio
from speech_app.features import FeatureConfig, MfccFrontend, SharedFrameMfcc
from speech_app.inference import CommandClassifier
from speech_app.streaming import RecognizerSettings, StreamingRecognizer, iter_blocks

SAMPLES_DIR = Path(__file__).resolve().parent.parent / "datasets" / "samples"
FEATURE_TOLERANCE = 1e-3  # MFCC values span about +-300; float32 rounding differs with the batch shape
PROBABILITY_TOLERANCE = 1e-4


def real_stream(names=("yes", "left", "no", "go"), gap_s: float = 0.6) -> np.ndarray:
    parts = []
    for name in names:
        path = next(p for p in sorted(SAMPLES_DIR.iterdir()) if p.name.startswith(f"{name}_"))
        parts += [load_audio(path), np.zeros(int(gap_s * 16_000), dtype=np.float32)]
    return np.concatenate(parts)


@pytest.mark.parametrize("config", [FeatureConfig(), FeatureConfig(clip_seconds=1.5, hop_ms=20.0, window_ms=25.0,
                                                                   n_mfcc=20, n_mels=32)])
def test_shared_frames_match_each_window_computed_alone(config):
    frontend = MfccFrontend(config)
    shared = SharedFrameMfcc(frontend, config.clip_samples)
    stream = real_stream()
    hop = 5 * config.hop_samples
    starts = np.arange(0, len(stream) - config.clip_samples + 1, hop)
    assert shared.can_share(starts)
    for group in np.array_split(starts, 4):  # several calls: later ones reuse frames of earlier ones
        got = shared(stream, 0, group)
        expected = frontend(torch.from_numpy(np.stack([stream[s : s + config.clip_samples] for s in group])))
        torch.testing.assert_close(got, expected, atol=FEATURE_TOLERANCE, rtol=0)


def test_windows_off_the_frame_grid_share_frames_with_windows_of_their_own_phase():
    """A 125 ms hop is 12.5 frames: every other window lies half a frame off the grid of the first."""
    frontend = MfccFrontend()
    shared = SharedFrameMfcc(frontend, 16_000)
    stream = real_stream()
    starts = np.arange(0, len(stream) - 16_000 + 1, 2_000)
    assert shared.can_share(starts) and set(starts % frontend.config.hop_samples) == {0, 80}
    for group in np.array_split(starts, 5):  # mixed phases within a call, and each phase's frames kept across calls
        got = shared(stream, 0, group)
        expected = frontend(torch.from_numpy(np.stack([stream[s : s + 16_000] for s in group])))
        torch.testing.assert_close(got, expected, atol=FEATURE_TOLERANCE, rtol=0)


@pytest.fixture(scope="module")
def shipped_classifier():
    torch.set_num_threads(1)
    return CommandClassifier.from_file()


@pytest.mark.parametrize("block_samples", [1600, 333, 4096, None])
def test_recognizer_with_shared_features_scores_as_without(shipped_classifier, block_samples):
    stream = np.concatenate([real_stream(), np.zeros(16_000, dtype=np.float32)])
    runs = {}
    for share in (False, True):
        recognizer = StreamingRecognizer(shipped_classifier, share_features=share)
        scores, detections = [], []
        for block in iter_blocks(stream, block_samples or len(stream)):
            detections += recognizer.feed(block)
            scores.append(recognizer.last_frame.probabilities.copy() if recognizer.last_frame else None)
        runs[share] = (scores, detections, recognizer.evaluations)
    (plain_scores, plain_detections, plain_n), (shared_scores, shared_detections, shared_n) = runs[False], runs[True]
    assert shared_n == plain_n == len(stream) // RecognizerSettings().hop_samples
    assert shared_detections == plain_detections and len(plain_detections) >= 3
    for a, b in zip(plain_scores, shared_scores):
        assert (a is None) == (b is None)
        if a is not None:
            assert np.max(np.abs(a - b)) < PROBABILITY_TOLERANCE
