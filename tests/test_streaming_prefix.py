"""Phrases that share a start ("lights on" / "lights off"): one detection, the right one."""

from __future__ import annotations

import numpy as np

from speech_app.audio import SAMPLE_RATE
from speech_app.streaming import RecognizerSettings, StreamingRecognizer, prefix_rivals, recognize_samples

LABELS = ["_silence_", "_unknown_", "lights on", "lights off", "music"]
TONE_HZ = {"lights": 500.0, "on": 1000.0, "off": 1500.0, "music": 2500.0}
WORD_SECONDS = 0.4


def spoken(*words: str) -> np.ndarray:
    """A 'phrase': one tone per word, back to back, with silence around it."""
    t = np.arange(int(WORD_SECONDS * SAMPLE_RATE)) / SAMPLE_RATE
    quiet = np.zeros(int(0.5 * SAMPLE_RATE), np.float32)
    tones = [0.5 * np.sin(2 * np.pi * TONE_HZ[w] * t).astype(np.float32) for w in words]
    return np.concatenate([quiet, *tones, quiet])


class ToneModel:
    """A model with the failure of a real one: "lights" alone already looks like "lights on"."""

    labels = LABELS
    window_samples = SAMPLE_RATE

    def probabilities(self, waves: np.ndarray) -> np.ndarray:
        spectrum = np.abs(np.fft.rfft(waves, axis=1))  # (N, bins); 1 Hz per bin over one second
        energy = {w: spectrum[:, int(hz) - 5 : int(hz) + 5].sum(axis=1) for w, hz in TONE_HZ.items()}
        out = np.zeros((len(waves), len(LABELS)), np.float32)
        for row in range(len(waves)):
            loud = {w for w, e in energy.items() if e[row] > 100.0}
            if "off" in loud:
                out[row, 3] = 0.9
            elif "on" in loud:
                out[row, 2] = 0.9
            elif "lights" in loud:
                out[row, 2], out[row, 3] = 0.85, 0.1
            elif "music" in loud:
                out[row, 4] = 0.9
            else:
                out[row, 0] = 0.9
            out[row] += (1.0 - out[row].sum()) / len(LABELS)
        return out


# Low enough that the smoothed score of the shared start alone ("lights": 0.4 s of 0.85) crosses it,
# whatever the default threshold is: the case the wait is for.
PREFIX_CROSSING_THRESHOLD = 0.6


def labels_of(samples: np.ndarray, wait_ms: float = RecognizerSettings().prefix_wait_ms,
              threshold: float = PREFIX_CROSSING_THRESHOLD) -> list[str]:
    recognizer = StreamingRecognizer(ToneModel(), RecognizerSettings(prefix_wait_ms=wait_ms, threshold=threshold))
    return [d.label for d in recognize_samples(recognizer, samples, block_samples=1000)]


def test_without_waiting_the_shared_start_fires_the_wrong_phrase():
    assert labels_of(spoken("lights", "off"), wait_ms=0)[0] == "lights on"  # the failure the wait fixes


def test_phrases_sharing_a_start_give_one_detection_the_right_one():
    assert labels_of(spoken("lights", "off")) == ["lights off"]
    assert labels_of(spoken("lights", "on")) == ["lights on"]
    assert labels_of(spoken("music")) == ["music"]


def test_the_default_threshold_gives_the_right_phrase_too():
    default = RecognizerSettings().threshold
    assert labels_of(spoken("lights", "off"), threshold=default) == ["lights off"]
    assert labels_of(spoken("lights", "on"), threshold=default) == ["lights on"]


def test_a_word_without_rivals_is_not_delayed():
    with_wait = recognize_samples(StreamingRecognizer(ToneModel()), spoken("music"))
    without = recognize_samples(StreamingRecognizer(ToneModel(), RecognizerSettings(prefix_wait_ms=0)), spoken("music"))
    assert [(d.label, d.time_s) for d in with_wait] == [(d.label, d.time_s) for d in without]


def test_rivals_are_phrases_with_the_same_first_word_or_start():
    rivals = prefix_rivals(LABELS)
    assert rivals["lights on"] == {"lights off"} and rivals["music"] == set()
    standard = ["_silence_", "_unknown_", "yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"]
    assert all(not r for r in prefix_rivals(standard).values())  # the shipped model's words never wait
    assert prefix_rivals(["computer", "compute", "jarvis"])["computer"] == {"compute"}
