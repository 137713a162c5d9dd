"""Background noise: for `_silence_` examples and for mixing under speech during training.

Uses the dataset's `_background_noise_` recordings when there are any, and coloured noise made
here otherwise, so custom word folders without noise files still get a `_silence_` class.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..audio import SAMPLE_RATE, AudioDecodeError, load_audio

GENERATED_NOISE_SECONDS = 20.0  # per generated colour when there are no noise recordings
SILENCE_MAX_VOLUME = 1.0  # `_silence_` examples: noise at a random volume up to this
NOISE_PEAK = 0.5  # generated noise is scaled to this peak, near the level of the real noise files


class NoiseBank:
    """Long noise recordings, from which random windows are drawn."""

    def __init__(self, recordings: list[np.ndarray]):
        if not recordings:
            raise ValueError("a noise bank needs at least one recording")
        self.recordings = [r.astype(np.float32) for r in recordings]

    @classmethod
    def from_files(cls, paths: list[Path], seed: int = 0) -> NoiseBank:
        recordings = []
        for path in paths:
            try:
                recordings.append(load_audio(path))
            except AudioDecodeError:
                continue  # a broken noise file only costs us that noise
        return cls(recordings) if recordings else cls.generated(seed)

    @classmethod
    def generated(cls, seed: int = 0) -> NoiseBank:
        """White, pink and brown noise, shaped in the frequency domain."""
        rng = np.random.default_rng(seed)
        n = int(GENERATED_NOISE_SECONDS * SAMPLE_RATE)
        freqs = np.fft.rfftfreq(n, d=1.0 / SAMPLE_RATE)
        freqs[0] = freqs[1]
        recordings = []
        for exponent in (0.0, 0.5, 1.0):  # amplitude ~ f^-exponent: white, pink, brown
            spectrum = (rng.standard_normal(len(freqs)) + 1j * rng.standard_normal(len(freqs))) / freqs**exponent
            noise = np.fft.irfft(spectrum, n=n)
            recordings.append(NOISE_PEAK * noise / np.max(np.abs(noise)))
        return cls(recordings)

    def window(self, rng: np.random.Generator, n_samples: int) -> np.ndarray:
        recording = self.recordings[rng.integers(len(self.recordings))]
        if len(recording) <= n_samples:
            return np.resize(recording, n_samples)
        start = rng.integers(0, len(recording) - n_samples)
        return recording[start : start + n_samples]

    def silence_clip(self, rng: np.random.Generator, n_samples: int) -> np.ndarray:
        """A `_silence_` example: a noise window at a random volume (sometimes near-digital silence)."""
        return (self.window(rng, n_samples) * rng.uniform(0.0, SILENCE_MAX_VOLUME)).astype(np.float32)
