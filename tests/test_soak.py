"""Long runs hold (issue 12, item 7): the streaming recognizer fed an hour of audio, faster than real
time, keeps its memory flat and finds the same detections as a short run on the same audio.

The audio is one pattern of spoken-word-like sounds repeated for an hour. Its length is a whole number
of hops and of feeding blocks, so every repetition is evaluated on exactly the same windows in the
same batches: a repetition late in the hour must give exactly the detections of an early one."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import SAMPLE_RATE, WANTED_WORDS, word_sound
from speech_app.inference import CommandClassifier
from speech_app.streaming import MAX_BATCH_WINDOWS, RecognizerSettings, StreamingRecognizer

SOAK_SECONDS = 3600.0
HOP_SAMPLES = RecognizerSettings().hop_samples
BLOCK_SAMPLES = MAX_BATCH_WINDOWS * HOP_SAMPLES  # 3.2 s: one full model batch per block
PATTERN_BLOCKS = 4  # the repeated pattern: 12.8 s, words with pauses
SHORT_RUN_SECONDS = 180.0
WARM_UP_SECONDS = 300.0  # memory is measured from here: allocator pools and caches are filled by then
MAX_GROWTH_MB = 20.0


def rss_mb() -> float:
    """Resident memory of this process (torch's allocations included, unlike tracemalloc)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError("no VmRSS in /proc/self/status")


def word_pattern() -> np.ndarray:
    rng = np.random.default_rng(7)
    parts, gap = [], np.zeros(SAMPLE_RATE // 2, dtype=np.float32)
    for word in WANTED_WORDS * 2:
        parts += [gap, word_sound(word, rng)]
    pattern = np.concatenate(parts)
    length = PATTERN_BLOCKS * BLOCK_SAMPLES
    assert len(pattern) <= length
    return np.pad(pattern, (0, length - len(pattern)))


def detections_of(recognizer: StreamingRecognizer, pattern: np.ndarray, seconds: float, on_block=None) -> list:
    found = []
    blocks = int(seconds * SAMPLE_RATE) // BLOCK_SAMPLES
    for i in range(blocks):
        block = pattern[(i % PATTERN_BLOCKS) * BLOCK_SAMPLES : (i % PATTERN_BLOCKS + 1) * BLOCK_SAMPLES]
        found += recognizer.feed(block)
        if on_block is not None:
            on_block(recognizer.fed_seconds)
    return found


def settings_the_model_triggers(classifier: CommandClassifier, pattern: np.ndarray) -> RecognizerSettings:
    """From the model under test, not fixed numbers: a threshold its smoothed scores on the pattern
    cross often, re-armed by any dip below it, so there are many detections to compare (the tiny
    fixture model is barely trained and its scores vary little)."""
    probe = StreamingRecognizer(classifier, RecognizerSettings(threshold=1.0))
    scores = []
    for start in range(0, 2 * len(pattern), HOP_SAMPLES):
        probe.feed(np.tile(pattern, 2)[start : start + HOP_SAMPLES])
        scores.append(float(probe.last_frame.smoothed[probe._word_ids].max()))
    # the pause rule off: the barely trained model's detections fall anywhere, pauses or not (the levels it would
    # judge by are kept all the same, so their memory is measured too)
    return RecognizerSettings(threshold=float(np.percentile(scores, 75)), release_fraction=0.999, pause_ms=0.0)


@pytest.mark.slow
def test_an_hour_of_audio_keeps_memory_flat_and_detections_identical(tiny_model):
    classifier = CommandClassifier.from_file(tiny_model)
    pattern = word_pattern()
    settings = settings_the_model_triggers(classifier, pattern)
    short = detections_of(StreamingRecognizer(classifier, settings), pattern, SHORT_RUN_SECONDS)
    assert len(short) >= 5, "the pattern must give detections to compare"

    samples: list[tuple[float, float]] = []  # (seconds fed, resident MB), after every block
    long_run = StreamingRecognizer(classifier, settings)
    hour = detections_of(long_run, pattern, SOAK_SECONDS, on_block=lambda fed_s: samples.append((fed_s, rss_mb())))
    assert long_run.fed_seconds >= SOAK_SECONDS - BLOCK_SAMPLES / SAMPLE_RATE

    # sustained growth, not a passing peak: the typical level of the last stretch against the first after warm-up
    early = [mb for fed, mb in samples if WARM_UP_SECONDS <= fed < 2 * WARM_UP_SECONDS]
    late = [mb for fed, mb in samples if fed >= SOAK_SECONDS - WARM_UP_SECONDS]
    growth = float(np.median(late) - np.median(early))
    assert growth < MAX_GROWTH_MB, f"memory grew {growth:.1f} MB over the hour"
    assert [d for d in hour if d.time_s <= SHORT_RUN_SECONDS] == short  # the same audio, the same detections

    # every repetition after the first (whose start has no history) matches the second one exactly
    period_s = len(pattern) / SAMPLE_RATE

    def relative(rep: int) -> list[tuple]:
        return [(round(d.time_s - rep * period_s, 6), d.label, round(d.confidence, 5))
                for d in hour if rep * period_s < d.time_s <= (rep + 1) * period_s]

    reference = relative(1)
    last_full = int(long_run.fed_seconds // period_s) - 1
    assert reference and all(relative(rep) == reference for rep in range(2, last_full + 1))
