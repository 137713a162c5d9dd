"""The streaming recognizer: smoothing, threshold, suppression, and independence of the block size.

Most tests use `ToneClassifier`, a stand-in model whose "words" are tone bursts, so the rules are
checked exactly and cheaply. The last tests run the real shipped model on real clips.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from speech_app.audio import SAMPLE_RATE, load_audio
from speech_app.capture import AudioRingBuffer, FileCapture
from speech_app.streaming import (Detection, RecognizerSettings, StreamingRecognizer, iter_blocks,
                                  recognize_file, recognize_samples)

SAMPLES_DIR = Path(__file__).resolve().parent.parent / "datasets" / "samples"
TONE_HZ = {"low": 400.0, "mid": 800.0, "high": 1600.0}  # the stand-in model's words
WORD_SECONDS = 0.4
WORD_AMPLITUDE = 0.3
AMPLITUDE_PER_LOGIT = 0.02  # tone amplitude (averaged over the window) worth one logit
SILENCE_LOGIT = 3.0
BLOCK_SIZES = [1, 160, 333, 1600, 4096, 16_000, None]  # None: the whole signal in one block
# Sample clips of words a decent model gets right, as a stream (tests named test_shipped_model_*
# depend on the shipped model's quality). The sample "down" is left out: the shipped model (94.5%
# validation accuracy) gives it only 0.48 even as a whole clip, and in a stream it never reaches the
# threshold, while the tail of the word alone, leaving the window, reads as "no".
RELIABLE_WORDS = ("yes", "no", "up", "left", "right", "go")


class ToneClassifier:
    """Word k is a tone at TONE_HZ[k]; its logit grows with the tone's amplitude in the window,
    so a word half inside the window scores lower than a whole one, as with a real model."""

    def __init__(self, window_seconds: float = 1.0):
        self.labels = ["_silence_", "_unknown_", *TONE_HZ]
        self.window_samples = int(window_seconds * SAMPLE_RATE)
        t = np.arange(self.window_samples) / SAMPLE_RATE
        self._basis = np.stack([np.exp(-2j * np.pi * hz * t) for hz in TONE_HZ.values()])  # (words, window)
        self.windows_seen = 0

    def probabilities(self, waves: np.ndarray) -> np.ndarray:
        waves = np.asarray(waves, dtype=np.float64)  # (N, window)
        self.windows_seen += len(waves)
        amplitude = 2 * np.abs(waves @ self._basis.T) / self.window_samples  # (N, words)
        logits = np.concatenate([np.full((len(waves), 1), SILENCE_LOGIT), np.zeros((len(waves), 1)),
                                 amplitude / AMPLITUDE_PER_LOGIT], axis=1)  # (N, C)
        exp = np.exp(logits - logits.max(axis=1, keepdims=True))
        return (exp / exp.sum(axis=1, keepdims=True)).astype(np.float32)


def tone_word(word: str, seconds: float = WORD_SECONDS, amplitude: float = WORD_AMPLITUDE) -> np.ndarray:
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    fade = np.minimum(1.0, np.minimum(t, t[-1] - t) / 0.02)  # 20 ms ramps, no clicks
    return (amplitude * fade * np.sin(2 * np.pi * TONE_HZ[word] * t)).astype(np.float32)


def tone_sentence(words: list[str], gap_s: float = 1.2, lead_s: float = 0.5) -> tuple[np.ndarray, list[float]]:
    """Words separated by silence; returns the signal and the time each word ends."""
    parts, ends, position = [np.zeros(int(lead_s * SAMPLE_RATE), np.float32)], [], lead_s
    for word in words:
        parts += [tone_word(word), np.zeros(int(gap_s * SAMPLE_RATE), np.float32)]
        ends.append(position + WORD_SECONDS)
        position += WORD_SECONDS + gap_s
    return np.concatenate(parts), ends


def sample_clip(word: str) -> Path:
    return next(SAMPLES_DIR.glob(f"{word}_*"))


def test_one_detection_per_word_with_the_right_label():
    words = ["low", "mid", "high", "low", "low"]
    signal, ends = tone_sentence(words)
    detections = recognize_samples(StreamingRecognizer(ToneClassifier()), signal, block_samples=320)
    assert [d.label for d in detections] == words
    for detection, end in zip(detections, ends):
        assert end - WORD_SECONDS < detection.time_s < end + 1.0
        assert detection.confidence >= RecognizerSettings().threshold


@pytest.mark.parametrize("block_samples", BLOCK_SIZES)
def test_detections_do_not_depend_on_the_block_size(block_samples):
    signal, _ = tone_sentence(["high", "low", "mid", "mid"], gap_s=0.9)
    reference = recognize_samples(StreamingRecognizer(ToneClassifier()), signal, block_samples=1600)
    detections = recognize_samples(StreamingRecognizer(ToneClassifier()), signal, block_samples=block_samples)
    assert [(d.label, d.time_s) for d in detections] == [(d.label, d.time_s) for d in reference]
    np.testing.assert_allclose([d.confidence for d in detections], [d.confidence for d in reference], atol=1e-5)


class RecordingClassifier(ToneClassifier):
    def __init__(self):
        super().__init__()
        self.windows: list[np.ndarray] = []

    def probabilities(self, waves):
        self.windows.extend(np.array(waves))
        return super().probabilities(waves)


@pytest.mark.parametrize("block_samples", [7, 1000, None])
def test_the_model_sees_the_same_windows_every_hop_whatever_the_blocks(block_samples):
    rng = np.random.default_rng(0)
    signal = rng.standard_normal(3 * SAMPLE_RATE + 123).astype(np.float32)
    by_hop, by_block = RecordingClassifier(), RecordingClassifier()
    for blocks, classifier in ((1600, by_hop), (block_samples, by_block)):
        recognizer = StreamingRecognizer(classifier)
        for block in iter_blocks(signal, blocks or len(signal)):
            recognizer.feed(block)
    hop = RecognizerSettings().hop_samples
    assert len(by_block.windows) == len(by_hop.windows) == len(signal) // hop
    np.testing.assert_array_equal(np.stack(by_block.windows), np.stack(by_hop.windows))
    np.testing.assert_array_equal(by_hop.windows[-1], signal[len(signal) // hop * hop - SAMPLE_RATE : len(signal) // hop * hop])


def test_many_pending_hops_are_batched():
    classifier = ToneClassifier()
    calls = []
    original = classifier.probabilities
    classifier.probabilities = lambda waves: calls.append(len(waves)) or original(waves)
    StreamingRecognizer(classifier).feed(np.zeros(10 * SAMPLE_RATE, np.float32))
    assert sum(calls) == 100 and max(calls) > 1


def test_threshold_decides_what_counts_as_a_word():
    quiet = np.concatenate([np.zeros(SAMPLE_RATE // 2, np.float32), tone_word("mid", amplitude=0.15)])
    strict = StreamingRecognizer(ToneClassifier(), RecognizerSettings(threshold=0.95))
    lenient = StreamingRecognizer(ToneClassifier(), RecognizerSettings(threshold=0.3))
    assert recognize_samples(strict, quiet) == []
    assert [d.label for d in recognize_samples(lenient, quiet)] == ["mid"]


def test_threshold_can_change_while_running():
    recognizer = StreamingRecognizer(ToneClassifier())
    recognizer.threshold = 1.5
    assert recognizer.threshold == 1.0


def test_suppression_keeps_a_second_word_too_close_to_the_first_out():
    close, _ = tone_sentence(["low", "high"], gap_s=0.1)  # detections 0.8 s apart
    long_quiet = StreamingRecognizer(ToneClassifier(), RecognizerSettings(suppression_ms=1500))
    short_quiet = StreamingRecognizer(ToneClassifier(), RecognizerSettings(suppression_ms=500))
    assert [d.label for d in recognize_samples(long_quiet, close)] == ["low"]
    assert [d.label for d in recognize_samples(short_quiet, close)] == ["low", "high"]


def test_a_word_held_longer_than_the_window_is_still_one_detection():
    held = np.concatenate([np.zeros(SAMPLE_RATE // 2, np.float32), tone_word("high", seconds=3.0)])
    detections = recognize_samples(StreamingRecognizer(ToneClassifier()), held)
    assert [d.label for d in detections] == ["high"]


def test_silence_and_unknown_are_never_detected():
    detections = recognize_samples(StreamingRecognizer(ToneClassifier()), np.zeros(5 * SAMPLE_RATE, np.float32))
    assert detections == []


def test_latest_scores_are_there_for_the_confidence_bars():
    recognizer = StreamingRecognizer(ToneClassifier())
    assert recognizer.last_frame is None
    recognizer.feed(tone_word("low", seconds=1.0))
    frame = recognizer.last_frame
    assert frame.time_s == pytest.approx(1.0)
    assert frame.smoothed.shape == frame.probabilities.shape == (5,)
    assert recognizer.labels[int(np.argmax(frame.smoothed))] == "low"


def test_detection_times_count_audio_not_wall_clock_and_reset_restarts_them():
    recognizer = StreamingRecognizer(ToneClassifier())
    signal, _ = tone_sentence(["mid"])
    first = recognize_samples(recognizer, signal)
    recognizer.reset()
    assert recognize_samples(recognizer, signal) == first
    assert first[0].to_dict().keys() == {"time", "label", "confidence"}


def test_a_model_without_words_is_refused():
    classifier = ToneClassifier()
    classifier.labels = ["_silence_", "_unknown_"]
    with pytest.raises(ValueError, match="no words"):
        StreamingRecognizer(classifier)


def test_ring_buffer_hands_out_everything_once_and_counts_what_it_drops():
    ring = AudioRingBuffer(100)
    ring.write(np.arange(60, dtype=np.float32))
    np.testing.assert_array_equal(ring.read(), np.arange(60))
    ring.write(np.arange(60, 130, dtype=np.float32))
    ring.write(np.arange(130, 190, dtype=np.float32))  # 130 unread > 100: 30 oldest dropped
    np.testing.assert_array_equal(ring.read(), np.arange(90, 190))
    assert ring.dropped_samples == 30 and ring.read().size == 0


def test_file_capture_feeds_the_same_path_as_a_microphone():
    signal, _ = tone_sentence(["low", "high"])
    capture = FileCapture([signal], gap_s=0.0, speed=50.0)
    recognizer = StreamingRecognizer(ToneClassifier())
    detections: list[Detection] = []
    capture.start()
    while not (capture.finished.is_set() and capture.ring.available() == 0):
        detections += recognizer.feed(capture.read(timeout_s=0.05))
    capture.stop()
    detections += recognizer.feed(np.zeros(SAMPLE_RATE, np.float32))
    assert [d.label for d in detections] == ["low", "high"]


# -- the real shipped model on real clips: these depend on the model's quality ------------------

@pytest.fixture(scope="module")
def shipped_classifier():
    from speech_app.inference import CommandClassifier

    return CommandClassifier.from_file()


@pytest.mark.parametrize("word", RELIABLE_WORDS)
def test_shipped_model_detects_a_real_clip_once(shipped_classifier, word):
    detections = recognize_file(sample_clip(word), shipped_classifier, block_samples=320)
    assert [d.label for d in detections] == [word]


def test_shipped_model_detects_the_same_words_whatever_the_block_size(shipped_classifier):
    clips = [load_audio(sample_clip(w)) for w in RELIABLE_WORDS]
    gap = np.zeros(SAMPLE_RATE // 2, np.float32)
    signal = np.concatenate([np.concatenate([c, gap]) for c in clips])
    results = [recognize_samples(StreamingRecognizer(shipped_classifier), signal, block_samples=b)
               for b in (160, 1024, None)]
    for detections in results[1:]:
        assert [(d.label, d.time_s) for d in detections] == [(d.label, d.time_s) for d in results[0]]
    assert [d.label for d in results[0]] == list(RELIABLE_WORDS)
