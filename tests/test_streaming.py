"""The streaming recognizer: smoothing, threshold, suppression, and independence of the block size.

Most tests use `ToneClassifier` (stand_ins.py), a stand-in model whose "words" are tone bursts, so
the rules are checked exactly and cheaply. The last tests run the real shipped model on the sample
clips it is sure of (the `reliable_words` fixture), so a better model only adds words to them.
"""

from __future__ import annotations

import numpy as np
import pytest
from stand_ins import WORD_SECONDS, ToneClassifier, sample_clip, tone_sentence, tone_word

from speech_app.audio import SAMPLE_RATE, load_audio
from speech_app.capture import AudioRingBuffer, FileCapture
from speech_app.streaming import (Detection, RecognizerSettings, StreamingRecognizer, iter_blocks,
                                  recognize_file, recognize_samples)

BLOCK_SIZES = [1, 160, 333, 1600, 4096, 16_000, None]  # None: the whole signal in one block


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
    recognizer = StreamingRecognizer(classifier, quiet_gate=False)  # silence: every window to the model
    recognizer.feed(np.zeros(10 * SAMPLE_RATE, np.float32))
    assert sum(calls) == 10 * SAMPLE_RATE // recognizer.settings.hop_samples and max(calls) > 1


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
    # the second word follows no pause: the pause rule is off, so that only the suppression can keep it out
    long_quiet = StreamingRecognizer(ToneClassifier(), RecognizerSettings(suppression_ms=1500, pause_ms=0.0))
    short_quiet = StreamingRecognizer(ToneClassifier(), RecognizerSettings(suppression_ms=500, pause_ms=0.0))
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


# -- the real shipped model on the sample clips it is sure of ------------------------------------

def test_shipped_model_detects_a_real_clip_once(shipped_classifier, reliable_words):
    detections = {word: [d.label for d in recognize_file(sample_clip(word), shipped_classifier, block_samples=320)]
                  for word in reliable_words}
    assert detections == {word: [word] for word in reliable_words}


def test_shipped_model_detects_the_same_words_whatever_the_block_size(shipped_classifier, reliable_words):
    clips = [load_audio(sample_clip(w)) for w in reliable_words]
    gap = np.zeros(SAMPLE_RATE, np.float32)  # a pause before each word: words said closer are not commands (pause_ms)
    signal = np.concatenate([np.concatenate([c, gap]) for c in clips])
    results = [recognize_samples(StreamingRecognizer(shipped_classifier), signal, block_samples=b)
               for b in (160, 1024, None)]
    scanner = StreamingRecognizer(shipped_classifier, batch_windows=8, model_workers=2)  # as listen --file scans
    results.append(recognize_samples(scanner, signal))
    scanner.close()
    for detections in results[1:]:
        assert [(d.label, d.time_s) for d in detections] == [(d.label, d.time_s) for d in results[0]]
    assert [d.label for d in results[0]] == list(reliable_words)
