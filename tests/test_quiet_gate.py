"""The quiet-audio gate: windows with no sound above the room's noise floor get `_silence_` without the model.

The stand-in tone model counts the windows it is given (`windows_seen`), so "the model did not run" is a
count, not a time. Detections with the gate must be those without it.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
from stand_ins import ToneClassifier, tone_sentence

from speech_app.audio import SAMPLE_RATE
from speech_app.capture import AudioRingBuffer
from speech_app.quiet_gate import MIN_FLOOR_SECONDS, QuietGate
from speech_app.streaming import RecognizerSettings, StreamingRecognizer, iter_blocks, recognize_samples

ROOM_NOISE = 0.002  # standard deviation of the stand-in room's noise: 50 dB under the tone words
MIC_BLOCK = 320


def room(seconds: float, rng: np.random.Generator, level: float = ROOM_NOISE) -> np.ndarray:
    return (level * rng.standard_normal(int(seconds * SAMPLE_RATE))).astype(np.float32)


def words_in_a_quiet_room(seed: int = 0) -> np.ndarray:
    """Quiet first (the floor), words with quiet between them, a long quiet end: room noise under all of it."""
    rng = np.random.default_rng(seed)
    words, _ = tone_sentence(["low", "high", "mid", "low"], gap_s=3.0)
    signal = np.concatenate([np.zeros(8 * SAMPLE_RATE, np.float32), words, np.zeros(10 * SAMPLE_RATE, np.float32)])
    return signal + room(len(signal) / SAMPLE_RATE, rng)


def run(signal: np.ndarray, gate: bool, **kwargs) -> tuple[StreamingRecognizer, list, list]:
    recognizer = StreamingRecognizer(ToneClassifier(), quiet_gate=gate, **kwargs)
    recognizer.recorded = []
    detections = recognize_samples(recognizer, signal, MIC_BLOCK)
    recognizer.close()
    return recognizer, [(d.label, d.time_s, round(d.confidence, 5)) for d in detections], recognizer.recorded


def test_the_gate_gives_the_same_detections_and_skips_the_model_on_the_quiet_stretches():
    signal = words_in_a_quiet_room()
    plain, without, all_rows = run(signal, gate=False)
    gated, with_gate, rows = run(signal, gate=True)
    assert without and with_gate == without
    skipped = gated.quiet_gate.skipped
    assert skipped > 0 and gated.classifier.windows_seen == plain.classifier.windows_seen - skipped
    assert gated.evaluations == plain.evaluations  # every hop still decides, on `_silence_` where it skipped
    silence = gated.labels.index("_silence_")
    for (at, model_row), (at_gated, gated_row) in zip(all_rows, rows):
        assert at == at_gated
        if gated_row[silence] == 1.0 and gated_row.sum() == 1.0:  # a skipped window: the model says silence too
            assert int(np.argmax(model_row)) == silence


def test_a_quiet_room_does_not_run_the_model_once_the_floor_is_known():
    rng = np.random.default_rng(1)
    recognizer = StreamingRecognizer(ToneClassifier())
    detections = []
    for block in iter_blocks(room(60.0, rng), MIC_BLOCK):
        detections += recognizer.feed(block)
    hop_s = RecognizerSettings().hop_ms / 1000
    assert not detections
    # only the windows before the floor is known (MIN_FLOOR_SECONDS of audio) reach the model
    assert recognizer.classifier.windows_seen <= MIN_FLOOR_SECONDS / hop_s + 1
    assert recognizer.quiet_gate.skipped == recognizer.evaluations - recognizer.classifier.windows_seen


@pytest.mark.parametrize("gain", [1e-3, 0.1, 20.0])
def test_the_decisions_do_not_depend_on_the_level(gain):
    signal = words_in_a_quiet_room(seed=2)
    window, hop = 16_000, RecognizerSettings().hop_samples
    starts = np.arange(hop - window, len(signal) - window + 1, hop)

    def decisions(stream: np.ndarray) -> np.ndarray:
        gate = QuietGate.for_labels(ToneClassifier().labels, window)
        padded = np.concatenate([np.zeros(window, np.float32), stream])  # windows before the stream's start
        return np.concatenate([gate.quiet_windows(padded, -window, starts[i : i + 1]) for i in range(len(starts))])

    reference = decisions(signal)
    assert reference.any() and not reference.all()
    np.testing.assert_array_equal(decisions((signal * gain).astype(np.float32)), reference)


def test_a_louder_room_is_followed():
    """The room gets 30 dB louder for good: its new steady noise is quiet again once the floor has risen."""
    rng = np.random.default_rng(3)
    signal = np.concatenate([room(20.0, rng), room(40.0, rng, level=ROOM_NOISE * 30)])
    recognizer = StreamingRecognizer(ToneClassifier())
    recognize_samples(recognizer, signal, MIC_BLOCK)
    seen_in_the_first_room = MIN_FLOOR_SECONDS / (RecognizerSettings().hop_ms / 1000) + 1
    assert recognizer.classifier.windows_seen < recognizer.evaluations / 2
    assert recognizer.classifier.windows_seen > seen_in_the_first_room  # the change itself reached the model


def test_scanning_with_model_workers_gives_what_one_thread_gives():
    signal = words_in_a_quiet_room(seed=4)
    _, one_thread, _ = run(signal, gate=True)
    _, workers, _ = run(signal, gate=True, model_workers=2, batch_windows=8)
    _, no_gate, _ = run(signal, gate=False, model_workers=2, batch_windows=8)
    assert one_thread and workers == one_thread == no_gate


def test_a_model_without_a_silence_class_is_not_gated():
    classifier = ToneClassifier()
    classifier.labels = ["_unknown_", "_other_", *classifier.labels[2:]]
    assert StreamingRecognizer(classifier).quiet_gate is None


def test_a_reader_asking_for_a_hop_of_audio_gets_it_in_one_read():
    ring = AudioRingBuffer(16_000)
    writer = threading.Thread(target=lambda: [ring.write(np.ones(100, np.float32)) for _ in range(5)])
    writer.start()
    got = ring.read(timeout_s=30.0, min_samples=500)  # woken by the fifth block, not the first
    writer.join()
    assert len(got) == 500
    assert len(ring.read(timeout_s=0.01, min_samples=100)) == 0  # the wait ends at the timeout with what there is
